//! One test per point of the chapter that is a property of UDP itself (see
//! `docs/chapter.md`): each asserts what crossed the wire, on loopback.

use std::io::ErrorKind;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::header::{IP_PROTOCOL_UDP, UDP_HEADER_LEN, UdpHeader};
use socket2::{Domain, Protocol, Socket, Type};

use crate::WAIT;

fn receiver() -> UdpSocket {
    testkit::local_socket(WAIT).unwrap()
}

/// A short deadline for "nothing more arrives".
const QUIET: Duration = Duration::from_millis(200);

#[test]
fn connectionless_listen_and_accept_do_not_exist_for_udp() {
    // The chapter's TCP server calls listen() and accept(); a UDP socket refuses both.
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    socket.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let err = socket.listen(1).unwrap_err();
    assert_eq!(err.raw_os_error(), Some(libc_eopnotsupp()), "listen: {err}");
    assert!(socket.accept().is_err(), "accept");
    // Yet the one bound socket hears every peer, each datagram carrying its sender.
    let server = UdpSocket::from(socket);
    server.set_read_timeout(Some(WAIT)).unwrap();
    let (a, b) = (receiver(), receiver());
    a.send_to(b"from a", server.local_addr().unwrap()).unwrap();
    b.send_to(b"from b", server.local_addr().unwrap()).unwrap();
    let mut got = vec![testkit::recv(&server).unwrap(), testkit::recv(&server).unwrap()];
    got.sort();
    assert_eq!(
        got,
        [
            (b"from a".to_vec(), a.local_addr().unwrap()),
            (b"from b".to_vec(), b.local_addr().unwrap())
        ]
    );
}

/// EOPNOTSUPP on Linux (95); the BSDs and macOS use 45.
fn libc_eopnotsupp() -> i32 {
    if cfg!(target_os = "linux") { 95 } else { 45 }
}

#[test]
fn message_oriented_three_sendtos_arrive_as_three_datagrams() {
    let rx = receiver();
    let tx = receiver();
    let to = rx.local_addr().unwrap();
    for message in [&b"one"[..], b"two two", b"three three three"] {
        tx.send_to(message, to).unwrap();
    }
    // A buffer big enough for all three still gets one datagram per receive: no merging,
    // no splitting, each boundary kept.
    let mut buf = [0u8; 1024];
    for expected in [&b"one"[..], b"two two", b"three three three"] {
        let (len, _) = rx.recv_from(&mut buf).unwrap();
        assert_eq!(&buf[..len], expected);
    }
    rx.set_read_timeout(Some(QUIET)).unwrap();
    assert!(rx.recv_from(&mut buf).is_err(), "exactly three datagrams");
}

use testkit::closed_port;

#[test]
fn connectionless_a_datagram_to_nobody_is_gone_without_a_word() {
    let nobody = closed_port();
    // An unconnected socket (the chapter's client): sendto succeeds, twice, and nothing
    // ever comes back: no connection, no delivery report.
    let sender = receiver();
    sender.set_read_timeout(Some(QUIET)).unwrap();
    assert_eq!(sender.send_to(b"hello?", nobody).unwrap(), 6);
    assert_eq!(sender.send_to(b"hello?", nobody).unwrap(), 6);
    let err = sender.recv_from(&mut [0u8; 16]).unwrap_err();
    assert!(
        matches!(err.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut),
        "{err}"
    );
    // A connected socket (udp-client) is told, by the ICMP "port unreachable" that came back.
    let connected = receiver();
    connected.connect(nobody).unwrap();
    connected.send(b"hello?").unwrap();
    let err = connected.recv(&mut [0u8; 16]).unwrap_err();
    assert_eq!(err.kind(), ErrorKind::ConnectionRefused, "{err}");
}

#[test]
fn a_client_needs_no_bind_the_first_sendto_picks_its_port() {
    // The chapter's client: socket(), sendto(), close(). No bind.
    let socket = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    let before = socket.local_addr().unwrap().as_socket().unwrap();
    assert_eq!(before.port(), 0, "no port before the first send");
    let rx = receiver();
    socket.send_to(b"hi", &rx.local_addr().unwrap().into()).unwrap();
    let after = socket.local_addr().unwrap().as_socket().unwrap();
    assert_ne!(after.port(), 0, "the OS chose a port at the first sendto");
    let (_, from) = testkit::recv(&rx).unwrap();
    assert_eq!(from.port(), after.port());
}

#[test]
fn recv_and_send_need_a_connected_socket_recvfrom_and_sendto_do_not() {
    let socket = receiver();
    // send() has no address to send to until connect() gives one.
    let err = socket.send(b"x").unwrap_err();
    assert!(
        err.raw_os_error() == Some(89) || err.kind() == ErrorKind::NotConnected,
        "EDESTADDRREQ expected: {err}"
    );
    let peer = receiver();
    socket.connect(peer.local_addr().unwrap()).unwrap();
    socket.send(b"x").unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"x");
}

#[test]
fn no_congestion_control_the_sender_never_slows_and_the_receiver_drops() {
    // A receiver that does not read, with a small queue; a sender that does not wait.
    let rx = Socket::new(Domain::IPV4, Type::DGRAM, Some(Protocol::UDP)).unwrap();
    rx.set_recv_buffer_size(4096).unwrap();
    rx.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    let rx = UdpSocket::from(rx);
    let tx = receiver();
    let to = rx.local_addr().unwrap();
    let start = Instant::now();
    for i in 0..2000u32 {
        // Every send "succeeds": UDP neither slows the sender down nor tells it.
        tx.send_to(&[i as u8; 200], to).unwrap();
    }
    let sending = start.elapsed();
    rx.set_read_timeout(Some(QUIET)).unwrap();
    let mut received = 0u64;
    while rx.recv_from(&mut [0u8; 256]).is_ok() {
        received += 1;
    }
    let dropped = common::kernel::drops(&rx).unwrap();
    assert_eq!(received + dropped, 2000);
    assert!(
        dropped > 1500,
        "a 4 KiB queue holds few datagrams: {received} kept, {dropped} dropped"
    );
    assert!(sending < WAIT, "sending took {sending:?}");
}

#[test]
fn the_udp_header_is_8_bytes_on_the_wire() {
    assert_eq!(UDP_HEADER_LEN, 8);
    // A raw socket sees whole IP packets: what really crossed loopback. It needs
    // CAP_NET_RAW (root); CI has it.
    let attempt = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::UDP));
    let Some(raw) = testkit::needs_root("reading the wire (raw socket, CAP_NET_RAW)", attempt) else {
        return;
    };
    raw.set_read_timeout(Some(QUIET)).unwrap();
    let raw = UdpSocket::from(raw);
    let (tx, rx) = (receiver(), receiver());
    let (from, to) = (tx.local_addr().unwrap(), rx.local_addr().unwrap());
    tx.send_to(b"hello", to).unwrap();

    let deadline = Instant::now() + WAIT;
    let mut buf = [0u8; 2048];
    let packet = loop {
        assert!(Instant::now() < deadline, "our datagram never showed on the raw socket");
        let Ok((len, _)) = raw.recv_from(&mut buf) else {
            continue;
        };
        let p = &buf[..len];
        let ihl = usize::from(p[0] & 0x0f) * 4;
        let ports = (
            u16::from_be_bytes([p[ihl], p[ihl + 1]]),
            u16::from_be_bytes([p[ihl + 2], p[ihl + 3]]),
        );
        if p[9] == IP_PROTOCOL_UDP && ports == (from.port(), to.port()) {
            break p.to_vec();
        }
    };
    let ihl = usize::from(packet[0] & 0x0f) * 4;
    let udp = &packet[ihl..];
    assert_eq!(ihl, 20, "IPv4 header without options");
    assert_eq!(
        u16::from_be_bytes([packet[2], packet[3]]),
        20 + 8 + 5,
        "IP total length"
    );
    assert_eq!(udp.len(), UDP_HEADER_LEN + 5);
    assert_eq!(&udp[UDP_HEADER_LEN..], b"hello", "right after the 8 header bytes");
    let ours = UdpHeader::new(from, to, b"hello").unwrap().to_bytes();
    // Ports and length as --show-header rebuilds them.
    assert_eq!(&udp[..6], &ours[..6]);
    assert_eq!(u16::from_be_bytes([udp[4], udp[5]]), 13);
    // The checksum field: on lo, checksum offload leaves only the kernel's sum of the
    // pseudo-header (addresses, 17, length) for "the card" to finish; it must equal ours.
    let on_wire = u16::from_be_bytes([udp[6], udp[7]]);
    let full = u16::from_be_bytes([ours[6], ours[7]]);
    assert!(
        on_wire == full || on_wire == pseudo_header_sum(&packet[12..16], &packet[16..20], 13),
        "checksum field {on_wire:#06x}: neither the full checksum {full:#06x} nor the pseudo-header sum"
    );
}

/// The one's complement sum of the IPv4 pseudo-header, not complemented: what a kernel
/// hands to checksum offload.
fn pseudo_header_sum(src: &[u8], dst: &[u8], udp_len: u16) -> u16 {
    let words = [
        u16::from_be_bytes([src[0], src[1]]),
        u16::from_be_bytes([src[2], src[3]]),
        u16::from_be_bytes([dst[0], dst[1]]),
        u16::from_be_bytes([dst[2], dst[3]]),
        u16::from(IP_PROTOCOL_UDP),
        udp_len,
    ];
    let mut sum: u32 = words.iter().map(|&w| u32::from(w)).sum();
    while sum > 0xffff {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    sum as u16
}
