//! `udp-server`: the chapter's UDP server — create a socket, **bind** it, then answer
//! datagrams with `recvfrom`/`sendto` in a loop.
//!
//! ```sh
//! cargo run -p udp-server                  # terminal 1: listening on 127.0.0.1:8888
//! cargo run -p udp-client -- hello         # terminal 2: prints the echo of "hello"
//! ```
//!
//! Caveats a learner meets soon:
//! - The default `127.0.0.1` is reachable only from this machine. `--bind 0.0.0.0:8888`
//!   accepts datagrams from other machines too (NetAssist, `nc -u HOST 8888`); a firewall
//!   may still stand in the way.
//! - On a host with several addresses, a server bound to `0.0.0.0` may answer from a
//!   different address than the one the client wrote to; a client that filters by address
//!   (as `udp-client` does, being connected) then ignores the reply. Bind the exact address.
//! - One socket serves every peer: UDP has no connections, so there is no `listen` or
//!   `accept`; each datagram carries its sender's address and the reply goes back there.

// Example code gets copied: no unwrap, expect or panic outside tests (see STYLE.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(target_os = "linux")]
mod batch;
pub mod ratelimit;

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::time::Instant;

use common::dest::{Arrival, Destination};
use common::faults::{FaultConfig, FaultCounts, Faults};
use common::header::UdpHeader;
use common::output::{Datagram, Output, OutputOptions};
use common::shutdown::{POLL_INTERVAL, Shutdown, is_earlier_send_error, is_wake_up, prepare_receiver};
use common::{Error, Result};
use ratelimit::{Limiter, RateLimit};
use serde_json::json;
use socket2::{Domain, Protocol, Socket, Type};

/// Where the server listens when no `--bind` is given: this machine only.
pub const DEFAULT_BIND: &str = "127.0.0.1:8888";

/// The default receive buffer: larger than any UDP payload, so nothing is ever cut.
/// The chapter's `recvfrom(1024)` is `--buffer-size 1024`.
pub const DEFAULT_BUFFER_SIZE: u16 = 65_535;

/// How the server answers each datagram.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The same bytes back to the sender (an echo server, the chapter's example).
    Echo,
    /// No answer: a sink that only prints what arrives.
    None,
    /// A fixed answer, cut to the length of the request it answers (see [`reply_for`]).
    Text(Vec<u8>),
}

/// Everything `run` needs; `main` builds it from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// The address to bind (`--bind`); port 0 lets the OS pick one.
    pub bind: SocketAddr,
    /// How to answer (`--reply`).
    pub reply: Reply,
    /// The largest datagram kept whole (`--buffer-size`); longer ones are cut and reported.
    pub buffer_size: usize,
    /// Stop after this many datagrams (`--count`).
    pub count: Option<u64>,
    /// How datagrams are printed.
    pub output: OutputOptions,
    /// Loss, duplication, delay and reordering to inject (`--drop` …).
    pub faults: FaultConfig,
    /// SO_RCVBUF in bytes (`--recv-buffer`); the OS default when `None`.
    pub recv_buffer: Option<usize>,
    /// Move up to this many datagrams per system call (`--batch`, Linux).
    pub batch: Option<usize>,
    /// Replies per second per source (`--rate-limit`); see [`default_rate_limit`].
    pub rate_limit: Option<RateLimit>,
    /// Print each datagram's UDP header (`--show-header`).
    pub show_header: bool,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: SocketAddr::from(([127, 0, 0, 1], 8888)),
            reply: Reply::Echo,
            buffer_size: usize::from(DEFAULT_BUFFER_SIZE),
            count: None,
            output: OutputOptions::default(),
            faults: FaultConfig::default(),
            recv_buffer: None,
            batch: None,
            rate_limit: None,
            show_header: false,
        }
    }
}

/// What happened during a run: the summary printed on stop.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Summary {
    /// The address the server was bound to (with the real port).
    pub local: Option<SocketAddr>,
    /// Datagrams received.
    pub received: u64,
    /// Payload bytes received (after any truncation).
    pub bytes: u64,
    /// Replies sent.
    pub replied: u64,
    /// Distinct sender addresses (at most [`MAX_PEERS`] are told apart).
    pub peers: u64,
    /// Datagrams longer than the buffer, cut.
    pub truncated: u64,
    /// Datagrams not answered for safety (see [`refusal`]).
    pub refused: u64,
    /// Datagrams not answered because their source was over `--rate-limit`.
    pub rate_limited: u64,
    /// What the injected faults did, when any were asked for.
    pub faults: Option<FaultCounts>,
    /// Datagrams the kernel dropped because the receive queue was full (Linux).
    pub kernel_drops: Option<u64>,
}

impl Summary {
    /// The `{"event":"summary",…}` fields of SPEC §2.
    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = json!({
            "received": self.received, "bytes": self.bytes, "replied": self.replied,
            "peers": self.peers, "truncated": self.truncated, "refused": self.refused,
            "rate_limited": self.rate_limited,
        });
        if let Some(f) = self.faults {
            f.add_to(&mut obj);
        }
        common::kernel::add_to(self.kernel_drops, &mut obj);
        obj
    }

    /// One line for stderr.
    pub fn to_text(&self) -> String {
        let at_least = if self.peers >= MAX_PEERS as u64 {
            "at least "
        } else {
            ""
        };
        let mut text = format!(
            "udp-server: received {} datagrams ({} B) from {at_least}{} peers, replied {}, truncated {}",
            self.received, self.bytes, self.peers, self.replied, self.truncated
        );
        if self.refused > 0 {
            text += &format!(", refused {} (loop protection)", self.refused);
        }
        if self.rate_limited > 0 {
            text += &format!(", rate-limited {}", self.rate_limited);
        }
        if let Some(f) = self.faults {
            text += &f.to_text();
        }
        text += &common::kernel::to_text(self.kernel_drops);
        text
    }
}

/// Binds, then receives and answers datagrams until `--count` is reached, `shutdown` is
/// triggered or stdout is closed. Prints `listening on ADDR` first.
///
/// # Errors
/// [`Error::Runtime`] when the address cannot be bound or the socket fails.
///
/// # Examples
/// ```
/// use common::{output::OutputOptions, shutdown::Shutdown, testkit};
/// use std::time::Duration;
///
/// let config = udp_server::Config { bind: "127.0.0.1:0".parse().unwrap(), count: Some(1), ..Default::default() };
/// let (out, lines) = testkit::capture(OutputOptions::default());
/// let server = std::thread::spawn(move || udp_server::run(&config, &Shutdown::new(), &out));
/// let addr = testkit::listening_addr(&lines.next(Duration::from_secs(5)).unwrap()).unwrap();
///
/// let client = testkit::local_socket(Duration::from_secs(5)).unwrap();
/// client.send_to(b"hello", addr).unwrap();
/// assert_eq!(testkit::recv(&client).unwrap().0, b"hello");
/// assert_eq!(server.join().unwrap().unwrap().received, 1);
/// ```
pub fn run(config: &Config, shutdown: &Shutdown, out: &Output) -> Result<Summary> {
    // Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`.
    // SOCK_DGRAM is what makes it UDP; the address family follows the bind address.
    let socket = Socket::new(Domain::for_address(config.bind), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io("cannot create a UDP socket", &e))?;
    if let Some(bytes) = config.recv_buffer {
        set_recv_buffer(&socket, bytes)?;
    }

    // Step 2, bind(): Python's `sock.bind(('127.0.0.1', 8888))`. A server must bind, so that
    // clients know where to send; a client may skip it and let the OS pick a port.
    socket
        .bind(&config.bind.into())
        .map_err(|e| bind_error(config.bind, &e))?;
    let socket = UdpSocket::from(socket);
    // A read timeout lets the loop notice Ctrl-C even when no datagram arrives.
    let local = prepare_receiver(&socket)?;
    // A socket bound to 0.0.0.0 also gets broadcasts and multicast, which must not be
    // answered; the kernel says where each datagram was sent only when asked.
    let want_destination = local.ip().is_unspecified() || config.show_header;
    if want_destination {
        common::dest::enable(&socket)?;
    }
    announce(config, local);
    out.listening(local).map_err(Error::stdout)?;

    // Step 3, recvfrom() and sendto() in a loop: Python's
    //     data, addr = sock.recvfrom(1024)
    //     sock.sendto(data, addr)
    // One extra byte of buffer tells a datagram that fits exactly from one that was cut:
    // like Python's recvfrom, std's recv_from drops the rest of a long datagram silently.
    let mut buf = vec![0u8; config.buffer_size + 1];
    let mut stats = Stats {
        local: Some(local),
        limiter: config.rate_limit.map(Limiter::new),
        ..Stats::default()
    };
    let mut faults = config.faults.is_active().then(|| Faults::new(config.faults));
    if let Some(n) = config.batch {
        batched(&socket, n, config, shutdown, out, &mut stats)?;
    }
    while config.batch.is_none()
        && !shutdown.is_triggered()
        && !out.is_closed()
        && config.count.is_none_or(|n| stats.summary.received < n)
    {
        if let Some(faults) = &mut faults {
            // Datagrams leave the simulated network when due; the wait for the next
            // datagram is cut short so a delayed one is answered on time.
            let now = Instant::now();
            for d in faults.take_due(now) {
                answer(&socket, config, out, &mut stats, &d.data, d.peer, d.to, false, d.note)?;
            }
            socket
                .set_read_timeout(Some(faults.read_timeout(now, POLL_INTERVAL)))
                .map_err(|e| Error::io("cannot set a read timeout", &e))?;
        }
        let received = if want_destination {
            // recvmsg: the same, plus the address the datagram was sent to (IP_PKTINFO).
            common::dest::recv(&socket, &mut buf)
        } else {
            // The chapter's recvfrom: the data and who sent it.
            socket.recv_from(&mut buf).map(|(len, peer)| Arrival::new(len, peer))
        };
        let Arrival { len, peer, to, .. } = match received {
            Ok(got) => got,
            Err(e) if is_wake_up(&e) => continue,
            Err(e) if is_earlier_send_error(&e) => {
                log::debug!(
                    "an earlier reply was refused by its peer: {}",
                    common::error::describe(&e)
                );
                continue;
            }
            Err(e) => return Err(Error::io(format!("receiving on {local} failed"), &e)),
        };
        let truncated = len > config.buffer_size;
        let data = &buf[..len.min(config.buffer_size)];
        stats.record(peer, data.len(), truncated);
        match &mut faults {
            Some(faults) => faults.arrive_to(Instant::now(), data, peer, to),
            None => answer(&socket, config, out, &mut stats, data, peer, to, truncated, None)?,
        }
    }

    // After the last counted datagram, what is still inside the simulated network (delayed
    // or held back) is delivered when due, unless a stop was asked for.
    if let Some(faults) = &mut faults {
        while let Some(due) = faults.next_due() {
            if shutdown.sleep(due.saturating_duration_since(Instant::now())) || out.is_closed() {
                break;
            }
            for d in faults.take_due(Instant::now()) {
                answer(&socket, config, out, &mut stats, &d.data, d.peer, d.to, false, d.note)?;
            }
        }
    }

    // Step 4, close(): Python's `sock.close()`. In Rust the socket closes when dropped.
    let kernel_drops = common::kernel::drops(&socket);
    drop(socket);
    Ok(Summary {
        local: Some(local),
        faults: faults.map(|f| f.counts()),
        kernel_drops,
        ..stats.summary
    })
}

/// Prints a datagram and sends its reply: the `sendto()` half of step 3.
#[allow(clippy::too_many_arguments)]
fn answer(
    socket: &UdpSocket,
    config: &Config,
    out: &Output,
    stats: &mut Stats,
    data: &[u8],
    peer: SocketAddr,
    to: Option<Destination>,
    truncated: bool,
    note: Option<&str>,
) -> Result<()> {
    if let Some(reply) = show(config, out, stats, data, peer, to, truncated, note)? {
        match socket.send_to(reply, peer) {
            Ok(_) => stats.summary.replied += 1,
            // A reply that cannot go out (full send buffer, unreachable peer) is lost,
            // as any UDP datagram may be; the server carries on.
            Err(e) => log::warn!("reply to {peer} not sent: {}", common::error::describe(&e)),
        }
    }
    Ok(())
}

/// Prints a datagram and says what to send back: `None` for no reply, for a datagram
/// refused for safety (see [`refusal`]) or for a source over its rate limit. Shared by the
/// plain and the batched loop.
#[allow(clippy::too_many_arguments)]
pub(crate) fn show<'a>(
    config: &'a Config,
    out: &Output,
    stats: &mut Stats,
    data: &'a [u8],
    peer: SocketAddr,
    to: Option<Destination>,
    truncated: bool,
    note: Option<&str>,
) -> Result<Option<&'a [u8]>> {
    let refused = stats.refuse(peer, to);
    let mut reply = match refused {
        Some(_) => None,
        None => reply_for(&config.reply, data),
    };
    let mut note = refused.map(|_| "refused: not answered").or(note);
    if reply.is_some() && !stats.allow(peer) {
        reply = None;
        note = Some("rate-limited: not answered");
    }
    let header = match (config.show_header, truncated, stats.local) {
        (true, false, Some(local)) => UdpHeader::received(peer, to, local, data),
        _ => None,
    };
    out.received(&Datagram {
        truncated,
        note,
        header,
        ..Datagram::new(peer, data)
    })
    .map_err(Error::stdout)?;
    Ok(reply)
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

/// `--batch`: the same loop, N datagrams per system call (see the `batch` module).
#[cfg(target_os = "linux")]
fn batched(
    socket: &UdpSocket,
    n: usize,
    config: &Config,
    shutdown: &Shutdown,
    out: &Output,
    stats: &mut Stats,
) -> Result<()> {
    if config.faults.is_active() {
        return Err(Error::Usage(
            "--batch cannot be combined with --drop, --duplicate, --delay or --reorder".into(),
        ));
    }
    if !(1..=batch::MAX_BATCH).contains(&n) {
        return Err(Error::Usage(format!("--batch {n}: use 1 to {}", batch::MAX_BATCH)));
    }
    log::info!("batched: up to {n} datagrams per recvmmsg/sendmmsg call");
    batch::serve(socket, n, config, shutdown, out, stats)
}

#[cfg(not(target_os = "linux"))]
fn batched(_: &UdpSocket, _: usize, _: &Config, _: &Shutdown, _: &Output, _: &mut Stats) -> Result<()> {
    Err(Error::Usage("--batch needs Linux (recvmmsg/sendmmsg)".into()))
}

/// Why a datagram from `peer` must not be answered, if it must not.
///
/// An echo server that answers another echo server, a chargen server (CVE-1999-0103) or
/// itself starts a loop that never ends, and an attacker needs only one forged datagram to
/// start it. So no reply goes to source port 0 (not a real sender), to the well-known ports
/// below 1024 (echo 7, chargen 19, DNS 53…: servers, not clients), or to this server's own
/// address.
pub fn refusal(peer: SocketAddr, local: SocketAddr) -> Option<&'static str> {
    if peer.port() == 0 {
        return Some("source port 0 is not a real sender");
    }
    if peer.port() < 1024 {
        return Some("a well-known source port (a service such as echo or chargen could loop with us)");
    }
    let own_ip = peer.ip() == local.ip() || (local.ip().is_unspecified() && peer.ip().is_loopback());
    if peer.port() == local.port() && own_ip {
        return Some("it comes from this server's own address (a reply would loop forever)");
    }
    None
}

/// The reply to `request`, or `None` for no reply.
///
/// A reply is never longer than its request: a UDP server that answers a small datagram
/// with a large one can be abused to flood a third party whose address was forged as the
/// sender (a reflection attack), so a fixed `--reply` text is cut to the request's length.
pub fn reply_for<'a>(reply: &'a Reply, request: &'a [u8]) -> Option<&'a [u8]> {
    match reply {
        Reply::Echo => Some(request),
        Reply::None => None,
        Reply::Text(text) => Some(&text[..text.len().min(request.len())]),
    }
}

/// Distinct peers remembered for the `peers` count; a flood of forged sources cannot make
/// the set grow past this (about 0.5 MB), and the count then reads "at least".
pub const MAX_PEERS: usize = 10_000;

#[derive(Default)]
pub(crate) struct Stats {
    summary: Summary,
    /// Per-source reply budgets (`--rate-limit`).
    limiter: Option<Limiter>,
    peers: HashSet<SocketAddr>,
    /// The previous sender: a burst from one peer costs one comparison, not a hash each.
    last_peer: Option<SocketAddr>,
    /// The server's own address, for [`refusal`].
    local: Option<SocketAddr>,
    /// Sources already warned about, so a flood of refused datagrams is one warning each.
    warned: HashSet<SocketAddr>,
}

/// Sources remembered for "warned once"; past this many, new ones are not warned about.
const MAX_WARNED: usize = 1024;

impl Stats {
    /// Whether a datagram from `peer` must go unanswered, counting and warning (once per
    /// source) if so.
    pub(crate) fn refuse(&mut self, peer: SocketAddr, to: Option<Destination>) -> Option<&'static str> {
        let why = match to {
            Some(d) if d.is_broadcast_or_multicast() => {
                "it was sent to a broadcast or multicast address (every server answering would flood its sender)"
            }
            _ => refusal(peer, self.local?)?,
        };
        self.summary.refused += 1;
        if self.warned.len() < MAX_WARNED && self.warned.insert(peer) {
            log::warn!("not answering {peer}: {why}");
        }
        Some(why)
    }

    /// Whether `peer` is within its rate limit; counts it if not.
    pub(crate) fn allow(&mut self, peer: SocketAddr) -> bool {
        let Some(limiter) = &mut self.limiter else {
            return true;
        };
        let allowed = limiter.allow(peer.ip(), Instant::now());
        self.summary.rate_limited += u64::from(!allowed);
        allowed
    }

    pub(crate) fn record(&mut self, peer: SocketAddr, len: usize, truncated: bool) {
        let s = &mut self.summary;
        s.received += 1;
        s.bytes += len as u64;
        s.truncated += u64::from(truncated);
        if self.last_peer != Some(peer) {
            self.last_peer = Some(peer);
            if self.peers.len() < MAX_PEERS && self.peers.insert(peer) {
                s.peers += 1;
            }
        }
    }
}

/// The rate limit when `--rate-limit` is not given: none on loopback (only this machine
/// can send, and floods are what a learner measures), [`ratelimit::DEFAULT_PER_SECOND`]
/// when other machines can reach the server, since they can forge a victim's address.
pub fn default_rate_limit(bind: SocketAddr) -> Option<RateLimit> {
    (!bind.ip().is_loopback()).then(|| RateLimit::new(ratelimit::DEFAULT_PER_SECOND))
}

/// Start-up logs: who can reach the server, and what the reply does.
fn announce(config: &Config, local: SocketAddr) {
    if local.ip().is_loopback() {
        log::info!(
            "only programs on this machine can reach {local}; to accept datagrams from other machines use --bind 0.0.0.0:{}",
            local.port()
        );
        if let Some(l) = config.rate_limit {
            log::info!(
                "replies are limited to {}/s per source (burst {})",
                l.per_second,
                l.burst
            );
        }
    } else {
        let limit = match config.rate_limit {
            Some(l) => format!(
                "replies are limited to {}/s per source (burst {}; --rate-limit)",
                l.per_second, l.burst
            ),
            None => {
                "replies are NOT rate-limited (--rate-limit off), so forged datagrams could aim them at others".into()
            }
        };
        log::warn!(
            "other machines can reach this server at port {} (mind your firewall); {limit}",
            local.port()
        );
    }
    match &config.reply {
        Reply::Echo => log::info!("echoing every datagram back to its sender"),
        Reply::None => log::info!("printing datagrams without replying (--reply none)"),
        Reply::Text(text) => log::info!(
            "replying with a fixed {}-byte text, cut to each request's length so a reply is never longer than its request",
            text.len()
        ),
    }
}

fn bind_error(addr: SocketAddr, err: &std::io::Error) -> Error {
    let hint = match err.kind() {
        std::io::ErrorKind::AddrInUse => format!(
            " (is another server running? try another port, e.g. --bind {}:0 for any free one)",
            addr.ip()
        ),
        std::io::ErrorKind::AddrNotAvailable => {
            " (that address is not one of this machine's; try 127.0.0.1 or 0.0.0.0)".into()
        }
        std::io::ErrorKind::PermissionDenied => " (ports below 1024 need root; try a port above 1023)".into(),
        _ => String::new(),
    };
    Error::Runtime(format!("cannot bind {addr}: {}{hint}", common::error::describe(err)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn loops_are_refused_and_clients_are_not() {
        let local: SocketAddr = "127.0.0.1:8888".parse().unwrap();
        for peer in [
            "127.0.0.1:0",
            "127.0.0.1:7",
            "127.0.0.1:19",
            "10.0.0.1:1023",
            "127.0.0.1:8888",
        ] {
            assert!(refusal(peer.parse().unwrap(), local).is_some(), "{peer}");
        }
        for peer in ["127.0.0.1:1024", "127.0.0.1:54321", "10.0.0.1:8888", "127.0.0.2:8888"] {
            assert_eq!(refusal(peer.parse().unwrap(), local), None, "{peer}");
        }
        let any: SocketAddr = "0.0.0.0:8888".parse().unwrap();
        assert!(
            refusal("127.0.0.1:8888".parse().unwrap(), any).is_some(),
            "own port on loopback"
        );
        assert_eq!(refusal("10.0.0.1:8888".parse().unwrap(), any), None);
    }
}
