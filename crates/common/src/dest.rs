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
//! it; nix has safe ones, used here. Linux and macOS (IP_PKTINFO); elsewhere [`recv`] is
//! `recv_from` and knows no destination, and the programs say so at start-up.

use std::io;
use std::net::{IpAddr, SocketAddr, UdpSocket};

/// What the receive call said about one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Arrival {
    /// Bytes written into the buffer.
    pub len: usize,
    /// Who sent it: `recvfrom`'s `addr`.
    pub peer: SocketAddr,
    /// The address it was sent to, when the kernel said.
    pub to: Option<Destination>,
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

/// Whether this OS tells a datagram's destination (`IP_PKTINFO`: Linux, macOS). Elsewhere
/// (Windows, the BSDs) a server cannot tell a broadcast from a unicast datagram, and says so
/// at start-up.
pub const SUPPORTED: bool = cfg!(pktinfo);

/// Asks the kernel to tell each datagram's destination (IP_PKTINFO, IPV6_RECVPKTINFO).
/// Where the OS cannot ([`SUPPORTED`] is false) nothing is asked for, and [`recv`] reports
/// no destination.
///
/// # Errors
/// [`crate::Error::Runtime`] when the socket option cannot be set.
pub fn enable(socket: &UdpSocket) -> crate::Result<()> {
    sys::ask_for_destinations(socket)
        .map_err(|e| crate::Error::io("cannot ask for datagram destinations (IP_PKTINFO)", &e))
}

/// `recvfrom`, plus the destination when [`enable`] was called: receives one datagram into
/// `buf` (`control` is room for the kernel's note, see [`control_buffer`]).
///
/// # Errors
/// What the receive returned (a timeout is `WouldBlock`/`TimedOut`, as with `recv_from`).
pub fn recv(socket: &UdpSocket, buf: &mut [u8], control: &mut [u8]) -> io::Result<Arrival> {
    sys::recv(socket, buf, control)
}

/// Room for one IPv4 and one IPv6 packet-info message, allocated once per socket.
pub fn control_buffer() -> Vec<u8> {
    sys::control_buffer()
}

#[cfg(pktinfo)]
pub(crate) mod sys {
    use std::io;
    use std::io::IoSliceMut;
    use std::net::{IpAddr, Ipv6Addr, SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use nix::sys::socket::{ControlMessageOwned, MsgFlags, SockaddrStorage, recvmsg, setsockopt, sockopt};

    use super::{Arrival, Destination};

    pub fn ask_for_destinations(socket: &UdpSocket) -> io::Result<()> {
        if socket.local_addr()?.is_ipv4() {
            setsockopt(socket, sockopt::Ipv4PacketInfo, &true)?;
        } else {
            setsockopt(socket, sockopt::Ipv6RecvPacketInfo, &true)?;
            // IPv4 datagrams reaching a dual-stack socket: ask for ipi_spec_dst too, if allowed.
            let _ = setsockopt(socket, sockopt::Ipv4PacketInfo, &true);
        }
        Ok(())
    }

    pub fn control_buffer() -> Vec<u8> {
        nix::cmsg_space!(nix::libc::in_pktinfo, nix::libc::in6_pktinfo)
    }

    pub fn recv(socket: &UdpSocket, buf: &mut [u8], control: &mut [u8]) -> io::Result<Arrival> {
        let mut iov = [IoSliceMut::new(buf)];
        let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())?;
        let peer = msg
            .address
            .as_ref()
            .and_then(socket_addr)
            .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no sender address"))?;
        let to = msg.cmsgs().ok().and_then(destination);
        Ok(Arrival {
            len: msg.bytes,
            peer,
            to,
        })
    }

    /// The destination among a datagram's control messages.
    pub fn destination(cmsgs: impl Iterator<Item = ControlMessageOwned>) -> Option<Destination> {
        let mut found = None;
        for cmsg in cmsgs {
            match cmsg {
                // The IPv4 message wins: it also carries the local address (ipi_spec_dst).
                ControlMessageOwned::Ipv4PacketInfo(info) => {
                    return Some(Destination {
                        addr: IpAddr::from(u32::from_be(info.ipi_addr.s_addr).to_be_bytes()),
                        local: Some(IpAddr::from(u32::from_be(info.ipi_spec_dst.s_addr).to_be_bytes())),
                    });
                }
                ControlMessageOwned::Ipv6PacketInfo(info) => {
                    let v6 = Ipv6Addr::from(info.ipi6_addr.s6_addr);
                    found = Some(Destination {
                        addr: v6.to_ipv4_mapped().map_or(IpAddr::V6(v6), IpAddr::V4),
                        local: None,
                    });
                }
                _ => {}
            }
        }
        found
    }

    /// A sender's address as std spells it.
    pub fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = storage.as_sockaddr_in() {
            return Some(SocketAddr::from(*v4));
        }
        storage.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
    }

    /// `socket_addr`'s inverse, for replies sent with sendmmsg.
    pub fn storage(addr: SocketAddr) -> SockaddrStorage {
        SockaddrStorage::from(addr)
    }
}

#[cfg(not(pktinfo))]
mod sys {
    use std::io;
    use std::net::UdpSocket;

    use super::Arrival;

    pub fn ask_for_destinations(_: &UdpSocket) -> io::Result<()> {
        Ok(())
    }

    pub fn control_buffer() -> Vec<u8> {
        Vec::new()
    }

    pub fn recv(socket: &UdpSocket, buf: &mut [u8], _: &mut [u8]) -> io::Result<Arrival> {
        let (len, peer) = socket.recv_from(buf)?;
        Ok(Arrival { len, peer, to: None })
    }
}

#[cfg(pktinfo)]
pub use sys::{destination, socket_addr, storage};

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
        let mut control = control_buffer();

        for (to, broadcast) in [("127.0.0.1", false), ("127.0.0.5", false), ("127.255.255.255", true)] {
            client.send_to(b"hi", (to, port)).unwrap();
            let got = recv(&server, &mut buf, &mut control).unwrap();
            assert_eq!((got.len, got.peer), (2, client.local_addr().unwrap()));
            let dest = got.to.unwrap();
            assert_eq!(dest.addr.to_string(), to);
            assert_eq!(dest.is_broadcast_or_multicast(), broadcast, "{to}: {dest:?}");
        }
    }

    #[test]
    fn ipv6_destination() {
        let server = bound("[::1]:0");
        let client = UdpSocket::bind("[::1]:0").unwrap();
        client.send_to(b"x", server.local_addr().unwrap()).unwrap();
        let got = recv(&server, &mut [0u8; 4], &mut control_buffer()).unwrap();
        assert_eq!(got.to.unwrap().addr.to_string(), "::1");
        assert!(!got.to.unwrap().is_broadcast_or_multicast());
    }
}
