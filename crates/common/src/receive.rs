//! The receive path the server and the broadcast listener share, step by step as the
//! chapter has it: [`socket`] (step 1), [`bind`] (step 2), [`Receiver::each`] (step 3,
//! `recvfrom` in a loop) and [`Receiver::close`] (step 4).
//!
//! What a real tool needs around those steps sits here once: the receive-queue size
//! (SO_RCVBUF), sharing a port, bind errors with a hint, the read timeout that lets Ctrl-C
//! through, truncation, errors that are not failures, the destination of each datagram
//! (see [`crate::dest`]), the simulated network of [`crate::faults`], and the kernel's
//! receive offload (GRO, see [`crate::offload`]), whose buffers are cut back into datagrams
//! before anything else sees them.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::ops::Range;
use std::time::Instant;

use socket2::{Domain, Protocol, Socket, Type};

use crate::dest::{self, Destination};
use crate::faults::{FaultConfig, FaultCounts, Faults};
use crate::output::Output;
use crate::shutdown::{POLL_INTERVAL, Shutdown, is_earlier_send_error, is_wake_up};
use crate::{DEFAULT_BUFFER_SIZE, Error, Result};

/// How a receiving program wants its socket.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReceiveOptions {
    /// The address to bind; port 0 lets the OS pick one.
    pub bind: SocketAddr,
    /// The largest datagram kept whole; longer ones are cut and reported (`--buffer-size`).
    pub buffer_size: usize,
    /// SO_RCVBUF in bytes (`--recv-buffer`); the OS default when `None`.
    pub recv_buffer: Option<usize>,
    /// Share the port with other sockets on this host (SO_REUSEADDR, + SO_REUSEPORT on Unix).
    pub reuse: bool,
    /// Ask where each datagram was sent (see [`crate::dest`]).
    pub destination: bool,
    /// Stop after this many datagrams (`--count`).
    pub count: Option<u64>,
    /// Loss, duplication, delay and reordering to inject (`--drop` …).
    pub faults: FaultConfig,
    /// Let the kernel glue datagrams of one sender into one buffer (GRO, Linux; `--offload`).
    /// Each is still handed over, counted and cut on its own; the kernel's drop count then
    /// counts lost buffers, not datagrams, which is why it is asked for, never assumed.
    pub gro: bool,
}

impl Default for ReceiveOptions {
    fn default() -> Self {
        ReceiveOptions {
            bind: SocketAddr::from(([127, 0, 0, 1], 0)),
            buffer_size: DEFAULT_BUFFER_SIZE,
            recv_buffer: None,
            reuse: false,
            destination: false,
            count: None,
            faults: FaultConfig::default(),
            gro: false,
        }
    }
}

/// One datagram, as the program gets it.
#[derive(Debug, Clone, Copy)]
pub struct Incoming<'a> {
    /// The payload (cut to the buffer size).
    pub data: &'a [u8],
    /// Who sent it.
    pub peer: SocketAddr,
    /// Where it was sent to, when asked for and known.
    pub to: Option<Destination>,
    /// It was longer than the buffer and was cut.
    pub truncated: bool,
    /// What an injected fault did to it (`duplicate`, `delayed`, `reordered`).
    pub note: Option<&'static str>,
}

/// What a receiving program does with datagrams.
pub trait Handler {
    /// Every datagram read from the socket, before the simulated network touches it: where
    /// the program counts what arrived.
    fn arrived(&mut self, _datagram: &Incoming<'_>) {}

    /// Every datagram the (simulated) network delivers: where the program prints and answers.
    ///
    /// # Errors
    /// Whatever should stop the loop (a failed write to stdout).
    fn deliver(&mut self, socket: &UdpSocket, datagram: Incoming<'_>) -> Result<()>;

    /// When the handler next has something to send that it held back (a simulated
    /// device's delayed reply), so the loop wakes up for it; `None`: nothing held.
    fn next_due(&self) -> Option<Instant> {
        None
    }

    /// Sends what the handler held back that is due by `now`.
    ///
    /// # Errors
    /// Whatever should stop the loop.
    fn send_due(&mut self, _socket: &UdpSocket, _now: Instant) -> Result<()> {
        Ok(())
    }
}

/// What the kernel and the simulated network did, told when the socket closes.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Closed {
    /// Datagrams the kernel dropped because the receive queue was full (Linux).
    pub kernel_drops: Option<u64>,
    /// What the injected faults did, when any were asked for.
    pub faults: Option<FaultCounts>,
}

/// Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`, with the
/// options that must be set before binding.
///
/// # Errors
/// [`Error::Runtime`] when the OS refuses the socket or an option.
pub fn socket(options: &ReceiveOptions) -> Result<Socket> {
    // SOCK_DGRAM is what makes it UDP; the address family follows the bind address.
    let socket = Socket::new(Domain::for_address(options.bind), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io("cannot create a UDP socket", &e))?;
    if let Some(bytes) = options.recv_buffer {
        set_recv_buffer(&socket, bytes)?;
    }
    if options.reuse {
        share_port(&socket)?;
    }
    Ok(socket)
}

/// Step 2, bind(): Python's `sock.bind(('127.0.0.1', 8888))`. A server must bind, so that
/// clients know where to send; a client may skip it and let the OS pick a port.
///
/// # Errors
/// [`Error::Runtime`] naming the address, with a hint, when it cannot be bound.
pub fn bind(socket: Socket, options: &ReceiveOptions) -> Result<Receiver> {
    socket
        .bind(&options.bind.into())
        .map_err(|e| bind_error(options.bind, &e))?;
    let socket = UdpSocket::from(socket);
    // A read timeout lets the loop notice Ctrl-C even when no datagram arrives.
    socket
        .set_read_timeout(Some(POLL_INTERVAL))
        .map_err(|e| Error::io("cannot set a read timeout", &e))?;
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("cannot read the bound address", &e))?;
    if options.destination {
        dest::enable(&socket)?;
    }
    no_reports_of_earlier_sends(&socket);
    say_what_this_os_cannot_do(options);
    let gro = options.gro && crate::offload::enable_gro(&socket);
    let mut control = if options.destination {
        dest::control_buffer()
    } else {
        Vec::new()
    };
    if gro {
        control.extend(gro_control());
    }
    Ok(Receiver {
        socket,
        local,
        buf: vec![0u8; slot_size(options.buffer_size, gro)],
        control,
        options: *options,
        faults: options.faults.is_active().then(|| Faults::new(options.faults)),
        arrivals: 0,
        short_wait: false,
        gro,
        left_unread: 0,
    })
}

/// The bytes one receive needs: one more than `--buffer-size`, so a datagram that fits
/// exactly is told from one that was cut (like Python's recvfrom, std's recv_from drops the
/// rest of a long datagram silently); with GRO, room for a whole glued buffer
/// ([`crate::offload::GRO_BUFFER`]), which is then cut per datagram.
pub fn slot_size(buffer_size: usize, gro: bool) -> usize {
    if gro {
        (buffer_size + 1).max(crate::offload::GRO_BUFFER)
    } else {
        buffer_size + 1
    }
}

/// A bound socket and what its loop needs.
#[derive(Debug)]
pub struct Receiver {
    socket: UdpSocket,
    local: SocketAddr,
    buf: Vec<u8>,
    control: Vec<u8>,
    options: ReceiveOptions,
    faults: Option<Faults>,
    arrivals: u64,
    /// The read timeout was shortened for something due soon: it is set back afterwards.
    short_wait: bool,
    /// GRO is on (asked for, and the kernel agreed).
    gro: bool,
    /// Datagrams of a GRO buffer past `--count`: read, never handed over, so counted as
    /// unread (as they would have stayed in the queue without GRO).
    left_unread: u64,
}

/// What one receive call got: a datagram, or with GRO several from one sender in a row
/// (`segment` bytes each, the last maybe shorter).
#[derive(Debug, Clone, Copy)]
pub struct Got {
    /// The bytes written, the sender and the destination.
    pub arrival: dest::Arrival,
    /// With GRO: the length of each datagram in the buffer.
    pub segment: Option<usize>,
    /// The kernel had more than the buffer held (MSG_TRUNC on a GRO buffer): the last
    /// datagram was cut.
    pub overflowed: bool,
}

impl From<dest::Arrival> for Got {
    fn from(arrival: dest::Arrival) -> Self {
        Got {
            arrival,
            segment: None,
            overflowed: false,
        }
    }
}

/// The datagrams in what one receive got, each with the bytes kept and whether it was cut:
/// the one truncation rule ([`kept`]) applied to each datagram of a GRO buffer, exactly as
/// to a datagram received alone.
pub fn datagrams(got: Got, buffer_size: usize) -> impl Iterator<Item = (Range<usize>, bool)> {
    let len = got.arrival.len;
    crate::offload::segments(len, got.segment).map(move |r| {
        let (keep, cut) = kept(r.len(), buffer_size);
        (r.start..r.start + keep, cut || (got.overflowed && r.end == len))
    })
}

impl Receiver {
    /// The bound address, with the real port when bound to port 0.
    pub fn local(&self) -> SocketAddr {
        self.local
    }

    /// The socket, for what the loop does not do (joining a group, a batched loop).
    pub fn socket(&self) -> &UdpSocket {
        &self.socket
    }

    /// The options it was bound with.
    pub fn options(&self) -> &ReceiveOptions {
        &self.options
    }

    /// Step 3, recvfrom() in a loop: Python's `data, addr = sock.recvfrom(1024)`. Each
    /// datagram goes to `handler`, through the simulated network when faults are asked
    /// for, until `--count`, a stop request or a closed stdout. Then what the simulated
    /// network still holds is delivered when due, unless a stop was asked for.
    ///
    /// # Errors
    /// [`Error::Runtime`] when the socket fails; whatever `handler` returns.
    pub fn each(&mut self, shutdown: &Shutdown, out: &Output, handler: &mut impl Handler) -> Result<()> {
        let count = self.options.count;
        while !shutdown.is_triggered() && !out.is_closed() && count.is_none_or(|n| self.arrivals < n) {
            self.deliver_due(handler)?;
            let Some(got) = self.receive()? else { continue };
            // One datagram, or (GRO) several: each goes on as if it had come alone.
            for (range, truncated) in datagrams(got, self.options.buffer_size) {
                if count.is_some_and(|n| self.arrivals >= n) || shutdown.is_triggered() {
                    self.left_unread += 1;
                    continue;
                }
                self.arrivals += 1;
                let datagram = Incoming {
                    data: &self.buf[range],
                    peer: got.arrival.peer,
                    to: got.arrival.to,
                    truncated,
                    note: None,
                };
                handler.arrived(&datagram);
                match &mut self.faults {
                    Some(faults) => faults.arrive(Instant::now(), datagram.data, datagram.peer, datagram.to, truncated),
                    None => handler.deliver(&self.socket, datagram)?,
                }
            }
        }
        self.drain(shutdown, out, handler)
    }

    /// One `recvfrom` (or `recvmsg`, when the destination or GRO's segment size is wanted);
    /// `None` when the read timeout expired or an error reported an earlier send, neither a
    /// reason to stop.
    fn receive(&mut self) -> Result<Option<Got>> {
        let received = if self.gro {
            recv_gro(&self.socket, &mut self.buf, &mut self.control)
        } else if self.options.destination {
            dest::recv(&self.socket, &mut self.buf, &mut self.control).map(Got::from)
        } else {
            // The chapter's recvfrom: the data and who sent it.
            self.socket
                .recv_from(&mut self.buf)
                .map(|(len, peer)| Got::from(dest::Arrival { len, peer, to: None }))
        };
        match received {
            Ok(arrival) => Ok(Some(arrival)),
            Err(e) if is_wake_up(&e) => Ok(None),
            Err(e) if is_earlier_send_error(&e) => {
                // An ICMP error about an earlier reply (Windows reports it even here, on an
                // unconnected socket): the peer has gone, the socket is fine.
                log::debug!(
                    "an earlier reply was refused by its peer: {}",
                    crate::error::describe(&e)
                );
                Ok(None)
            }
            Err(e) => Err(Error::io(format!("receiving on {} failed", self.local), &e)),
        }
    }

    /// Hands over what the simulated network releases now, sends what the handler held
    /// back for now, and shortens the next wait so neither is late.
    fn deliver_due(&mut self, handler: &mut impl Handler) -> Result<()> {
        if self.faults.is_none() && handler.next_due().is_none() && !self.short_wait {
            // The common case costs nothing: no clock, no system call.
            return Ok(());
        }
        let now = Instant::now();
        self.release(handler, now)?;
        let wait = self
            .next_due(handler)
            .map_or(POLL_INTERVAL, |due| due.saturating_duration_since(now))
            .clamp(std::time::Duration::from_micros(100), POLL_INTERVAL);
        self.short_wait = wait < POLL_INTERVAL;
        self.socket
            .set_read_timeout(Some(wait))
            .map_err(|e| Error::io("cannot set a read timeout", &e))
    }

    /// After the last counted datagram, what is still inside the simulated network (delayed
    /// or held back) is delivered when due, and what the handler held back is sent when
    /// due, unless a stop was asked for.
    fn drain(&mut self, shutdown: &Shutdown, out: &Output, handler: &mut impl Handler) -> Result<()> {
        while let Some(due) = self.next_due(handler) {
            if shutdown.sleep(due.saturating_duration_since(Instant::now())) || out.is_closed() {
                break;
            }
            self.release(handler, Instant::now())?;
        }
        Ok(())
    }

    /// Hands over what the simulated network releases by `now`, and sends what the handler
    /// held back until then.
    fn release(&mut self, handler: &mut impl Handler, now: Instant) -> Result<()> {
        if let Some(faults) = &mut self.faults {
            for d in faults.take_due(now) {
                handler.deliver(&self.socket, delivered(&d))?;
            }
        }
        handler.send_due(&self.socket, now)
    }

    /// When the next held datagram or held reply is due, if any is.
    fn next_due(&self, handler: &impl Handler) -> Option<Instant> {
        let faults = self.faults.as_ref().and_then(Faults::next_due);
        [faults, handler.next_due()].into_iter().flatten().min()
    }

    /// Whether GRO is on for this socket (asked for, and the kernel agreed).
    pub fn gro(&self) -> bool {
        self.gro
    }

    /// Counts `n` datagrams that were read but not handed over (past `--count`, from a GRO
    /// buffer): as if they had stayed in the queue.
    pub fn leave_unread(&mut self, n: u64) {
        self.left_unread += n;
    }

    /// Datagrams still in the receive queue (received by the kernel, never read, so neither
    /// counted nor dropped), taken out without waiting and thrown away, up to `max` (a
    /// bound on the time a stop takes, whatever the queue holds); with those of a GRO buffer
    /// that were read but not handed over. A GRO buffer in the queue counts as the datagrams
    /// it holds.
    pub fn count_unread(&self, max: u64) -> u64 {
        let mut unread = self.left_unread;
        if self.socket.set_nonblocking(true).is_err() {
            return unread.min(max);
        }
        while unread < max {
            match self.take_one() {
                Ok(n) => unread += n,
                // An earlier reply's ICMP error (Windows) says nothing about the queue.
                Err(e) if is_earlier_send_error(&e) => {}
                Err(_) => break,
            }
        }
        unread.min(max)
    }

    /// Takes one datagram (or GRO buffer) out of the queue; how many datagrams it held.
    fn take_one(&self) -> io::Result<u64> {
        if self.gro {
            return unread_gro(&self.socket);
        }
        let mut scrap = [0u8; 1];
        self.socket.recv_from(&mut scrap).map(|_| 1)
    }

    /// Step 4, close(): Python's `sock.close()`. In Rust the socket closes when dropped;
    /// first the kernel is asked how many datagrams it dropped.
    pub fn close(self) -> Closed {
        let closed = Closed {
            kernel_drops: crate::kernel::drops(&self.socket),
            faults: self.faults.as_ref().map(Faults::counts),
        };
        drop(self.socket);
        closed
    }
}

/// `recvmsg` with GRO on: the buffer, its sender and destination, and the length of each
/// datagram in it.
#[cfg(target_os = "linux")]
fn recv_gro(socket: &UdpSocket, buf: &mut [u8], control: &mut [u8]) -> io::Result<Got> {
    use nix::sys::socket::{MsgFlags, SockaddrStorage, recvmsg};
    use std::os::fd::AsRawFd;
    let mut iov = [io::IoSliceMut::new(buf)];
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(control), MsgFlags::empty())?;
    let peer = msg
        .address
        .as_ref()
        .and_then(dest::socket_addr)
        .ok_or_else(|| io::Error::new(io::ErrorKind::InvalidData, "no sender address"))?;
    let cmsgs = msg.cmsgs().ok();
    Ok(Got {
        arrival: dest::Arrival {
            len: msg.bytes,
            peer,
            to: cmsgs.and_then(dest::destination),
        },
        segment: cmsgs.and_then(crate::offload::gro_segment),
        overflowed: msg.flags.contains(MsgFlags::MSG_TRUNC),
    })
}

/// One GRO buffer taken from the queue unread: its length (MSG_TRUNC makes Linux say the
/// real one) over the length of each datagram in it.
#[cfg(target_os = "linux")]
fn unread_gro(socket: &UdpSocket) -> io::Result<u64> {
    use nix::sys::socket::{MsgFlags, SockaddrStorage, recvmsg};
    use std::os::fd::AsRawFd;
    let mut scrap = [0u8; 1];
    let mut iov = [io::IoSliceMut::new(&mut scrap)];
    let mut control = gro_control();
    let msg = recvmsg::<SockaddrStorage>(socket.as_raw_fd(), &mut iov, Some(&mut control), MsgFlags::MSG_TRUNC)?;
    let segment = msg.cmsgs().ok().and_then(crate::offload::gro_segment);
    Ok(crate::offload::segments(msg.bytes, segment).count() as u64)
}

#[cfg(target_os = "linux")]
fn gro_control() -> Vec<u8> {
    crate::offload::gro_control()
}

// Elsewhere GRO is never on (`offload::enable_gro` says no): the plain receive.
#[cfg(not(target_os = "linux"))]
fn recv_gro(socket: &UdpSocket, buf: &mut [u8], control: &mut [u8]) -> io::Result<Got> {
    dest::recv(socket, buf, control).map(Got::from)
}

#[cfg(not(target_os = "linux"))]
fn unread_gro(socket: &UdpSocket) -> io::Result<u64> {
    socket.recv_from(&mut [0u8; 1]).map(|_| 1)
}

#[cfg(not(target_os = "linux"))]
fn gro_control() -> Vec<u8> {
    Vec::new()
}

/// Windows reports an ICMP error caused by an earlier reply (the client has gone) on the
/// server's next receive, even though the socket is not connected (WSAECONNRESET). The loop
/// would carry on anyway (see `is_earlier_send_error`); this asks Windows not to report it,
/// as Go and libuv do, so no receive is spent on it.
#[cfg(windows)]
#[allow(unsafe_code)]
fn no_reports_of_earlier_sends(socket: &UdpSocket) {
    use std::os::windows::io::AsRawSocket;
    use windows_sys::Win32::Networking::WinSock::{SIO_UDP_CONNRESET, SIO_UDP_NETRESET, SOCKET, WSAIoctl};
    for (code, name) in [
        (SIO_UDP_CONNRESET, "SIO_UDP_CONNRESET"),
        (SIO_UDP_NETRESET, "SIO_UDP_NETRESET"),
    ] {
        let off: u32 = 0; // FALSE: do not report
        let mut returned = 0u32;
        // SAFETY: the socket handle is open for the call (borrowed from `socket`); the input
        // is a live u32 whose size is passed with it; there is no output buffer, the byte
        // count is a live u32, and the call is synchronous (no OVERLAPPED, no callback).
        let rc = unsafe {
            WSAIoctl(
                socket.as_raw_socket() as SOCKET,
                code,
                (&raw const off).cast(),
                size_of::<u32>() as u32,
                std::ptr::null_mut(),
                0,
                &mut returned,
                std::ptr::null_mut(),
                None,
            )
        };
        if rc != 0 {
            log::debug!("{name} could not be turned off: {}", std::io::Error::last_os_error());
        }
    }
}

#[cfg(not(windows))]
fn no_reports_of_earlier_sends(_: &UdpSocket) {}

/// What an OS cannot do is said at start-up, never silently different.
fn say_what_this_os_cannot_do(options: &ReceiveOptions) {
    if options.destination && !dest::SUPPORTED {
        log::warn!(
            "this OS does not say where a datagram was sent (packet info: Linux and macOS only), so a broadcast to {} cannot be told from a unicast datagram and --show-header has no checksum; bind one address (e.g. 127.0.0.1 or this host's LAN address) to stay safe",
            options.bind
        );
    }
    if !cfg!(target_os = "linux") {
        log::info!("kernel drop counts are read from /proc on Linux only; this summary cannot show them");
    }
}

fn delivered(d: &crate::faults::Delivery) -> Incoming<'_> {
    Incoming {
        data: &d.data,
        peer: d.peer,
        to: d.to,
        truncated: d.truncated,
        note: d.note,
    }
}

/// The one truncation rule: a receive into `buffer_size + 1` bytes that returned more than
/// `buffer_size` was cut. Returns the bytes kept and whether the datagram was cut.
pub fn kept(len: usize, buffer_size: usize) -> (usize, bool) {
    (len.min(buffer_size), len > buffer_size)
}

/// SO_RCVBUF: how many bytes of datagrams the kernel queues for this socket before it drops
/// new ones (Linux doubles the value asked for, to cover its bookkeeping).
fn set_recv_buffer(socket: &Socket, bytes: usize) -> Result<()> {
    socket
        .set_recv_buffer_size(bytes)
        .map_err(|e| Error::io("cannot set SO_RCVBUF", &e))?;
    let got = socket.recv_buffer_size().unwrap_or(bytes);
    log::info!("receive buffer: asked for {bytes} bytes, the kernel gave {got}");
    Ok(())
}

/// SO_REUSEADDR (and SO_REUSEPORT, which macOS and the BSDs need) let several sockets on
/// this host bind the same port; each broadcast reaches every one of them. Windows has
/// only SO_REUSEADDR.
fn share_port(socket: &Socket) -> Result<()> {
    socket
        .set_reuse_address(true)
        .map_err(|e| Error::io("cannot set SO_REUSEADDR", &e))?;
    #[cfg(all(unix, not(any(target_os = "solaris", target_os = "illumos", target_os = "cygwin"))))]
    socket
        .set_reuse_port(true)
        .map_err(|e| Error::io("cannot set SO_REUSEPORT", &e))?;
    Ok(())
}

pub use crate::error::bind_error;

#[cfg(test)]
mod tests {
    use super::*;
    use std::io;
    use std::time::Duration;

    /// Cut or not, a datagram says so: by `recvfrom`, by `recvmsg`, and after a `--delay`
    /// (the simulated network keeps the mark).
    #[test]
    fn a_long_datagram_is_reported_cut() {
        let delayed = FaultConfig {
            delay: Some((Duration::from_millis(1), Duration::from_millis(1))),
            ..FaultConfig::default()
        };
        for (destination, faults) in [
            (false, FaultConfig::default()),
            (true, FaultConfig::default()),
            (false, delayed),
        ] {
            let options = ReceiveOptions {
                buffer_size: 10,
                destination,
                count: Some(2),
                faults,
                ..ReceiveOptions::default()
            };
            let mut receiver = bind(socket(&options).unwrap(), &options).unwrap();
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            client.send_to(&[7u8; 100], receiver.local()).unwrap();
            client.send_to(&[8u8; 10], receiver.local()).unwrap();
            struct Seen(Vec<(Vec<u8>, bool)>);
            impl Handler for Seen {
                fn deliver(&mut self, _: &UdpSocket, d: Incoming<'_>) -> Result<()> {
                    self.0.push((d.data.to_vec(), d.truncated));
                    Ok(())
                }
            }
            let mut seen = Seen(Vec::new());
            let out = Output::new(Box::new(io::sink()), crate::output::OutputOptions::default());
            let stop = Shutdown::new();
            let timer = stop.clone();
            std::thread::spawn(move || {
                std::thread::sleep(Duration::from_secs(5));
                timer.trigger();
            });
            receiver.each(&stop, &out, &mut seen).unwrap();
            assert_eq!(
                seen.0,
                vec![(vec![7u8; 10], true), (vec![8u8; 10], false)],
                "destination {destination}, faults {faults:?}"
            );
        }
    }

    /// What the handler of a GRO test saw: each datagram's bytes and whether it was cut.
    #[cfg(target_os = "linux")]
    struct Cut(Vec<(Vec<u8>, bool)>);

    #[cfg(target_os = "linux")]
    impl Handler for Cut {
        fn deliver(&mut self, _: &UdpSocket, d: Incoming<'_>) -> Result<()> {
            self.0.push((d.data.to_vec(), d.truncated));
            Ok(())
        }
    }

    /// Two GSO bursts to a socket with GRO on and `--buffer-size 100`: 5 × 50 B, then
    /// 3 × 150 B closed by 20 B. The kernel glues each burst into one buffer (seen here), and
    /// the receive path hands over 9 datagrams, each cut on its own: the three of 150 B to
    /// 100, the others whole; with `--count 7`, the last two are counted unread.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_gro_buffer_is_cut_into_datagrams_each_counted_and_truncated_alone() {
        let small: Vec<&[u8]> = vec![&[b'a'; 50][..]; 5];
        let long = [[b'b'; 150], [b'c'; 150], [b'd'; 150]];
        let mut bursts: Vec<&[u8]> = long.iter().map(|d| &d[..]).collect();
        bursts.push(&[b'e'; 20]);
        for (count, destination) in [(9, false), (9, true), (7, false)] {
            let options = ReceiveOptions {
                buffer_size: 100,
                count: Some(count),
                destination,
                gro: true,
                ..ReceiveOptions::default()
            };
            let mut receiver = bind(socket(&options).unwrap(), &options).unwrap();
            assert!(receiver.gro(), "this kernel has UDP_GRO (Linux 5.0+)");
            let client = UdpSocket::bind("127.0.0.1:0").unwrap();
            testkit::offload::send_gso(&client, receiver.local(), &small).unwrap();
            testkit::offload::send_gso(&client, receiver.local(), &bursts).unwrap();
            let mut seen = Cut(Vec::new());
            let out = Output::new(Box::new(io::sink()), crate::output::OutputOptions::default());
            receiver.each(&Shutdown::new(), &out, &mut seen).unwrap();
            let mut expected: Vec<(Vec<u8>, bool)> = vec![(vec![b'a'; 50], false); 5];
            expected.extend([b'b', b'c', b'd'].map(|c| (vec![c; 100], true)));
            expected.push((vec![b'e'; 20], false));
            expected.truncate(count as usize);
            assert_eq!(seen.0, expected, "--count {count}, destination {destination}");
            assert_eq!(receiver.count_unread(100), 9 - count);
        }
    }

    /// Proof that the test above saw glued buffers: one receive gets a whole burst.
    #[cfg(target_os = "linux")]
    #[test]
    fn gro_glues_a_gso_burst_into_one_buffer() {
        let options = ReceiveOptions {
            gro: true,
            ..ReceiveOptions::default()
        };
        let receiver = bind(socket(&options).unwrap(), &options).unwrap();
        let client = UdpSocket::bind("127.0.0.1:0").unwrap();
        testkit::offload::send_gso(&client, receiver.local(), &[&[1u8; 40][..], &[2u8; 40], &[3u8; 9]]).unwrap();
        let (mut buf, mut control) = (vec![0u8; 70_000], gro_control());
        let got = recv_gro(receiver.socket(), &mut buf, &mut control).unwrap();
        assert_eq!((got.arrival.len, got.segment, got.overflowed), (89, Some(40), false));
        assert_eq!(got.arrival.peer, client.local_addr().unwrap());
    }

    #[test]
    fn a_port_in_use_names_a_free_one_of_the_same_family() {
        let err = io::Error::from(io::ErrorKind::AddrInUse);
        let v6 = bind_error("[::1]:9005".parse().unwrap(), &err).to_string();
        assert!(v6.contains("--bind [::1]:0"), "{v6}");
        let v4 = bind_error("127.0.0.1:9005".parse().unwrap(), &err).to_string();
        assert!(v4.contains("--bind 127.0.0.1:0"), "{v4}");
    }
}
