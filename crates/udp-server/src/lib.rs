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

// No unsafe code: nix and jiff make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

#[cfg(target_os = "linux")]
mod batch;
pub mod ratelimit;
pub mod rules;
mod state;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};

use common::faults::{FaultConfig, FaultCounts};
use common::output::{Output, OutputOptions, plural};
use common::receive::{self, ReceiveOptions};
use common::shutdown::Shutdown;
use common::{Error, Result};
use ratelimit::RateLimit;

use state::ServerState;
pub use state::{MAX_PEERS, refusal, reply_for};

/// Where the server listens when no `--bind` is given: this machine only.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8888));

/// The largest `--batch`: beyond this the kernel gains nothing and memory grows.
pub const MAX_BATCH: u16 = 1024;

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
    /// Verify the check bytes at the end of each datagram (`--checksum`); a fixed reply
    /// carries them already (see `main`), an echo is the request unchanged. Rules match
    /// the request without them, and append them to each reply.
    pub checksum: Option<common::checksum::Checksum>,
    /// Answer requests whose check bytes are wrong too (`--answer-bad-checksum`); a
    /// simulated device (rules or a fixed `--reply`) ignores them otherwise, as a real one does.
    pub answer_bad_checksum: bool,
    /// Append every payload delivered to this file (`--save`).
    pub save: Option<std::path::PathBuf>,
    /// Write every datagram received and every reply sent to this pcap file (`--pcap`).
    pub pcap: Option<std::path::PathBuf>,
    /// `--rule`/`--rules`: replies by what the request says (a device simulator).
    pub rules: rules::Rules,
    /// A fixed or rule reply is cut to this many times the request's length (`--max-reply-ratio`).
    pub max_reply_ratio: f64,
    /// Answer datagrams sent to a broadcast or multicast address (`--answer-broadcasts`).
    pub answer_broadcasts: bool,
    /// Share the port with other servers on this host (`--reuse`).
    pub reuse: bool,
    /// Answer repeats however fast they come (`--no-loop-guard`): a client that sends the
    /// same bytes 1 000 times a second on purpose looks exactly like an echo loop.
    pub no_loop_guard: bool,
    /// The kernel's offloads: GSO for `--batch` replies by default, GRO with `--offload`,
    /// neither with `--no-offload` (see `common::offload`).
    pub offloads: common::offload::Offloads,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: DEFAULT_BIND,
            reply: Reply::Echo,
            buffer_size: common::DEFAULT_BUFFER_SIZE,
            count: None,
            output: OutputOptions::default(),
            faults: FaultConfig::default(),
            recv_buffer: None,
            batch: None,
            rate_limit: None,
            show_header: false,
            checksum: None,
            answer_bad_checksum: false,
            save: None,
            pcap: None,
            rules: rules::Rules::default(),
            max_reply_ratio: 1.0,
            answer_broadcasts: false,
            reuse: false,
            no_loop_guard: false,
            offloads: common::offload::Offloads::default(),
        }
    }
}

impl Config {
    /// How the receive path should set up the socket. The destination of each datagram is
    /// asked for on `0.0.0.0`/`::` (which also receives broadcasts and multicast, never to
    /// be answered), for `--show-header` (the checksum covers it) and for `--pcap` (the
    /// record names the address each datagram was really sent to).
    fn receive_options(&self) -> ReceiveOptions {
        ReceiveOptions {
            bind: self.bind,
            buffer_size: self.buffer_size,
            recv_buffer: self.recv_buffer,
            reuse: self.reuse,
            destination: self.bind.ip().is_unspecified() || self.show_header || self.pcap.is_some(),
            count: self.count,
            faults: self.faults,
            gro: self.offloads.gro,
        }
    }
}

/// What happened during a run: the summary printed on stop. Its JSON is derived: the
/// counters by name, the optional ones only when they apply.
#[derive(Debug, Clone, Default, PartialEq, Eq, serde::Serialize)]
pub struct Summary {
    /// The address the server was bound to (with the real port).
    #[serde(skip)]
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
    /// Echo loops found and broken (each also logged once); their datagrams are in `refused`.
    #[serde(skip_serializing_if = "is_zero")]
    pub loops_broken: u64,
    /// Datagrams not answered because their source was over `--rate-limit`.
    pub rate_limited: u64,
    /// Datagrams whose check bytes were wrong (`--checksum`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_bad: Option<u64>,
    /// Of those, requests a simulated device did not answer (no `--answer-bad-checksum`).
    #[serde(skip_serializing_if = "is_zero")]
    pub checksum_bad_unanswered: u64,
    /// Requests whose answer `--max-reply-ratio` cut (each also marked on its line).
    #[serde(skip_serializing_if = "is_zero")]
    pub replies_cut: u64,
    /// Delayed rule replies dropped because the reply queue held
    /// [`common::faults::MAX_QUEUED_BYTES`] already.
    #[serde(skip_serializing_if = "is_zero")]
    pub reply_queue_full: u64,
    /// Delayed rule replies still waiting when the server stopped: never sent.
    #[serde(rename = "replies_pending_at_stop", skip_serializing_if = "is_zero")]
    pub replies_pending: u64,
    /// Bytes appended to the `--save` file.
    #[serde(rename = "saved_bytes", skip_serializing_if = "Option::is_none")]
    pub saved: Option<u64>,
    /// Each `--rule` and how many requests it answered: `{"RULE": N, …}` in JSON.
    #[serde(skip_serializing_if = "Vec::is_empty", serialize_with = "rules_as_map")]
    pub rules: Vec<(String, u64)>,
    /// What the injected faults did, when any were asked for.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub faults: Option<FaultCounts>,
    /// Datagrams the kernel dropped because the receive queue was full (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_drops: Option<u64>,
    /// Datagrams still in the receive queue at stop, never read (at most
    /// [`MAX_UNREAD_COUNTED`] are counted).
    #[serde(rename = "unread_at_stop", skip_serializing_if = "is_zero")]
    pub unread: u64,
    /// Why the `--save` file stopped being written, if it did (a full disk, a FIFO whose
    /// reader stopped): the summary is printed, then the program exits 1.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub save_error: Option<String>,
}

/// For `skip_serializing_if`: a count that did not happen is left out.
fn is_zero(n: &u64) -> bool {
    *n == 0
}

/// The rules as a JSON object, rule text to count.
fn rules_as_map<S: serde::Serializer>(rules: &[(String, u64)], serializer: S) -> std::result::Result<S::Ok, S::Error> {
    serializer.collect_map(rules.iter().map(|(rule, n)| (rule, n)))
}

impl Summary {
    /// The `{"event":"summary",…}` fields: every counter of the run (as a JSON object, so
    /// the keys come out sorted, as they always have).
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// One line for stderr.
    pub fn to_text(&self) -> String {
        let at_least = if self.peers >= MAX_PEERS as u64 {
            "at least "
        } else {
            ""
        };
        let mut text = format!(
            "udp-server: received {} ({} B) from {at_least}{}, replied {}, truncated {}",
            plural(self.received, "datagram"),
            self.bytes,
            plural(self.peers, "peer"),
            self.replied,
            self.truncated
        );
        if self.refused > 0 {
            text += &format!(", refused {} (loop protection)", self.refused);
        }
        if self.loops_broken > 0 {
            text += &format!(", echo loops broken {}", self.loops_broken);
        }
        if self.rate_limited > 0 {
            text += &format!(", rate-limited {}", self.rate_limited);
        }
        if let Some(bad) = self.checksum_bad {
            text += &format!(", checksum bad {bad}");
        }
        if self.checksum_bad_unanswered > 0 {
            text += &format!(" ({} not answered)", self.checksum_bad_unanswered);
        }
        if self.replies_cut > 0 {
            text += &format!(", replies cut {} (--max-reply-ratio)", self.replies_cut);
        }
        if self.reply_queue_full > 0 {
            text += &format!(", delayed replies dropped {} (reply queue full)", self.reply_queue_full);
        }
        if self.replies_pending > 0 {
            text += &format!(", delayed replies never sent {} (stopped first)", self.replies_pending);
        }
        if let Some(saved) = self.saved {
            text += &format!(", saved {saved} B");
        }
        if let Some(why) = &self.save_error {
            text += &format!(" (then --save failed: {why})");
        }
        if !self.rules.is_empty() {
            let answered: Vec<String> = self
                .rules
                .iter()
                .map(|(r, n)| format!("'{}' {n}", common::error::echo(r)))
                .collect();
            text += &format!("; rules answered: {}", answered.join(", "));
        }
        if let Some(f) = self.faults {
            text += &f.to_text();
        }
        text += &common::kernel::to_text(self.kernel_drops);
        if self.unread > 0 {
            text += &format!("; {} left unread in the receive queue at stop", self.unread);
        }
        text
    }
}

/// Binds, then receives and answers datagrams until `--count` is reached, `shutdown` is
/// triggered or stdout is closed. Prints `listening on ADDR` first.
///
/// # Errors
/// [`Error::Usage`] for a `--batch` this build cannot do; [`Error::Runtime`] when the
/// address cannot be bound or the socket fails.
///
/// # Examples
/// ```
/// use common::output::OutputOptions;
///
/// let config = udp_server::Config { bind: "127.0.0.1:0".parse().unwrap(), count: Some(1), ..Default::default() };
/// let server = testkit::InProcess::start(OutputOptions::default(), move |stop, out| udp_server::run(&config, stop, out));
///
/// let client = testkit::local_socket(testkit::WAIT).unwrap();
/// client.send_to(b"hello", server.addr).unwrap();
/// assert_eq!(testkit::recv(&client).unwrap().0, b"hello");
/// assert_eq!(server.finish().unwrap().received, 1);
/// ```
pub fn run(config: &Config, shutdown: &Shutdown, out: &Output) -> Result<Summary> {
    check_batch(config)?;
    // A rule's reply is built only up to the length it would be cut to.
    let config = &Config {
        rules: config.rules.clone().limit_replies(config.max_reply_ratio),
        ..config.clone()
    };
    let options = config.receive_options();
    // A --save file that cannot be written fails now, before anything is received; a FIFO
    // whose reader stops reading holds the server only until a stop is asked for.
    let save = config.save.as_deref().map(common::save::Save::open).transpose()?;
    let save = save.map(|s| s.stop_on(shutdown));
    let save_status = save.as_ref().map(common::save::Save::status);
    // So does a --pcap file: what crossed the wire, with its IP and UDP headers rebuilt.
    let pcap = config.pcap.as_deref().map(common::pcap::Writer::create).transpose()?;

    // Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`.
    let socket = receive::socket(&options)?;

    // Step 2, bind(): Python's `sock.bind(('127.0.0.1', 8888))`. A server must bind, so that
    // clients know where to send; a client may skip it and let the OS pick a port.
    let mut receiver = receive::bind(socket, &options)?;
    let local = receiver.local();
    announce(config, local);
    out.listening(local).map_err(Error::stdout)?;

    // Step 3, recvfrom() and sendto() in a loop: Python's
    //     data, addr = sock.recvfrom(1024)
    //     sock.sendto(data, addr)
    // `server` prints each datagram and chooses its reply (echo, none, a fixed text), or
    // none at all when answering would be unsafe.
    let mut server = ServerState::new(config, out, local, save).with_pcap(pcap);
    match config.batch {
        // A batch of one is the plain loop: recvmmsg/sendmmsg for one datagram would only
        // add the cost of their bookkeeping.
        None | Some(1) => receiver.each(shutdown, out, &mut server)?,
        Some(n) => batched(&mut receiver, (n, config.offloads.gso), shutdown, out, &mut server)?,
    }

    // What arrived but was never read (the stop came first) is counted, not silently lost:
    // taken out without waiting, up to MAX_UNREAD_COUNTED (a bound on the time a stop takes).
    let unread = receiver.count_unread(MAX_UNREAD_COUNTED);

    // Step 4, close(): Python's `sock.close()`. In Rust the socket closes when dropped.
    let closed = receiver.close();
    let summary = server.finish(closed)?;
    // When writing failed, what was really written (the count above includes what was
    // still buffered at the time).
    let summary = Summary { unread, ..summary };
    let status = save_status.and_then(|s| s.lock().ok().map(|s| s.clone()));
    Ok(match status {
        Some(common::save::SaveStatus {
            failure: Some(why),
            saved,
        }) => Summary {
            saved: Some(saved),
            save_error: Some(why),
            ..summary
        },
        _ => summary,
    })
}

/// The most datagrams `count_unread` takes from the queue: a bound on the time a stop
/// takes, whatever the receive buffer holds.
pub const MAX_UNREAD_COUNTED: u64 = 65_536;

/// `--batch`: the same loop, N datagrams per system call (see the `batch` module).
#[cfg(target_os = "linux")]
fn batched(
    receiver: &mut receive::Receiver,
    (n, gso): (usize, bool),
    shutdown: &Shutdown,
    out: &Output,
    server: &mut ServerState,
) -> Result<()> {
    log::info!("batched: up to {n} datagrams per recvmmsg/sendmmsg call");
    batch::serve(receiver, (n, gso), shutdown, out, server)
}

#[cfg(not(target_os = "linux"))]
fn batched(_: &mut receive::Receiver, _: (usize, bool), _: &Shutdown, _: &Output, _: &mut ServerState) -> Result<()> {
    Err(Error::Usage("--batch needs Linux (recvmmsg/sendmmsg)".into()))
}

/// A `--batch` this build can do, or a usage error saying why not.
fn check_batch(config: &Config) -> Result<()> {
    let Some(n) = config.batch else { return Ok(()) };
    if !cfg!(target_os = "linux") {
        return Err(Error::Usage(
            "--batch needs Linux (recvmmsg/sendmmsg); leave it out: the plain loop works everywhere".into(),
        ));
    }
    if config.faults.is_active() {
        return Err(Error::Usage(
            "--batch cannot be combined with --drop, --duplicate, --delay or --reorder".into(),
        ));
    }
    if config.rules.any_timed() {
        return Err(Error::Usage(
            "--batch sends one reply per request at once: rules with a delay ([200ms]) or several replies (||) need the plain loop; leave out --batch".into(),
        ));
    }
    if !(1..=usize::from(MAX_BATCH)).contains(&n) {
        return Err(Error::Usage(format!("--batch {n}: use 1 to {MAX_BATCH}")));
    }
    Ok(())
}

/// The rate limit when `--rate-limit` is not given: none on loopback (only this machine
/// can send, and floods are what a learner measures), [`ratelimit::DEFAULT_PER_SECOND`]
/// when other machines can reach the server, since they can forge a victim's address.
pub fn default_rate_limit(bind: SocketAddr) -> Option<RateLimit> {
    (!bind.ip().is_loopback()).then(|| RateLimit {
        exempt_loopback: true,
        ..RateLimit::new(ratelimit::DEFAULT_PER_SECOND)
    })
}

/// Start-up logs for `--rule`: which replies will be cut (known for exact matches), and a
/// warning when replies may outgrow requests where other machines can send.
fn announce_rules(config: &Config, local: SocketAddr) {
    let ratio = config.max_reply_ratio;
    for rule in config.rules.iter() {
        let check = config.checksum.map_or(0, |c| c.size());
        let reply = rule.reply_len() + check * rule.datagrams();
        // The request that matches carries its check bytes too (the rule is written without).
        let request = rule.exact_len().map(|len| len + check);
        if let Some(len) = request.filter(|&len| reply > state::allowed(len, ratio)) {
            log::warn!(
                "rule '{}' replies {reply} bytes to a {len}-byte request: cut to {} (raise --max-reply-ratio to send it whole)",
                common::error::echo(&rule.text),
                state::allowed(len, ratio)
            );
        }
    }
    if !config.rules.is_empty() {
        log::info!(
            "answering by {} (first match wins; otherwise --reply)",
            plural(config.rules.len() as u64, "rule")
        );
    }
    if ratio > 1.0 && !local.ip().is_loopback() {
        log::warn!(
            "--max-reply-ratio {ratio}: replies may be {ratio} times their requests, so others can use this server as an amplifier against forged sources; the rate limit stays on"
        );
    }
    if config.answer_broadcasts {
        log::info!(
            "answering datagrams sent to broadcast and multicast addresses too (--answer-broadcasts), within the rate limit"
        );
    }
}

/// Start-up log for `--checksum` on a simulated device: what rules match, and that a
/// frame with wrong check bytes goes unanswered (or not).
fn announce_checksum(config: &Config) {
    let Some(c) = config.checksum.filter(|_| state::simulates(config)) else {
        return;
    };
    let matched = if config.rules.is_empty() {
        String::new()
    } else {
        format!("rules match requests without their {} check bytes; ", c.size())
    };
    let bad = if config.answer_bad_checksum {
        "a request whose check bytes are wrong is answered too (--answer-bad-checksum)"
    } else {
        "a request whose check bytes are wrong is not answered, as a device would not (--answer-bad-checksum answers it)"
    };
    log::info!("{matched}{bad}");
}

/// `0.0.0.0` for an IPv4 address, `::` for an IPv6 one: every interface, same family.
fn unspecified_like(ip: std::net::IpAddr) -> std::net::IpAddr {
    match ip {
        std::net::IpAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
        std::net::IpAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
    }
}

/// Start-up logs: who can reach the server, and what the reply does.
fn announce(config: &Config, local: SocketAddr) {
    if local.ip().is_loopback() {
        // The hint stays in the family bound: an IPv6 server is pointed at `[::]`.
        let every = SocketAddr::new(unspecified_like(local.ip()), local.port());
        log::info!(
            "only programs on this machine can reach {local}; to accept datagrams from other machines use --bind {every}"
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
                "replies are limited to {}/s per source (burst {}; --rate-limit){}",
                l.per_second,
                l.burst,
                if l.exempt_loopback {
                    ", except to this machine's own loopback sources"
                } else {
                    ""
                }
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
    announce_rules(config, local);
    announce_checksum(config);
    match &config.reply {
        // With rules, --reply is only for what no rule matches: the log says so.
        Reply::Echo if !config.rules.is_empty() => {
            log::info!("echoing what no rule matches back to its sender (--reply)");
        }
        Reply::None if !config.rules.is_empty() => log::info!("no reply to what no rule matches (--reply none)"),
        Reply::Echo => log::info!("echoing every datagram back to its sender"),
        Reply::None => log::info!("printing datagrams without replying (--reply none)"),
        Reply::Text(text) => log::info!(
            "replying with a fixed {}-byte text, cut to each request's length so a reply is never longer than its request",
            text.len()
        ),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The summary's JSON, byte for byte: every field there can be, and the fewest.
    #[test]
    fn the_summary_json_is_pinned() {
        let full = Summary {
            local: Some(DEFAULT_BIND),
            received: 9,
            bytes: 900,
            replied: 7,
            peers: 2,
            truncated: 1,
            refused: 1,
            rate_limited: 1,
            checksum_bad: Some(3),
            checksum_bad_unanswered: 2,
            replies_cut: 6,
            reply_queue_full: 8,
            replies_pending: 9,
            saved: Some(900),
            rules: vec![("PING=>PONG".into(), 4), ("/^x\u{1b}/=>y".into(), 0)],
            faults: Some(FaultCounts {
                dropped: 1,
                duplicated: 2,
                delayed: 3,
                reordered: 4,
                ..FaultCounts::default()
            }),
            kernel_drops: Some(5),
            ..Summary::default()
        };
        assert_eq!(
            full.to_json().to_string(),
            r#"{"bytes":900,"checksum_bad":3,"checksum_bad_unanswered":2,"delayed":3,"dropped":1,"duplicated":2,"kernel_drops":5,"peers":2,"rate_limited":1,"received":9,"refused":1,"reordered":4,"replied":7,"replies_cut":6,"replies_pending_at_stop":9,"reply_queue_full":8,"rules":{"/^x\u001b/=>y":0,"PING=>PONG":4},"saved_bytes":900,"truncated":1}"#
        );
        assert_eq!(
            Summary::default().to_json().to_string(),
            r#"{"bytes":0,"peers":0,"rate_limited":0,"received":0,"refused":0,"replied":0,"truncated":0}"#
        );
    }
}
