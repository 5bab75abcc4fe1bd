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

/// `--rate-limit` as written: `100/s` or `100`; `0` or `off` turns limiting off (`None`).
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
            Ok(0) => Ok(RateArg(None)),
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
    buckets: HashMap<IpAddr, Bucket>,
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
            buckets: HashMap::new(),
            overflow: full,
        }
    }

    /// Whether `source` may get a reply now; spends a token if so.
    pub fn allow(&mut self, source: IpAddr, now: Instant) -> bool {
        let limit = self.limit;
        if limit.exempt_loopback && is_loopback(source) {
            return true;
        }
        if !self.buckets.contains_key(&source) && self.buckets.len() >= MAX_SOURCES {
            self.forget_idle(now);
        }
        let bucket = if self.buckets.len() < MAX_SOURCES || self.buckets.contains_key(&source) {
            self.buckets.entry(source).or_insert(Bucket {
                tokens: f64::from(limit.burst),
                last: now,
            })
        } else {
            &mut self.overflow
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

    /// Drops buckets that have refilled completely: such a source is no different from a
    /// new one.
    fn forget_idle(&mut self, now: Instant) {
        let limit = self.limit;
        let refill = f64::from(limit.burst) / f64::from(limit.per_second.max(1));
        self.buckets
            .retain(|_, b| now.saturating_duration_since(b.last).as_secs_f64() < refill);
    }

    /// How many sources have a bucket of their own.
    pub fn sources(&self) -> usize {
        self.buckets.len()
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
        assert_eq!("0/s".parse(), Ok(RateArg(None)));
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
        // Two seconds later everyone has refilled: idle buckets are forgotten, room is made.
        assert!(l.allow(ip(9), t0 + Duration::from_secs(2)));
        assert_eq!(l.sources(), 1);
    }
}
