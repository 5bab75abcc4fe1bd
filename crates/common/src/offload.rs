//! The kernel's UDP offloads (Linux): many datagrams per system call, each still its own
//! datagram on the wire.
//!
//! - **GSO** (`UDP_SEGMENT`, Linux 4.18): one `sendmsg` carries a run of equal-size
//!   datagrams (the last may be shorter) and the kernel cuts it into datagrams — once, late,
//!   instead of building each one from the start. A receiver sees the same datagrams as
//!   from a `sendto` loop.
//! - **GRO** (`UDP_GRO`, Linux 5.0): a socket that asks for it may get several datagrams of
//!   one sender glued into one buffer, with a control message saying how long each is
//!   (the last may be shorter). The program must cut them apart again ([`segments`]).
//!
//! Python's `sock.sendto(data, addr)` is one datagram per call; so is the chapter's loop. A
//! bulk sender (`udp-client --file`, a `--no-reply` flood) spends most of its time in the
//! kernel's per-call work, which GSO pays once per run. Where the OS has no such thing
//! (macOS, Windows, the BSDs, an old kernel) or refuses it at send time (a network card that
//! cannot checksum: EIO, as quinn-udp found), the sender falls back to one call per datagram.
//! std has no binding for either option; nix has safe ones (`sockopt::UdpGsoSegment`,
//! `ControlMessage::UdpGsoSegments`, `sockopt::UdpGroSegment`,
//! `ControlMessageOwned::UdpGroSegments`).

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;

/// The most datagrams one GSO send carries: `UDP_MAX_SEGMENTS` in linux/udp.h (64 until
/// Linux 6.x raised it; 64 works on every kernel that has GSO, as quinn-udp uses).
pub const MAX_SEGMENTS: usize = 64;

/// A GRO buffer holds what the kernel may glue together: at most 64 KiB of payload (one IP
/// packet's length limit; `UDP_GRO_CNT_MAX` is 64 datagrams). A buffer shorter than what
/// arrived would lose every datagram past its end, so it is never smaller than this.
pub const GRO_BUFFER: usize = 65_536;

/// Which offloads a program uses. By default only GSO, which changes nothing a receiver
/// sees (the same datagrams, in the same order); GRO changes what the kernel's drop count
/// counts (a lost buffer of 64 datagrams counts once) and how much a receive queue holds,
/// so it is asked for (`--offload`). `--no-offload` turns both off.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Offloads {
    /// Send runs of datagrams in one call (GSO).
    pub gso: bool,
    /// Receive several datagrams of one sender in one buffer (GRO).
    pub gro: bool,
}

impl Default for Offloads {
    fn default() -> Self {
        Offloads { gso: true, gro: false }
    }
}

impl Offloads {
    /// From the two flags: `--offload` adds GRO, `--no-offload` turns everything off.
    pub fn from_flags(offload: bool, no_offload: bool) -> Self {
        match (offload, no_offload) {
            (_, true) => Offloads { gso: false, gro: false },
            (true, false) => Offloads { gso: true, gro: true },
            (false, false) => Offloads::default(),
        }
    }
}

/// How many of `datagrams`, from the first, one GSO send can carry to `to`: a run of equal
/// lengths, closed by at most one shorter datagram, [`MAX_SEGMENTS`] at most, within one IP
/// packet's payload limit. At least 1 (an empty datagram, or one alone, is a run of one).
pub fn run_len<T: AsRef<[u8]>>(datagrams: &[T], to: &SocketAddr) -> usize {
    let Some(first) = datagrams.first() else { return 0 };
    let size = first.as_ref().len();
    if size == 0 {
        return 1;
    }
    let limit = crate::max_payload(to);
    let (mut n, mut total) = (1, size);
    for next in &datagrams[1..] {
        let len = next.as_ref().len();
        if n == MAX_SEGMENTS || len == 0 || len > size || total + len > limit {
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

/// The datagrams inside a received buffer of `len` bytes: one per `segment` bytes (GRO),
/// the last maybe shorter; the whole buffer when there is no segment size (no GRO).
pub fn segments(len: usize, segment: Option<usize>) -> impl Iterator<Item = Range<usize>> {
    let step = segment.filter(|&s| s > 0 && s < len).unwrap_or(len.max(1));
    (0..len.max(1))
        .step_by(step)
        .map(move |start| start..(start + step).min(len))
}

/// Whether a socket sends with GSO: found out once (setting the option), and turned off for
/// good when a send shows the OS cannot after all.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gso {
    on: bool,
}

impl Gso {
    /// GSO for `socket` if `wanted` and the OS takes `UDP_SEGMENT`; otherwise off (said in
    /// the debug log).
    pub fn new(socket: &UdpSocket, wanted: bool) -> Self {
        Gso {
            on: wanted && sys::gso_supported(socket),
        }
    }

    /// No GSO: one datagram per call.
    pub const fn off() -> Self {
        Gso { on: false }
    }

    /// Whether runs go out in one call.
    pub fn is_on(&self) -> bool {
        self.on
    }

    /// Sends `run` (see [`run_len`]) as one `sendmsg`: to `to`, or to the connected peer
    /// when `None`. `Ok(false)`: not sent because GSO is off or the OS just refused it (it
    /// is then off for good): send the run one datagram at a time.
    ///
    /// # Errors
    /// What the send returned otherwise (an earlier datagram's ICMP error, a full buffer);
    /// none of the run was sent.
    pub fn send<T: AsRef<[u8]>>(&mut self, socket: &UdpSocket, to: Option<SocketAddr>, run: &[T]) -> io::Result<bool> {
        if !self.on || run.len() < 2 {
            return Ok(false);
        }
        match sys::send(socket, to, run) {
            Ok(()) => Ok(true),
            Err(e) if refused_gso(&e) => {
                log::info!(
                    "the OS refused a GSO send ({}); sending one datagram per call from now on",
                    crate::error::describe(&e)
                );
                self.on = false;
                Ok(false)
            }
            Err(e) => Err(e),
        }
    }
}

/// The errors that mean "not with GSO" rather than "not at all": EIO (the device cannot
/// checksum for GSO), EINVAL (too many segments for this kernel, or a route GSO cannot take)
/// and EMSGSIZE (a segment larger than the route's MTU: without GSO it is fragmented).
fn refused_gso(e: &io::Error) -> bool {
    matches!(e.raw_os_error(), Some(code) if sys::REFUSED.contains(&code))
}

/// Asks the kernel to glue datagrams together (GRO) on `socket`; whether it agreed.
pub fn enable_gro(socket: &UdpSocket) -> bool {
    sys::enable_gro(socket)
}

/// Room for the control message that says how long each glued datagram is.
#[cfg(target_os = "linux")]
pub fn gro_control() -> Vec<u8> {
    nix::cmsg_space!(i32)
}

/// The length of each datagram in a GRO buffer, from its control messages; `None` for a
/// buffer that holds one datagram.
#[cfg(target_os = "linux")]
pub fn gro_segment(cmsgs: impl Iterator<Item = nix::sys::socket::ControlMessageOwned>) -> Option<usize> {
    cmsgs
        .filter_map(|c| match c {
            nix::sys::socket::ControlMessageOwned::UdpGroSegments(size) => usize::try_from(size).ok(),
            _ => None,
        })
        .next()
}

#[cfg(target_os = "linux")]
pub(crate) mod sys {
    use std::io::{self, IoSlice};
    use std::net::{SocketAddr, UdpSocket};
    use std::os::fd::AsRawFd;

    use nix::errno::Errno;
    use nix::sys::socket::{ControlMessage, MsgFlags, SockaddrStorage, sendmsg, setsockopt, sockopt};

    use super::MAX_SEGMENTS;

    pub(super) const REFUSED: [i32; 3] = [Errno::EIO as i32, Errno::EINVAL as i32, Errno::EMSGSIZE as i32];

    /// quinn-udp's probe: set a segment size, then clear it again, so that only sends that
    /// ask for it (a control message per call) are cut.
    pub(super) fn gso_supported(socket: &UdpSocket) -> bool {
        match setsockopt(socket, sockopt::UdpGsoSegment, &1400) {
            Ok(()) => setsockopt(socket, sockopt::UdpGsoSegment, &0).is_ok(),
            Err(e) => {
                log::debug!("no GSO (UDP_SEGMENT): {e}; one datagram per call");
                false
            }
        }
    }

    pub(super) fn send<T: AsRef<[u8]>>(socket: &UdpSocket, to: Option<SocketAddr>, run: &[T]) -> io::Result<()> {
        let mut iov = [IoSlice::new(&[]); MAX_SEGMENTS];
        for (slot, datagram) in iov.iter_mut().zip(run) {
            *slot = IoSlice::new(datagram.as_ref());
        }
        let n = run.len().min(MAX_SEGMENTS);
        let size = u16::try_from(run[0].as_ref().len()).map_err(|_| io::Error::from(Errno::EMSGSIZE))?;
        let control = [ControlMessage::UdpGsoSegments(&size)];
        let to = to.map(SockaddrStorage::from);
        loop {
            match sendmsg(socket.as_raw_fd(), &iov[..n], &control, MsgFlags::empty(), to.as_ref()) {
                Ok(_) => return Ok(()),
                Err(Errno::EINTR) => {}
                Err(errno) => return Err(errno.into()),
            }
        }
    }

    pub(super) fn enable_gro(socket: &UdpSocket) -> bool {
        match setsockopt(socket, sockopt::UdpGroSegment, &true) {
            Ok(()) => true,
            Err(e) => {
                log::info!("no GRO (UDP_GRO): {e}; one datagram per receive");
                false
            }
        }
    }
}

#[cfg(not(target_os = "linux"))]
pub(crate) mod sys {
    use std::io;
    use std::net::{SocketAddr, UdpSocket};

    pub(super) const REFUSED: [i32; 0] = [];

    pub(super) fn gso_supported(_: &UdpSocket) -> bool {
        false
    }

    pub(super) fn send<T: AsRef<[u8]>>(_: &UdpSocket, _: Option<SocketAddr>, _: &[T]) -> io::Result<()> {
        Err(io::ErrorKind::Unsupported.into())
    }

    pub(super) fn enable_gro(_: &UdpSocket) -> bool {
        log::info!("no GRO on this OS (UDP_GRO is Linux only); one datagram per receive");
        false
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const V4: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::LOCALHOST, 9));

    #[test]
    fn a_run_is_equal_lengths_closed_by_one_shorter() {
        let d = |lens: &[usize]| lens.iter().map(|&n| vec![0u8; n]).collect::<Vec<_>>();
        assert_eq!(run_len(&d(&[]), &V4), 0);
        assert_eq!(run_len(&d(&[5, 5, 5, 3, 3]), &V4), 4);
        assert_eq!(run_len(&d(&[5, 6]), &V4), 1);
        assert_eq!(run_len(&d(&[0, 0]), &V4), 1);
        assert_eq!(run_len(&d(&[5, 0]), &V4), 1);
        assert_eq!(run_len(&d(&[10; 100]), &V4), MAX_SEGMENTS);
        // 46 × 1400 = 64 400 fits one IPv4 packet; 47 would not.
        assert_eq!(run_len(&d(&[1400; 64]), &V4), 46);
        assert_eq!(run_len(&d(&[65_507, 1]), &V4), 1);
    }

    /// A run sent in one call arrives at a plain socket as its datagrams, each with its own
    /// bytes, in order; at a GRO socket the same call arrives glued, which shows it was one.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_gso_run_arrives_as_separate_datagrams_with_their_bytes() {
        let run: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'a' + i; 100]).chain([vec![b'z'; 7]]).collect();
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut gso = Gso::new(&tx, true);
        assert!(gso.is_on(), "this kernel has UDP_SEGMENT (Linux 4.18+)");
        assert_eq!(run_len(&run, &V4), 11);
        let plain = testkit::local_socket(testkit::WAIT).unwrap();
        assert!(gso.send(&tx, Some(plain.local_addr().unwrap()), &run).unwrap());
        for expected in &run {
            let (got, from) = testkit::recv(&plain).unwrap();
            assert_eq!((&got, from), (expected, tx.local_addr().unwrap()));
        }
        let glued = testkit::offload::gro_socket();
        assert!(gso.send(&tx, Some(glued.local_addr().unwrap()), &run).unwrap());
        let (bytes, segment) = testkit::offload::recv_gro(&glued).unwrap();
        assert_eq!((bytes, segment), (run.concat(), Some(100)));
    }

    /// A run the kernel refuses with GSO (here: more than one IP packet can carry, EMSGSIZE;
    /// on a network card that cannot checksum for GSO it is EIO) is reported as "send it
    /// the plain way", and GSO stays off for the socket from then on.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_run_the_kernel_refuses_turns_gso_off_for_good() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = testkit::local_socket(std::time::Duration::from_millis(50)).unwrap();
        let mut gso = Gso::new(&tx, true);
        let too_long = [vec![1u8; 40_000], vec![2u8; 40_000]];
        assert!(!gso.send(&tx, Some(rx.local_addr().unwrap()), &too_long).unwrap());
        assert!(!gso.is_on());
        let fine = [b"one".to_vec(), b"two".to_vec()];
        assert!(!gso.send(&tx, Some(rx.local_addr().unwrap()), &fine).unwrap());
        assert!(testkit::recv(&rx).is_err(), "nothing was sent");
    }

    #[test]
    fn gso_off_sends_nothing_and_says_so() {
        let tx = UdpSocket::bind("127.0.0.1:0").unwrap();
        let rx = testkit::local_socket(std::time::Duration::from_millis(50)).unwrap();
        let run = [b"one".to_vec(), b"two".to_vec()];
        for mut gso in [Gso::off(), Gso::new(&tx, false)] {
            assert!(!gso.is_on());
            assert!(!gso.send(&tx, Some(rx.local_addr().unwrap()), &run).unwrap());
        }
        assert!(testkit::recv(&rx).is_err(), "nothing was sent");
        assert_eq!(Offloads::from_flags(false, false), Offloads { gso: true, gro: false });
        assert_eq!(Offloads::from_flags(true, false), Offloads { gso: true, gro: true });
        assert_eq!(Offloads::from_flags(false, true), Offloads { gso: false, gro: false });
    }

    #[test]
    fn a_buffer_is_cut_back_into_its_datagrams() {
        let cut = |len, seg| segments(len, seg).collect::<Vec<_>>();
        assert_eq!(cut(1007, Some(100)).len(), 11);
        assert_eq!(cut(1007, Some(100))[10], 1000..1007);
        assert_eq!(cut(300, Some(100)), vec![0..100, 100..200, 200..300]);
        assert_eq!(cut(300, None), vec![0..300]);
        assert_eq!(cut(50, Some(100)), vec![0..50]);
        // An empty datagram is still one datagram.
        assert_eq!(cut(0, None), vec![0..0]);
        assert_eq!(cut(0, Some(100)), vec![0..0]);
    }
}
