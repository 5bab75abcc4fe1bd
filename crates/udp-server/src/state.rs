//! The server's state between datagrams, and the two safety rules every reply passes:
//! no loops ([`refusal`], and the loop guard of `common::loopguard`) and no amplification
//! ([`reply_for`]).

use std::borrow::Cow;
use std::collections::{BinaryHeap, HashSet};
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::dest::Destination;
use common::faults::MAX_QUEUED_BYTES;
use common::header::UdpHeader;
use common::loopguard::{self, LoopGuard, OwnAddresses, Verdict};
use common::output::{Datagram, Output};
use common::pcap;
use common::receive::{Closed, Handler, Incoming};
use common::save::Save;
use common::{Error, Result};

use crate::ratelimit::Limiter;
use crate::{Config, Reply, Summary};

/// Why a datagram from `peer` must not be answered, if it must not.
///
/// An echo server that answers another echo server, a chargen server (CVE-1999-0103) or
/// itself starts a loop that never ends, and an attacker needs only one forged datagram to
/// start it. So no reply goes to source port 0 (not a real sender), to the well-known ports
/// below 1024 (echo 7, chargen 19, DNS 53…: servers, not clients), or to this server's own
/// address in any form (`::ffff:127.0.0.1` on an IPv6 socket is `127.0.0.1`). Loops with
/// other servers at ordinary ports are the loop guard's (`common::loopguard`).
pub fn refusal(peer: SocketAddr, local: SocketAddr) -> Option<&'static str> {
    if peer.port() == 0 {
        return Some("source port 0 is not a real sender");
    }
    if peer.port() < 1024 {
        return Some("a well-known source port (a service such as echo or chargen could loop with us)");
    }
    if loopguard::is_self(peer, local) {
        return Some(OWN_ADDRESS);
    }
    None
}

const OWN_ADDRESS: &str = "it comes from this server's own address (a reply would loop forever)";

/// The reply to `request`, or `None` for no reply.
///
/// A reply is never longer than `max_reply_ratio` × its request (1 unless raised): a UDP
/// server that answers a small datagram with a large one can be abused to flood a third
/// party whose address was forged as the sender (a reflection attack), so a fixed
/// `--reply` text is cut. An echo is exactly the request.
pub fn reply_for<'a>(reply: &'a Reply, request: &'a [u8], max_reply_ratio: f64) -> Option<&'a [u8]> {
    match reply {
        Reply::Echo => Some(request),
        Reply::None => None,
        Reply::Text(text) => Some(&text[..text.len().min(allowed(request.len(), max_reply_ratio))]),
    }
}

/// Whether the copy `--duplicate` made of a request from `peer` may be answered: on
/// loopback yes (a learner sees what a duplicated datagram does to an echo), off loopback
/// no. Two replies to one request are twice the bytes that request asked for: the
/// amplification a server must never give a forged source (see [`reply_for`]).
pub fn answers_duplicate(peer: SocketAddr) -> bool {
    peer.ip().to_canonical().is_loopback()
}

/// What the simulated network calls the copy of a duplicated datagram (`common::faults`).
const DUPLICATE: &str = "duplicate";

/// The longest reply allowed to a request of `len` bytes.
pub fn allowed(len: usize, max_reply_ratio: f64) -> usize {
    (len as f64 * max_reply_ratio).floor() as usize
}

/// `reply`, cut to `limit` bytes.
fn cut(reply: Cow<'_, [u8]>, limit: usize) -> Cow<'_, [u8]> {
    match reply {
        Cow::Borrowed(b) => Cow::Borrowed(&b[..b.len().min(limit)]),
        Cow::Owned(mut v) => {
            v.truncate(limit);
            Cow::Owned(v)
        }
    }
}

/// Whether the server plays a device (rules or a fixed `--reply`): one that does not answer
/// a request whose check bytes are wrong, as a real device drops a frame with a bad CRC. An
/// echo reflects every byte, good or bad (a relay's corruption is seen that way).
pub(crate) fn simulates(config: &Config) -> bool {
    !config.rules.is_empty() || matches!(config.reply, Reply::Text(_))
}

/// What a datagram's line says when its check bytes were wrong and it got no answer.
const BAD_CHECKSUM: &str = "not answered: bad check bytes";

/// What to send for one request: a datagram at once, and those a rule sends later.
#[derive(Debug, Default)]
struct Plan<'d> {
    now: Option<Cow<'d, [u8]>>,
    /// How long after the request, and what (`[200ms]PONG`, the second of `A||B`).
    later: Vec<(Duration, Vec<u8>)>,
    /// The bytes the whole answer was cut to (`--max-reply-ratio`), if it was cut.
    cut: Option<usize>,
}

impl Plan<'_> {
    fn is_empty(&self) -> bool {
        self.now.is_none() && self.later.is_empty()
    }
}

/// A rule reply waiting for its delay. The queue is ordered by due time, then by the
/// order the replies were planned in (so `A||B` keeps its order).
#[derive(Debug)]
struct Later {
    due: Instant,
    order: u64,
    peer: SocketAddr,
    /// Where the request was sent to: the reply's source in the `--pcap` file.
    to: Option<Destination>,
    bytes: Vec<u8>,
}

/// What one waiting reply costs besides its bytes, so that a flood of empty delayed
/// replies is bounded too.
const LATER_OVERHEAD: usize = std::mem::size_of::<Later>();

impl Ord for Later {
    /// Reversed: `BinaryHeap` pops its greatest, and the earliest is wanted first.
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        (other.due, other.order).cmp(&(self.due, self.order))
    }
}

impl PartialOrd for Later {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}

impl PartialEq for Later {
    fn eq(&self, other: &Self) -> bool {
        (self.due, self.order) == (other.due, other.order)
    }
}

impl Eq for Later {}

/// Distinct peers remembered for the `peers` count; a flood of forged sources cannot make
/// the set grow past this (about 0.5 MB), and the count then reads "at least".
pub const MAX_PEERS: usize = 10_000;

/// What the server knows while it runs: its counters, the peers it has seen, the reply
/// budgets of `--rate-limit`, and the sources it has warned about.
pub(crate) struct ServerState<'c> {
    config: &'c Config,
    out: &'c Output,
    /// The server's own address, for [`refusal`].
    local: SocketAddr,
    pub(crate) summary: Summary,
    /// Per-source reply budgets (`--rate-limit`).
    limiter: Option<Limiter>,
    peers: HashSet<SocketAddr>,
    /// The previous sender: a burst from one peer costs one comparison, not a hash each.
    last_peer: Option<SocketAddr>,
    /// Sources already warned about, so a flood of refused datagrams is one warning each.
    warned: HashSet<SocketAddr>,
    /// This server's addresses (every interface's on `0.0.0.0`/`::`), never answered.
    own: OwnAddresses,
    /// Peers that keep sending back what they sent: echo loops, broken (see `loopguard`).
    /// `None` for a server that never answers (`--reply none` and no rules): it cannot loop.
    guard: Option<LoopGuard>,
    /// The `--save` file, opened at start-up.
    save: Option<Save>,
    /// The `--pcap` file, created at start-up: every datagram received, every reply sent.
    pcap: Option<pcap::Writer>,
    /// How many requests each `--rule` answered.
    rule_answers: Vec<u64>,
    /// Rule replies waiting for their delay, earliest first: the receive loop goes on
    /// meanwhile (a due-queue, as the simulated network's delay queue).
    later: BinaryHeap<Later>,
    /// What `later` holds, kept under [`MAX_QUEUED_BYTES`].
    later_bytes: usize,
    /// Replies planned so far, to keep their order.
    planned: u64,
    /// Whether the first request with wrong check bytes was logged.
    warned_checksum: bool,
}

/// Sources remembered for "warned once"; past this many, new ones are not warned about.
const MAX_WARNED: usize = 1024;

/// Whether the server ever answers: a sink (`--reply none`, no rules) cannot loop.
fn answers(config: &Config) -> bool {
    config.reply != Reply::None || !config.rules.is_empty()
}

impl<'c> ServerState<'c> {
    pub(crate) fn new(config: &'c Config, out: &'c Output, local: SocketAddr, save: Option<Save>) -> Self {
        ServerState {
            config,
            out,
            local,
            summary: Summary {
                local: Some(local),
                ..Summary::default()
            },
            limiter: config.rate_limit.map(Limiter::new),
            peers: HashSet::new(),
            last_peer: None,
            warned: HashSet::new(),
            own: OwnAddresses::new(local),
            guard: (answers(config) && !config.no_loop_guard).then(LoopGuard::new),
            save,
            pcap: None,
            rule_answers: vec![0; config.rules.iter().count()],
            later: BinaryHeap::new(),
            later_bytes: 0,
            planned: 0,
            warned_checksum: false,
        }
    }

    /// The same state, writing to a `--pcap` file.
    pub(crate) fn with_pcap(self, pcap: Option<pcap::Writer>) -> Self {
        ServerState { pcap, ..self }
    }

    /// Records the replies to `datagrams` that went out (`--batch`: `sendmmsg` sent them
    /// together, after they were chosen).
    #[cfg(target_os = "linux")]
    pub(crate) fn record_replies<'r>(&mut self, sent: impl Iterator<Item = (Incoming<'r>, &'r [u8])>) {
        if let Some(pcap) = &mut self.pcap {
            for (d, reply) in sent {
                pcap.replied(&d, self.local, reply);
            }
        }
    }

    /// Prints a datagram and chooses what to send back: `None` for no reply (now), for a
    /// datagram refused for safety (see [`refusal`]) or for a source over its rate limit.
    /// What a rule sends later waits in the due-queue ([`Handler::send_due`]). Shared by
    /// the plain and the batched loop.
    pub(crate) fn print_and_choose_reply<'d>(&mut self, d: &Incoming<'d>) -> Result<Option<Cow<'d, [u8]>>>
    where
        'c: 'd,
    {
        let check = self.config.checksum.map(|c| c.check(d.data));
        let bad = check.as_ref().is_some_and(|c| !c.is_ok());
        if bad {
            *self.summary.checksum_bad.get_or_insert(0) += 1;
        }
        let (plan, rule, note) = self.plan(d, bad);
        let header = match (self.config.show_header, d.truncated) {
            (true, false) => UdpHeader::received(d.peer, d.to, self.local, d.data),
            _ => None,
        };
        self.out
            .received(&Datagram {
                truncated: d.truncated,
                note,
                reply_cut: plan.cut,
                check: check.as_ref(),
                rule,
                header,
                ..Datagram::new(d.peer, d.data)
            })
            .map_err(Error::stdout)?;
        if let Some(save) = &mut self.save {
            save.write(d.data)?;
        }
        Ok(self.schedule(plan, d))
    }

    /// What to answer `d` with, the rule that chose it, and the note for its line: nothing
    /// when refused, looping, a device's bad frame, a duplicate off loopback or over the
    /// rate limit.
    fn plan<'d>(&mut self, d: &Incoming<'d>, bad_checksum: bool) -> (Plan<'d>, Option<&'c str>, Option<&'static str>)
    where
        'c: 'd,
    {
        let refused = self.refuse(d.peer, d.to);
        // The loop guard looks before a reply is built: a looping peer costs no rule match.
        let looping = refused.is_none() && self.looping(d.peer, d.data);
        let ignored =
            refused.is_none() && !looping && bad_checksum && simulates(self.config) && !self.config.answer_bad_checksum;
        let (mut plan, rule) = if refused.is_some() || looping || ignored {
            (Plan::default(), None)
        } else {
            self.choose(d.data)
        };
        let mut note = refused.map(|_| "refused: not answered").or(d.note);
        if looping {
            note = Some("refused: an echo loop, not answered");
        }
        if ignored {
            self.ignore_bad_checksum(d.peer);
            note = Some(BAD_CHECKSUM);
        }
        if !plan.is_empty() && d.note == Some(DUPLICATE) && !answers_duplicate(d.peer) {
            plan = Plan::default();
            note = Some("duplicate: not answered (a second reply off loopback would amplify)");
        }
        if !plan.is_empty() && !self.allow(d.peer) {
            plan = Plan::default();
            note = Some("rate-limited: not answered");
        }
        self.summary.replies_cut += u64::from(plan.cut.is_some());
        (plan, rule, note)
    }

    /// Counts a request not answered for its wrong check bytes; the first is logged.
    fn ignore_bad_checksum(&mut self, peer: SocketAddr) {
        self.summary.checksum_bad_unanswered += 1;
        if !self.warned_checksum {
            self.warned_checksum = true;
            log::warn!(
                "not answering {peer}: the request's check bytes are wrong, and a device ignores such a frame (each one is marked on its line and counted; --answer-bad-checksum answers them)"
            );
        }
    }

    /// The reply to `request`: the first `--rule` that matches it without its check bytes
    /// (each datagram with its own appended), else `--reply`; the whole answer cut to
    /// `--max-reply-ratio` × the request. With the rule's text.
    fn choose<'d>(&mut self, request: &'d [u8]) -> (Plan<'d>, Option<&'c str>)
    where
        'c: 'd,
    {
        let config: &'c Config = self.config;
        let budget = allowed(request.len(), config.max_reply_ratio);
        // A device reads its frame without the check bytes: rules are written that way.
        let body = &request[..request.len() - config.checksum.map_or(0, |c| c.size().min(request.len()))];
        // One byte more than allowed is built, so a template's reply is known to be cut.
        let Some((i, answer)) = config.rules.respond(body, budget.saturating_add(1)) else {
            let now = reply_for(&config.reply, request, config.max_reply_ratio).map(Cow::Borrowed);
            let cut = match &config.reply {
                Reply::Text(text) if text.len() > budget => Some(budget),
                _ => None,
            };
            return (
                Plan {
                    now,
                    cut,
                    ..Plan::default()
                },
                None,
            );
        };
        self.rule_answers[i] += 1;
        let mut plan = Plan::default();
        let (mut left, mut at, mut was_cut) = (budget, Duration::ZERO, false);
        for (after, reply) in answer {
            let reply = match config.checksum {
                Some(c) => Cow::Owned(c.append(reply.into_owned())),
                None => reply,
            };
            let whole = reply.len();
            let reply = cut(reply, left);
            at = at.saturating_add(after);
            was_cut |= reply.len() < whole;
            if reply.len() < whole && reply.is_empty() && !plan.is_empty() {
                // Nothing of a later datagram fits: no empty datagram in its place. (The
                // first is sent empty, as a fixed reply is: the request is answered.)
                continue;
            }
            left -= reply.len();
            if at.is_zero() && plan.is_empty() {
                plan.now = Some(reply);
            } else {
                plan.later.push((at, reply.into_owned()));
            }
        }
        plan.cut = was_cut.then_some(budget - left);
        let text = config.rules.iter().nth(i).map(|r| r.text.as_str());
        (plan, text)
    }

    /// Queues what `plan` sends later (dropped and counted when the queue is full), and
    /// gives what goes at once.
    fn schedule<'d>(&mut self, plan: Plan<'d>, d: &Incoming<'_>) -> Option<Cow<'d, [u8]>> {
        if plan.later.is_empty() {
            return plan.now;
        }
        let now = Instant::now();
        for (after, bytes) in plan.later {
            let cost = bytes.len() + LATER_OVERHEAD;
            if self.later_bytes + cost > MAX_QUEUED_BYTES {
                self.summary.reply_queue_full += 1;
                continue;
            }
            self.later_bytes += cost;
            self.planned += 1;
            self.later.push(Later {
                // Delays are at most a year (common::duration): due at once rather than a
                // panic, should the clock overflow all the same.
                due: now.checked_add(after).unwrap_or(now),
                order: self.planned,
                peer: d.peer,
                to: d.to,
                bytes,
            });
        }
        plan.now
    }

    /// `sendto()`: one reply datagram, counted and recorded; one that cannot go out is
    /// lost, as any UDP datagram may be, and the server carries on.
    fn send(&mut self, socket: &UdpSocket, d: &Incoming<'_>, reply: &[u8]) {
        match socket.send_to(reply, d.peer) {
            Ok(_) => {
                self.summary.replied += 1;
                if let Some(pcap) = &mut self.pcap {
                    pcap.replied(d, self.local, reply);
                }
            }
            // A full send buffer or an unreachable peer.
            Err(e) => log::warn!(
                "reply to {} not sent: {}{}",
                d.peer,
                common::error::describe(&e),
                common::error::hint(&e)
            ),
        }
    }

    /// Whether a datagram from `peer` must go unanswered, counting and warning (once per
    /// source) if so.
    fn refuse(&mut self, peer: SocketAddr, to: Option<Destination>) -> Option<&'static str> {
        let why = match to {
            Some(d) if d.is_broadcast_or_multicast() && !self.config.answer_broadcasts => {
                "it was sent to a broadcast or multicast address (every server answering would flood its sender)"
            }
            _ => match refusal(peer, self.local) {
                Some(why) => why,
                None if self.own.is_own(peer) => OWN_ADDRESS,
                None => return None,
            },
        };
        self.summary.refused += 1;
        if self.warned.len() < MAX_WARNED && self.warned.insert(peer) {
            log::warn!("not answering {peer}: {why}");
        }
        Some(why)
    }

    /// Whether `data` from `peer` is part of an echo loop (see `common::loopguard`): counted
    /// as refused, and a loop found is counted and logged once.
    fn looping(&mut self, peer: SocketAddr, data: &[u8]) -> bool {
        let Some(guard) = &mut self.guard else {
            return false;
        };
        match guard.check(peer, data) {
            Verdict::Answer => return false,
            Verdict::Refuse => {}
            Verdict::Broken { repeats, over } => {
                self.summary.loops_broken += 1;
                log::warn!(
                    "echo loop with {peer} broken: it sent back datagrams it had sent before {repeats} times in {} ms, as another server answering our answers does (a \"Loop DoS\", CVE-2024-2169); its repeats go unanswered until it is quiet for {} s, anything new it sends is answered (a client repeating itself on purpose: --no-loop-guard)",
                    over.as_millis(),
                    loopguard::HOLD.as_secs()
                );
            }
        }
        self.summary.refused += 1;
        true
    }

    /// Whether `peer` is within its rate limit; counts it if not.
    fn allow(&mut self, peer: SocketAddr) -> bool {
        let Some(limiter) = &mut self.limiter else {
            return true;
        };
        let allowed = limiter.allow(peer.ip(), Instant::now());
        self.summary.rate_limited += u64::from(!allowed);
        allowed
    }

    /// Counts replies sent by the batched loop.
    #[cfg(target_os = "linux")]
    pub(crate) fn replied(&mut self, n: u64) {
        self.summary.replied += n;
    }

    /// The summary, once the socket is closed (and the `--save` file written out).
    pub(crate) fn finish(self, closed: Closed) -> Result<Summary> {
        if let Some(pcap) = &self.pcap {
            log::info!("{}", pcap.finish());
        }
        let saved = match self.save {
            Some(save) => {
                let bytes = save.bytes();
                log::info!("{}", save.finish()?);
                Some(bytes)
            }
            None => None,
        };
        let checksum_bad = self.config.checksum.map(|_| self.summary.checksum_bad.unwrap_or(0));
        let rules = self
            .config
            .rules
            .iter()
            .map(|r| r.text.clone())
            .zip(self.rule_answers)
            .collect();
        Ok(Summary {
            rules,
            replies_pending: self.later.len() as u64,
            faults: closed.faults,
            kernel_drops: closed.kernel_drops,
            checksum_bad,
            saved,
            ..self.summary
        })
    }
}

impl Handler for ServerState<'_> {
    /// Counts every datagram that reached the socket, also those the faults then drop.
    fn arrived(&mut self, d: &Incoming<'_>) {
        // Recorded as it came off the socket, before an injected loss or delay: the file
        // shows what crossed the wire.
        if let Some(pcap) = &mut self.pcap {
            pcap.received(d, self.local);
        }
        let s = &mut self.summary;
        s.received += 1;
        s.bytes += d.data.len() as u64;
        s.truncated += u64::from(d.truncated);
        if self.last_peer != Some(d.peer) {
            self.last_peer = Some(d.peer);
            if self.peers.len() < MAX_PEERS && self.peers.insert(d.peer) {
                s.peers += 1;
            }
        }
    }

    /// Prints a datagram and sends its reply: the `sendto()` half of step 3.
    fn deliver(&mut self, socket: &UdpSocket, d: Incoming<'_>) -> Result<()> {
        if let Some(reply) = self.print_and_choose_reply(&d)? {
            self.send(socket, &d, &reply);
        }
        // `A||B`: the second datagram is due at once, right after the first.
        if self.later.peek().is_some_and(|l| l.due <= Instant::now()) {
            self.send_due(socket, Instant::now())?;
        }
        Ok(())
    }

    fn next_due(&self) -> Option<Instant> {
        self.later.peek().map(|l| l.due)
    }

    /// The rule replies whose delay is over, earliest first.
    fn send_due(&mut self, socket: &UdpSocket, now: Instant) -> Result<()> {
        while self.later.peek().is_some_and(|l| l.due <= now) {
            let Some(later) = self.later.pop() else { break };
            self.later_bytes -= later.bytes.len() + LATER_OVERHEAD;
            let to = Incoming {
                data: &[],
                peer: later.peer,
                to: later.to,
                truncated: false,
                note: None,
            };
            self.send(socket, &to, &later.bytes);
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_duplicate_is_answered_on_loopback_only() {
        for peer in [
            "127.0.0.1:5000",
            "127.0.0.2:5000",
            "[::1]:5000",
            "[::ffff:127.0.0.1]:5000",
        ] {
            assert!(answers_duplicate(peer.parse().unwrap()), "{peer}");
        }
        for peer in [
            "10.0.0.1:5000",
            "192.168.1.5:5000",
            "[fd00::1]:5000",
            "[::ffff:10.0.0.1]:5000",
        ] {
            assert!(!answers_duplicate(peer.parse().unwrap()), "{peer}");
        }
    }

    /// The server's choice for forged arrivals (nothing is sent): a request from a LAN (TEST-NET-1)
    /// peer is echoed, its duplicate is not; a loopback peer's duplicate is.
    #[test]
    fn the_copy_of_a_duplicated_request_from_off_loopback_gets_no_reply() {
        let config = Config::default();
        let (out, _lines) = testkit::capture(common::output::OutputOptions::default());
        let mut server = ServerState::new(&config, &out, "127.0.0.1:8888".parse().unwrap(), None);
        let arrival = |peer: &str, data: &'static [u8], note| Incoming {
            data,
            peer: peer.parse().unwrap(),
            to: None,
            truncated: false,
            note,
        };
        let mut reply = |d: Incoming<'static>| server.print_and_choose_reply(&d).unwrap().map(Cow::into_owned);
        assert_eq!(reply(arrival("192.0.2.5:5000", b"one", None)), Some(b"one".to_vec()));
        assert_eq!(reply(arrival("192.0.2.5:5000", b"one", Some(DUPLICATE))), None);
        assert_eq!(reply(arrival("127.0.0.1:5000", b"two", None)), Some(b"two".to_vec()));
        assert_eq!(
            reply(arrival("127.0.0.1:5000", b"two", Some(DUPLICATE))),
            Some(b"two".to_vec())
        );
        // A delayed (not duplicated) request from the LAN is answered once, as always.
        assert_eq!(
            reply(arrival("192.0.2.5:5000", b"three", Some("delayed"))),
            Some(b"three".to_vec())
        );
    }

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
        // An IPv6 socket on [::] sees 127.0.0.1 as ::ffff:127.0.0.1: still itself.
        let any6: SocketAddr = "[::]:8888".parse().unwrap();
        assert!(refusal("[::ffff:127.0.0.1]:8888".parse().unwrap(), any6).is_some());
        assert!(refusal("[::ffff:127.0.0.1]:8888".parse().unwrap(), local).is_some());
        assert_eq!(refusal("[::ffff:127.0.0.1]:8889".parse().unwrap(), any6), None);
    }

    fn rule_server(rule: &str) -> Config {
        Config {
            rules: crate::rules::Rules::parse(&[rule.to_string()], &[], common::codec::Encoding::Utf8, false).unwrap(),
            max_reply_ratio: 2.0,
            ..Config::default()
        }
    }

    /// A request from peer number `n` (the same bytes again and again from one peer would
    /// be taken for an echo loop).
    fn request(data: &'static [u8], n: u32) -> Incoming<'static> {
        let [_, a, b, c] = n.to_be_bytes();
        Incoming {
            data,
            peer: SocketAddr::from(([127, a, b, c], 5000)),
            to: None,
            truncated: false,
            note: None,
        }
    }

    /// Delayed replies wait in a queue held to MAX_QUEUED_BYTES: past it, they are dropped
    /// and counted, and the queue never holds more (the fault delay queue's rule). Each
    /// costs its bytes and its bookkeeping, so empty replies are bounded too.
    #[test]
    fn the_reply_queue_is_capped_in_bytes_and_the_excess_counted() {
        static BIG: [u8; 30_000] = [b'q'; 30_000];
        let (out, _lines) = testkit::capture(common::output::OutputOptions {
            quiet: true,
            ..Default::default()
        });
        let local = "127.0.0.1:8888".parse().unwrap();
        for (rule, data, cost) in [
            (
                format!("*=>[1h]{}", "x".repeat(60_000)),
                &BIG[..],
                60_000 + LATER_OVERHEAD,
            ),
            ("*=>[1h]".to_string(), &b""[..], LATER_OVERHEAD),
        ] {
            let config = rule_server(&rule);
            let mut server = ServerState::new(&config, &out, local, None);
            let fits = MAX_QUEUED_BYTES / cost;
            for i in 0..fits + 7 {
                let now = server.print_and_choose_reply(&request(data, i as u32)).unwrap();
                assert!(now.is_none(), "nothing at once");
                assert!(server.later_bytes <= MAX_QUEUED_BYTES);
            }
            assert_eq!((server.later.len(), server.summary.reply_queue_full), (fits, 7));
        }
    }

    /// `A||B||C` with delays: due in order, the ones at the same time in the order written.
    #[test]
    fn held_replies_come_due_in_order() {
        let config = rule_server("GO=>A||B||[50ms]C||[0ms]D");
        let (out, _lines) = testkit::capture(common::output::OutputOptions::default());
        let mut server = ServerState::new(&config, &out, "127.0.0.1:8888".parse().unwrap(), None);
        let first = server.print_and_choose_reply(&request(b"GO", 1)).unwrap();
        assert_eq!(first.as_deref(), Some(&b"A"[..]));
        let mut order = Vec::new();
        while let Some(later) = server.later.pop() {
            order.push((later.due, later.bytes));
        }
        let bytes: Vec<&[u8]> = order.iter().map(|(_, b)| b.as_slice()).collect();
        assert_eq!(bytes, [&b"B"[..], b"C", b"D"]);
        assert_eq!(order[1].0, order[2].0, "[0ms] after C: at the same time");
        assert!(order[1].0 - order[0].0 >= Duration::from_millis(50));
    }
}
