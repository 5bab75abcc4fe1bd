//! What the kernel knows about a socket and a program cannot see otherwise.

use std::net::UdpSocket;

/// Datagrams the kernel threw away because this socket's receive queue was full: the
/// `drops` column of `/proc/net/udp` (or `udp6`) on the line of this socket's inode.
/// `None` where that is not available (not Linux, or /proc not mounted).
///
/// UDP has no flow control: a sender faster than the receiver loses datagrams here, and
/// neither side is told. Only this counter shows it.
pub fn drops(socket: &UdpSocket) -> Option<u64> {
    #[cfg(target_os = "linux")]
    {
        use std::os::fd::AsRawFd;
        let link = std::fs::read_link(format!("/proc/self/fd/{}", socket.as_raw_fd())).ok()?;
        let inode = link.to_str()?.strip_prefix("socket:[")?.strip_suffix(']')?.to_string();
        for table in ["/proc/net/udp", "/proc/net/udp6"] {
            let Ok(text) = std::fs::read_to_string(table) else {
                continue;
            };
            // Columns: sl local rem st tx:rx tr:when retrnsmt uid timeout inode ref pointer drops
            for line in text.lines().skip(1) {
                let cols: Vec<&str> = line.split_whitespace().collect();
                if cols.get(9) == Some(&inode.as_str()) {
                    return cols.get(12)?.parse().ok();
                }
            }
        }
        None
    }
    #[cfg(not(target_os = "linux"))]
    {
        let _ = socket;
        None
    }
}

/// Adds `kernel_drops` to a summary object, where the count is known.
pub fn add_to(drops: Option<u64>, summary: &mut serde_json::Value) {
    if let Some(drops) = drops {
        summary["kernel_drops"] = drops.into();
    }
}

/// `; the kernel dropped 12 (receive queue full)`, for a summary line, when any were.
pub fn to_text(drops: Option<u64>) -> String {
    match drops {
        Some(d) if d > 0 => format!("; the kernel dropped {d} (receive queue full)"),
        _ => String::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel says the queue holds (SO_RCVBUF through getsockopt), never a number
    /// assumed from a default: hosts raise `net.core.rmem_default`.
    fn queue_bytes(socket: &UdpSocket) -> usize {
        socket2::SockRef::from(socket).recv_buffer_size().unwrap()
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_new_socket_queue_is_the_hosts_rmem_default() {
        let default: usize = std::fs::read_to_string("/proc/sys/net/core/rmem_default")
            .unwrap()
            .trim()
            .parse()
            .unwrap();
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(queue_bytes(&socket), default);
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn a_full_queue_drops_exactly_what_did_not_fit() {
        // Nobody reads `rx` while more bytes arrive than its queue can hold, whatever this
        // host's default: what does not fit is dropped, and received + dropped is exactly
        // what was sent.
        let rx = UdpSocket::bind("127.0.0.1:0").unwrap();
        socket2::SockRef::from(&rx).set_recv_buffer_size(4096).unwrap();
        let sent = queue_bytes(&rx) / 1000 + 100;
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert_eq!(drops(&rx), Some(0));
        for _ in 0..sent {
            tx.send_to(&[7u8; 1000], rx.local_addr().unwrap()).unwrap();
        }
        rx.set_nonblocking(true).unwrap();
        let mut buf = [0u8; 2000];
        let mut received = 0;
        while rx.recv_from(&mut buf).is_ok() {
            received += 1;
        }
        let dropped = drops(&rx).unwrap();
        assert!(dropped >= 100, "{sent} kB sent into a {} B queue", queue_bytes(&rx));
        assert_eq!(received + dropped, sent as u64);
    }

    #[cfg(not(target_os = "linux"))]
    #[test]
    fn elsewhere_the_count_is_unknown_not_zero() {
        let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
        assert!(queue_bytes(&socket) > 0);
        assert_eq!(drops(&socket), None);
    }
}
