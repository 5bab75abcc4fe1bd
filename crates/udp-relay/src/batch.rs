//! Datagrams many at a time: where the OS has them (Linux, Android, FreeBSD), `recvmmsg`
//! takes every datagram a socket holds (up to the relay's budget) in one system call, and
//! `sendmmsg` sends a run of them in one more. Elsewhere each call moves one datagram,
//! the chapter's `recvfrom`/`sendto`, and the relay works the same, one at a time.
//!
//! Why it matters: on loopback a datagram costs little to copy, so most of a relay's time
//! goes into entering and leaving the kernel; four system calls per echo (recvfrom and
//! sendto each way) become a few per batch. On Linux a run of equal-size datagrams to one
//! address goes further, in one `sendmsg` with GSO ([`crate::gso`]).

use std::io;
use std::net::SocketAddr;

use mio::net::UdpSocket;

/// Room for the largest UDP payload in each buffer, so nothing a peer sends is ever cut on
/// the way in.
const SLOT: usize = common::DEFAULT_BUFFER_SIZE;

/// One datagram to send: its place in the batch, how much of it (after `--truncate`), and
/// where to (`None`: the socket is connected, as a client's upstream socket is).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Out {
    pub(crate) index: usize,
    pub(crate) len: usize,
    pub(crate) to: Option<SocketAddr>,
}

impl AsRef<Out> for Out {
    fn as_ref(&self) -> &Out {
        self
    }
}

/// The datagrams of one receive, side by side, each with its length and sender.
pub(crate) struct Batch {
    /// `size` buffers of [`SLOT`] bytes. The zeroed allocation is lazy: a buffer costs memory
    /// only once a datagram has been written into it, and only as far as it reached.
    bufs: Vec<u8>,
    lens: Vec<usize>,
    peers: Vec<SocketAddr>,
    size: usize,
    sys: sys::Headers,
}

impl Batch {
    /// Room for `size` datagrams per call (where the OS moves only one, one is used).
    pub(crate) fn new(size: usize) -> Self {
        let size = size.clamp(1, sys::MOST);
        Batch {
            bufs: vec![0; size * SLOT],
            lens: Vec::with_capacity(size),
            peers: Vec::with_capacity(size),
            size,
            sys: sys::Headers::new(size),
        }
    }

    /// Datagram `i` of the last receive, and its sender.
    pub(crate) fn get(&self, i: usize) -> (&[u8], SocketAddr) {
        (&self.bufs[i * SLOT..i * SLOT + self.lens[i]], self.peers[i])
    }

    /// Datagram `i`, to be changed in place (`--corrupt`, `--truncate`).
    pub(crate) fn get_mut(&mut self, i: usize) -> &mut [u8] {
        &mut self.bufs[i * SLOT..i * SLOT + self.lens[i]]
    }

    /// Sends runs of equal-size datagrams with GSO from now on, if the OS has it (see
    /// [`crate::gso`]; asked once).
    pub(crate) fn probe_gso(&mut self) {
        self.sys.probe_gso();
    }

    /// recvfrom(), up to `want` times in one call: the number of datagrams received (at least
    /// one), or the error the first receive met (`WouldBlock`: nothing is waiting).
    pub(crate) fn recv(&mut self, socket: &UdpSocket, want: usize) -> io::Result<usize> {
        self.lens.clear();
        self.peers.clear();
        let want = want.clamp(1, self.size);
        sys::recv(
            socket,
            &mut self.sys,
            &mut self.bufs[..want * SLOT],
            &mut self.lens,
            &mut self.peers,
        )?;
        Ok(self.lens.len())
    }

    /// sendto() every datagram of `outs` from `socket`, as few calls as the kernel allows;
    /// `results` gets one entry per datagram, in order, saying whether it went out.
    pub(crate) fn send<T: AsRef<Out>>(&mut self, socket: &UdpSocket, outs: &[T], results: &mut Vec<io::Result<()>>) {
        results.clear();
        let data = |o: &Out| &self.bufs[o.index * SLOT..o.index * SLOT + o.len];
        sys::send(socket, &mut self.sys, outs, data, results);
    }
}

#[cfg(any(target_os = "linux", target_os = "android", target_os = "freebsd"))]
mod sys {
    use std::io::{self, IoSlice, IoSliceMut};
    use std::net::SocketAddr;
    use std::os::fd::AsRawFd;

    use mio::net::UdpSocket;
    use nix::errno::Errno;
    use nix::sys::socket::{ControlMessage, MsgFlags, MultiHeaders, SockaddrStorage, recvmmsg, sendmmsg};

    use super::{Out, SLOT};

    /// The largest batch made (the relay asks for its budget per socket and wait, 64).
    pub(super) const MOST: usize = 1024;

    /// The message headers the kernel reads and fills, made once; the lengths and addresses
    /// of what is being sent; whether runs go out with GSO.
    pub(super) struct Headers {
        recv: MultiHeaders<SockaddrStorage>,
        send: MultiHeaders<SockaddrStorage>,
        to: Vec<Option<SockaddrStorage>>,
        lens: Vec<usize>,
        gso: bool,
    }

    impl Headers {
        pub(super) fn new(size: usize) -> Self {
            Headers {
                recv: MultiHeaders::preallocate(size, None),
                send: MultiHeaders::preallocate(size, None),
                to: Vec::with_capacity(size),
                lens: Vec::with_capacity(size),
                gso: false,
            }
        }

        /// GSO from now on, if the kernel has it (Linux only).
        pub(super) fn probe_gso(&mut self) {
            self.gso = cfg!(target_os = "linux") && gso_supported();
        }

        /// How many datagrams from `at` go in one GSO send (0 or 1: none, GSO is off).
        fn gso_run(&self, at: usize) -> usize {
            #[cfg(target_os = "linux")]
            if self.gso {
                return crate::gso::run_len(&self.lens, &self.to, at);
            }
            let _ = at;
            0
        }
    }

    /// One recvmmsg: MSG_DONTWAIT, so it returns what is queued now (at least one datagram)
    /// instead of waiting for the batch to fill.
    pub(super) fn recv(
        socket: &UdpSocket,
        headers: &mut Headers,
        bufs: &mut [u8],
        lens: &mut Vec<usize>,
        peers: &mut Vec<SocketAddr>,
    ) -> io::Result<()> {
        let mut slices: Vec<[IoSliceMut; 1]> = bufs.chunks_mut(SLOT).map(|b| [IoSliceMut::new(b)]).collect();
        let received = recvmmsg(
            socket.as_raw_fd(),
            &mut headers.recv,
            slices.iter_mut(),
            MsgFlags::MSG_DONTWAIT,
            None,
        )
        .map_err(io::Error::from)?;
        for msg in received {
            lens.push(msg.bytes);
            peers.push(msg.address.as_ref().and_then(socket_addr).unwrap_or(UNSPECIFIED));
        }
        Ok(())
    }

    /// A sender the kernel did not name (it always does for UDP): port 0, which the relay's
    /// guard refuses like any sender on port 0.
    const UNSPECIFIED: SocketAddr = SocketAddr::V4(std::net::SocketAddrV4::new(std::net::Ipv4Addr::UNSPECIFIED, 0));

    fn socket_addr(storage: &SockaddrStorage) -> Option<SocketAddr> {
        if let Some(v4) = storage.as_sockaddr_in() {
            return Some(SocketAddr::from(*v4));
        }
        storage.as_sockaddr_in6().map(|v6| SocketAddr::from(*v6))
    }

    /// Sends every datagram of `outs`, each in its turn: runs GSO can carry in one sendmsg
    /// each (Linux), the rest with sendmmsg. sendmmsg returns how many went out; when the
    /// first of the rest fails, it says why, and that one is lost (as `sendto` would lose
    /// it) while the others still go.
    pub(super) fn send<'a, T: AsRef<Out>>(
        socket: &UdpSocket,
        headers: &mut Headers,
        outs: &[T],
        data: impl Fn(&Out) -> &'a [u8],
        results: &mut Vec<io::Result<()>>,
    ) {
        let slices: Vec<[IoSlice; 1]> = outs.iter().map(|o| [IoSlice::new(data(o.as_ref()))]).collect();
        headers.to.clear();
        headers
            .to
            .extend(outs.iter().map(|o| o.as_ref().to.map(SockaddrStorage::from)));
        headers.lens.clear();
        headers.lens.extend(outs.iter().map(|o| o.as_ref().len));
        while results.len() < outs.len() {
            let done = results.len();
            let run = headers.gso_run(done);
            if run >= 2 {
                gso_send(socket, headers, slices[done..done + run].as_flattened(), results);
                continue;
            }
            // Up to where the next GSO run starts (with GSO off: all the rest).
            let end = (done + 1..outs.len())
                .find(|&at| headers.gso_run(at) >= 2)
                .unwrap_or(outs.len());
            let rest = (&slices[done..end], &headers.to[done..end]);
            let no_control: [ControlMessage; 0] = [];
            match sendmmsg(
                socket.as_raw_fd(),
                &mut headers.send,
                rest.0,
                rest.1,
                no_control,
                MsgFlags::empty(),
            ) {
                Ok(sent) => match sent.count() {
                    // Never for UDP; counted as lost rather than tried forever.
                    0 => results.push(Err(io::ErrorKind::WriteZero.into())),
                    n => results.extend((0..n).map(|_| Ok(()))),
                },
                // A signal before anything went out: try again.
                Err(Errno::EINTR) => {}
                Err(errno) => results.push(Err(io::Error::from(errno))),
            }
        }
        results.truncate(outs.len());
    }

    /// One run in one GSO send. When it fails, the first datagram is the one lost (the OS
    /// reports an earlier send's ICMP error on the next send, whatever it carries), and the
    /// rest get their turn again, as with one `sendto` each.
    #[cfg(target_os = "linux")]
    fn gso_supported() -> bool {
        crate::gso::supported()
    }

    #[cfg(not(target_os = "linux"))]
    fn gso_supported() -> bool {
        false
    }

    #[cfg(target_os = "linux")]
    fn gso_send(socket: &UdpSocket, headers: &mut Headers, run: &[IoSlice<'_>], results: &mut Vec<io::Result<()>>) {
        let done = results.len();
        match crate::gso::send(socket, run, headers.to[done].as_ref()) {
            crate::gso::Sent::All => results.extend(run.iter().map(|_| Ok(()))),
            crate::gso::Sent::Failed(e) => results.push(Err(e)),
            crate::gso::Sent::Refused => {
                log::debug!("the OS refused a GSO send; sendmmsg only from now on");
                headers.gso = false;
            }
        }
    }

    #[cfg(not(target_os = "linux"))]
    fn gso_send(_: &UdpSocket, headers: &mut Headers, _: &[IoSlice<'_>], _: &mut Vec<io::Result<()>>) {
        headers.gso = false;
    }
}

#[cfg(not(any(target_os = "linux", target_os = "android", target_os = "freebsd")))]
mod sys {
    use std::io;
    use std::net::SocketAddr;

    use mio::net::UdpSocket;

    use super::{Out, SLOT};

    /// One datagram per call, as std's recv_from and send_to move them.
    pub(super) const MOST: usize = 1;

    pub(super) struct Headers;

    impl Headers {
        pub(super) fn new(_: usize) -> Self {
            Headers
        }

        /// No GSO here.
        pub(super) fn probe_gso(&mut self) {}
    }

    pub(super) fn recv(
        socket: &UdpSocket,
        _: &mut Headers,
        bufs: &mut [u8],
        lens: &mut Vec<usize>,
        peers: &mut Vec<SocketAddr>,
    ) -> io::Result<()> {
        let (len, peer) = socket.recv_from(&mut bufs[..SLOT])?;
        lens.push(len);
        peers.push(peer);
        Ok(())
    }

    pub(super) fn send<'a, T: AsRef<Out>>(
        socket: &UdpSocket,
        _: &mut Headers,
        outs: &[T],
        data: impl Fn(&Out) -> &'a [u8],
        results: &mut Vec<io::Result<()>>,
    ) {
        for out in outs.iter().map(AsRef::as_ref) {
            let sent = match out.to {
                Some(to) => socket.send_to(data(out), to),
                None => socket.send(data(out)),
            };
            results.push(sent.map(|_| ()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use mio::{Events, Interest, Poll, Token};
    use std::time::Duration;

    /// Every datagram of a burst, in order, with its sender; and a datagram too big for UDP
    /// in the middle of a run is the only one lost: the rest of the run still goes out.
    #[test]
    fn a_burst_comes_in_order_and_a_bad_datagram_in_a_run_is_lost_alone() {
        let mut receiver = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = testkit::local_socket(testkit::WAIT).unwrap();
        let to = receiver.local_addr().unwrap();
        for i in 0..5 {
            peer.send_to(format!("d{i}").as_bytes(), to).unwrap();
        }
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(0), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);
        let mut batch = Batch::new(64);
        let mut got = Vec::new();
        let mut outs = Vec::new();
        while got.len() < 5 {
            match batch.recv(&receiver, 64) {
                Ok(n) => {
                    for i in 0..n {
                        let (data, from) = batch.get(i);
                        got.push((String::from_utf8_lossy(data).into_owned(), from));
                        // Index 1 is sent whole: 65 535 bytes, more than a UDP datagram holds.
                        let len = if got.len() == 2 { SLOT } else { data.len() };
                        outs.push(Out {
                            index: i,
                            len,
                            to: Some(from),
                        });
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => {
                    poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
                    assert!(!events.is_empty(), "the burst did not arrive: {got:?}");
                }
                Err(e) => panic!("{e}"),
            }
            // Sent from the batch it came in, as the relay does.
            let mut results = Vec::new();
            batch.send(&receiver, &outs, &mut results);
            assert_eq!(results.len(), outs.len());
            for (out, result) in outs.iter().zip(&results) {
                assert_eq!(result.is_ok(), out.len != SLOT, "{result:?}");
            }
            outs.clear();
        }
        let names: Vec<&str> = got.iter().map(|(d, _)| d.as_str()).collect();
        assert_eq!(names, ["d0", "d1", "d2", "d3", "d4"]);
        assert!(got.iter().all(|(_, from)| *from == peer.local_addr().unwrap()));
        for want in ["d0", "d2", "d3", "d4"] {
            assert_eq!(testkit::recv(&peer).unwrap(), (want.as_bytes().to_vec(), to));
        }
    }

    /// A run of equal-size datagrams to one peer, the last shorter, leaves as those
    /// datagrams, in order: in one GSO send where the kernel has it, else in one sendmmsg.
    #[test]
    fn a_run_of_equal_size_datagrams_arrives_as_those_datagrams() {
        let mut receiver = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = testkit::local_socket(testkit::WAIT).unwrap();
        let to = receiver.local_addr().unwrap();
        let sent: Vec<Vec<u8>> = (0..6)
            .map(|i| if i < 5 { format!("run {i}") } else { "end".into() }.into_bytes())
            .collect();
        for datagram in &sent {
            peer.send_to(datagram, to).unwrap();
        }
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(0), Interest::READABLE)
            .unwrap();
        poll.poll(&mut Events::with_capacity(4), Some(Duration::from_secs(5)))
            .unwrap();
        let mut batch = Batch::new(64);
        #[cfg(target_os = "linux")]
        assert!(crate::gso::supported(), "Linux has had UDP_SEGMENT since 4.18");
        batch.probe_gso();
        let mut back = 0;
        while back < sent.len() {
            let n = batch.recv(&receiver, 64).unwrap();
            let outs: Vec<Out> = (0..n)
                .map(|i| Out {
                    index: i,
                    len: batch.get(i).0.len(),
                    to: Some(batch.get(i).1),
                })
                .collect();
            let mut results = Vec::new();
            batch.send(&receiver, &outs, &mut results);
            assert!(results.iter().all(Result::is_ok), "{results:?}");
            back += n;
        }
        for datagram in sent {
            assert_eq!(testkit::recv(&peer).unwrap(), (datagram, to));
        }
    }

    /// When a run's send fails (here on the ICMP "port unreachable" an earlier datagram
    /// brought back), only its first datagram is lost, as with one `sendto` each.
    #[cfg(unix)]
    #[test]
    fn a_failed_run_loses_only_its_first_datagram() {
        let mut receiver = UdpSocket::bind("127.0.0.1:0".parse().unwrap()).unwrap();
        let peer = testkit::local_socket(testkit::WAIT).unwrap();
        for i in 0..3 {
            peer.send_to(format!("same {i}").as_bytes(), receiver.local_addr().unwrap())
                .unwrap();
        }
        let connected = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        connected.connect(testkit::closed_port()).unwrap();
        connected.set_nonblocking(true).unwrap();
        let mut sender = UdpSocket::from_std(connected);
        sender.send(b"nobody listens").unwrap();
        let mut poll = Poll::new().unwrap();
        poll.registry()
            .register(&mut receiver, Token(0), Interest::READABLE)
            .unwrap();
        poll.registry()
            .register(&mut sender, Token(1), Interest::READABLE)
            .unwrap();
        let mut events = Events::with_capacity(4);
        let (mut batch, mut errored) = (Batch::new(64), false);
        batch.probe_gso();
        while !errored || batch.lens.len() < 3 {
            poll.poll(&mut events, Some(Duration::from_secs(5))).unwrap();
            assert!(!events.is_empty(), "no ICMP error or datagrams within 5 s");
            errored |= events.iter().any(|e| e.token() == Token(1));
            if batch.lens.len() < 3 {
                let _ = batch.recv(&receiver, 64);
            }
        }
        let outs: Vec<Out> = (0..3)
            .map(|i| Out {
                index: i,
                len: 6,
                to: None,
            })
            .collect();
        let mut results = Vec::new();
        batch.send(&sender, &outs, &mut results);
        let kinds: Vec<Option<io::ErrorKind>> = results.iter().map(|r| r.as_ref().err().map(io::Error::kind)).collect();
        assert_eq!(kinds, [Some(io::ErrorKind::ConnectionRefused), None, None]);
    }
}
