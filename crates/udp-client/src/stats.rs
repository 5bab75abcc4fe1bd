//! Round-trip time statistics, as `ping` reports them.

use std::time::Duration;

use common::output::round3;
use serde::Serialize;

/// A time in milliseconds, in JSON to the microsecond.
fn micros<S: serde::Serializer>(ms: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round3(*ms))
}

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
    /// Population standard deviation, as iputils `ping` prints it (`mdev`).
    pub mdev: f64,
    /// RFC 3550 interarrival jitter over successive round trips, in arrival order:
    /// `J += (|D| − J) / 16`, D the difference of two successive RTTs (as iperf3 and VoIP
    /// tools report it): how much the delay wobbles, not how large it is.
    pub jitter: f64,
}

/// One bar of the RTT histogram: how many round trips took at most `le_ms`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Bucket {
    /// Upper bound, in milliseconds (inclusive); JSON rounds it to the microsecond.
    #[serde(serialize_with = "micros")]
    pub le_ms: f64,
    /// Round trips in this bucket (above the previous bound).
    pub count: u64,
}

/// Histogram buckets: log-spaced between the fastest and the slowest round trip, since
/// round trips spread over orders of magnitude (a loopback echo, a delayed one).
const BUCKETS: u32 = 8;

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
        let avg = ms(total) / sorted.len() as f64;
        let variance = sorted.iter().map(|&d| (ms(d) - avg).powi(2)).sum::<f64>() / sorted.len() as f64;
        Some(RttSummary {
            min: ms(sorted[0]),
            avg,
            p50: rank(50.0),
            p99: rank(99.0),
            max: ms(sorted[sorted.len() - 1]),
            mdev: variance.sqrt(),
            jitter: self.jitter(),
        })
    }

    /// RFC 3550 section 6.4.1's estimator over successive samples, in arrival order.
    fn jitter(&self) -> f64 {
        let ms = |d: &Duration| d.as_secs_f64() * 1e3;
        self.samples
            .windows(2)
            .fold(0.0, |j, pair| j + ((ms(&pair[1]) - ms(&pair[0])).abs() - j) / 16.0)
    }

    /// The round trips in log-spaced buckets from the fastest to the slowest; the counts
    /// sum to the number of samples.
    pub fn histogram(&self) -> Vec<Bucket> {
        let ms: Vec<f64> = self.samples.iter().map(|d| d.as_secs_f64() * 1e3).collect();
        let (Some(lo), Some(hi)) = (ms.iter().copied().reduce(f64::min), ms.iter().copied().reduce(f64::max)) else {
            return Vec::new();
        };
        let bounds: Vec<f64> = if hi <= lo * 1.0001 || lo <= 0.0 {
            vec![hi]
        } else {
            let step = (hi / lo).powf(1.0 / f64::from(BUCKETS));
            (1..=BUCKETS)
                .map(|k| if k == BUCKETS { hi } else { lo * step.powi(k as i32) })
                .collect()
        };
        let mut buckets: Vec<Bucket> = bounds.iter().map(|&le_ms| Bucket { le_ms, count: 0 }).collect();
        for x in ms {
            let i = bounds.iter().position(|&b| x <= b).unwrap_or(bounds.len() - 1);
            buckets[i].count += 1;
        }
        buckets
    }
}

/// The histogram as text bars, scaled to the widest, one line a bucket.
pub fn histogram_text(buckets: &[Bucket]) -> String {
    const WIDTH: u64 = 40;
    let widest = buckets.iter().map(|b| b.count).max().unwrap_or(0).max(1);
    let mut text = String::from("rtt histogram (ms):");
    for b in buckets {
        let bar = "█".repeat(((b.count * WIDTH).div_ceil(widest)) as usize);
        text += &format!("\n  <= {:>9.3}  {bar} {}", b.le_ms, b.count);
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    /// By hand for 10, 20, 15, 15 ms: mean 15, population variance (25 + 25 + 0 + 0) / 4 =
    /// 12.5, so mdev = √12.5 = 3.5355…; jitter: 0 → 10/16 = 0.625 → 0.625 + (5 − 0.625)/16
    /// = 0.8984375 → 0.8984375 + (0 − 0.8984375)/16 = 0.84228515625.
    #[test]
    fn mdev_and_rfc3550_jitter_by_hand() {
        let mut rtt = Rtt::default();
        for ms in [10, 20, 15, 15] {
            rtt.add(Duration::from_millis(ms));
        }
        let s = rtt.summary().unwrap();
        assert!((s.mdev - 12.5f64.sqrt()).abs() < 1e-9, "{}", s.mdev);
        assert!((s.jitter - 0.842_285_156_25).abs() < 1e-9, "{}", s.jitter);
    }

    #[test]
    fn the_histogram_counts_every_sample_once_in_log_spaced_buckets() {
        let mut rtt = Rtt::default();
        for us in [100, 110, 120, 200, 400, 800, 1600, 12_800] {
            rtt.add(Duration::from_micros(us));
        }
        let h = rtt.histogram();
        assert_eq!(h.len(), 8);
        assert_eq!(h.iter().map(|b| b.count).sum::<u64>(), 8);
        assert!((h[7].le_ms - 12.8).abs() < 1e-9, "the last bound is the slowest");
        assert!(h.windows(2).all(|w| w[0].le_ms < w[1].le_ms));
        // Log-spaced: each bound the same factor above the last, 128^(1/8) from 0.1 to 12.8 ms.
        let factor = 128f64.powf(1.0 / 8.0);
        assert!((h[0].le_ms - 0.1 * factor).abs() < 1e-9);
        assert!(h.windows(2).all(|w| (w[1].le_ms / w[0].le_ms - factor).abs() < 1e-6));
        let text = histogram_text(&h);
        assert!(
            text.lines().nth(1).unwrap().contains(&"█".repeat(40)),
            "the widest bar is full width:\n{text}"
        );
    }

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
