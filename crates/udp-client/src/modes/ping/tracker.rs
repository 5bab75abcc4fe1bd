//! Matches replies to requests by sequence number: what is lost, duplicated, reordered.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use common::output::Output;
use common::{Error, Result};

use super::report::Reporter;
use super::summary::PingSummary;
use super::{Requests, parse_seq};
use crate::stats::Rtt;

/// Where each sequence number stands.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum State {
    NotSent,
    InFlight(Instant),
    Answered,
    /// A flood gave up waiting for it; a late reply still counts as received.
    Expired(Instant),
}

/// Matches replies to requests by sequence number.
pub(crate) struct Tracker {
    pub(crate) states: Vec<State>,
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
    pub(crate) fn new(count: u64, target: SocketAddr) -> Self {
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
    pub(crate) fn with_reports(requests: &Requests, target: SocketAddr) -> Self {
        Tracker {
            report: requests.report_every.map(|every| Reporter::new(every, Instant::now())),
            ..Tracker::new(requests.count, target)
        }
    }

    pub(crate) fn sent(&mut self, seq: u64, at: Instant) {
        if let Some(state) = self.state(seq) {
            *state = State::InFlight(at);
            self.summary.sent += 1;
            if let Some(r) = &mut self.report {
                r.sent();
            }
        }
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

    pub(crate) fn unmatched(&mut self) -> Match {
        self.summary.unmatched += 1;
        Match::Unmatched
    }

    pub(crate) fn state(&mut self, seq: u64) -> Option<&mut State> {
        let index = usize::try_from(seq.checked_sub(1)?).ok()?;
        self.states.get_mut(index)
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

    pub(crate) fn finish(mut self, no_reply: bool, stopped: bool) -> PingSummary {
        // With --no-reply nothing was awaited, so nothing can be called lost.
        self.summary.lost = if no_reply {
            0
        } else {
            self.summary.sent - self.summary.received
        };
        self.summary.rtt = self.rtt.summary();
        self.summary.histogram = self.rtt.histogram();
        self.summary.expect_replies = !no_reply;
        self.summary.stopped = stopped;
        self.summary
    }
}

#[cfg(test)]
mod tests {
    use super::*;

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
        let s = t.finish(false, false);
        assert_eq!(
            (s.sent, s.received, s.lost, s.duplicates, s.reordered, s.unmatched),
            (5, 4, 1, 1, 1, 2)
        );
        assert_eq!(s.loss_percent(), 20.0);
        assert_eq!(s.rtt.unwrap().max, 1.0);
        assert!(s.check().is_ok());
    }
}
