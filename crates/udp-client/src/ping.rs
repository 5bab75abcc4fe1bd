//! Ping mode: sequence-numbered datagrams, replies matched by their number, and the loss,
//! duplicates, reordering and round-trip times a network really shows.
//!
//! Each request is the text `seq=N MESSAGE` (MESSAGE defaults to `ping`), readable in any
//! server's output; an echo server returns it unchanged, so the number identifies the
//! reply. With `--interval 0` the client floods instead: it keeps `--window` datagrams in
//! flight and reports echoed datagrams per second.

use std::collections::VecDeque;
use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use crate::graph::Graph;
use crate::stats::{Rtt, RttSummary};
use common::output::{Datagram, Output, round3};
use common::shutdown::{Shutdown, is_wake_up};
use common::{Error, Result};
use serde_json::json;

use crate::{Config, DEFAULT_FLOOD_TIMEOUT, DEFAULT_TIMEOUT, RECV_BUFFER, nobody_listening, recv_until, send_error};

/// The ping statistics printed at the end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PingSummary {
    /// Where the pings went.
    pub target: Option<SocketAddr>,
    /// Requests sent.
    pub sent: u64,
    /// Requests that got at least one reply.
    pub received: u64,
    /// Requests that got no reply.
    pub lost: u64,
    /// Extra copies of replies already received.
    pub duplicates: u64,
    /// Replies that arrived after the reply to a later request.
    pub reordered: u64,
    /// Datagrams whose content matched no request (not an echo).
    pub unmatched: u64,
    /// Round-trip times of first replies.
    pub rtt: Option<RttSummary>,
    /// How the round trips spread (counts sum to `received`).
    pub histogram: Vec<crate::stats::Bucket>,
    /// Flood only: echoed datagrams per second.
    pub rate: Option<f64>,
    /// Whether a reply was expected (false with `--no-reply`).
    pub expect_replies: bool,
    /// Whether the run was stopped by Ctrl-C or SIGTERM.
    pub stopped: bool,
}

impl PingSummary {
    /// Lost replies as a percentage of requests.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / self.sent as f64
        }
    }

    /// The summary's JSON fields.
    pub fn to_json(&self) -> serde_json::Value {
        let mut obj = json!({
            "sent": self.sent, "received": self.received, "lost": self.lost,
            "duplicates": self.duplicates, "reordered": self.reordered, "unmatched": self.unmatched,
            "loss_percent": (self.loss_percent() * 100.0).round() / 100.0,
            "rtt_ms": self.rtt.map_or(serde_json::Value::Null, |r| r.to_json()),
        });
        if let Some(r) = self.rtt {
            obj["jitter_ms"] = json!(round3(r.jitter));
            obj["mdev_ms"] = json!(round3(r.mdev));
            obj["histogram"] = crate::stats::histogram_json(&self.histogram);
        }
        if let Some(rate) = self.rate {
            obj["rate_per_s"] = json!(rate.round());
        }
        obj
    }

    /// Ping-style text for stderr.
    pub fn to_text(&self) -> String {
        let target = self.target.map_or(String::new(), |t| format!("{t} "));
        if !self.expect_replies {
            let mut text = format!(
                "--- {target}udp send statistics ---\n{} sent, replies not awaited (--no-reply)",
                self.sent
            );
            if let Some(rate) = self.rate {
                text += &format!("\n{rate:.0} datagrams/s sent");
            }
            return text;
        }
        let mut text = format!(
            "--- {target}udp ping statistics ---\n{} sent, {} received, {:.1}% loss, {} duplicates, {} reordered",
            self.sent,
            self.received,
            self.loss_percent(),
            self.duplicates,
            self.reordered
        );
        if self.unmatched > 0 {
            text += &format!(", {} unmatched", self.unmatched);
        }
        if let Some(r) = self.rtt {
            text += &format!(
                "\nrtt min/avg/p50/p99/max/mdev = {:.3}/{:.3}/{:.3}/{:.3}/{:.3}/{:.3} ms, jitter {:.3} ms",
                r.min, r.avg, r.p50, r.p99, r.max, r.mdev, r.jitter
            );
            text += "\n";
            text += &crate::stats::histogram_text(&self.histogram);
        }
        if let Some(rate) = self.rate {
            text += &format!("\n{rate:.0} datagrams/s echoed");
        }
        text
    }

    /// A run with replies expected and none received failed (exit 1), unless stopped.
    ///
    /// # Errors
    /// [`Error::Runtime`] when no request got a reply.
    pub fn check(&self) -> Result<()> {
        if self.expect_replies && self.received == 0 && self.sent > 0 && !self.stopped {
            let target = self.target.unwrap_or(crate::DEFAULT_TARGET);
            return Err(crate::no_reply(target, &format!(" to any of {} requests", self.sent)));
        }
        Ok(())
    }
}

/// Where each sequence number stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    NotSent,
    InFlight(Instant),
    Answered,
    /// A flood gave up waiting for it; a late reply still counts as received.
    Expired(Instant),
}

/// Matches replies to requests by sequence number.
struct Tracker {
    states: Vec<State>,
    highest_answered: u64,
    rtt: Rtt,
    summary: PingSummary,
    /// `--report-every`: the interval under way.
    report: Option<crate::report::Reporter>,
}

/// What a reply turned out to be.
#[derive(Debug, PartialEq, Eq)]
enum Match {
    First { rtt: Duration, was_in_flight: bool },
    Duplicate,
    Unmatched,
}

impl Tracker {
    fn new(count: u64, target: SocketAddr) -> Self {
        Tracker {
            states: vec![State::NotSent; usize::try_from(count).unwrap_or(usize::MAX).min(1 << 28)],
            highest_answered: 0,
            rtt: Rtt::default(),
            report: None,
            summary: PingSummary {
                target: Some(target),
                ..Default::default()
            },
        }
    }

    /// A tracker that also reports every `--report-every`.
    fn with_reports(count: u64, config: &Config) -> Self {
        Tracker {
            report: config
                .report_every
                .map(|every| crate::report::Reporter::new(every, Instant::now())),
            ..Tracker::new(count, config.target)
        }
    }

    fn sent(&mut self, seq: u64, at: Instant) {
        if let Some(state) = self.state(seq) {
            *state = State::InFlight(at);
            self.summary.sent += 1;
            if let Some(r) = &mut self.report {
                r.sent();
            }
        }
    }

    /// With `--report-every`: the report of an interval that has just ended, printed.
    fn report_due(&mut self, out: &Output) -> Result<()> {
        let Some((text, fields)) = self.report.as_mut().and_then(|r| r.due(Instant::now())) else {
            return Ok(());
        };
        out.report(&text, fields).map_err(Error::stdout)
    }

    fn reply(&mut self, payload: &[u8], now: Instant) -> (Option<u64>, Match) {
        let Some(seq) = parse_seq(payload) else {
            return (None, self.unmatched());
        };
        let Some(state) = self.state(seq) else {
            return (Some(seq), self.unmatched());
        };
        let (sent_at, was_in_flight) = match *state {
            State::InFlight(at) => (at, true),
            State::Expired(at) => (at, false),
            State::Answered => {
                self.summary.duplicates += 1;
                return (Some(seq), Match::Duplicate);
            }
            State::NotSent => return (Some(seq), self.unmatched()),
        };
        *state = State::Answered;
        let rtt = now.saturating_duration_since(sent_at);
        self.rtt.add(rtt);
        if let Some(r) = &mut self.report {
            r.replied(rtt);
        }
        self.summary.received += 1;
        if seq < self.highest_answered {
            self.summary.reordered += 1;
        }
        self.highest_answered = self.highest_answered.max(seq);
        (Some(seq), Match::First { rtt, was_in_flight })
    }

    fn unmatched(&mut self) -> Match {
        self.summary.unmatched += 1;
        Match::Unmatched
    }

    fn state(&mut self, seq: u64) -> Option<&mut State> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.states.get_mut(index)
    }

    /// How long to keep listening after the last reply for duplicates still in flight:
    /// twice the slowest round trip seen, at least 10 ms, at most `timeout`.
    fn grace(&self, timeout: Duration) -> Duration {
        let slowest = self.rtt.summary().map_or(0.0, |r| r.max);
        Duration::from_secs_f64(2.0 * slowest / 1e3)
            .max(Duration::from_millis(10))
            .min(timeout)
    }

    fn all_answered(&self) -> bool {
        self.summary.received == self.summary.sent
    }

    fn finish(mut self, config: &Config, stopped: bool) -> PingSummary {
        // With --no-reply nothing was awaited, so nothing can be called lost.
        self.summary.lost = if config.no_reply {
            0
        } else {
            self.summary.sent - self.summary.received
        };
        self.summary.rtt = self.rtt.summary();
        self.summary.histogram = self.rtt.histogram();
        self.summary.expect_replies = !config.no_reply;
        self.summary.stopped = stopped;
        self.summary
    }
}

/// The sequence number at the start of a reply: `seq=17 …`.
fn parse_seq(payload: &[u8]) -> Option<u64> {
    let rest = payload.strip_prefix(b"seq=")?;
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The request for `seq`: `seq=N MESSAGE`.
fn request(seq: u64, message: &[u8]) -> Vec<u8> {
    let mut payload = format!("seq={seq} ").into_bytes();
    payload.extend_from_slice(message);
    payload
}

/// How many bytes the `seq=N ` prefix adds at most, for the size check.
pub(crate) fn header_len(config: &Config) -> usize {
    config.count.map_or(0, |count| format!("seq={count} ").len())
}

const DEFAULT_MESSAGE: &[u8] = b"ping";

/// On loopback a flood loses next to nothing; past this share something is limiting it.
const FLOOD_LOSS_WORTH_A_WORD: f64 = 10.0;

pub(crate) fn run(
    socket: &UdpSocket,
    config: &Config,
    count: u64,
    shutdown: &Shutdown,
    out: &Output,
) -> Result<PingSummary> {
    if config.interval.is_zero() {
        return flood(socket, config, count, shutdown, out);
    }
    let message = config.message.as_deref().unwrap_or(DEFAULT_MESSAGE);
    let timeout = config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut pinger = Pinger {
        socket,
        target: config.target,
        shutdown,
        out,
        tracker: Tracker::with_reports(count, config),
        buf: vec![0u8; RECV_BUFFER],
        refused: false,
        lingering: false,
        graph: Graph::start(config.graph),
        timeout,
    };
    if pinger.graph.is_some() {
        out.raw(&format!("{}\n", Graph::legend())).map_err(Error::stdout)?;
    }

    let mut next_send = Instant::now();
    let mut last_send = next_send;
    for seq in 1..=count {
        // Between sends, print whatever replies arrive.
        pinger.receive(next_send)?;
        if pinger.stopped() {
            break;
        }
        last_send = Instant::now();
        pinger.send(seq, message, last_send)?;
        next_send += config.interval;
    }
    // After the last request, wait up to the timeout for the replies still missing.
    if !config.no_reply {
        let deadline = last_send + timeout;
        while !pinger.tracker.all_answered() && !pinger.stopped() && Instant::now() < deadline {
            pinger.receive(deadline)?;
        }
        // A duplicate of the last reply may still be on its way: listen a little longer.
        pinger.lingering = true;
        pinger.receive(Instant::now() + pinger.tracker.grace(timeout))?;
    }
    pinger.end_graph()?;
    Ok(pinger.tracker.finish(config, shutdown.is_triggered()))
}

/// The state of a paced ping run.
struct Pinger<'a> {
    socket: &'a UdpSocket,
    target: SocketAddr,
    shutdown: &'a Shutdown,
    out: &'a Output,
    tracker: Tracker,
    buf: Vec<u8>,
    /// Whether "nobody listening" was already said.
    refused: bool,
    /// After the last reply: keep receiving until the deadline (late duplicates).
    lingering: bool,
    /// `--graph` on a terminal: a bar per reply instead of a line.
    graph: Option<Graph>,
    /// How long a request may wait for its reply before the graph marks it lost.
    timeout: Duration,
}

impl Pinger<'_> {
    fn stopped(&self) -> bool {
        self.shutdown.is_triggered() || self.out.is_closed()
    }

    /// With `--graph`: a `✗` for each request unanswered for longer than the timeout (all
    /// that are left, at the end), then the end of the line.
    fn mark_lost(&mut self, now: Instant, all: bool) -> Result<()> {
        let Some(graph) = &mut self.graph else { return Ok(()) };
        let mut marks = String::new();
        for state in &mut self.tracker.states {
            if let State::InFlight(at) = *state {
                if all || now.duration_since(at) >= self.timeout {
                    *state = State::Expired(at);
                    marks += &graph.lost();
                }
            }
        }
        self.out.raw(&marks).map_err(Error::stdout)
    }

    fn end_graph(&mut self) -> Result<()> {
        self.mark_lost(Instant::now(), true)?;
        match &self.graph {
            Some(graph) => self.out.raw(graph.end()).map_err(Error::stdout),
            None => Ok(()),
        }
    }

    fn send(&mut self, seq: u64, message: &[u8], now: Instant) -> Result<()> {
        self.mark_lost(now, false)?;
        let payload = request(seq, message);
        match self.socket.send(&payload) {
            Ok(_) => {
                self.tracker.sent(seq, now);
                self.out.sent(self.target, payload.len()).map_err(Error::stdout)?;
            }
            // An ICMP error from an earlier request can surface on this send; the request
            // itself was not sent, and counts as neither sent nor lost.
            Err(e) if common::error::is_port_unreachable(&e) => warn_refused(&mut self.refused, self.target),
            Err(e) => return Err(send_error(&e, payload.len(), self.target)),
        }
        Ok(())
    }

    /// Receives and prints replies until `until`, or until every request is answered
    /// once all have been sent.
    fn receive(&mut self, until: Instant) -> Result<()> {
        loop {
            self.tracker.report_due(self.out)?;
            match recv_until(self.socket, &mut self.buf, until, self.shutdown) {
                Ok(Some((len, peer))) => {
                    let payload = &self.buf[..len];
                    let (seq, matched) = self.tracker.reply(payload, Instant::now());
                    let rtt = match matched {
                        Match::First { rtt, .. } => Some(rtt),
                        Match::Duplicate => {
                            log::warn!("duplicate reply for seq={}", seq.unwrap_or_default());
                            None
                        }
                        Match::Unmatched => None,
                    };
                    match (&mut self.graph, rtt) {
                        (Some(graph), Some(rtt)) => self.out.raw(&graph.reply(rtt)).map_err(Error::stdout)?,
                        (Some(_), None) => {}
                        (None, _) => {
                            let reply = Datagram {
                                seq,
                                rtt,
                                ..Datagram::new(peer, payload)
                            };
                            self.out.reply(&reply).map_err(Error::stdout)?;
                        }
                    }
                    if !self.lingering
                        && self.tracker.all_answered()
                        && self.tracker.summary.sent == self.tracker.states.len() as u64
                    {
                        return Ok(());
                    }
                }
                Ok(None) => return Ok(()),
                Err(e) if common::error::is_port_unreachable(&e) => warn_refused(&mut self.refused, self.target),
                Err(e) => return Err(Error::io(format!("receiving from {} failed", self.target), &e)),
            }
        }
    }
}

fn warn_refused(refused: &mut bool, target: SocketAddr) {
    if !*refused {
        log::warn!("{}", nobody_listening(target));
        *refused = true;
    }
}

/// `--interval 0`: keep up to `window` requests in flight, refilling as replies return;
/// a request unanswered for the timeout is given up (and counted lost unless it turns up).
/// No line per reply (like `ping -f`): printing would cost more than the datagrams.
fn flood(socket: &UdpSocket, config: &Config, count: u64, shutdown: &Shutdown, out: &Output) -> Result<PingSummary> {
    let window = config.window.max(1);
    if config.no_reply {
        log::info!(
            "sending {count} datagrams to {} as fast as the OS takes them; nothing is awaited (--no-reply)",
            config.target
        );
    } else {
        log::info!(
            "flooding {} with {count} datagrams, {window} in flight at most; no line per reply",
            config.target
        );
    }
    // A short fixed read timeout: the loop wakes to expire lost requests and check Ctrl-C.
    socket
        .set_read_timeout(Some(Duration::from_millis(10)))
        .map_err(|e| Error::io("cannot set a read timeout", &e))?;
    let mut flood = Flood {
        socket,
        config,
        message: config.message.as_deref().unwrap_or(DEFAULT_MESSAGE),
        loss_timeout: config.timeout.unwrap_or(DEFAULT_FLOOD_TIMEOUT),
        window,
        count,
        tracker: Tracker::with_reports(count, config),
        buf: vec![0u8; RECV_BUFFER],
        in_flight: VecDeque::with_capacity(window),
        outstanding: 0,
        next_seq: 1,
        refused: false,
        start: Instant::now(),
        last_reply: Instant::now(),
        progress: crate::progress::Progress::new(count, false),
    };
    while !shutdown.is_triggered() {
        flood.fill_window()?;
        flood.tracker.report_due(out)?;
        if config.no_reply || (flood.next_seq > count && flood.outstanding == 0) {
            break;
        }
        flood.receive_one()?;
        flood.expire(Instant::now());
    }
    if !config.no_reply {
        flood.linger(shutdown)?;
    }
    Ok(flood.finish(shutdown.is_triggered()))
}

/// The state of a flood: the window of requests in flight, oldest first.
struct Flood<'a> {
    socket: &'a UdpSocket,
    config: &'a Config,
    message: &'a [u8],
    loss_timeout: Duration,
    window: usize,
    count: u64,
    tracker: Tracker,
    buf: Vec<u8>,
    in_flight: VecDeque<u64>,
    /// Requests sent and neither answered nor given up.
    outstanding: usize,
    next_seq: u64,
    /// Whether "nobody listening" was already said.
    refused: bool,
    start: Instant,
    last_reply: Instant,
    /// The live progress line, on a terminal.
    progress: crate::progress::Progress,
}

impl Flood<'_> {
    /// Sends until the window is full. With --no-reply nothing comes back to free the
    /// window: everything is sent at once.
    fn fill_window(&mut self) -> Result<()> {
        let target = self.config.target;
        while (self.config.no_reply || self.outstanding < self.window) && self.next_seq <= self.count {
            let now = Instant::now();
            let payload = request(self.next_seq, self.message);
            match self.socket.send(&payload) {
                Ok(_) if self.config.no_reply => self.tracker.sent(self.next_seq, now),
                Ok(_) => {
                    self.tracker.sent(self.next_seq, now);
                    self.in_flight.push_back(self.next_seq);
                    self.outstanding += 1;
                }
                Err(e) if common::error::is_port_unreachable(&e) => warn_refused(&mut self.refused, target),
                Err(e) => return Err(send_error(&e, payload.len(), target)),
            }
            self.progress.add(1);
            self.next_seq += 1;
        }
        Ok(())
    }

    /// Waits (up to the short read timeout) for one reply and frees its window slot.
    fn receive_one(&mut self) -> Result<()> {
        match self.socket.recv(&mut self.buf) {
            Ok(len) => {
                let now = Instant::now();
                if let (
                    _,
                    Match::First {
                        was_in_flight: true, ..
                    },
                ) = self.tracker.reply(&self.buf[..len], now)
                {
                    self.outstanding -= 1;
                    self.last_reply = now;
                }
            }
            Err(e) if is_wake_up(&e) => {}
            Err(e) if common::error::is_port_unreachable(&e) => warn_refused(&mut self.refused, self.config.target),
            Err(e) => return Err(Error::io(format!("receiving from {} failed", self.config.target), &e)),
        }
        Ok(())
    }

    /// Gives up on requests older than the loss timeout, oldest first; drops answered ones
    /// from the window.
    fn expire(&mut self, now: Instant) {
        while let Some(&seq) = self.in_flight.front() {
            match self.tracker.state(seq).copied() {
                Some(State::InFlight(at)) if now.duration_since(at) >= self.loss_timeout => {
                    if let Some(state) = self.tracker.state(seq) {
                        *state = State::Expired(at);
                    }
                    self.outstanding -= 1;
                    self.in_flight.pop_front();
                }
                Some(State::InFlight(_)) => break,
                _ => {
                    self.in_flight.pop_front();
                }
            }
        }
    }

    /// A duplicate of a late reply may still be on its way: listen a little longer.
    fn linger(&mut self, shutdown: &Shutdown) -> Result<()> {
        let grace_end = Instant::now() + self.tracker.grace(self.loss_timeout);
        while !shutdown.is_triggered() && Instant::now() < grace_end {
            match self.socket.recv(&mut self.buf) {
                Ok(len) => {
                    self.tracker.reply(&self.buf[..len], Instant::now());
                }
                Err(e) if is_wake_up(&e) || common::error::is_port_unreachable(&e) => {}
                Err(e) => return Err(Error::io(format!("receiving from {} failed", self.config.target), &e)),
            }
        }
        Ok(())
    }

    /// The summary, with the rate: echoed datagrams per second, or sent ones with --no-reply.
    fn finish(self, stopped: bool) -> PingSummary {
        self.progress.finish();
        let elapsed = self.last_reply.duration_since(self.start).as_secs_f64();
        let mut summary = self.tracker.finish(self.config, stopped);
        if elapsed > 0.0 && summary.received > 0 {
            summary.rate = Some(summary.received as f64 / elapsed);
        }
        let sending = self.start.elapsed().as_secs_f64();
        if self.config.no_reply && sending > 0.0 {
            summary.rate = Some(summary.sent as f64 / sending);
        }
        if !self.config.no_reply && summary.received > 0 && summary.loss_percent() >= FLOOD_LOSS_WORTH_A_WORD {
            log::warn!(
                "{:.0}% of the flood was lost: the server may be rate-limiting its replies (udp-server --rate-limit), or a receive queue overflowed (try a smaller --window)",
                summary.loss_percent()
            );
        }
        summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_round_trip_through_the_payload() {
        assert_eq!(request(17, b"ping"), b"seq=17 ping");
        assert_eq!(parse_seq(b"seq=17 ping"), Some(17));
        assert_eq!(parse_seq(b"seq=3"), Some(3));
        for bad in [&b"seq= 1"[..], b"seq=x", b"SEQ=1", b"", b"seq=99999999999999999999999"] {
            assert_eq!(parse_seq(bad), None);
        }
    }

    #[test]
    fn the_tracker_counts_loss_duplicates_and_reordering_exactly() {
        let target = "127.0.0.1:9".parse().unwrap();
        let mut t = Tracker::new(5, target);
        let t0 = Instant::now();
        for seq in 1..=5 {
            t.sent(seq, t0);
        }
        // Replies: 1, 3, 2 (late: reordered), 3 again (duplicate), 4; 5 never comes; junk.
        for payload in [
            &b"seq=1 ping"[..],
            b"seq=3 ping",
            b"seq=2 ping",
            b"seq=3 ping",
            b"seq=4 ping",
            b"hello",
            b"seq=9 x",
        ] {
            t.reply(payload, t0 + Duration::from_millis(1));
        }
        let s = t.finish(&Config::default(), false);
        assert_eq!(
            (s.sent, s.received, s.lost, s.duplicates, s.reordered, s.unmatched),
            (5, 4, 1, 1, 1, 2)
        );
        assert_eq!(s.loss_percent(), 20.0);
        assert_eq!(s.rtt.unwrap().max, 1.0);
        assert!(s.check().is_ok());
    }

    #[test]
    fn no_reply_at_all_is_a_failure_unless_stopped() {
        let s = PingSummary {
            sent: 3,
            expect_replies: true,
            ..Default::default()
        };
        assert_eq!(s.check().unwrap_err().exit_code(), 1);
        assert!(
            PingSummary {
                stopped: true,
                ..s.clone()
            }
            .check()
            .is_ok()
        );
        assert!(
            PingSummary {
                expect_replies: false,
                ..s
            }
            .check()
            .is_ok()
        );
    }
}
