//! `--rate-limit N/s`: at most N replies a second to each source address, with a burst.
//!
//! UDP has no handshake, so anyone can put a victim's address as the sender of a datagram,
//! and the server's reply then goes to the victim. Replies are never longer than requests
//! (no amplification), but a server with a fast link could still flood someone on an
//! attacker's behalf. DNS servers limit responses per source for this reason (Response Rate
//! Limiting); this is the same idea: a token bucket per source IP address.
//!
//! Each source starts with `burst` tokens; a reply spends one; tokens come back at `N` a
//! second, up to `burst`. Over any span of `t` seconds a source gets at most
//! `N × t + burst` replies. Requests beyond that are still received and printed, not answered.

use std::collections::HashMap;
use std::net::IpAddr;
use std::str::FromStr;
use std::time::Instant;

/// The default when the server can be reached from other machines: enough for any
/// interactive use and for `udp-client --count` pings, far too little to flood anyone.
pub const DEFAULT_PER_SECOND: u32 = 100;

/// Sources with their own bucket; past this many (a flood with forged sources), new
/// sources share one bucket, so memory stays bounded and a forger gains nothing.
pub const MAX_SOURCES: usize = 4096;

/// How many buckets a new source may look at for one to take over when the table is full
/// (a "clock" sweep): a constant, so a flood of new sources costs the same per datagram
/// whether the table is empty or full (a full scan of 4 096 made each one 10 times dearer).
pub const CLOCK_STEPS: usize = 8;

/// `N/s` with a burst.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateLimit {
    /// Replies per second per source.
    pub per_second: u32,
    /// Replies a source may get at once after being quiet.
    pub burst: u32,
    /// Loopback sources are not limited: the default's choice, since only this machine can
    /// send from 127.0.0.0/8 or ::1 (the kernel drops such "martian" sources arriving from a
    /// network), so they cannot be forged from outside. An explicit `--rate-limit` limits all.
    pub exempt_loopback: bool,
}

impl RateLimit {
    /// `per_second` a second, with a burst of one second's worth.
    pub fn new(per_second: u32) -> Self {
        RateLimit {
            per_second,
            burst: per_second.max(1),
            exempt_loopback: false,
        }
    }
}

/// 127.0.0.0/8, ::1, and ::ffff:127.x.y.z (an IPv4 loopback source on a dual-stack socket).
fn is_loopback(ip: IpAddr) -> bool {
    match ip {
        IpAddr::V4(v4) => v4.is_loopback(),
        IpAddr::V6(v6) => v6.is_loopback() || v6.to_ipv4_mapped().is_some_and(|v4| v4.is_loopback()),
    }
}

/// `--rate-limit` as written: `100/s` or `100`; `off` turns limiting off (`None`). `0/s`
/// is refused: it used to mean "unlimited", the opposite of what it says.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RateArg(pub Option<u32>);

impl FromStr for RateArg {
    type Err = String;

    fn from_str(text: &str) -> Result<Self, String> {
        let t = text.trim();
        if t.eq_ignore_ascii_case("off") {
            return Ok(RateArg(None));
        }
        let number = t.strip_suffix("/s").unwrap_or(t);
        match number.parse::<u32>() {
            Ok(0) => Err(format!(
                "{text:?}: a rate of 0 would never reply; use --reply none for that, off for no limit, or a rate such as 100/s"
            )),
            Ok(n) => Ok(RateArg(Some(n))),
            Err(_) => Err(format!(
                "{text:?} is not a rate: use replies per second, e.g. 100/s, or off"
            )),
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    last: Instant,
}

/// Token buckets for the sources seen lately.
#[derive(Debug)]
pub struct Limiter {
    limit: RateLimit,
    /// Where each source's bucket is in `slots`.
    index: HashMap<IpAddr, usize>,
    slots: Vec<(IpAddr, Bucket)>,
    /// The next slot the clock sweep looks at.
    hand: usize,
    /// Shared by every source that arrives while the table is full.
    overflow: Bucket,
}

impl Limiter {
    /// A limiter with no sources yet.
    pub fn new(limit: RateLimit) -> Self {
        let full = Bucket {
            tokens: f64::from(limit.burst),
            last: Instant::now(),
        };
        Limiter {
            limit,
            index: HashMap::new(),
            slots: Vec::new(),
            hand: 0,
            overflow: full,
        }
    }

    /// Whether `source` may get a reply now; spends a token if so.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        let limit = self.limit;
        if limit.exempt_loopback && is_loopback(source) {
            return true;
        }
        let slot = match self.index.get(&source) {
            Some(&i) => Some(i),
            None => self.take_slot(source, now),
        };
        let bucket = match slot {
            Some(i) => &mut self.slots[i].1,
            None => &mut self.overflow,
        };
        let elapsed = now.saturating_duration_since(bucket.last).as_secs_f64();
        bucket.tokens = (bucket.tokens + elapsed * f64::from(limit.per_second)).min(f64::from(limit.burst));
        bucket.last = now;
        if bucket.tokens >= 1.0 {
            bucket.tokens -= 1.0;
            true
        } else {
            false
        }
    }

    /// A slot of its own for a new source: a free one, or (table full) the first of the
    /// next [`CLOCK_STEPS`] whose bucket has refilled completely, since such a source is no
    /// different from a new one. `None`: the source shares the overflow bucket.
    fn take_slot(&mut self, source: IpAddr, now: Instant) -> Option<usize> {
        let fresh = Bucket {
            tokens: f64::from(self.limit.burst),
            last: now,
        };
        if self.slots.len() < MAX_SOURCES {
            self.slots.push((source, fresh));
            self.index.insert(source, self.slots.len() - 1);
            return self.slots.len().checked_sub(1);
        }
        let refill = f64::from(self.limit.burst) / f64::from(self.limit.per_second.max(1));
        for _ in 0..CLOCK_STEPS {
            let i = self.hand;
            self.hand = (self.hand + 1) % self.slots.len();
            let (old, bucket) = self.slots[i];
            if now.saturating_duration_since(bucket.last).as_secs_f64() >= refill {
                self.index.remove(&old);
                self.slots[i] = (source, fresh);
                self.index.insert(source, i);
                return Some(i);
            }
        }
        None
    }

    /// How many sources have a bucket of their own.
    pub fn sources(&self) -> usize {
        self.slots.len()
    }

    /// Whether `source` has a bucket of its own.
    pub fn tracks(&self, source: IpAddr) -> bool {
        self.index.contains_key(&source)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    fn ip(last: u8) -> IpAddr {
        IpAddr::from([10, 0, 0, last])
    }

    #[test]
    fn parses_rates() {
        assert_eq!("100/s".parse(), Ok(RateArg(Some(100))));
        assert_eq!("5".parse(), Ok(RateArg(Some(5))));
        assert_eq!("off".parse(), Ok(RateArg(None)));
        // `0/s` meant "unlimited"; it is refused now.
        assert!(
            "0/s"
                .parse::<RateArg>()
                .unwrap_err()
                .contains("a rate of 0 would never reply")
        );
        assert!("0".parse::<RateArg>().is_err());
        assert!("fast".parse::<RateArg>().is_err());
        assert!("-1/s".parse::<RateArg>().is_err());
    }

    #[test]
    fn a_source_gets_its_burst_then_the_rate() {
        let mut l = Limiter::new(RateLimit {
            per_second: 10,
            burst: 5,
            exempt_loopback: false,
        });
        let t0 = Instant::now();
        // 1000 requests spread over 2 s: at most 10 × 2 + 5 replies.
        let allowed = (0..1000)
            .filter(|i| l.allow(ip(1), t0 + Duration::from_millis(i * 2)))
            .count();
        assert!((24..=25).contains(&allowed), "{allowed}");
        // Another source is not affected by the first one's flood.
        assert!(l.allow(ip(2), t0 + Duration::from_secs(2)));
    }

    #[test]
    fn forged_sources_share_one_bucket_once_the_table_is_full() {
        let mut l = Limiter::new(RateLimit::new(1));
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            assert!(l.allow(IpAddr::from(i.to_be_bytes()), t0));
        }
        assert_eq!(l.sources(), MAX_SOURCES);
        // The table is full and nobody is idle: the next sources share the overflow bucket,
        // which holds one token.
        let extra = (0..100u32)
            .filter(|i| l.allow(IpAddr::from((1_000_000 + i).to_be_bytes()), t0))
            .count();
        assert_eq!(extra, 1);
        assert_eq!(l.sources(), MAX_SOURCES);
        // Two seconds later everyone has refilled: an idle bucket is taken over.
        assert!(l.allow(ip(9), t0 + Duration::from_secs(2)));
        assert!(l.tracks(ip(9)));
        assert_eq!(l.sources(), MAX_SOURCES);
    }

    /// With the table full and nobody idle, a new source looks at no more than
    /// CLOCK_STEPS buckets: the sweep moves by at most that much per new source, where a
    /// full scan looked at all 4 096.
    #[test]
    fn a_new_source_costs_a_bounded_sweep_when_the_table_is_full() {
        let mut l = Limiter::new(RateLimit::new(1));
        let t0 = Instant::now();
        for i in 0..MAX_SOURCES as u32 {
            l.allow(IpAddr::from(i.to_be_bytes()), t0);
        }
        for i in 0..10u32 {
            let before = l.hand;
            l.allow(IpAddr::from((2_000_000 + i).to_be_bytes()), t0);
            assert_eq!((l.hand + MAX_SOURCES - before) % MAX_SOURCES, CLOCK_STEPS);
        }
        // Half the table goes idle: new sources find an idle bucket within the sweep.
        let later = t0 + Duration::from_secs(2);
        for i in (0..MAX_SOURCES as u32).step_by(2) {
            l.allow(IpAddr::from(i.to_be_bytes()), later - Duration::from_millis(500));
        }
        for i in 0..100u32 {
            let source = IpAddr::from((3_000_000 + i).to_be_bytes());
            l.allow(source, later);
            assert!(l.tracks(source), "{i}");
        }
    }
}
