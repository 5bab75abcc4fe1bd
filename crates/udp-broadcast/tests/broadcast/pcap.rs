//! `listen --pcap FILE`: what arrived, read back by tshark (Wireshark's own dissectors, with
//! checksums checked) and by `common::pcap::read_udp`.

use std::net::{SocketAddr, UdpSocket};
use std::path::PathBuf;

use common::pcap::{Captured, read_udp};
use testkit::tshark;

use crate::{WAIT, listener};

fn temp(name: &str) -> PathBuf {
    std::env::temp_dir().join(format!("udp-broadcast-{}-{name}.pcap", std::process::id()))
}

fn hex(data: &[u8]) -> String {
    data.iter().map(|b| format!("{b:02x}")).collect()
}

/// A socket that may send to 127.255.255.255, and its address.
fn broadcaster() -> (UdpSocket, SocketAddr) {
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    socket.set_broadcast(true).unwrap();
    let addr = socket.local_addr().unwrap();
    (socket, addr)
}

/// Three broadcasts (one empty, one binary) to a listener bound to 0.0.0.0: the file holds
/// three records with the sender's address and port, the broadcast address the OS said they
/// were sent to, and the payloads sent; tshark shows the same, every UDP checksum good, and
/// has nothing to warn about.
#[test]
fn broadcasts_heard_are_in_the_pcap_file_as_sent() {
    let path = temp("heard");
    let file = path.to_string_lossy();
    let (mut listen, addr) = listener(&["--bind", "0.0.0.0:0", "--count", "3", "--pcap", &file]);
    let to = SocketAddr::from(([127, 255, 255, 255], addr.port()));
    let (socket, from) = broadcaster();
    let sent: [&[u8]; 3] = [b"seq=1 hello", b"", &[0xaa, 0x55, 0x00, 0xff, 0x17]];
    for datagram in sent {
        socket.send_to(datagram, to).unwrap();
    }
    let status = listen.wait(WAIT).expect("listen stops after --count 3");
    assert_eq!(status.code(), Some(0), "{:?}", listen.stderr.rest(WAIT));
    let back = read_udp(&path).unwrap();
    let expected: Vec<Captured> = sent
        .iter()
        .zip(&back)
        .map(|(data, got)| Captured {
            time: got.time,
            src: from,
            dst: to,
            data: data.to_vec(),
            len: data.len(),
        })
        .collect();
    assert_eq!(back, expected);
    if tshark::available() {
        let port = addr.port();
        let lines: Vec<String> = sent
            .iter()
            .map(|d| {
                let (udp, ip) = (d.len() + 8, d.len() + 28);
                format!("127.0.0.1\t\t{}\t{port}\t{udp}\t1\t{ip}\t{ip}\t{}", from.port(), hex(d))
            })
            .collect();
        assert_eq!(tshark::fields(&path), lines);
        assert_eq!(tshark::expert(&path), Vec::<String>::new());
    }
    std::fs::remove_file(&path).ok();
}

/// Over IPv6 (unicast to [::1]; loopback carries no IPv6 multicast): an IPv6 record with
/// the real addresses, its checksum good in tshark.
#[test]
fn an_ipv6_datagram_is_recorded_as_ipv6() {
    let socket = UdpSocket::bind("[::1]:0").unwrap();
    let path = temp("v6");
    let file = path.to_string_lossy();
    let (mut listen, addr) = listener(&["--bind", "[::1]:0", "--count", "1", "--pcap", &file]);
    socket.send_to(b"over six", addr).unwrap();
    assert_eq!(listen.wait(WAIT).and_then(|s| s.code()), Some(0));
    let back = read_udp(&path).unwrap();
    let seen: Vec<_> = back.iter().map(|c| (c.src, c.dst, c.data.as_slice())).collect();
    assert_eq!(seen, [(socket.local_addr().unwrap(), addr, &b"over six"[..])]);
    if tshark::available() {
        let from = socket.local_addr().unwrap().port();
        let line = format!("\t::1\t{from}\t{}\t16\t1\t56\t56\t{}", addr.port(), hex(b"over six"));
        assert_eq!(tshark::fields(&path), [line]);
        assert_eq!(tshark::expert(&path), Vec::<String>::new());
    }
    std::fs::remove_file(&path).ok();
}

/// `--buffer-size 8`: a 100-byte datagram is shown cut, and recorded cut: 8 bytes kept,
/// and a length longer than what was kept (captured length < length in tshark).
#[test]
fn a_datagram_cut_by_the_buffer_is_recorded_cut() {
    let path = temp("cut");
    let file = path.to_string_lossy();
    let (mut listen, addr) = listener(&[
        "--bind",
        "127.0.0.1:0",
        "--count",
        "1",
        "--buffer-size",
        "8",
        "--pcap",
        &file,
    ]);
    let long: Vec<u8> = (0..100).collect();
    UdpSocket::bind("127.0.0.1:0").unwrap().send_to(&long, addr).unwrap();
    assert_eq!(listen.wait(WAIT).and_then(|s| s.code()), Some(0));
    let back = read_udp(&path).unwrap();
    assert_eq!(back.len(), 1);
    assert_eq!(back[0].data, long[..8]);
    assert!(back[0].len > 8, "recorded length {}", back[0].len);
    if tshark::available() {
        let fields = tshark::fields(&path);
        let columns: Vec<&str> = fields[0].split('\t').collect();
        let (caplen, len): (u32, u32) = (columns[6].parse().unwrap(), columns[7].parse().unwrap());
        assert!(caplen < len, "{fields:?}");
        assert_eq!(columns[8], hex(&long[..8]));
        assert_eq!(tshark::expert(&path), Vec::<String>::new());
    }
    std::fs::remove_file(&path).ok();
}

/// A listener killed (SIGKILL: no clean stop, no summary) leaves a file readable up to its
/// last datagram, because every record is flushed as it is written.
#[cfg(unix)]
#[test]
fn a_killed_listener_leaves_a_readable_file() {
    let path = temp("killed");
    let file = path.to_string_lossy();
    let (mut listen, addr) = listener(&["--bind", "127.0.0.1:0", "--pcap", &file]);
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in [&b"one"[..], b"two"] {
        socket.send_to(datagram, addr).unwrap();
        // Its line on stdout comes after its record was written and flushed.
        assert!(listen.stdout.next(WAIT).is_some(), "a line for {datagram:?}");
    }
    listen.signal("KILL").unwrap();
    assert!(listen.wait(WAIT).is_some(), "the listener dies");
    let back = read_udp(&path).unwrap();
    assert_eq!(
        back.iter().map(|c| c.data.clone()).collect::<Vec<_>>(),
        [b"one".to_vec(), b"two".to_vec()]
    );
    if tshark::available() {
        assert_eq!(tshark::fields(&path).len(), 2);
    }
    std::fs::remove_file(&path).ok();
}

/// A file that cannot be created stops the listener before it binds: exit 1, one line
/// naming the file.
#[test]
fn a_pcap_file_that_cannot_be_written_is_an_error_at_start() {
    let nowhere = std::env::temp_dir().join("no-such-dir-udp-broadcast").join("x.pcap");
    let (code, stderr) = crate::run(&["listen", "--bind", "127.0.0.1:0", "--pcap", &nowhere.to_string_lossy()]);
    assert_eq!(code, Some(1), "{stderr}");
    assert!(
        stderr.contains("cannot write the pcap file") && stderr.contains("x.pcap"),
        "{stderr}"
    );
}

/// The pcap file stops growing (here a file-size limit of 1 KiB, as a full disk would):
/// one warning, the listener goes on to show all 40 datagrams and exits 0, and the file
/// ends with its last whole record.
#[cfg(unix)]
#[test]
fn a_failed_pcap_write_is_said_once_and_the_listener_goes_on() {
    let path = temp("full");
    // `trap '' XFSZ`: a write past the limit then fails with EFBIG instead of killing.
    let script = format!(
        "trap '' XFSZ; ulimit -f 1; exec {} listen --bind 127.0.0.1:0 --count 40 --pcap {}",
        crate::BIN,
        path.display()
    );
    let mut listen = testkit::Process::spawn("sh", &["-c", &script]).unwrap();
    let addr = listen.listening(WAIT).expect("a listening line");
    let socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    for i in 0..40u8 {
        socket.send_to(&[i; 100], addr).unwrap();
        assert!(listen.stdout.next(WAIT).is_some(), "a line for datagram {i}");
    }
    assert_eq!(listen.wait(WAIT).and_then(|s| s.code()), Some(0));
    let stderr = listen.stderr.rest(WAIT);
    let warnings: Vec<_> = stderr.iter().filter(|l| l.contains("pcap writing stops")).collect();
    assert_eq!(warnings.len(), 1, "{stderr:?}");
    let back = read_udp(&path).unwrap();
    assert!((1..40).contains(&back.len()), "{} records", back.len());
    for (i, c) in back.iter().enumerate() {
        assert_eq!(c.data, [i as u8; 100]);
    }
    // The part of a record that reached the file was cut off: it ends with a whole record
    // (1 KiB holds 6 of 144 bytes after the 24-byte header), and tshark reads it all.
    assert_eq!(std::fs::metadata(&path).unwrap().len(), 24 + 144 * back.len() as u64);
    if tshark::available() {
        assert_eq!(tshark::fields(&path).len(), back.len());
    }
    std::fs::remove_file(&path).ok();
}
