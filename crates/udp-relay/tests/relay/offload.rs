//! GSO on the relay's sends (Linux): a burst the relay reads at once leaves as one run that
//! a GRO socket receives glued (one buffer, its segment size in a control message), and
//! `--no-offload` sends each datagram with its own call. A plain socket sees no difference,
//! so the server here asks for GRO, which shows how the datagrams were sent.

use std::io::IoSliceMut;
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt};
use testkit::{Process, WAIT};

const BIN: &str = env!("CARGO_BIN_EXE_udp-relay");

/// One buffer from a GRO socket: its length and, when datagrams were glued, their size.
fn read(socket: &UdpSocket) -> Option<(usize, Option<usize>)> {
    let mut buf = vec![0u8; 65_536];
    let mut iov = [IoSliceMut::new(&mut buf)];
    let mut space = nix::cmsg_space!(i32);
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut space), MsgFlags::empty()).ok()?;
    let glued = msg.cmsgs().ok()?.find_map(|c| match c {
        ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok(),
        _ => None,
    });
    Some((msg.bytes, glued))
}

/// Ten 100-byte datagrams sent while the relay is stopped (SIGSTOP), so it reads them in one
/// batch when it resumes: what the GRO server received, buffer by buffer.
fn burst_through(extra: &[&str]) -> Vec<(usize, Option<usize>)> {
    let server = testkit::local_socket(WAIT).unwrap();
    setsockopt(&server, sockopt::UdpGroSegment, &true).unwrap();
    let to = server.local_addr().unwrap().to_string();
    let mut args = vec!["--to", to.as_str(), "-q"];
    args.extend_from_slice(extra);
    let (relay, addr): (Process, SocketAddr) = Process::server(BIN, &args);
    let client = testkit::local_socket(WAIT).unwrap();
    // The first datagram makes the client's upstream socket.
    client.send_to(b"first", addr).unwrap();
    assert_eq!(read(&server), Some((5, None)));
    relay.signal("STOP").unwrap();
    for i in 0..10u8 {
        client.send_to(&[i; 100], addr).unwrap();
    }
    relay.signal("CONT").unwrap();
    let (mut buffers, mut total) = (Vec::new(), 0);
    while total < 1000 {
        let Some(buffer) = read(&server) else { break };
        total += buffer.0;
        buffers.push(buffer);
    }
    assert_eq!(total, 1000, "every byte of the burst reached the server: {buffers:?}");
    buffers
}

#[test]
fn a_burst_leaves_the_relay_as_one_gso_run_and_no_offload_sends_each_alone() {
    let glued = burst_through(&[]);
    assert!(
        glued.iter().any(|&(len, size)| len > 100 && size == Some(100)),
        "a run of 100-byte datagrams glued at the GRO server: {glued:?}"
    );
    let alone = burst_through(&["--no-offload"]);
    assert_eq!(alone, vec![(100, None); 10]);
}
