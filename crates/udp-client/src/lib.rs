//! `udp-client`: the chapter's UDP client in three steps — create a socket, send and
//! receive, close. It never binds a port: the OS picks one, and the client shows which.
//!
//! ```sh
//! cargo run -p udp-server                      # terminal 1
//! cargo run -p udp-client -- hello             # terminal 2: one datagram, prints the echo
//! cargo run -p udp-client                      # interactive: each line you type is a datagram
//! cargo run -p udp-client -- --count 10        # ping: RTT per reply, loss, a summary
//! ```
//!
//! Caveats:
//! - UDP does not tell the sender whether anyone received a datagram. The client uses
//!   `connect()` (which sends nothing for UDP) so that the kernel reports an ICMP "port
//!   unreachable" as an error, and says "no one is listening" at once instead of waiting.
//! - A connected socket also drops datagrams from any other address, so a reply from a
//!   multi-homed server that answers from another of its addresses is never seen.

// No unsafe code: nix and jiff make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod discover;
mod file;
mod graph;
mod ping;
mod progress;
mod repeat;
mod report;
pub mod stats;

use std::collections::VecDeque;
use std::io::{self, BufRead};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::checksum::Checksum;
use common::codec::Encoding;
use common::duration::display;
use common::output::{Datagram, Output, OutputOptions, plural};
use common::save::Save;
use common::shutdown::{POLL_INTERVAL, Shutdown, is_wake_up};
use common::{Error, Result};
use socket2::{Domain, Protocol, Socket, Type};

pub use ping::PingSummary;

/// Where the client sends when no TARGET is given: the default `udp-server`.
pub const DEFAULT_TARGET: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8888));
/// How long to wait for a reply (one-shot, ping, after end of input).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// In a flood, a datagram not echoed within this long counts as lost (unless `--timeout`).
pub const DEFAULT_FLOOD_TIMEOUT: Duration = Duration::from_millis(200);
/// Time between pings.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Datagrams in flight at once in a flood (`--interval 0`).
pub const DEFAULT_WINDOW: u16 = 64;
/// Receive buffer: larger than any UDP payload, so a reply is never cut.
const RECV_BUFFER: usize = common::DEFAULT_BUFFER_SIZE;

/// Everything `run` needs; `main` builds it from the command line.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to send.
    pub target: SocketAddr,
    /// The datagram to send; `None` reads lines from the input (interactive).
    pub message: Option<Vec<u8>>,
    /// How long to wait for a reply; `None` for the mode's default.
    pub timeout: Option<Duration>,
    /// Send without waiting for any reply.
    pub no_reply: bool,
    /// Ping mode: send this many sequence-numbered datagrams.
    pub count: Option<u64>,
    /// Ping mode: time between sends; zero floods with `window` datagrams in flight.
    pub interval: Duration,
    /// Flood: the most datagrams in flight at once.
    pub window: usize,
    /// One-shot: resend this many times when no reply comes (stop-and-wait).
    pub retries: u32,
    /// How replies are printed.
    pub output: OutputOptions,
    /// Bind this local address before sending (`--bind`): NetAssist's "local port", `nc -p`.
    pub bind: Option<SocketAddr>,
    /// How typed lines become datagrams: escapes, line ends, check bytes.
    pub typing: Typing,
    /// Repeat mode: send the exact MESSAGE this many times (`--repeat`).
    pub repeat: Option<u64>,
    /// File mode: send this file as consecutive datagrams (`--file`).
    pub file: Option<std::path::PathBuf>,
    /// File mode: the most bytes per datagram (`--chunk`).
    pub chunk: usize,
    /// Append every reply's bytes to this file (`--save`).
    pub save: Option<std::path::PathBuf>,
    /// Send once to a broadcast address or multicast group and list every reply
    /// (`--broadcast`: device discovery).
    pub broadcast: bool,
    /// Ping and flood: a report line every so often (`--report-every`).
    pub report_every: Option<Duration>,
    /// Ping: draw a bar per reply on a terminal (`--graph`).
    pub graph: bool,
}

/// A datagram of one Ethernet frame: 1500 (MTU) − 20 (IPv4 header) − 8 (UDP header).
pub const DEFAULT_CHUNK: usize = 1472;

/// How typed text becomes a datagram, as NetAssist and device protocols want it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Typing {
    /// `\r \n \t \0 \\ \xNN` become those bytes (`--escapes`).
    pub escapes: bool,
    /// Every message ends with `\r\n` (`-C/--crlf`, as `nc -C`): AT commands want it.
    pub crlf: bool,
    /// Check bytes appended to what is sent and verified on what arrives (`--checksum`).
    pub checksum: Option<Checksum>,
}

impl Typing {
    /// The datagram for typed bytes: encoded (UTF-8 goes out byte for byte unless escapes
    /// are on), then `\r\n`, then the check bytes.
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad escape, bad hex, or a character the encoding lacks.
    pub fn frame(&self, encoding: Encoding, typed: &[u8]) -> Result<Vec<u8>> {
        let mut bytes = match (encoding, self.escapes) {
            (Encoding::Utf8, false) => typed.to_vec(),
            _ => encoding.encode_typed(&String::from_utf8_lossy(typed), self.escapes)?,
        };
        if self.crlf {
            bytes.extend_from_slice(b"\r\n");
        }
        Ok(match self.checksum {
            Some(c) => c.append(bytes),
            None => bytes,
        })
    }
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target: DEFAULT_TARGET,
            message: None,
            timeout: None,
            no_reply: false,
            count: None,
            interval: DEFAULT_INTERVAL,
            window: usize::from(DEFAULT_WINDOW),
            retries: 0,
            output: OutputOptions::default(),
            bind: None,
            typing: Typing::default(),
            repeat: None,
            file: None,
            chunk: DEFAULT_CHUNK,
            save: None,
            broadcast: false,
            report_every: None,
            graph: false,
        }
    }
}

/// What a run did, by mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Summary {
    /// One datagram sent; `reply` is false with `--no-reply` or after a stop request.
    OneShot {
        /// Whether a reply arrived.
        reply: bool,
        /// How many resends it took.
        retries: u32,
    },
    /// Lines sent, datagrams received.
    Interactive {
        /// Datagrams sent (one per line).
        sent: u64,
        /// Datagrams received from the target.
        received: u64,
    },
    /// The ping statistics.
    Ping(PingSummary),
    /// The same message sent again and again.
    Repeat {
        /// Datagrams sent.
        sent: u64,
        /// Replies received.
        received: u64,
        /// Whether replies were awaited (not with `--no-reply`).
        expect_replies: bool,
    },
    /// A file sent in chunks.
    File(file::FileSummary),
    /// One datagram to many (`--broadcast`), and who answered.
    Discovery {
        /// Replies received.
        replies: u64,
        /// Distinct addresses they came from.
        responders: u64,
        /// Whether the run was stopped by Ctrl-C or SIGTERM.
        stopped: bool,
    },
}

impl Summary {
    /// The summary text (stderr; empty for a one-shot run that needed no resend, whose
    /// output is the reply itself) and JSON fields (every mode ends `--json` with them).
    pub fn report(&self) -> Option<(String, serde_json::Value)> {
        match self {
            // A one-shot's output is its reply; a summary line only says how many resends it took.
            Summary::OneShot { reply, retries: 0 } => Some((
                String::new(),
                serde_json::json!({"sent": 1, "retries": 0, "reply": reply}),
            )),
            Summary::OneShot { reply, retries } => Some((
                format!(
                    "udp-client: {} after {} ({})",
                    if *reply { "reply" } else { "stopped" },
                    if *retries == 1 {
                        "1 retry".to_string()
                    } else {
                        format!("{retries} retries")
                    },
                    plural(u64::from(retries + 1), "send")
                ),
                serde_json::json!({"sent": retries + 1, "retries": retries, "reply": reply}),
            )),
            Summary::Interactive { sent, received } => Some((
                format!("udp-client: sent {}, received {received}", plural(*sent, "datagram")),
                serde_json::json!({"sent": sent, "received": received}),
            )),
            Summary::Ping(p) => Some((p.to_text(), p.to_json())),
            Summary::Repeat { sent, received, .. } => Some((
                format!(
                    "udp-client: sent {}, received {received}, lost {}",
                    plural(*sent, "datagram"),
                    sent.saturating_sub(*received)
                ),
                serde_json::json!({"sent": sent, "received": received, "lost": sent.saturating_sub(*received)}),
            )),
            Summary::File(f) => Some((f.to_text(), f.to_json())),
            Summary::Discovery {
                replies, responders, ..
            } => Some((
                discover::text(*replies, *responders),
                serde_json::json!({"replies": replies, "responders": responders}),
            )),
        }
    }

    /// The exit rule: a run that waited for replies and got none (and was not stopped)
    /// failed; see `no_reply`.
    ///
    /// # Errors
    /// [`Error::Runtime`] saying no reply came.
    pub fn check(&self, target: SocketAddr) -> Result<()> {
        match self {
            Summary::Ping(p) => p.check(),
            Summary::Repeat {
                sent,
                received: 0,
                expect_replies: true,
            } if *sent > 0 => Err(no_reply(target, &format!(" to any of {sent} datagrams"))),
            Summary::Discovery {
                replies: 0,
                stopped: false,
                ..
            } => Err(no_reply(target, ": no responder answered")),
            _ => Ok(()),
        }
    }
}

/// Sends to `config.target` as the mode asks, printing what comes back. `input` feeds the
/// interactive mode (stdin in `main`, a buffer in tests).
///
/// # Errors
/// [`Error::Usage`] for a payload over the UDP limit or a target port of 0;
/// [`Error::Runtime`] when nobody listens at the target (one-shot), no reply comes in time,
/// or the socket fails.
///
/// # Examples
/// ```
/// use common::{output::OutputOptions, shutdown::Shutdown, testkit};
///
/// // A peer that echoes one datagram, as the chapter's server does.
/// let peer = testkit::local_socket(testkit::WAIT).unwrap();
/// let config = udp_client::Config {
///     target: peer.local_addr().unwrap(),
///     message: Some(b"hello".to_vec()),
///     ..Default::default()
/// };
/// let client = std::thread::spawn(move || {
///     let (out, _lines) = testkit::capture(OutputOptions::default());
///     udp_client::run(&config, &Shutdown::new(), &out, Box::new(std::io::empty()))
/// });
/// let (data, from) = testkit::recv(&peer).unwrap();
/// peer.send_to(&data, from).unwrap();
/// assert_eq!(data, b"hello");
/// let summary = client.join().unwrap().unwrap();
/// assert_eq!(summary, udp_client::Summary::OneShot { reply: true, retries: 0 });
/// ```
pub fn run(config: &Config, shutdown: &Shutdown, out: &Output, input: Box<dyn BufRead + Send>) -> Result<Summary> {
    let (mut save, file) = prepare(config)?;
    let target = config.target;

    // Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`.
    // No bind(): like the chapter's client, we let the OS choose a free port (unless --bind).
    log::debug!(
        "step 1, socket(): a UDP socket for {}",
        if target.is_ipv4() { "IPv4" } else { "IPv6" }
    );
    let socket = Socket::new(Domain::for_address(target), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io("cannot create a UDP socket", &e))?;
    if let Some(local) = config.bind {
        socket
            .bind(&local.into())
            .map_err(|e| common::error::bind_error(local, &e))?;
    }

    let summary = if config.broadcast {
        // One datagram to many, and every reply: sendto() and recvfrom() with no connect.
        discover::run(socket, config, shutdown, out, &mut save)?
    } else {
        let (socket, local) = connect(socket, config)?;
        // Step 2, sendto() and recvfrom(): Python's `sock.sendto(data, addr)` and
        // `sock.recvfrom(1024)`. On a connected socket `send` is `sendto` to the connected peer.
        log::debug!("step 2, sendto() and recvfrom(): datagrams to and from {target}");
        let summary = talk(&socket, config, file, shutdown, out, input, &mut save)?;
        // Step 3, close(): Python's `sock.close()`. In Rust the socket closes when dropped.
        log::debug!("step 3, close(): port {} is free again", local.port());
        drop(socket);
        summary
    };
    if let Some(save) = save {
        log::info!("{}", save.finish()?);
    }
    Ok(summary)
}

/// What must hold before any socket is made: a real destination, a datagram within the UDP
/// limit, a `--save` file that can be written and a `--file` that can be read, and no
/// broadcast or multicast target without `--broadcast`.
fn prepare(config: &Config) -> Result<(Option<Save>, Option<Vec<u8>>)> {
    let target = config.target;
    if target.port() == 0 {
        return Err(Error::Usage(format!(
            "cannot send to {target}: port 0 is not a destination"
        )));
    }
    if !config.broadcast && discover::is_to_many(target) {
        return Err(Error::Usage(format!(
            "{target} reaches many hosts: add --broadcast to send to every one of them and list the replies (a broadcast needs SO_BROADCAST, which --broadcast sets; without it the OS refuses with EACCES, 'permission denied', so that nobody floods a network by mistake)"
        )));
    }
    if let Some(message) = &config.message {
        check_size(message.len() + ping::header_len(config), target)?;
    }
    let save = config.save.as_deref().map(Save::open).transpose()?;
    let file = config
        .file
        .as_deref()
        .map(|path| file::read(path, config))
        .transpose()?;
    Ok((save, file))
}

/// connect() is not in the chapter's client, and for UDP it sends nothing. It fixes the
/// peer, so the OS picks our port now (we can show it), drops datagrams from anyone else,
/// and reports an ICMP "port unreachable" on the next receive: the only way for a UDP
/// sender to learn promptly that nobody is listening.
fn connect(socket: Socket, config: &Config) -> Result<(UdpSocket, SocketAddr)> {
    let target = config.target;
    socket.connect(&target.into()).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => Error::Usage(format!(
            "cannot send to {target}: it is a broadcast address; add --broadcast (without SO_BROADCAST the OS refuses with EACCES, 'permission denied')"
        )),
        _ => Error::io(format!("cannot send to {target}"), &e),
    })?;
    let socket = UdpSocket::from(socket);
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("cannot read the local address", &e))?;
    match config.bind {
        Some(_) => log::info!("sending to {target} from {local} (bound with --bind)"),
        None => log::info!("sending to {target} from {local} (a port the OS chose; a client need not bind one)"),
    }
    Ok((socket, local))
}

/// The mode the options ask for, on the connected socket.
fn talk(
    socket: &UdpSocket,
    config: &Config,
    file: Option<Vec<u8>>,
    shutdown: &Shutdown,
    out: &Output,
    input: Box<dyn BufRead + Send>,
    save: &mut Option<Save>,
) -> Result<Summary> {
    Ok(match (&file, config.repeat, &config.message, config.count) {
        (Some(data), ..) => Summary::File(file::send_file(socket, config, data, shutdown, save)?),
        (None, Some(_), Some(message), _) => repeat::run(socket, config, message, shutdown, out, save)?,
        (None, _, _, Some(count)) => Summary::Ping(ping::run(socket, config, count, shutdown, out)?),
        (None, _, Some(message), None) => one_shot(socket, config, message, shutdown, out, save)?,
        (None, _, None, None) => interactive(socket, config, shutdown, out, input, save)?,
    })
}

/// Send one datagram, wait for one reply; resend up to `retries` times (stop-and-wait,
/// the simplest way an application adds the reliability UDP lacks).
fn one_shot(
    socket: &UdpSocket,
    config: &Config,
    message: &[u8],
    shutdown: &Shutdown,
    out: &Output,
    save: &mut Option<Save>,
) -> Result<Summary> {
    let target = config.target;
    let timeout = config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut buf = vec![0u8; RECV_BUFFER];
    for attempt in 0..=config.retries {
        if attempt > 0 {
            log::warn!(
                "no reply within {}; sending again (retry {attempt} of {})",
                display(timeout),
                config.retries
            );
        }
        let sent_at = Instant::now();
        send(socket, message, target)?;
        out.sent(target, message.len()).map_err(Error::stdout)?;
        if config.no_reply {
            return Ok(Summary::OneShot {
                reply: false,
                retries: attempt,
            });
        }
        match recv_until(socket, &mut buf, sent_at + timeout, shutdown) {
            Ok(Some((len, peer))) => {
                show_reply(out, config, save, peer, &buf[..len], Some(sent_at.elapsed()))?;
                return Ok(Summary::OneShot {
                    reply: true,
                    retries: attempt,
                });
            }
            Ok(None) if shutdown.is_triggered() => {
                return Ok(Summary::OneShot {
                    reply: false,
                    retries: attempt,
                });
            }
            Ok(None) => {}
            Err(e) if common::error::is_port_unreachable(&e) => return Err(nobody_listening(target)),
            Err(e) => return Err(Error::io(format!("receiving from {target} failed"), &e)),
        }
    }
    let tries = if config.retries > 0 {
        format!(" within {} ({} tries)", display(timeout), config.retries + 1)
    } else {
        format!(" within {}", display(timeout))
    };
    Err(no_reply(target, &tries))
}

/// The one exit rule for "no reply", in every mode: a run that waited for replies and got
/// none, without being stopped, failed (exit 1) — UDP does not say whether anything
/// arrived, so silence is the only answer there is. `waited` says how long or how often.
pub(crate) fn no_reply(target: SocketAddr, waited: &str) -> Error {
    Error::Runtime(format!(
        "no reply from {target}{waited}: the datagram or its reply may be lost, or the peer never answers (try --timeout 5s, --retries 3, or --no-reply)"
    ))
}

/// Each input line is one datagram; whatever the target sends is printed as it arrives,
/// like the chapter's chat program and NetAssist. Input is read on a thread of its own, so
/// this loop keeps receiving (and notices Ctrl-C) while the user types.
fn interactive(
    socket: &UdpSocket,
    config: &Config,
    shutdown: &Shutdown,
    out: &Output,
    input: Box<dyn BufRead + Send>,
    save: &mut Option<Save>,
) -> Result<Summary> {
    log::info!("each line you type is sent as one datagram; end with Ctrl-D, stop with Ctrl-C");
    let target = config.target;
    let lines = Lines::spawn(socket, config, out, input)?;
    let timeout = if config.no_reply {
        Duration::ZERO
    } else {
        config.timeout.unwrap_or(DEFAULT_TIMEOUT)
    };
    let mut buf = vec![0u8; RECV_BUFFER];
    let mut received = 0u64;
    let mut input_ended_at: Option<Instant> = None;
    let mut warned_refused = false;
    while !shutdown.is_triggered() && !out.is_closed() {
        if input_ended_at.is_none() && lines.ended() {
            input_ended_at = Some(Instant::now());
        }
        // After the last line, wait for stragglers: until every line has come back (an
        // echo server is done), or until the timeout (any other peer).
        if input_ended_at.is_some_and(|ended| lines.all_echoed() || ended.elapsed() >= timeout) {
            break;
        }
        match recv_until(socket, &mut buf, Instant::now() + POLL_INTERVAL, shutdown) {
            Ok(Some((len, peer))) => {
                received += 1;
                warned_refused = false;
                lines.echoed(&buf[..len]);
                show_arrival(out, config, save, peer, &buf[..len])?;
            }
            Ok(None) => {}
            Err(e) if common::error::is_port_unreachable(&e) => {
                if !warned_refused {
                    log::warn!(
                        "{}; what you send is lost until a server runs there",
                        nobody_listening(target)
                    );
                    warned_refused = true;
                }
            }
            Err(e) => return Err(Error::io(format!("receiving from {target} failed"), &e)),
        }
    }
    Ok(Summary::Interactive {
        sent: lines.sent.load(Ordering::SeqCst),
        received,
    })
}

/// Prints a reply (with its round trip and check bytes) and saves it with `--save`.
pub(crate) fn show_reply(
    out: &Output,
    config: &Config,
    save: &mut Option<Save>,
    peer: SocketAddr,
    data: &[u8],
    rtt: Option<Duration>,
) -> Result<()> {
    let check = config.typing.checksum.map(|c| c.check(data));
    let reply = Datagram {
        rtt,
        check: check.as_ref(),
        ..Datagram::new(peer, data)
    };
    out.reply(&reply).map_err(Error::stdout)?;
    save.as_mut().map_or(Ok(()), |s| s.write(data))
}

/// Prints a datagram that arrived in the interactive mode (an event `recv`, not `reply`).
fn show_arrival(out: &Output, config: &Config, save: &mut Option<Save>, peer: SocketAddr, data: &[u8]) -> Result<()> {
    let check = config.typing.checksum.map(|c| c.check(data));
    out.received(&Datagram {
        check: check.as_ref(),
        ..Datagram::new(peer, data)
    })
    .map_err(Error::stdout)?;
    save.as_mut().map_or(Ok(()), |s| s.write(data))
}

/// Lines sent whose echo has not come back yet, newest last; only the latest few are kept.
type Unechoed = Mutex<VecDeque<Vec<u8>>>;
const UNECHOED_KEPT: usize = 1024;

fn lock(unechoed: &Unechoed) -> std::sync::MutexGuard<'_, VecDeque<Vec<u8>>> {
    unechoed.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The input side of the interactive mode, shared with its thread.
struct Lines {
    sent: Arc<AtomicU64>,
    unechoed: Arc<Unechoed>,
    done: mpsc::Receiver<()>,
}

impl Lines {
    /// Starts the thread that sends each input line.
    fn spawn(socket: &UdpSocket, config: &Config, out: &Output, input: Box<dyn BufRead + Send>) -> Result<Self> {
        let sender = socket
            .try_clone()
            .map_err(|e| Error::io("cannot share the socket", &e))?;
        let lines = Lines {
            sent: Arc::new(AtomicU64::new(0)),
            unechoed: Arc::new(Mutex::new(VecDeque::new())),
            done: mpsc::channel().1,
        };
        let (done_tx, done) = mpsc::channel::<()>();
        let (sent, unechoed, out) = (Arc::clone(&lines.sent), Arc::clone(&lines.unechoed), out.clone());
        let how = (config.output.encoding, config.typing);
        let target = config.target;
        // Not joined: on Ctrl-C it may be blocked reading a terminal, and exiting ends it.
        thread::spawn(move || {
            send_lines(input, &sender, target, how, &out, &sent, &unechoed);
            let _ = done_tx.send(());
        });
        Ok(Lines { done, ..lines })
    }

    /// Whether the input has ended (EOF or a read error).
    fn ended(&self) -> bool {
        self.done.try_recv().is_ok()
    }

    /// Whether every line sent has come back.
    fn all_echoed(&self) -> bool {
        lock(&self.unechoed).is_empty()
    }

    /// A datagram arrived: if it is the echo of a line, that line is no longer awaited.
    fn echoed(&self, data: &[u8]) {
        let mut waiting = lock(&self.unechoed);
        if let Some(i) = waiting.iter().position(|sent: &Vec<u8>| sent[..] == *data) {
            waiting.remove(i);
        }
    }
}

/// The input thread of the interactive mode: one datagram per line, without its newline.
fn send_lines(
    mut input: Box<dyn BufRead + Send>,
    socket: &UdpSocket,
    target: SocketAddr,
    (encoding, typing): (Encoding, Typing),
    out: &Output,
    sent: &AtomicU64,
    unechoed: &Unechoed,
) {
    let mut line = Vec::new();
    loop {
        line.clear();
        match input.read_until(b'\n', &mut line) {
            Ok(0) => return,
            Ok(_) => {}
            Err(e) => {
                log::error!("cannot read input: {}", common::error::describe(&e));
                return;
            }
        }
        let text = line.strip_suffix(b"\n").unwrap_or(&line);
        let text = text.strip_suffix(b"\r").unwrap_or(text);
        // UTF-8 input goes out byte for byte, even if it is not valid UTF-8.
        let bytes = typing.frame(encoding, text);
        let result = bytes.and_then(|bytes| {
            check_size(bytes.len(), target)?;
            let len = bytes.len();
            {
                // Recorded before sending, so a fast echo always finds its line.
                let mut waiting = lock(unechoed);
                if waiting.len() == UNECHOED_KEPT {
                    waiting.pop_front();
                }
                waiting.push_back(bytes.clone());
            }
            send(socket, &bytes, target)?;
            Ok(len)
        });
        match result {
            Ok(len) => {
                sent.fetch_add(1, Ordering::SeqCst);
                if out.sent(target, len).is_err() || out.is_closed() {
                    return;
                }
            }
            Err(e) => log::warn!("line not sent: {e}"),
        }
    }
}

/// Waits for one datagram until `deadline`, waking every [`POLL_INTERVAL`] to check for a
/// stop request. `Ok(None)`: the deadline passed or a stop was requested.
fn recv_until(
    socket: &UdpSocket,
    buf: &mut [u8],
    deadline: Instant,
    shutdown: &Shutdown,
) -> io::Result<Option<(usize, SocketAddr)>> {
    loop {
        if shutdown.is_triggered() {
            return Ok(None);
        }
        let left = deadline.saturating_duration_since(Instant::now());
        if left.is_zero() {
            return Ok(None);
        }
        socket.set_read_timeout(Some(left.min(POLL_INTERVAL)))?;
        match socket.recv_from(buf) {
            Ok(got) => return Ok(Some(got)),
            Err(e) if is_wake_up(&e) => {}
            Err(e) => return Err(e),
        }
    }
}

/// Sends one datagram on the connected socket.
fn send(socket: &UdpSocket, payload: &[u8], target: SocketAddr) -> Result<()> {
    socket
        .send(payload)
        .map(drop)
        .map_err(|e| send_error(&e, payload.len(), target))
}

/// What a failed send means for the user.
fn send_error(err: &io::Error, len: usize, target: SocketAddr) -> Error {
    if common::error::is_port_unreachable(err) {
        nobody_listening(target)
    } else if common::error::is_message_too_long(err) {
        Error::Usage(format!(
            "cannot send {len} bytes to {target}: message too long for one datagram"
        ))
    } else {
        Error::io(format!("cannot send to {target}"), err)
    }
}

/// A datagram must fit the protocol limit; refuse before the OS does, with the numbers.
fn check_size(len: usize, target: SocketAddr) -> Result<()> {
    let max = common::max_payload(&target);
    if len > max {
        let family = if target.is_ipv4() { "IPv4" } else { "IPv6" };
        return Err(Error::Usage(format!(
            "message is {len} bytes, but a UDP datagram over {family} carries at most {max}; split it or send less"
        )));
    }
    Ok(())
}

fn nobody_listening(target: SocketAddr) -> Error {
    let start = if target.ip().is_loopback() {
        format!("cargo run -p udp-server -- --bind {target}")
    } else {
        format!(
            "udp-server --bind {} on that machine",
            SocketAddr::new([0, 0, 0, 0].into(), target.port())
        )
    };
    Error::Runtime(format!(
        "no one is listening at {target} (the OS reported 'port unreachable'); start a server there ({start}) or check the port"
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Any --file path (existing or not, odd characters and all) is read or refused in one
        /// usage error; and any typed text goes through every framing without a panic.
        #[test]
        fn random_file_paths_and_typed_text_never_panic(path in "[a-z0-9/._ 时-]{0,30}", typed in "[a-zA-Z0-9\\\\xrn 时]{0,20}") {
            let config = Config::default();
            if let Err(e) = file::read(std::path::Path::new(&path), &config) {
                proptest::prop_assert_eq!(e.exit_code(), 2);
            }
            for (escapes, crlf) in [(false, false), (true, true)] {
                let typing = Typing { escapes, crlf, checksum: Some(Checksum::Crc16Modbus) };
                for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
                    let _ = typing.frame(enc, typed.as_bytes());
                }
            }
        }
    }

    /// Windows reports "nobody listening" as WSAECONNRESET (10054) or WSAENETRESET (10052),
    /// Linux and macOS as ECONNREFUSED: every mode says the same one line for all of them.
    #[test]
    fn a_reset_from_windows_means_nobody_is_listening_too() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for err in [
            io::Error::from(io::ErrorKind::ConnectionRefused),
            io::Error::from(io::ErrorKind::ConnectionReset),
            io::Error::from_raw_os_error(10054),
            io::Error::from_raw_os_error(10052),
        ] {
            let said = send_error(&err, 5, target);
            assert_eq!(said, nobody_listening(target), "{err:?}");
            assert_eq!(said.exit_code(), 1);
        }
    }
}
