//! GSO (`UDP_SEGMENT`, Linux 4.18): one `sendmsg` carries a run of equal-size datagrams
//! (the last may be shorter) and the kernel cuts it into those datagrams once, late, instead
//! of building each one from the start. The receiver gets the same datagrams, in the same
//! order, as from a `sendto` per datagram; the relay pays the kernel's per-datagram sending
//! cost (the IP and UDP layers, the loopback device) once per run.
//!
//! The kernel says at send time when it cannot (a network card that cannot checksum: EIO;
//! a segment larger than the route's MTU or too many segments: EINVAL, EMSGSIZE, as
//! quinn-udp found): the relay then sends one datagram per message from then on.

use std::io::{self, IoSlice};
use std::os::fd::AsRawFd;

use mio::net::UdpSocket;
use nix::errno::Errno;
use nix::sys::socket::{
    AddressFamily, ControlMessage, MsgFlags, SockFlag, SockType, SockaddrStorage, sendmsg, setsockopt, socket, sockopt,
};

// The most datagrams one send carries (`UDP_MAX_SEGMENTS`): the same bound as the client and server.
use common::offload::MAX_SEGMENTS;

/// What one send may carry in all: an IPv4 datagram's payload limit, the smaller of the two.
const MAX_TOTAL: usize = common::MAX_UDP_PAYLOAD_V4;

/// Whether the kernel takes `UDP_SEGMENT`. An old kernel that does not know the control
/// message would send a run as one long datagram, so it is asked once, by setting the
/// option (quinn-udp's probe) on a socket of its own: no socket the relay sends from is
/// ever left with a segment size set.
pub(crate) fn supported() -> bool {
    let probe = socket(AddressFamily::Inet, SockType::Datagram, SockFlag::empty(), None);
    match probe.and_then(|fd| setsockopt(&fd, sockopt::UdpGsoSegment, &1400)) {
        Ok(()) => true,
        Err(e) => {
            log::debug!("no GSO (UDP_SEGMENT): {e}; sendmmsg only");
            false
        }
    }
}

/// How many datagrams from `at` one GSO send can carry: equal lengths, closed by at most
/// one shorter datagram, all to the same address. `lens[i]` and `to[i]` describe datagram `i`.
pub(crate) fn run_len(lens: &[usize], to: &[Option<SockaddrStorage>], at: usize) -> usize {
    let Some(&size) = lens.get(at) else { return 0 };
    if size == 0 {
        return 1;
    }
    let (mut n, mut total) = (1, size);
    for (&len, dest) in lens[at + 1..].iter().zip(&to[at + 1..]) {
        if n == MAX_SEGMENTS || len == 0 || len > size || total + len > MAX_TOTAL || *dest != to[at] {
            break;
        }
        n += 1;
        total += len;
        if len < size {
            break; // a shorter one ends the run: the kernel cuts by the first one's size
        }
    }
    n
}

/// What one GSO send did.
pub(crate) enum Sent {
    /// The whole run went out.
    All,
    /// The OS cannot do GSO here: send the run some other way, and no more GSO.
    Refused,
    /// Nothing went out, for this reason (an ICMP error about an earlier send, a full buffer).
    Failed(io::Error),
}

/// One sendmsg with the run's datagrams as its pieces and the segment size to cut them by.
pub(crate) fn send(socket: &UdpSocket, run: &[IoSlice<'_>], to: Option<&SockaddrStorage>) -> Sent {
    let Some(size) = run.first().and_then(|d| u16::try_from(d.len()).ok()) else {
        return Sent::Refused;
    };
    let control = [ControlMessage::UdpGsoSegments(&size)];
    loop {
        match sendmsg(socket.as_raw_fd(), run, &control, MsgFlags::empty(), to) {
            Ok(_) => return Sent::All,
            Err(Errno::EINTR) => {}
            Err(Errno::EIO | Errno::EINVAL | Errno::EMSGSIZE) => return Sent::Refused,
            Err(errno) => return Sent::Failed(errno.into()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::net::SocketAddr;

    #[test]
    fn runs_are_equal_lengths_closed_by_one_shorter_to_one_address() {
        let a = Some(SockaddrStorage::from("127.0.0.1:9".parse::<SocketAddr>().unwrap()));
        let b = Some(SockaddrStorage::from("127.0.0.1:10".parse::<SocketAddr>().unwrap()));
        let lens = [10, 10, 10, 9, 10, 11, 0, 5];
        assert_eq!(run_len(&lens, &[a; 8], 0), 4, "three of 10, closed by a 9");
        assert_eq!(run_len(&lens, &[a; 8], 4), 1, "a longer one cannot follow");
        assert_eq!(run_len(&lens, &[a; 8], 6), 1, "an empty datagram goes alone");
        assert_eq!(run_len(&lens, &[a; 8], 8), 0);
        assert_eq!(run_len(&lens, &[a, a, b, b, b, b, b, b], 0), 2, "one address per run");
        assert_eq!(run_len(&[1; 100], &[None; 100], 0), MAX_SEGMENTS);
        assert_eq!(run_len(&[30_000; 3], &[None; 3], 0), 2, "within one datagram's limit");
    }
}
