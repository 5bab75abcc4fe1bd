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

/// The most payload bytes the simulated network holds at once (`--delay`, `--reorder`):
/// 16 MiB, 256 datagrams of 64 KB or 16 000 of 1 KB. Past it, an arrival is dropped and
/// counted (`queue_full`), as a router with a full queue would: without the cap, 6 029
/// delayed 65 KB datagrams held 387 MB.
pub const MAX_QUEUED_BYTES: usize = 16 * 1024 * 1024;

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
/// `delayed` and `reordered` (and `queue_full`, `pending_at_stop` when they happened).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct FaultCounts {
    /// Datagrams thrown away.
    pub dropped: u64,
    /// Datagrams delivered twice.
    pub duplicated: u64,
    /// Datagrams held back for their delay.
    pub delayed: u64,
    /// Datagrams delivered after the one that arrived next.
    pub reordered: u64,
    /// Datagrams dropped because the delay queue held [`MAX_QUEUED_BYTES`] already.
    #[serde(skip_serializing_if = "is_zero")]
    pub queue_full: u64,
    /// Datagrams still waiting in the delay queue when the program stopped: received,
    /// never delivered (not printed, not answered).
    #[serde(rename = "pending_at_stop", skip_serializing_if = "is_zero")]
    pub pending: u64,
}

impl FaultCounts {
    /// Adds `dropped`, `duplicated`, `delayed` and `reordered` to a summary object (and
    /// `queue_full`, `pending_at_stop` only when they happened, so a summary without them
    /// reads as it always did).
    pub fn add_to(&self, summary: &mut serde_json::Value) {
        if let (Ok(serde_json::Value::Object(fields)), Some(into)) =
            (serde_json::to_value(self), summary.as_object_mut())
        {
            into.extend(fields);
        }
    }

    /// `; injected: dropped 3, duplicated 1, delayed 0, reordered 2`, for a summary line
    /// (and `, dropped 5 (delay queue full)`, `, 2 still delayed at stop` when they happened).
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "; injected: dropped {}, duplicated {}, delayed {}, reordered {}",
            self.dropped, self.duplicated, self.delayed, self.reordered
        );
        if self.queue_full > 0 {
            text += &format!(", dropped {} (delay queue full)", self.queue_full);
        }
        if self.pending > 0 {
            text += &format!(", {} still delayed at stop (never delivered)", self.pending);
        }
        text
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
    /// Payload bytes in `queue` and `held`, kept under [`MAX_QUEUED_BYTES`].
    queued_bytes: usize,
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
            queued_bytes: 0,
            held: None,
            ready: Vec::new(),
            counts: FaultCounts::default(),
            latest_delivered: 0,
        }
    }

    /// The counts so far, with what is still waiting as `pending`.
    pub fn counts(&self) -> FaultCounts {
        let held = self.held.as_ref().map_or(0, |h| h.copies.len());
        FaultCounts {
            pending: (self.queue.len() + held) as u64,
            ..self.counts
        }
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
        let copies = if r_dup < self.config.duplicate { 2 } else { 1 };
        let queues = self.config.delay.is_some() || self.config.reorder > 0.0;
        if queues && self.queued_bytes + copies * data.len() > MAX_QUEUED_BYTES {
            self.counts.queue_full += 1;
            return;
        }
        let due = match self.config.delay {
            Some((lo, hi)) => {
                self.counts.delayed += 1;
                // Durations are at most a year (common::duration), so this cannot
                // overflow; should it, the datagram is due at once rather than a panic.
                let wait = lo.saturating_add((hi - lo).mul_f64(r_delay));
                now.checked_add(wait).unwrap_or(now)
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
        if copies == 2 {
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
            self.queued_bytes -= pending.data.len();
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
                    self.queued_bytes += delivery.data.len();
                    held.copies.push(delivery);
                    continue;
                }
                None if pending.reorder => {
                    self.queued_bytes += delivery.data.len();
                    self.held = Some(Held {
                        until: now.checked_add(MAX_HOLD).unwrap_or(now),
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
            self.queued_bytes -= copy.data.len();
            if i == 0 && note.is_some() {
                copy.note = note;
            }
            self.ready.push(copy);
        }
    }

    fn push(&mut self, due: Instant, pending: Pending) {
        self.pushed += 1;
        self.queued_bytes += pending.data.len();
        self.queue.push(Reverse((due, self.pushed, pending)));
    }

    /// A uniform number in [0, 1).
    fn unit(&mut self) -> f64 {
        self.rng.unit()
    }
}

/// For `skip_serializing_if`: a count that did not happen is left out.
fn is_zero(n: &u64) -> bool {
    *n == 0
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

    /// The delay queue held 387 MB for 6 029 delayed 65 KB datagrams; now arrivals past
    /// MAX_QUEUED_BYTES are dropped and counted, and the queue never holds more.
    #[test]
    fn the_delay_queue_is_capped_in_bytes_and_the_excess_counted() {
        let mut f = Faults::new(FaultConfig {
            delay: Some((Duration::from_secs(3600), Duration::from_secs(3600))),
            ..Default::default()
        });
        let t0 = Instant::now();
        let datagram = vec![0u8; 65_507];
        for _ in 0..1000 {
            f.arrive(t0, &datagram, peer(), None, false);
            assert!(f.queued_bytes <= MAX_QUEUED_BYTES);
        }
        let fits = (MAX_QUEUED_BYTES / datagram.len()) as u64;
        let counts = f.counts();
        assert_eq!(
            (counts.delayed, counts.queue_full, counts.pending),
            (fits, 1000 - fits, fits)
        );
        let mut summary = serde_json::json!({});
        counts.add_to(&mut summary);
        assert_eq!(summary["queue_full"], 1000 - fits);
        assert_eq!(summary["pending_at_stop"], fits);
        assert!(counts.to_text().ends_with(&format!(
            ", dropped {} (delay queue full), {fits} still delayed at stop (never delivered)",
            1000 - fits
        )));
        // Once delivered, the room comes back.
        assert_eq!(f.take_due(t0 + Duration::from_secs(3600)).count() as u64, fits);
        assert_eq!((f.queued_bytes, f.counts().pending), (0, 0));
        f.arrive(t0, &datagram, peer(), None, false);
        assert_eq!(f.counts().queue_full, 1000 - fits, "fits again");
    }

    /// Without the one-year bound on durations, `now + delay` panicked; a delay at the
    /// bound is held, not a crash.
    #[test]
    fn the_longest_delay_does_not_overflow() {
        let longest = crate::duration::MAX;
        let mut f = Faults::new(FaultConfig {
            delay: Some((longest, longest)),
            reorder: 1.0,
            ..Default::default()
        });
        let t0 = Instant::now();
        f.arrive(t0, b"x", peer(), None, false);
        assert_eq!(f.take_due(t0).count(), 0);
        assert_eq!(f.counts().pending, 1);
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
