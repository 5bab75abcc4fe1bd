//! Paced pings: a request every `--interval`, a line (or a `--graph` bar) per reply, and
//! after the last request a wait of up to `--timeout` for the replies still missing.

use std::time::{Duration, Instant};

use common::output::Datagram;
use common::{Error, Result};

use super::graph::Graph;
use super::summary::PingSummary;
use super::tracker::{Match, Tracker};
use super::{Ping, request};
use crate::DEFAULT_TIMEOUT;
use crate::session::{Session, later};

/// Sends `count` requests, one every `interval`, printing each reply as it comes.
pub(crate) fn run(session: &mut Session<'_>, mode: &Ping) -> Result<PingSummary> {
    let requests = &mode.requests;
    let timeout = session.config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let awaiting = !session.config.no_reply;
    let mut pinger = Pinger {
        tracker: Tracker::with_reports(requests, session.target(), awaiting),
        session,
        all_sent: false,
        lingering: false,
        graph: Graph::start(mode.graph),
        timeout,
    };
    if pinger.graph.is_some() {
        pinger
            .session
            .out
            .raw(&format!("{}\n", Graph::legend()))
            .map_err(Error::stdout)?;
    }

    let mut next_send = Instant::now();
    let mut last_send = next_send;
    for seq in 1..=requests.count {
        // Between sends, print whatever replies arrive.
        pinger.receive(next_send)?;
        if pinger.session.stopped() {
            break;
        }
        last_send = Instant::now();
        pinger.send(seq, requests.message(), last_send)?;
        next_send = later(next_send, mode.interval);
    }
    // After the last request, wait up to the timeout for the replies still missing.
    pinger.all_sent = true;
    if awaiting {
        let deadline = later(last_send, timeout);
        while !pinger.tracker.all_answered() && !pinger.session.stopped() && Instant::now() < deadline {
            pinger.receive(deadline)?;
        }
        // A duplicate of the last reply may still be on its way: listen a little longer.
        pinger.lingering = true;
        pinger.receive(later(Instant::now(), pinger.tracker.grace(timeout)))?;
    }
    pinger.end_graph()?;
    pinger.tracker.last_report(pinger.session.out)?;
    let stopped = pinger.session.shutdown.is_triggered();
    Ok(pinger.tracker.finish(stopped))
}

/// The state of a paced ping run.
struct Pinger<'s, 'a> {
    session: &'s mut Session<'a>,
    tracker: Tracker,
    /// Every request has been sent: receiving may end once all are answered.
    all_sent: bool,
    /// After the last reply: keep receiving until the deadline (late duplicates).
    lingering: bool,
    /// `--graph` on a terminal: a bar per reply instead of a line.
    graph: Option<Graph>,
    /// How long a request may wait for its reply before the graph marks it lost.
    timeout: Duration,
}

impl Pinger<'_, '_> {
    /// Gives up on each request unanswered for longer than the timeout (all that are
    /// left, at the end); with `--graph`, a `✗` for each.
    fn mark_lost(&mut self, now: Instant, all: bool) -> Result<()> {
        let lost = self
            .tracker
            .expire(now, if all { Duration::ZERO } else { self.timeout });
        let Some(graph) = &mut self.graph else { return Ok(()) };
        let marks: String = (0..lost).map(|_| graph.lost()).collect();
        self.session.out.raw(&marks).map_err(Error::stdout)
    }

    fn end_graph(&mut self) -> Result<()> {
        self.mark_lost(Instant::now(), true)?;
        match &self.graph {
            Some(graph) => self.session.out.raw(graph.end()).map_err(Error::stdout),
            None => Ok(()),
        }
    }

    fn send(&mut self, seq: u64, message: &[u8], now: Instant) -> Result<()> {
        self.mark_lost(now, false)?;
        let payload = request(seq, message);
        // An ICMP error from an earlier request can surface on this send; the request
        // itself was not sent, and counts as neither sent nor lost.
        if self.session.send(&payload)? {
            self.tracker.sent(seq, now);
            let target = self.session.target();
            self.session.out.sent(target, payload.len()).map_err(Error::stdout)?;
        }
        Ok(())
    }

    /// Receives and prints replies until `until`, or until every request is answered
    /// once all have been sent.
    fn receive(&mut self, until: Instant) -> Result<()> {
        loop {
            self.mark_lost(Instant::now(), false)?;
            self.tracker.report_due(self.session.out)?;
            let Some(arrival) = self.session.recv(until)? else {
                return Ok(());
            };
            let (seq, matched) = self.tracker.reply(self.session.data(arrival), Instant::now());
            self.session.save(arrival)?;
            let rtt = match matched {
                Match::First { rtt, .. } => Some(rtt),
                Match::Duplicate => {
                    log::warn!("duplicate reply for seq={}", seq.unwrap_or_default());
                    None
                }
                Match::Unmatched => None,
            };
            match (&mut self.graph, rtt) {
                (Some(graph), Some(rtt)) => self.session.out.raw(&graph.reply(rtt)).map_err(Error::stdout)?,
                (Some(_), None) => {}
                (None, _) => {
                    let reply = Datagram {
                        seq,
                        rtt,
                        ..Datagram::new(arrival.peer, self.session.data(arrival))
                    };
                    self.session.out.reply(&reply).map_err(Error::stdout)?;
                }
            }
            if !self.lingering && self.all_sent && self.tracker.all_answered() {
                return Ok(());
            }
        }
    }
}
