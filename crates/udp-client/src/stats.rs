//! Round-trip time statistics, as `ping` reports them.

use std::time::Duration;

/// Round-trip times collected during a run.
#[derive(Debug, Default, Clone)]
pub struct Rtt {
    samples: Vec<Duration>,
}

/// min / avg / p50 / p99 / max of the samples, in milliseconds.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct RttSummary {
    /// Fastest round trip.
    pub min: f64,
    /// Mean round trip.
    pub avg: f64,
    /// Median (nearest rank).
    pub p50: f64,
    /// 99th percentile (nearest rank).
    pub p99: f64,
    /// Slowest round trip.
    pub max: f64,
}

impl Rtt {
    /// Adds one round trip.
    pub fn add(&mut self, rtt: Duration) {
        self.samples.push(rtt);
    }

    /// The summary, or `None` with no samples.
    ///
    /// # Examples
    /// ```
    /// use udp_client::stats::Rtt;
    /// use std::time::Duration;
    /// let mut rtt = Rtt::default();
    /// for ms in [3, 1, 2] { rtt.add(Duration::from_millis(ms)); }
    /// let s = rtt.summary().unwrap();
    /// assert_eq!((s.min, s.p50, s.max), (1.0, 2.0, 3.0));
    /// ```
    pub fn summary(&self) -> Option<RttSummary> {
        if self.samples.is_empty() {
            return None;
        }
        let mut sorted = self.samples.clone();
        sorted.sort_unstable();
        let ms = |d: Duration| d.as_secs_f64() * 1e3;
        // Nearest-rank percentile: the smallest sample with at least p% of samples at or below it.
        let rank = |p: f64| {
            let r = (p / 100.0 * sorted.len() as f64).ceil() as usize;
            ms(sorted[r.clamp(1, sorted.len()) - 1])
        };
        let total: Duration = sorted.iter().sum();
        Some(RttSummary {
            min: ms(sorted[0]),
            avg: ms(total) / sorted.len() as f64,
            p50: rank(50.0),
            p99: rank(99.0),
            max: ms(sorted[sorted.len() - 1]),
        })
    }
}

impl RttSummary {
    /// The JSON object of the summary line: `{"min":…,"avg":…,"p50":…,"p99":…,"max":…}`.
    pub fn to_json(&self) -> serde_json::Value {
        let r = |x: f64| (x * 1000.0).round() / 1000.0;
        serde_json::json!({
            "min": r(self.min), "avg": r(self.avg), "p50": r(self.p50), "p99": r(self.p99), "max": r(self.max),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nearest_rank_percentiles() {
        let mut rtt = Rtt::default();
        for ms in 1..=100 {
            rtt.add(Duration::from_millis(ms));
        }
        let s = rtt.summary().unwrap();
        assert_eq!((s.min, s.p50, s.p99, s.max), (1.0, 50.0, 99.0, 100.0));
        assert!((s.avg - 50.5).abs() < 1e-9);
        assert!(Rtt::default().summary().is_none());
    }
}
