//! Matches replies to requests by sequence number: what is lost, duplicated, reordered.
//!
//! Memory does not grow with `--count`: only the latest [`KEPT`] sequence numbers are
//! remembered (a window), and round trips go into streaming statistics. A reply to a
//! number older than the window counts as unmatched; a request still in flight when it
//! leaves the window is given up as lost.

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::output::Output;
use common::{Error, Result};

use super::report::Reporter;
use super::summary::PingSummary;
use super::{Requests, parse_seq};
use crate::stats::Rtt;

/// Sequence numbers remembered: 65 536 states of 24 bytes, 1.5 MiB, far more than a
/// flood's window or a paced ping's requests within one timeout.
pub(crate) const KEPT: usize = 1 << 16;

/// Where each sequence number stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    NotSent,
    InFlight(Instant),
    Answered,
    /// Given up for lost when its timeout ran out; a late reply still counts as received.
    Expired(Instant),
}

/// Matches replies to requests by sequence number.
pub(crate) struct Tracker {
    /// The states of sequence numbers `base`, `base + 1`, …; at most [`KEPT`].
    window: VecDeque<State>,
    base: u64,
    /// Every sequence number below this one is no longer in flight.
    oldest: u64,
    in_flight: usize,
    /// Whether replies are awaited (not with `--no-reply`): only then is anything lost.
    awaiting: bool,
    highest_answered: u64,
    rtt: Rtt,
    pub(crate) summary: PingSummary,
    /// `--report-every`: the interval under way.
    report: Option<Reporter>,
}

/// What a reply turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Match {
    First { rtt: Duration, was_in_flight: bool },
    Duplicate,
    Unmatched,
}

impl Tracker {
    pub(crate) fn new(target: SocketAddr, awaiting: bool) -> Self {
        Tracker {
            window: VecDeque::new(),
            base: 1,
            oldest: 1,
            in_flight: 0,
            awaiting,
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
    pub(crate) fn with_reports(requests: &Requests, target: SocketAddr, awaiting: bool) -> Self {
        Tracker {
            report: requests.report_every.map(|every| Reporter::new(every, Instant::now())),
            ..Tracker::new(target, awaiting)
        }
    }

    /// Request `seq` went out at `at`. Numbers come in order; one skipped (the OS refused
    /// to send it) stays `NotSent`.
    pub(crate) fn sent(&mut self, seq: u64, at: Instant) {
        while self.base + (self.window.len() as u64) < seq {
            self.push(State::NotSent);
        }
        if self.base + (self.window.len() as u64) == seq {
            self.push(State::InFlight(at));
        } else if let Some(state) = self.state(seq) {
            *state = State::InFlight(at);
        }
        self.in_flight += 1;
        self.summary.sent += 1;
        if let Some(r) = &mut self.report {
            r.sent();
        }
    }

    fn push(&mut self, state: State) {
        if self.window.len() == KEPT {
            if let Some(State::InFlight(_)) = self.window.pop_front() {
                self.in_flight -= 1;
                self.given_up(1);
            }
            self.base += 1;
            self.oldest = self.oldest.max(self.base);
        }
        self.window.push_back(state);
    }

    fn given_up(&mut self, n: u64) {
        if let (true, Some(r)) = (self.awaiting, &mut self.report) {
            r.lost(n);
        }
    }

    /// Requests neither answered nor given up.
    pub(crate) fn in_flight(&self) -> usize {
        self.in_flight
    }

    /// Gives up on the requests sent `timeout` ago or more and still unanswered, oldest
    /// first; how many. Each is looked at once, so a long run costs no more per request.
    pub(crate) fn expire(&mut self, now: Instant, timeout: Duration) -> u64 {
        let mut given_up = 0;
        while let Some(state) = usize::try_from(self.oldest - self.base)
            .ok()
            .and_then(|i| self.window.get_mut(i))
        {
            match *state {
                State::InFlight(at) if now.saturating_duration_since(at) >= timeout => {
                    *state = State::Expired(at);
                    given_up += 1;
                }
                State::InFlight(_) => break,
                _ => {}
            }
            self.oldest += 1;
        }
        self.in_flight -= given_up as usize;
        self.given_up(given_up);
        given_up
    }

    /// With `--report-every`: the report of an interval that has just ended, printed.
    pub(crate) fn report_due(&mut self, out: &Output) -> Result<()> {
        let Some((text, fields)) = self.report.as_mut().and_then(|r| r.due(Instant::now())) else {
            return Ok(());
        };
        out.report(&text, fields).map_err(Error::stdout)
    }

    pub(crate) fn reply(&mut self, payload: &[u8], now: Instant) -> (Option<u64>, Match) {
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
        if was_in_flight {
            self.in_flight -= 1;
        }
        let rtt = now.saturating_duration_since(sent_at);
        self.rtt.add(rtt);
        if let Some(r) = &mut self.report {
            r.replied(rtt, !was_in_flight);
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
        let index = usize::try_from(seq.checked_sub(self.base)?).ok()?;
        self.window.get_mut(index)
    }

    /// How long to keep listening after the last reply for duplicates still in flight:
    /// twice the slowest round trip seen, at least 10 ms, at most `timeout`.
    pub(crate) fn grace(&self, timeout: Duration) -> Duration {
        let slowest = self.rtt.summary().map_or(0.0, |r| r.max);
        Duration::from_secs_f64(2.0 * slowest / 1e3)
            .max(Duration::from_millis(10))
            .min(timeout)
    }

    pub(crate) fn all_answered(&self) -> bool {
        self.summary.received == self.summary.sent
    }

    /// The end of the run: whatever is still in flight is lost, and with `--report-every`
    /// the last, partial interval is printed.
    pub(crate) fn last_report(&mut self, out: &Output) -> Result<()> {
        let now = Instant::now();
        self.expire(now, Duration::ZERO);
        match self.report.as_mut().and_then(|r| r.last(now)) {
            Some((text, fields)) => out.report(&text, fields).map_err(Error::stdout),
            None => Ok(()),
        }
    }

    pub(crate) fn finish(mut self, stopped: bool) -> PingSummary {
        // With --no-reply nothing was awaited, so nothing can be called lost.
        self.summary.lost = if self.awaiting {
            self.summary.sent - self.summary.received
        } else {
            0
        };
        self.summary.rtt = self.rtt.summary();
        self.summary.histogram = self.rtt.histogram();
        self.summary.expect_replies = self.awaiting;
        self.summary.stopped = stopped;
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fresh() -> (Tracker, Instant) {
        (Tracker::new("127.0.0.1:9".parse().unwrap(), true), Instant::now())
    }

    #[test]
    fn the_tracker_counts_loss_duplicates_and_reordering_exactly() {
        let (mut t, t0) = fresh();
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
        let s = t.finish(false);
        assert_eq!(
            (s.sent, s.received, s.lost, s.duplicates, s.reordered, s.unmatched),
            (5, 4, 1, 1, 1, 2)
        );
        assert_eq!(s.loss_percent(), 20.0);
        assert_eq!(s.rtt.unwrap().max, 1.0);
        assert!(s.check().is_ok());
    }

    /// A million requests, a window of 65 536: the memory is the window's, the counts are
    /// still exact, and a reply to a number that left the window is unmatched, not a crash.
    #[test]
    fn memory_stays_within_the_window_however_many_requests() {
        let (mut t, t0) = fresh();
        for seq in 1..=1_000_000u64 {
            t.sent(seq, t0);
            if seq % 2 == 0 {
                t.reply(
                    format!("seq={seq} ping").as_bytes(),
                    t0 + Duration::from_micros(seq % 500 + 1),
                );
            }
            t.expire(t0, Duration::from_secs(1));
        }
        assert!(
            t.window.len() <= KEPT && t.window.capacity() <= 2 * KEPT,
            "{}",
            t.window.capacity()
        );
        assert_eq!(t.reply(b"seq=2 ping", t0).1, Match::Unmatched);
        let s = t.finish(false);
        assert_eq!(
            (s.sent, s.received, s.lost, s.unmatched),
            (1_000_000, 500_000, 500_000, 1)
        );
        assert_eq!(s.histogram.iter().map(|b| b.count).sum::<u64>(), 500_000);
    }

    /// Expiry looks at each request once: giving up on the oldest never rescans the rest.
    #[test]
    fn a_request_is_lost_only_once_its_timeout_has_run_out() {
        let (mut t, t0) = fresh();
        let ms = Duration::from_millis;
        for seq in 1..=3 {
            t.sent(seq, t0 + ms(seq * 100));
        }
        t.reply(b"seq=2 ping", t0 + ms(250));
        assert_eq!(t.expire(t0 + ms(1099), ms(1000)), 0, "not yet");
        assert_eq!(t.expire(t0 + ms(1100), ms(1000)), 1, "seq 1 runs out");
        assert_eq!(t.expire(t0 + ms(1300), ms(1000)), 1, "seq 3; seq 2 was answered");
        assert_eq!(t.in_flight(), 0);
    }
}
