//! Datagrams many at a time: where the OS has them (Linux, Android, FreeBSD), `recvmmsg`
//! takes every datagram a socket holds (up to the relay's budget) in one system call, and
//! `sendmmsg` sends a run of them in one more. Elsewhere each call moves one datagram,
//! the chapter's `recvfrom`/`sendto`, and the relay works the same, one at a time.
//!
//! Why it matters: on loopback a datagram costs little to copy, so most of a relay's time
//! goes into entering and leaving the kernel; four system calls per echo (recvfrom and
//! sendto each way) become a few per batch.

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

    /// No more per call than this: the relay's budget per socket and wait.
    pub(super) const MOST: usize = 1024;

    /// The message headers the kernel reads and fills, made once, and the send addresses.
    pub(super) struct Headers {
        recv: MultiHeaders<SockaddrStorage>,
        send: MultiHeaders<SockaddrStorage>,
        to: Vec<Option<SockaddrStorage>>,
    }

    impl Headers {
        pub(super) fn new(size: usize) -> Self {
            Headers {
                recv: MultiHeaders::preallocate(size, None),
                send: MultiHeaders::preallocate(size, None),
                to: Vec::with_capacity(size),
            }
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

    /// sendmmsg until every datagram has had its turn. It returns how many went out; when the
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
        let no_control: [ControlMessage; 0] = [];
        while results.len() < outs.len() {
            let done = results.len();
            let rest = (&slices[done..], &headers.to[done..]);
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
}
