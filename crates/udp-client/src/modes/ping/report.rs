//! `--report-every DUR`: one line per interval for long pings and floods, as `iperf3 -i`
//! prints: requests sent and replies received in the interval, the loss, the median round
//! trip and the jitter, so a change halfway through a long run is not averaged away.

use std::time::{Duration, Instant};

use common::output::round3;
use serde_json::json;

use crate::stats::Rtt;

/// The counters of the interval under way.
#[derive(Debug)]
pub(crate) struct Reporter {
    every: Duration,
    start: Instant,
    from: Instant,
    sent: u64,
    received: u64,
    rtts: Rtt,
}

impl Reporter {
    pub(crate) fn new(every: Duration, now: Instant) -> Self {
        Reporter {
            every,
            start: now,
            from: now,
            sent: 0,
            received: 0,
            rtts: Rtt::default(),
        }
    }

    pub(crate) fn sent(&mut self) {
        self.sent += 1;
    }

    pub(crate) fn replied(&mut self, rtt: Duration) {
        self.received += 1;
        self.rtts.add(rtt);
    }

    /// The line and JSON fields of the interval that ended by `now`, if one did; the next
    /// interval starts empty.
    pub(crate) fn due(&mut self, now: Instant) -> Option<(String, serde_json::Value)> {
        if now.duration_since(self.from) < self.every {
            return None;
        }
        let (from, to) = (self.secs(self.from), self.secs(now));
        let loss = if self.sent == 0 {
            0.0
        } else {
            self.sent.saturating_sub(self.received) as f64 * 100.0 / self.sent as f64
        };
        let summary = self.rtts.summary();
        let (p50, jitter) = summary.map_or((None, None), |s| (Some(s.p50), Some(s.jitter)));
        let ms = |x: Option<f64>| x.map_or("-".to_string(), |x| format!("{x:.3} ms"));
        let text = format!(
            "[{from:6.1}-{to:6.1} s]  {} sent, {} received, {loss:.1}% loss, p50 {}, jitter {}",
            self.sent,
            self.received,
            ms(p50),
            ms(jitter)
        );
        let fields = json!({
            "event": "interval", "start_s": round3(from), "end_s": round3(to),
            "sent": self.sent, "received": self.received, "loss_percent": (loss * 100.0).round() / 100.0,
            "p50_ms": p50.map(round3), "jitter_ms": jitter.map(round3),
        });
        *self = Reporter::new(self.every, self.start);
        self.from = now;
        Some((text, fields))
    }

    fn secs(&self, at: Instant) -> f64 {
        at.duration_since(self.start).as_secs_f64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_interval_reports_its_own_counts_and_the_next_starts_empty() {
        let t0 = Instant::now();
        let mut r = Reporter::new(Duration::from_secs(1), t0);
        for ms in [10, 20] {
            r.sent();
            r.replied(Duration::from_millis(ms));
        }
        r.sent();
        assert!(r.due(t0 + Duration::from_millis(500)).is_none());
        let (text, json) = r.due(t0 + Duration::from_secs(1)).unwrap();
        assert_eq!(
            text,
            "[   0.0-   1.0 s]  3 sent, 2 received, 33.3% loss, p50 10.000 ms, jitter 0.625 ms"
        );
        assert_eq!(
            (json["event"].as_str(), json["sent"].as_u64(), json["received"].as_u64()),
            (Some("interval"), Some(3), Some(2))
        );
        assert!(r.due(t0 + Duration::from_millis(1500)).is_none());
        let (text, _) = r.due(t0 + Duration::from_secs(2)).unwrap();
        assert_eq!(
            text,
            "[   1.0-   2.0 s]  0 sent, 0 received, 0.0% loss, p50 -, jitter -"
        );
    }
}
