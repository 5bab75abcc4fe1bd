//! The one value every mode borrows: the socket and the target it is connected to, where
//! output goes, the stop flag, the `--save` and `--pcap` files, one receive buffer, and whether "nobody
//! is listening" was already said. Receiving and sending go through here, so the ICMP
//! "port unreachable" and every receive error are handled in one place.

use std::io;
use std::net::{SocketAddr, UdpSocket};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use common::output::{Datagram, Output};
use common::pcap::{Packet, Writer};
use common::save::Save;
use common::shutdown::{POLL_INTERVAL, Shutdown, is_wake_up};
use common::{Error, Result};

use crate::Config;
use crate::errors::{nobody_listening, send_error};
use crate::expect::Verdict;

/// Receive buffer: larger than any UDP payload, so a reply is never cut.
const RECV_BUFFER: usize = common::DEFAULT_BUFFER_SIZE;

/// How long one [`Session::poll`] waits: short, so a flood wakes often enough to give up on
/// lost requests and notice Ctrl-C.
const POLL: Duration = Duration::from_millis(10);

/// What an ICMP "port unreachable" means to the mode under way.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum OnRefused {
    /// The run fails with "no one is listening" (one-shot: there is nothing else to do).
    Fail,
    /// Say it once (again after a datagram arrives), with this note, and carry on.
    Warn(&'static str),
    /// Say nothing: replies come from many, or only echoes matter.
    Ignore,
}

/// A datagram that arrived: who sent it and how long it is (its bytes are in the buffer).
#[derive(Debug, Clone, Copy)]
pub(crate) struct Arrival {
    pub(crate) peer: SocketAddr,
    pub(crate) len: usize,
}

/// The files a run writes besides stdout, opened before the socket is made, so a file that
/// cannot be written fails the run before anything is sent.
#[derive(Default)]
pub(crate) struct Files {
    /// `--save`: every reply's bytes.
    pub(crate) save: Option<Save>,
    /// `--pcap`: every datagram sent and received.
    pub(crate) pcap: Option<Writer>,
}

/// Where `--pcap` records what crossed the wire: every datagram sent and received, with
/// the socket's address on our side. Shared (a clone is the same file) with the
/// interactive mode's input thread, which sends on its own handle of the socket.
#[derive(Clone)]
pub(crate) struct Recorder {
    /// `None` without `--pcap`: recording then costs one check.
    file: Option<Arc<Mutex<Writer>>>,
    /// The socket's own address: connected, the OS has chosen the source address too.
    local: SocketAddr,
}

impl Recorder {
    fn new(pcap: Option<Writer>, local: SocketAddr) -> Self {
        Recorder {
            file: pcap.map(|w| Arc::new(Mutex::new(w))),
            local,
        }
    }

    /// An unbound, unconnected socket (discovery) gets its port at its first send: the
    /// records after it name that port.
    fn learn_port(&mut self, socket: &UdpSocket) {
        if self.file.is_some() && self.local.port() == 0 {
            if let Ok(local) = socket.local_addr() {
                self.local = local;
            }
        }
    }

    /// Records a datagram this socket sent to `to`.
    pub(crate) fn sent(&self, to: SocketAddr, data: &[u8]) {
        self.record(&Packet::new(self.local, to, data));
    }

    /// Records a datagram this socket received from `from`.
    fn received(&self, from: SocketAddr, data: &[u8]) {
        self.record(&Packet::new(from, self.local, data));
    }

    fn record(&self, packet: &Packet<'_>) {
        if let Some(file) = &self.file {
            // A thread that panicked holding the lock cannot have left a record half-written
            // to the file (each is flushed whole), so the writer is used as it is.
            file.lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner)
                .record(packet);
        }
    }

    /// `wrote 3 datagrams to FILE (…)`, with `--pcap`.
    fn finish(&self) -> Option<String> {
        let file = self.file.as_ref()?;
        Some(file.lock().unwrap_or_else(std::sync::PoisonError::into_inner).finish())
    }
}

/// The socket and everything a mode needs around it.
pub(crate) struct Session<'a> {
    pub(crate) socket: UdpSocket,
    pub(crate) config: &'a Config,
    pub(crate) shutdown: &'a Shutdown,
    pub(crate) out: &'a Output,
    save: Option<Save>,
    /// `--pcap`: what was sent and received.
    pub(crate) pcap: Recorder,
    buf: Vec<u8>,
    /// The read timeout set on the socket, so it is set again only when it changes.
    read_timeout: Option<Duration>,
    pub(crate) on_refused: OnRefused,
    warned_refused: bool,
    /// How often the target refused (ICMP "port unreachable").
    refusals: u64,
    /// Whether the socket is connected to the target (every mode but discovery and
    /// `--any-source`).
    connected: bool,
    /// Datagrams from senders other than `--only-from`: not shown, counted.
    ignored: u64,
    /// GSO for [`Session::send_all`]: asked for with `--no-reply` unless `--no-offload`.
    gso: common::offload::Gso,
}

impl<'a> Session<'a> {
    pub(crate) fn new(
        socket: UdpSocket,
        config: &'a Config,
        shutdown: &'a Shutdown,
        out: &'a Output,
        files: Files,
    ) -> Self {
        let connected = socket.peer_addr().is_ok();
        // Only a sender that awaits no reply sends runs; the others never ask.
        let gso = common::offload::Gso::new(&socket, config.no_reply && !config.no_offload);
        // Unbound and unconnected (discovery), the OS says 0.0.0.0: the address it sends
        // from is chosen per datagram, and not told.
        let local = socket
            .local_addr()
            .unwrap_or_else(|_| SocketAddr::new(std::net::Ipv4Addr::UNSPECIFIED.into(), 0));
        Session {
            socket,
            config,
            shutdown,
            out,
            save: files.save,
            pcap: Recorder::new(files.pcap, local),
            buf: vec![0u8; RECV_BUFFER],
            read_timeout: None,
            on_refused: OnRefused::Warn(""),
            warned_refused: false,
            refusals: 0,
            connected,
            ignored: 0,
            gso,
        }
    }

    pub(crate) fn target(&self) -> SocketAddr {
        self.config.target
    }

    /// Whether to stop: Ctrl-C, SIGTERM, or nobody reads stdout any more.
    pub(crate) fn stopped(&self) -> bool {
        self.shutdown.is_triggered() || self.out.is_closed()
    }

    /// Waits `pause` (pacing a sender), waking early on a stop request; whether one came.
    /// However long the pause, no deadline overflows.
    pub(crate) fn pause(&self, pause: Duration) -> bool {
        let end = later(Instant::now(), pause);
        loop {
            if self.shutdown.is_triggered() {
                return true;
            }
            let left = end.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(POLL_INTERVAL));
        }
    }

    /// The bytes of the datagram that arrived last.
    pub(crate) fn data(&self, arrival: Arrival) -> &[u8] {
        &self.buf[..arrival.len]
    }

    /// Waits for one datagram until `deadline`, waking every [`POLL_INTERVAL`] to check for
    /// a stop request (a refusal from the target is handled as [`OnRefused`] says, and the
    /// wait goes on). `Ok(None)`: the deadline passed or a stop was requested.
    pub(crate) fn recv(&mut self, deadline: Instant) -> Result<Option<Arrival>> {
        loop {
            if self.shutdown.is_triggered() {
                return Ok(None);
            }
            let left = deadline.saturating_duration_since(Instant::now());
            if left.is_zero() {
                return Ok(None);
            }
            let got = self
                .set_read_timeout(left.min(POLL_INTERVAL))
                .and_then(|()| self.socket.recv_from(&mut self.buf));
            match self.received(got.map(|(len, peer)| Arrival { peer, len }))? {
                Received::Datagram(arrival) => return Ok(Some(arrival)),
                Received::Refused | Received::WakeUp | Received::Ignored => {}
            }
        }
    }

    /// A datagram already waiting in the socket's queue, without waiting for one: what
    /// arrived before now (a script's next send makes such replies stale). `Ok(None)`: the
    /// queue is empty.
    pub(crate) fn ready(&mut self) -> Result<Option<Arrival>> {
        let io = |e: io::Error| Error::io("cannot switch the socket between waiting and not", &e);
        self.socket.set_nonblocking(true).map_err(io)?;
        let got = loop {
            let got = self.socket.recv_from(&mut self.buf);
            match self.received(got.map(|(len, peer)| Arrival { peer, len })) {
                Ok(Received::Refused | Received::Ignored) => {}
                Ok(Received::Datagram(arrival)) => break Ok(Some(arrival)),
                Ok(Received::WakeUp) => break Ok(None),
                Err(e) => break Err(e),
            }
        };
        self.socket.set_nonblocking(false).map_err(io)?;
        got
    }

    /// One short wait for a datagram on the connected socket, for the loops that must wake
    /// often (floods). `recv` is the chapter's `sock.recv(1024)`: on a connected socket the
    /// sender can only be the target, so its address is not asked for.
    pub(crate) fn poll(&mut self) -> Result<Option<Arrival>> {
        let target = self.target();
        let got = self
            .set_read_timeout(POLL)
            .and_then(|()| self.socket.recv(&mut self.buf));
        match self.received(got.map(|len| Arrival { peer: target, len }))? {
            Received::Datagram(arrival) => Ok(Some(arrival)),
            Received::Refused | Received::WakeUp | Received::Ignored => Ok(None),
        }
    }

    /// The one place a receive error is judged.
    fn received(&mut self, got: io::Result<Arrival>) -> Result<Received> {
        match got {
            Ok(arrival) => {
                self.warned_refused = false;
                // Recorded whoever sent it: the capture shows what crossed the wire.
                self.pcap.received(arrival.peer, &self.buf[..arrival.len]);
                let only = self.config.any_source.and_then(|a| a.only_from);
                if let Some(only) = only.filter(|only| !only.matches(arrival.peer)) {
                    self.ignored += 1;
                    log::debug!(
                        "ignored {} B from {} (not --only-from {only})",
                        arrival.len,
                        arrival.peer
                    );
                    return Ok(Received::Ignored);
                }
                Ok(Received::Datagram(arrival))
            }
            Err(e) if is_wake_up(&e) => Ok(Received::WakeUp),
            Err(e) if common::error::is_port_unreachable(&e) => self.refused().map(|()| Received::Refused),
            Err(e) => Err(Error::io(format!("receiving from {} failed", self.target()), &e)),
        }
    }

    /// Sends one datagram to the target: `send` on the connected socket (`sendto` to the
    /// connected peer), `send_to` on an unconnected one. An ICMP "port unreachable" that
    /// an earlier datagram caused can surface here instead of on a receive; the OS then
    /// has not sent this one, so it is handled as [`OnRefused`] says and tried once more.
    /// `Ok(false)`: not sent, the target refused again.
    pub(crate) fn send(&mut self, payload: &[u8]) -> Result<bool> {
        let to = self.destination();
        for _ in 0..2 {
            match send_once(&self.socket, to, payload) {
                Ok(_) => {
                    self.pcap.learn_port(&self.socket);
                    self.pcap.sent(self.config.target, payload);
                    return Ok(true);
                }
                Err(e) if common::error::is_port_unreachable(&e) => self.refused()?,
                Err(e) => return Err(send_error(&e, payload.len(), self.target())),
            }
        }
        Ok(false)
    }

    /// Where `send_once` sends: `None` on a connected socket (the peer is fixed), the target
    /// on an unconnected one (discovery, `--any-source`).
    pub(crate) fn destination(&self) -> Option<SocketAddr> {
        if self.connected { None } else { Some(self.config.target) }
    }

    /// Datagrams `--only-from` left out so far.
    pub(crate) fn ignored(&self) -> u64 {
        self.ignored
    }

    /// Sends `payloads` in order, each as its own datagram, calling `sent(i)` for each one
    /// that went out: runs of equal length in one call where GSO is on (`common::offload`),
    /// one call per datagram otherwise, with the same handling of a refusal as [`Session::send`].
    pub(crate) fn send_all<T: AsRef<[u8]>>(&mut self, payloads: &[T], mut sent: impl FnMut(usize)) -> Result<()> {
        let mut i = 0;
        while i < payloads.len() {
            let n = common::offload::run_len(&payloads[i..], &self.config.target);
            match self.send_run(&payloads[i..i + n])? {
                Some(true) => (i..i + n).for_each(&mut sent),
                Some(false) => {}
                None => {
                    for (k, payload) in payloads[i..i + n].iter().enumerate() {
                        if self.send(payload.as_ref())? {
                            sent(i + k);
                        }
                    }
                }
            }
            i += n;
        }
        Ok(())
    }

    /// One run in one GSO call: `Some(true)` sent, `Some(false)` refused twice (as
    /// [`Session::send`] gives up), `None` when GSO cannot send it (off, a run of one, or
    /// refused by the OS just now).
    fn send_run<T: AsRef<[u8]>>(&mut self, run: &[T]) -> Result<Option<bool>> {
        let to = if self.connected { None } else { Some(self.config.target) };
        for _ in 0..2 {
            match self.gso.send(&self.socket, to, run) {
                Ok(true) => {
                    self.pcap.learn_port(&self.socket);
                    for payload in run {
                        self.pcap.sent(self.config.target, payload.as_ref());
                    }
                    return Ok(Some(true));
                }
                Ok(false) => return Ok(None),
                Err(e) if common::error::is_port_unreachable(&e) => self.refused()?,
                Err(e) => return Err(send_error(&e, run[0].as_ref().len(), self.target())),
            }
        }
        Ok(Some(false))
    }

    /// How often the target refused so far.
    pub(crate) fn refusals(&self) -> u64 {
        self.refusals
    }

    /// Nobody listens at the target: fail, or say so once.
    fn refused(&mut self) -> Result<()> {
        self.refusals += 1;
        match self.on_refused {
            OnRefused::Fail => Err(nobody_listening(self.target())),
            OnRefused::Warn(note) => {
                if !self.warned_refused {
                    log::warn!("{}{note}", nobody_listening(self.target()));
                    self.warned_refused = true;
                }
                Ok(())
            }
            OnRefused::Ignore => Ok(()),
        }
    }

    fn set_read_timeout(&mut self, timeout: Duration) -> io::Result<()> {
        if self.read_timeout != Some(timeout) {
            self.socket.set_read_timeout(Some(timeout))?;
            self.read_timeout = Some(timeout);
        }
        Ok(())
    }

    /// Prints a reply (with its round trip and check bytes) and saves it with `--save`.
    pub(crate) fn show_reply(&mut self, arrival: Arrival, rtt: Option<Duration>) -> Result<()> {
        self.show_reply_noted(arrival, rtt, None)
    }

    /// [`Session::show_reply`] with a word about it (`[note]`).
    pub(crate) fn show_reply_noted(
        &mut self,
        arrival: Arrival,
        rtt: Option<Duration>,
        note: Option<&str>,
    ) -> Result<()> {
        self.show_judged(arrival, rtt, note, None)
    }

    /// [`Session::show_reply_noted`] with what `--expect` said of it (`[expect ok]`).
    pub(crate) fn show_judged(
        &mut self,
        arrival: Arrival,
        rtt: Option<Duration>,
        note: Option<&str>,
        verdict: Option<&Verdict>,
    ) -> Result<()> {
        let data = &self.buf[..arrival.len];
        let check = self.config.typing.checksum.map(|c| c.check(data));
        let reply = Datagram {
            rtt,
            note,
            check: check.as_ref(),
            expect: verdict.map(Verdict::shown),
            ..Datagram::new(arrival.peer, data)
        };
        self.out.reply(&reply).map_err(Error::stdout)?;
        self.save(arrival)
    }

    /// What `--expect` says of the datagram that arrived last; `None` without `--expect`.
    pub(crate) fn judge(&self, arrival: Arrival) -> Option<Verdict> {
        let expect = self.config.expect.as_ref()?;
        Some(expect.judge(self.data(arrival), self.config.typing.checksum))
    }

    /// Prints a datagram that arrived in the interactive mode (an event `recv`, not `reply`).
    pub(crate) fn show_arrival(&mut self, arrival: Arrival) -> Result<()> {
        let data = &self.buf[..arrival.len];
        let check = self.config.typing.checksum.map(|c| c.check(data));
        let shown = Datagram {
            check: check.as_ref(),
            ..Datagram::new(arrival.peer, data)
        };
        self.out.received(&shown).map_err(Error::stdout)?;
        self.save(arrival)
    }

    /// Appends what arrived to the `--save` file, if there is one.
    pub(crate) fn save(&mut self, arrival: Arrival) -> Result<()> {
        match &mut self.save {
            Some(save) => save.write(&self.buf[..arrival.len]),
            None => Ok(()),
        }
    }

    /// The end of the run: the `--save` file's total is logged; the socket closes when
    /// the session is dropped.
    pub(crate) fn close(self) -> Result<()> {
        if self.ignored > 0 {
            let only = self.config.any_source.and_then(|a| a.only_from);
            let only = only.map_or(String::new(), |o| format!(" (not --only-from {o}; -v shows each)"));
            log::info!("ignored {}{only}", common::output::plural(self.ignored, "datagram"));
        }
        if let Some(wrote) = self.pcap.finish() {
            log::info!("{wrote}");
        }
        if let Some(save) = self.save {
            log::info!("{}", save.finish()?);
        }
        Ok(())
    }
}

/// One `send` (on a connected socket: `to` is `None`) or `send_to`.
pub(crate) fn send_once(socket: &UdpSocket, to: Option<SocketAddr>, payload: &[u8]) -> io::Result<usize> {
    match to {
        Some(to) => socket.send_to(payload, to),
        None => socket.send(payload),
    }
}

/// `at + wait`, or a century from `at` when `wait` is too large for the clock (a
/// `--timeout` of `9223372036854775807` seconds means "wait", not a crash).
pub(crate) fn later(at: Instant, wait: Duration) -> Instant {
    const CENTURY: Duration = Duration::from_secs(100 * 365 * 24 * 3600);
    at.checked_add(wait).or_else(|| at.checked_add(CENTURY)).unwrap_or(at)
}

/// What one receive call gave.
enum Received {
    Datagram(Arrival),
    /// The target refused; already handled as [`OnRefused`] says.
    Refused,
    /// A timeout or a signal: time to check the clock and the stop flag.
    WakeUp,
    /// From a sender `--only-from` leaves out: counted, not shown.
    Ignored,
}
