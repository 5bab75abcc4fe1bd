//! Fault injection on the receiving side: what a real network does to datagrams (loss,
//! duplication, delay, reordering), made to happen on one loopback machine, where nothing
//! is ever lost, so a learner can watch the chapter's warnings come true.
//!
//! A receiving program hands every datagram it reads to [`Faults::arrive`] and processes
//! what [`Faults::take_due`] gives back: nothing (dropped), one copy, or two (duplicated),
//! now or later (delayed), or after the next one (reordered). Delays wait in a queue, never
//! in a sleep, so other peers keep being served. Every arrival draws the same four random
//! numbers from a generator seeded with `--seed`: the same seed and the same datagrams give
//! the same faults.

use std::cmp::Reverse;
use std::collections::BinaryHeap;
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use crate::dest::Destination;
use crate::{Error, Result};

/// The longest a reordered datagram waits for a later one to overtake it.
pub const MAX_HOLD: Duration = Duration::from_millis(200);

/// What to inject; all zero means nothing.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability that a datagram is lost (`--drop`).
    pub drop: f64,
    /// Probability that a datagram arrives twice (`--duplicate`).
    pub duplicate: f64,
    /// Every datagram waits a random time in this range (`--delay 50ms..150ms`).
    pub delay: Option<(Duration, Duration)>,
    /// Probability that a datagram is overtaken by the next one (`--reorder`).
    pub reorder: f64,
    /// Seed of the random choices (`--seed`).
    pub seed: u64,
}

impl FaultConfig {
    /// Whether any fault is asked for.
    pub fn is_active(&self) -> bool {
        self.drop > 0.0 || self.duplicate > 0.0 || self.delay.is_some() || self.reorder > 0.0
    }

    /// `--drop 0.3 --seed 7`-style description for the start-up log.
    pub fn describe(&self) -> String {
        let mut parts = Vec::new();
        for (name, p) in [
            ("drop", self.drop),
            ("duplicate", self.duplicate),
            ("reorder", self.reorder),
        ] {
            if p > 0.0 {
                parts.push(format!("--{name} {p}"));
            }
        }
        if let Some((lo, hi)) = self.delay {
            parts.push(format!(
                "--delay {}..{}",
                crate::duration::display(lo),
                crate::duration::display(hi)
            ));
        }
        parts.push(format!("--seed {}", self.seed));
        parts.join(" ")
    }
}

/// How many datagrams each fault touched: the summary's `dropped`, `duplicated`,
/// `delayed` and `reordered`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct FaultCounts {
    /// Datagrams thrown away.
    pub dropped: u64,
    /// Datagrams delivered twice.
    pub duplicated: u64,
    /// Datagrams held back for their delay.
    pub delayed: u64,
    /// Datagrams delivered after the one that arrived next.
    pub reordered: u64,
}

impl FaultCounts {
    /// Adds `dropped`, `duplicated`, `delayed` and `reordered` to a summary object.
    pub fn add_to(&self, summary: &mut serde_json::Value) {
        summary["dropped"] = self.dropped.into();
        summary["duplicated"] = self.duplicated.into();
        summary["delayed"] = self.delayed.into();
        summary["reordered"] = self.reordered.into();
    }

    /// `; injected: dropped 3, duplicated 1, delayed 0, reordered 2`, for a summary line.
    pub fn to_text(&self) -> String {
        format!(
            "; injected: dropped {}, duplicated {}, delayed {}, reordered {}",
            self.dropped, self.duplicated, self.delayed, self.reordered
        )
    }
}

/// One datagram handed back to the program, with what happened to it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Delivery {
    /// The payload.
    pub data: Vec<u8>,
    /// Its sender.
    pub peer: SocketAddr,
    /// Where it was sent to, when known (see [`crate::dest`]).
    pub to: Option<Destination>,
    /// It was longer than the receive buffer and was cut before it entered.
    pub truncated: bool,
    /// What the faults did, for the program's output (`duplicate`, `delayed`, `reordered`).
    pub note: Option<&'static str>,
}

/// A parsed `--drop`/`--duplicate`/`--reorder` value: a probability from 0 to 1.
///
/// # Errors
/// [`Error::Usage`] naming the value.
pub fn parse_probability(text: &str) -> Result<f64> {
    match text.trim().parse::<f64>() {
        Ok(p) if (0.0..=1.0).contains(&p) => Ok(p),
        _ => Err(Error::Usage(format!(
            "bad probability '{text}': use a number from 0 to 1 (e.g. 0.3 for 30%)"
        ))),
    }
}

/// A parsed `--delay`: `50ms` (always that long) or `50ms..150ms` (uniform in the range).
///
/// # Errors
/// [`Error::Usage`] naming the value.
pub fn parse_delay(text: &str) -> Result<(Duration, Duration)> {
    let (lo, hi) = match text.split_once("..") {
        Some((lo, hi)) => (crate::duration::parse(lo)?, crate::duration::parse(hi)?),
        None => {
            let d = crate::duration::parse(text)?;
            (d, d)
        }
    };
    if lo > hi {
        return Err(Error::Usage(format!(
            "bad delay '{text}': the first duration must not exceed the second"
        )));
    }
    Ok((lo, hi))
}

/// The datagrams in flight inside the simulated network.
#[derive(Debug)]
pub struct Faults {
    config: FaultConfig,
    rng: crate::rng::Rng,
    /// Delayed datagrams by due time; `pushed` keeps arrival order among equal times.
    queue: BinaryHeap<Reverse<(Instant, u64, Pending)>>,
    arrivals: u64,
    pushed: u64,
    /// A datagram waiting to be overtaken by a later one, with its duplicate if any.
    held: Option<Held>,
    ready: Vec<Delivery>,
    counts: FaultCounts,
    /// The latest arrival delivered so far: an earlier one delivered after it was reordered.
    latest_delivered: u64,
}

#[derive(Debug)]
struct Held {
    until: Instant,
    id: u64,
    copies: Vec<Delivery>,
}

#[derive(Debug, PartialEq, Eq, PartialOrd, Ord)]
struct Pending {
    /// Which arrival this is; a duplicate shares its original's.
    id: u64,
    reorder: bool,
    data: Vec<u8>,
    peer: SocketAddr,
    to: Option<Destination>,
    truncated: bool,
    note: Option<&'static str>,
}

impl Faults {
    /// A simulated network applying `config`.
    pub fn new(config: FaultConfig) -> Self {
        Faults {
            config,
            rng: crate::rng::Rng::new(config.seed),
            queue: BinaryHeap::new(),
            arrivals: 0,
            pushed: 0,
            held: None,
            ready: Vec::new(),
            counts: FaultCounts::default(),
            latest_delivered: 0,
        }
    }

    /// The counts so far.
    pub fn counts(&self) -> FaultCounts {
        self.counts
    }

    /// A datagram read from the socket enters the simulated network; where it was sent and
    /// whether the receive cut it travel with it.
    pub fn arrive(&mut self, now: Instant, data: &[u8], peer: SocketAddr, to: Option<Destination>, truncated: bool) {
        // Always four draws per datagram, so each fault's choices do not depend on the others.
        let (r_drop, r_dup, r_delay, r_reorder) = (self.unit(), self.unit(), self.unit(), self.unit());
        if r_drop < self.config.drop {
            self.counts.dropped += 1;
            return;
        }
        let due = match self.config.delay {
            Some((lo, hi)) => {
                self.counts.delayed += 1;
                now + lo + (hi - lo).mul_f64(r_delay)
            }
            None => now,
        };
        let reorder = r_reorder < self.config.reorder;
        let note = self.config.delay.map(|_| "delayed");
        self.arrivals += 1;
        let id = self.arrivals;
        let original = Pending {
            id,
            reorder,
            data: data.to_vec(),
            peer,
            to,
            truncated,
            note,
        };
        if r_dup < self.config.duplicate {
            self.counts.duplicated += 1;
            let copy = Pending {
                data: original.data.clone(),
                note: Some("duplicate"),
                ..original
            };
            self.push(due, original);
            self.push(due, copy);
        } else {
            self.push(due, original);
        }
    }

    /// The datagrams due by `now`, in the order the program should process them.
    pub fn take_due(&mut self, now: Instant) -> std::vec::Drain<'_, Delivery> {
        while self.queue.peek().is_some_and(|Reverse((due, _, _))| *due <= now) {
            let Some(Reverse((_, _, pending))) = self.queue.pop() else {
                break;
            };
            let (id, copy) = (pending.id, pending.note == Some("duplicate"));
            let delivery = Delivery {
                data: pending.data,
                peer: pending.peer,
                to: pending.to,
                truncated: pending.truncated,
                note: pending.note,
            };
            match &mut self.held {
                // A duplicate stays with its held original: it must not overtake it.
                Some(held) if held.id == pending.id => {
                    held.copies.push(delivery);
                    continue;
                }
                None if pending.reorder => {
                    self.held = Some(Held {
                        until: now + MAX_HOLD,
                        id: pending.id,
                        copies: vec![delivery],
                    });
                    continue;
                }
                _ => {}
            }
            self.count_order(id, copy);
            self.ready.push(delivery);
            // Whatever was held is overtaken by this one, and follows it.
            if let Some(held) = self.held.take() {
                self.release(held, Some("reordered"));
            }
        }
        if let Some(held) = self.held.take_if(|held| held.until <= now) {
            // Nothing overtook it in time: it goes alone, in order after all.
            self.release(held, None);
        }
        self.ready.drain(..)
    }

    /// When something next falls due, if anything waits.
    pub fn next_due(&self) -> Option<Instant> {
        let queued = self.queue.peek().map(|Reverse((due, _, _))| *due);
        let held = self.held.as_ref().map(|held| held.until);
        match (queued, held) {
            (Some(a), Some(b)) => Some(a.min(b)),
            (a, b) => a.or(b),
        }
    }

    /// How long a receive may wait so that the next delivery is on time: until it falls
    /// due, at least 100 µs and at most `poll`.
    pub fn read_timeout(&self, now: Instant, poll: Duration) -> Duration {
        let wait = self.next_due().map_or(poll, |due| due.saturating_duration_since(now));
        wait.clamp(Duration::from_micros(100), poll)
    }

    /// Counts an original delivered after a later arrival: what a receiver sees as
    /// reordering, whether `--reorder` held it back or a longer `--delay` made it late. The
    /// copy of a duplicate is counted as a duplicate, not again here.
    fn count_order(&mut self, id: u64, copy: bool) {
        if copy {
            return;
        }
        if id < self.latest_delivered {
            self.counts.reordered += 1;
        }
        self.latest_delivered = self.latest_delivered.max(id);
    }

    fn release(&mut self, held: Held, note: Option<&'static str>) {
        self.count_order(held.id, false);
        for (i, mut copy) in held.copies.into_iter().enumerate() {
            if i == 0 && note.is_some() {
                copy.note = note;
            }
            self.ready.push(copy);
        }
    }

    fn push(&mut self, due: Instant, pending: Pending) {
        self.pushed += 1;
        self.queue.push(Reverse((due, self.pushed, pending)));
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.rng.unit()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    fn run(config: FaultConfig, n: u8) -> (Vec<Vec<u8>>, FaultCounts) {
        let mut f = Faults::new(config);
        let t0 = Instant::now();
        let mut out = Vec::new();
        for i in 0..n {
            let now = t0 + Duration::from_millis(u64::from(i) * 10);
            f.arrive(now, &[i], peer(), None, false);
            out.extend(f.take_due(now).map(|d| d.data));
        }
        out.extend(f.take_due(t0 + Duration::from_secs(10)).map(|d| d.data));
        (out, f.counts())
    }

    #[test]
    fn probabilities_and_delays_parse_or_say_why_not() {
        assert_eq!(parse_probability("0.3").unwrap(), 0.3);
        assert_eq!(parse_probability("1").unwrap(), 1.0);
        for bad in ["-0.1", "1.5", "NaN", "x", ""] {
            assert!(
                parse_probability(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("bad probability"),
                "{bad}"
            );
        }
        assert_eq!(
            parse_delay("50ms").unwrap(),
            (Duration::from_millis(50), Duration::from_millis(50))
        );
        assert_eq!(
            parse_delay("50ms..150ms").unwrap(),
            (Duration::from_millis(50), Duration::from_millis(150))
        );
        assert!(parse_delay("2s..1s").is_err());
    }

    #[test]
    fn no_faults_deliver_everything_at_once_in_order() {
        let (out, counts) = run(FaultConfig::default(), 50);
        assert_eq!(out, (0..50).map(|i| vec![i]).collect::<Vec<_>>());
        assert_eq!(counts, FaultCounts::default());
    }

    #[test]
    fn the_same_seed_gives_the_same_faults() {
        let config = FaultConfig {
            drop: 0.3,
            duplicate: 0.2,
            reorder: 0.2,
            seed: 7,
            ..Default::default()
        };
        let (a, ca) = run(config, 200);
        let (b, cb) = run(config, 200);
        assert_eq!((a, ca), (b, cb));
        let (c, _) = run(FaultConfig { seed: 8, ..config }, 200);
        assert_ne!(run(config, 200).0, c);
    }

    #[test]
    fn counts_match_what_was_delivered() {
        let config = FaultConfig {
            drop: 0.3,
            duplicate: 0.2,
            reorder: 0.2,
            seed: 11,
            ..Default::default()
        };
        let (out, counts) = run(config, 200);
        assert_eq!(out.len() as u64, 200 - counts.dropped + counts.duplicated);
        // Roughly the asked-for rates (200 draws: well within these bounds).
        assert!((35..=85).contains(&counts.dropped), "{counts:?}");
        assert!(counts.duplicated > 10 && counts.reordered > 5, "{counts:?}");
        let swaps = out.windows(2).filter(|w| w[0][0] > w[1][0]).count() as u64;
        assert_eq!(
            swaps, counts.reordered,
            "each reorder is one datagram overtaken by the next"
        );
    }

    /// `--delay 0ms..50ms` alone reorders: a datagram delayed longer than the next is
    /// delivered after it. The count is what a receiver sees: originals that come after a
    /// later one.
    #[test]
    fn delays_that_overtake_are_counted_as_reordered() {
        let config = FaultConfig {
            delay: Some((Duration::ZERO, Duration::from_millis(50))),
            seed: 3,
            ..Default::default()
        };
        let (out, counts) = run(config, 100);
        assert_eq!(out.len(), 100);
        let mut latest = 0;
        let mut late = 0;
        for d in &out {
            if d[0] < latest {
                late += 1;
            }
            latest = latest.max(d[0]);
        }
        assert!(late > 5, "a 50 ms spread over 10 ms gaps reorders often: {late}");
        assert_eq!(counts.reordered, late, "{counts:?}");
    }

    #[test]
    fn delays_wait_in_the_queue_not_in_a_sleep() {
        let config = FaultConfig {
            delay: Some((Duration::from_millis(50), Duration::from_millis(150))),
            ..Default::default()
        };
        let mut f = Faults::new(config);
        let t0 = Instant::now();
        f.arrive(t0, b"x", peer(), None, false);
        assert_eq!(f.take_due(t0).count(), 0);
        let due = f.next_due().unwrap();
        assert!(due >= t0 + Duration::from_millis(50) && due <= t0 + Duration::from_millis(150));
        assert_eq!(f.take_due(due).map(|d| d.note).collect::<Vec<_>>(), [Some("delayed")]);
        assert_eq!(f.counts().delayed, 1);
    }

    #[test]
    fn a_held_datagram_goes_alone_after_the_longest_hold() {
        let mut f = Faults::new(FaultConfig {
            reorder: 1.0,
            ..Default::default()
        });
        let t0 = Instant::now();
        f.arrive(t0, b"last", peer(), None, false);
        assert_eq!(f.take_due(t0).count(), 0);
        assert_eq!(f.next_due(), Some(t0 + MAX_HOLD));
        assert_eq!(
            f.take_due(t0 + MAX_HOLD).map(|d| d.data).collect::<Vec<_>>(),
            [b"last".to_vec()]
        );
        assert_eq!(f.counts().reordered, 0, "nothing overtook it");
    }
}
