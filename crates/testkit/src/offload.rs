//! The kernel's UDP offloads seen from the peer side (Linux): a GSO burst sent the way a
//! bulk sender sends it, and a GRO socket that shows whether datagrams arrived glued
//! together, so a test can tell "sent as a run" from "sent one by one".

use std::io::{self, IoSlice, IoSliceMut};
use std::net::{SocketAddr, UdpSocket};
use std::os::fd::AsRawFd;

use nix::sys::socket::{
    ControlMessage, ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, sendmsg, setsockopt, sockopt,
};

use crate::WAIT;

/// A socket on 127.0.0.1 that asks for GRO, with the [`WAIT`] read timeout.
pub fn gro_socket() -> UdpSocket {
    let socket = crate::local_socket(WAIT).expect("a local socket");
    setsockopt(&socket, sockopt::UdpGroSegment, &true).expect("UDP_GRO (Linux 5.0 and later)");
    socket
}

/// One receive on a [`gro_socket`]: the bytes, and the length of each datagram in them
/// when the kernel glued several together (`None`: one datagram).
pub fn recv_gro(socket: &UdpSocket) -> io::Result<(Vec<u8>, Option<usize>)> {
    let mut buf = vec![0u8; 65_536];
    let mut control = nix::cmsg_space!(i32);
    let mut iov = [IoSliceMut::new(&mut buf)];
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::empty())?;
    let segment = msg.cmsgs()?.find_map(|c| match c {
        ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok(),
        _ => None,
    });
    let len = msg.bytes;
    Ok((buf[..len].to_vec(), segment))
}

/// Sends `datagrams` (all of the first one's length, the last maybe shorter) to `to` as one
/// GSO `sendmsg` (UDP_SEGMENT), as a bulk sender does.
pub fn send_gso(socket: &UdpSocket, to: SocketAddr, datagrams: &[&[u8]]) -> io::Result<usize> {
    let iov: Vec<IoSlice> = datagrams.iter().map(|d| IoSlice::new(d)).collect();
    let size = u16::try_from(datagrams[0].len()).expect("a segment fits UDP");
    let control = [ControlMessage::UdpGsoSegments(&size)];
    let to = SockaddrStorage::from(to);
    Ok(sendmsg(
        socket.as_raw_fd(),
        &iov,
        &control,
        MsgFlags::empty(),
        Some(&to),
    )?)
}
