//! Where a datagram was sent *to*.
//!
//! Python's `data, addr = sock.recvfrom(1024)` tells who sent a datagram, never which
//! address it was sent to. A socket bound to `0.0.0.0` (or `::`) receives datagrams for
//! every address of the machine, and also broadcasts (`255.255.255.255`, `10.0.0.255`)
//! and, on Linux, multicast for groups that any socket on the host joined. An echo server
//! must not answer those (one broadcast would draw a reply from every server on the LAN),
//! and the UDP checksum is computed over a pseudo-header holding the destination address.
//!
//! The kernel tells the destination when asked (`IP_PKTINFO`, `IPV6_RECVPKTINFO`), as a
//! control message beside the data, which only `recvmsg` can read. std has no binding for
//! it, so this module calls the C library through `libc`, each unsafe step justified.
//! Elsewhere [`recv`] falls back to `recv_from` and knows no destination.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// What `recvmsg` said about one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Bytes written into the buffer.
    pub len: usize,
    /// Who sent it: `recvfrom`'s `addr`.
    pub peer: SocketAddr,
    /// The address it was sent to, when the kernel said.
    pub to: Option<Destination>,
    /// The datagram was longer than the buffer and was cut (MSG_TRUNC).
    pub truncated: bool,
}

impl Arrival {
    /// What `recvfrom` tells: a length and a sender, no destination.
    pub fn new(len: usize, peer: SocketAddr) -> Self {
        Arrival {
            len,
            peer,
            to: None,
            truncated: false,
        }
    }
}

/// The destination of a datagram, from its IP header.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Destination {
    /// The destination address in the IP header (a v4-mapped IPv6 address is given as IPv4).
    pub addr: IpAddr,
    /// IPv4 only: the local address the kernel would answer from (`ipi_spec_dst`). It equals
    /// `addr` exactly when the datagram was sent to one of this machine's own unicast addresses.
    pub local: Option<IpAddr>,
}

impl Destination {
    /// Whether the datagram went to many hosts at once (a broadcast or a multicast group)
    /// rather than to one of this machine's own addresses.
    ///
    /// Besides `255.255.255.255` and `224.0.0.0/4`, a subnet's broadcast address
    /// (`10.0.0.255`) looks like any other address; the kernel gives it away by answering
    /// from a different local address (see [`Destination::local`]).
    pub fn is_broadcast_or_multicast(&self) -> bool {
        match self.addr {
            IpAddr::V4(a) => a.is_broadcast() || a.is_multicast() || self.local.is_some_and(|l| l != self.addr),
            IpAddr::V6(a) => a.is_multicast(),
        }
    }
}

/// Asks the kernel to tell each datagram's destination (IP_PKTINFO, IPV6_RECVPKTINFO).
/// Elsewhere than Linux nothing is asked for, and [`recv`] reports no destination.
///
/// # Errors
/// [`crate::Error::Runtime`] when the socket option cannot be set.
pub fn enable(socket: &UdpSocket) -> crate::Result<()> {
    ask_for_destinations(socket).map_err(|e| crate::Error::io("cannot ask for datagram destinations (IP_PKTINFO)", &e))
}

#[cfg(target_os = "linux")]
fn ask_for_destinations(socket: &UdpSocket) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = socket.as_raw_fd();
    if socket.local_addr()?.is_ipv4() {
        set_flag(fd, libc::IPPROTO_IP, libc::IP_PKTINFO)
    } else {
        set_flag(fd, libc::IPPROTO_IPV6, libc::IPV6_RECVPKTINFO)?;
        // IPv4 datagrams reaching a dual-stack socket: ask for ipi_spec_dst too, if allowed.
        let _ = set_flag(fd, libc::IPPROTO_IP, libc::IP_PKTINFO);
        Ok(())
    }
}

#[cfg(not(target_os = "linux"))]
fn ask_for_destinations(_: &UdpSocket) -> io::Result<()> {
    Ok(())
}

#[cfg(target_os = "linux")]
fn set_flag(fd: std::os::fd::RawFd, level: libc::c_int, name: libc::c_int) -> io::Result<()> {
    let on: libc::c_int = 1;
    // SAFETY: `on` is a live c_int and its size is passed with it; the kernel only reads it.
    let rc = unsafe {
        libc::setsockopt(
            fd,
            level,
            name,
            (&on as *const libc::c_int).cast(),
            size_of::<libc::c_int>() as libc::socklen_t,
        )
    };
    if rc == 0 {
        Ok(())
    } else {
        Err(io::Error::last_os_error())
    }
}

/// The chapter's `recvfrom` (`socket.recv_from`), or [`recv`] when the destination is
/// wanted too: one receive call either way.
///
/// # Errors
/// What the receive returned.
pub fn recv_from(socket: &UdpSocket, buf: &mut [u8], with_destination: bool) -> io::Result<Arrival> {
    if with_destination {
        return recv(socket, buf);
    }
    let (len, peer) = socket.recv_from(buf)?;
    Ok(Arrival::new(len, peer))
}

/// Room for one IPv4 and one IPv6 packet-info message; u64s keep it aligned for cmsghdr.
#[cfg(target_os = "linux")]
pub type ControlBuffer = [u64; 16];

/// `recvfrom`, plus the destination when [`enable`] was called: receives one datagram into
/// `buf`.
///
/// # Errors
/// What the receive returned (a timeout is `WouldBlock`/`TimedOut`, as with `recv_from`).
#[cfg(target_os = "linux")]
pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Arrival> {
    use std::mem::zeroed;
    use std::os::fd::AsRawFd;

    // SAFETY: all-zero bytes are a valid sockaddr_storage and msghdr (an unspecified
    // address, null pointers and zero lengths).
    let mut name: libc::sockaddr_storage = unsafe { zeroed() };
    let mut msg: libc::msghdr = unsafe { zeroed() };
    let mut control: ControlBuffer = [0; 16];
    let mut iov = libc::iovec {
        iov_base: buf.as_mut_ptr().cast(),
        iov_len: buf.len(),
    };
    msg.msg_name = (&mut name as *mut libc::sockaddr_storage).cast();
    msg.msg_namelen = size_of::<libc::sockaddr_storage>() as libc::socklen_t;
    msg.msg_iov = &mut iov;
    msg.msg_iovlen = 1;
    msg.msg_control = control.as_mut_ptr().cast();
    msg.msg_controllen = size_of::<ControlBuffer>();
    // SAFETY: every pointer in `msg` points at a live local (`name`, `iov` → `buf`,
    // `control`) with its true length; the kernel writes only within those lengths.
    let n = unsafe { libc::recvmsg(socket.as_raw_fd(), &mut msg, 0) };
    if n < 0 {
        return Err(io::Error::last_os_error());
    }
    let peer = socket_addr(&name).ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no sender address"))?;
    Ok(Arrival {
        len: n as usize,
        peer,
        // SAFETY: `msg` was just filled by recvmsg: its control pointer and length describe
        // `control`, which is still alive.
        to: unsafe { destination(&msg) },
        truncated: msg.msg_flags & libc::MSG_TRUNC != 0,
    })
}

/// Without `recvmsg` support: `recv_from`, no destination; truncation is left to the caller.
///
/// # Errors
/// What the receive returned.
#[cfg(not(target_os = "linux"))]
pub fn recv(socket: &UdpSocket, buf: &mut [u8]) -> io::Result<Arrival> {
    let (len, peer) = socket.recv_from(buf)?;
    Ok(Arrival::new(len, peer))
}

/// The destination the kernel reported in the control messages of a received `msg`.
///
/// # Safety
/// `msg` must have been filled by `recvmsg`/`recvmmsg`, and the control buffer its
/// `msg_control` and `msg_controllen` describe must still be alive.
#[cfg(target_os = "linux")]
pub unsafe fn destination(msg: &libc::msghdr) -> Option<Destination> {
    let mut found: Option<Destination> = None;
    // SAFETY (this block): the caller vouches for the control buffer; CMSG_FIRSTHDR and
    // CMSG_NXTHDR stay within msg_controllen and return null at its end, and each payload is
    // read unaligned with the size its cmsg_type implies.
    let mut cmsg = unsafe { libc::CMSG_FIRSTHDR(msg) };
    while !cmsg.is_null() {
        let (level, kind) = unsafe { ((*cmsg).cmsg_level, (*cmsg).cmsg_type) };
        let data = unsafe { libc::CMSG_DATA(cmsg) };
        if level == libc::IPPROTO_IP && kind == libc::IP_PKTINFO {
            let info: libc::in_pktinfo = unsafe { std::ptr::read_unaligned(data.cast()) };
            // The IPv4 message wins: it also carries the local address (ipi_spec_dst).
            found = Some(Destination {
                addr: IpAddr::from(u32::from_be(info.ipi_addr.s_addr).to_be_bytes()),
                local: Some(IpAddr::from(u32::from_be(info.ipi_spec_dst.s_addr).to_be_bytes())),
            });
        } else if level == libc::IPPROTO_IPV6 && kind == libc::IPV6_PKTINFO && found.is_none() {
            let info: libc::in6_pktinfo = unsafe { std::ptr::read_unaligned(data.cast()) };
            let v6 = std::net::Ipv6Addr::from(info.ipi6_addr.s6_addr);
            found = Some(Destination {
                addr: v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                local: None,
            });
        }
        cmsg = unsafe { libc::CMSG_NXTHDR(msg, cmsg) };
    }
    found
}

/// The address in a `sockaddr_storage` the kernel filled (a sender's address).
#[cfg(unix)]
pub fn socket_addr(storage: &libc::sockaddr_storage) -> Option<SocketAddr> {
    use std::net::{Ipv4Addr, Ipv6Addr, SocketAddrV4, SocketAddrV6};
    match i32::from(storage.ss_family) {
        libc::AF_INET => {
            // SAFETY: the family says the storage holds a sockaddr_in, which it can contain.
            let sin = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in>() };
            let ip = Ipv4Addr::from(u32::from_be(sin.sin_addr.s_addr));
            Some(SocketAddr::V4(SocketAddrV4::new(ip, u16::from_be(sin.sin_port))))
        }
        libc::AF_INET6 => {
            // SAFETY: the family says the storage holds a sockaddr_in6, which it can contain.
            let sin6 = unsafe { &*(storage as *const libc::sockaddr_storage).cast::<libc::sockaddr_in6>() };
            let ip = Ipv6Addr::from(sin6.sin6_addr.s6_addr);
            Some(SocketAddr::V6(SocketAddrV6::new(
                ip,
                u16::from_be(sin6.sin6_port),
                sin6.sin6_flowinfo,
                sin6.sin6_scope_id,
            )))
        }
        _ => None,
    }
}

#[cfg(all(test, target_os = "linux"))]
mod tests {
    use super::*;
    use std::time::Duration;

    fn bound(addr: &str) -> UdpSocket {
        let s = UdpSocket::bind(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        enable(&s).unwrap();
        s
    }

    #[test]
    fn unicast_to_any_local_address_is_told_apart_from_broadcast() {
        let server = bound("0.0.0.0:0");
        let port = server.local_addr().unwrap().port();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.set_broadcast(true).unwrap();
        let mut buf = [0u8; 16];

        for (to, broadcast) in [("127.0.0.1", false), ("127.0.0.5", false), ("127.255.255.255", true)] {
            client.send_to(b"hi", (to, port)).unwrap();
            let got = recv(&server, &mut buf).unwrap();
            assert_eq!((got.len, got.peer), (2, client.local_addr().unwrap()));
            let dest = got.to.unwrap();
            assert_eq!(dest.addr.to_string(), to);
            assert_eq!(dest.is_broadcast_or_multicast(), broadcast, "{to}: {dest:?}");
        }
    }

    #[test]
    fn a_long_datagram_is_reported_cut() {
        let server = bound("127.0.0.1:0");
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        client.send_to(&[7u8; 100], server.local_addr().unwrap()).unwrap();
        let mut buf = [0u8; 10];
        let got = recv(&server, &mut buf).unwrap();
        assert_eq!((got.len, got.truncated), (10, true));
    }

    #[test]
    fn ipv6_destination() {
        let server = bound("[::1]:0");
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(b"x", server.local_addr().unwrap()).unwrap();
        let got = recv(&server, &mut [0u8; 4]).unwrap();
        assert_eq!(got.to.unwrap().addr.to_string(), "::1");
        assert!(!got.to.unwrap().is_broadcast_or_multicast());
    }
}
