//! `--report-every DUR`: one line per interval for long pings and floods, as `iperf3 -i`
//! prints: requests sent, replies received, requests given up as lost, the median round
//! trip and the jitter, so a change halfway through a long run is not averaged away.
//!
//! A request counts as lost in the interval in which its `--timeout` runs out, never
//! earlier; a reply that comes after that counts as received (as in the summary) and as
//! `late`. So the intervals add up to the summary: their `sent` and `received` sum to its
//! own, and their `lost` minus their `late` is its `lost`. The last, partial interval is
//! printed at the end.

use std::time::{Duration, Instant};

use common::output::round3;
use serde::Serialize;

use crate::stats::Rtt;

/// The counters of the interval under way.
#[derive(Debug)]
pub(crate) struct Reporter {
    every: Duration,
    start: Instant,
    from: Instant,
    sent: u64,
    received: u64,
    lost: u64,
    late: u64,
    rtts: Rtt,
}

/// One interval's JSON event.
#[derive(Serialize)]
struct Json {
    event: &'static str,
    start_s: f64,
    end_s: f64,
    sent: u64,
    received: u64,
    lost: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    late: Option<u64>,
    loss_percent: f64,
    p50_ms: Option<f64>,
    jitter_ms: Option<f64>,
}

impl Reporter {
    pub(crate) fn new(every: Duration, now: Instant) -> Self {
        Reporter {
            every,
            start: now,
            from: now,
            sent: 0,
            received: 0,
            lost: 0,
            late: 0,
            rtts: Rtt::default(),
        }
    }

    pub(crate) fn sent(&mut self) {
        self.sent += 1;
    }

    pub(crate) fn replied(&mut self, rtt: Duration, late: bool) {
        self.received += 1;
        self.late += u64::from(late);
        self.rtts.add(rtt);
    }

    /// Requests whose timeout ran out unanswered.
    pub(crate) fn lost(&mut self, n: u64) {
        self.lost += n;
    }

    /// The line and JSON fields of the interval that ended by `now`, if one did; the next
    /// interval starts empty.
    pub(crate) fn due(&mut self, now: Instant) -> Option<(String, serde_json::Value)> {
        if now.saturating_duration_since(self.from) < self.every {
            return None;
        }
        Some(self.close(now))
    }

    /// At the end of the run: the last, partial interval, if anything happened in it.
    pub(crate) fn last(&mut self, now: Instant) -> Option<(String, serde_json::Value)> {
        (self.sent + self.received + self.lost > 0).then(|| self.close(now))
    }

    fn close(&mut self, now: Instant) -> (String, serde_json::Value) {
        let (from, to) = (self.secs(self.from), self.secs(now));
        let loss = if self.sent == 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / self.sent as f64
        };
        let summary = self.rtts.summary();
        let (p50, jitter) = summary.map_or((None, None), |s| (Some(s.p50), Some(s.jitter)));
        let ms = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3} ms"));
        let late = if self.late > 0 {
            format!(", {} late", self.late)
        } else {
            String::new()
        };
        let text = format!(
            "[{from:6.1}-{to:6.1} s]  {} sent, {} received, {} lost ({loss:.1}%){late}, p50 {}, jitter {}",
            self.sent,
            self.received,
            self.lost,
            ms(p50),
            ms(jitter)
        );
        let fields = crate::summary::fields(&Json {
            event: "interval",
            start_s: round3(from),
            end_s: round3(to),
            sent: self.sent,
            received: self.received,
            lost: self.lost,
            late: (self.late > 0).then_some(self.late),
            loss_percent: (loss * 100.0).round() / 100.0,
            p50_ms: p50.map(round3),
            jitter_ms: jitter.map(round3),
        });
        *self = Reporter::new(self.every, self.start);
        self.from = now;
        (text, fields)
    }

    fn secs(&self, at: Instant) -> f64 {
        at.saturating_duration_since(self.start).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_counts_only_the_losses_whose_timeout_ran_out_and_the_next_starts_empty() {
        let t0 = Instant::now();
        let mut r = Reporter::new(Duration::from_secs(1), t0);
        for ms in [10, 20] {
            r.sent();
            r.replied(Duration::from_millis(ms), false);
        }
        // The third is still in flight at the end of the interval: not lost yet.
        r.sent();
        assert!(r.due(t0 + Duration::from_millis(500)).is_none());
        let (text, json) = r.due(t0 + Duration::from_secs(1)).unwrap();
        // p50: the top of the histogram's bin holding 10 ms (within 0.1 %).
        assert_eq!(
            text,
            "[   0.0-   1.0 s]  3 sent, 2 received, 0 lost (0.0%), p50 10.002 ms, jitter 0.625 ms"
        );
        assert_eq!(
            (json["event"].as_str(), json["sent"].as_u64(), json["lost"].as_u64()),
            (Some("interval"), Some(3), Some(0))
        );
        // Its timeout runs out in the next interval; then its reply comes after all.
        r.lost(1);
        r.replied(Duration::from_millis(1500), true);
        let (text, json) = r.due(t0 + Duration::from_secs(2)).unwrap();
        assert!(text.contains("0 sent, 1 received, 1 lost (0.0%), 1 late"), "{text}");
        assert_eq!(json["late"].as_u64(), Some(1));
        assert!(
            r.last(t0 + Duration::from_millis(2500)).is_none(),
            "nothing happened since"
        );
    }
}
