//! Round-trip time statistics, as `ping` reports them.

use std::time::Duration;

use common::output::round3;
use hdrhistogram::Histogram;
use serde::Serialize;

/// A time in milliseconds, in JSON to the microsecond.
fn micros<S: serde::Serializer>(ms: &f64, s: S) -> Result<S::Ok, S::Error> {
    s.serialize_f64(round3(*ms))
}

/// Significant digits the histogram keeps: every percentile is within 0.1 % of the true
/// value (hdrhistogram's guarantee for 3 digits), whatever the count.
pub const SIGNIFICANT_DIGITS: u8 = 3;

/// The histogram's range: 1 ns to an hour (a longer round trip counts as an hour there; the
/// exact max still says how long it took). Fixed, so its memory is too: about 200 KB.
const LONGEST_NS: u64 = 3_600_000_000_000;

/// Round-trip times collected during a run, as streaming statistics: memory stays the same
/// for ten pings or ten million. Min, max, mean, `mdev` and jitter are exact; p50, p99 and
/// the histogram come from an HDR histogram, within 0.1 %.
#[derive(Debug, Clone)]
pub struct Rtt {
    count: u64,
    min: Duration,
    max: Duration,
    /// Welford's running mean and sum of squared differences, in milliseconds: exact and
    /// stable over any number of samples.
    mean: f64,
    m2: f64,
    /// The previous sample and the RFC 3550 jitter so far.
    last: Option<f64>,
    jitter: f64,
    /// Nanoseconds; `None` only if the histogram could not be made (it always can).
    histogram: Option<Histogram<u64>>,
}

impl Default for Rtt {
    fn default() -> Self {
        Rtt {
            count: 0,
            min: Duration::MAX,
            max: Duration::ZERO,
            mean: 0.0,
            m2: 0.0,
            last: None,
            jitter: 0.0,
            histogram: Histogram::new_with_bounds(1, LONGEST_NS, SIGNIFICANT_DIGITS).ok(),
        }
    }
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
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
        self.count += 1;
        self.min = self.min.min(rtt);
        self.max = self.max.max(rtt);
        let x = ms(rtt);
        let delta = x - self.mean;
        self.mean += delta / self.count as f64;
        self.m2 += delta * (x - self.mean);
        // RFC 3550 section 6.4.1's estimator over successive samples, in arrival order.
        if let Some(last) = self.last {
            self.jitter += ((x - last).abs() - self.jitter) / 16.0;
        }
        self.last = Some(x);
        if let Some(h) = &mut self.histogram {
            h.saturating_record(u64::try_from(rtt.as_nanos()).unwrap_or(u64::MAX).max(1));
        }
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
    /// assert_eq!((s.min, s.avg, s.max), (1.0, 2.0, 3.0));
    /// assert!((s.p50 - 2.0).abs() <= 2.0 * 0.001); // within 0.1 %
    /// ```
    pub fn summary(&self) -> Option<RttSummary> {
        if self.count == 0 {
            return None;
        }
        let (min, max) = (ms(self.min), ms(self.max));
        // Nearest rank, as the histogram sees it: never outside the exact min and max.
        let rank = |q: f64| {
            self.histogram
                .as_ref()
                .map_or(max, |h| h.value_at_quantile(q) as f64 / 1e6)
                .clamp(min, max)
        };
        Some(RttSummary {
            min,
            avg: self.mean,
            p50: rank(0.50),
            p99: rank(0.99),
            max,
            mdev: (self.m2 / self.count as f64).max(0.0).sqrt(),
            jitter: self.jitter,
        })
    }

    /// The round trips in log-spaced buckets from the fastest to the slowest; the counts
    /// sum to the number of samples.
    pub fn histogram(&self) -> Vec<Bucket> {
        let Some(h) = self.histogram.as_ref().filter(|_| self.count > 0) else {
            return Vec::new();
        };
        let (lo, hi) = (ms(self.min), ms(self.max));
        let bounds: Vec<f64> = if hi <= lo * 1.0001 || lo <= 0.0 {
            vec![hi]
        } else {
            let step = (hi / lo).powf(1.0 / f64::from(BUCKETS));
            (1..=BUCKETS)
                .map(|k| if k == BUCKETS { hi } else { lo * step.powi(k as i32) })
                .collect()
        };
        let mut buckets: Vec<Bucket> = bounds.iter().map(|&le_ms| Bucket { le_ms, count: 0 }).collect();
        for v in h.iter_recorded() {
            // The middle of the histogram's bin: within 0.1 % of every sample in it.
            let x = (h.median_equivalent(v.value_iterated_to()) as f64 / 1e6).clamp(lo, hi);
            let i = bounds.iter().position(|&b| x <= b).unwrap_or(bounds.len() - 1);
            buckets[i].count += v.count_at_value();
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
        assert_eq!((s.min, s.max), (1.0, 100.0));
        // Percentiles come from the histogram: within 0.1 % of the nearest rank.
        assert!((s.p50 - 50.0).abs() <= 0.05, "{}", s.p50);
        assert!((s.p99 - 99.0).abs() <= 0.099, "{}", s.p99);
        assert!((s.avg - 50.5).abs() < 1e-9);
        assert!(Rtt::default().summary().is_none());
    }
}
