//! One direction of the relay (up: clients to the server; down: the server to its clients)
//! and the bad network inside it: the receivers' faults (`common::faults`: loss,
//! duplication, delay, reordering) plus two of its own, `--corrupt` (one byte flipped) and
//! `--truncate` (cut to N bytes), and what each did, counted.

use std::net::SocketAddr;
use std::time::Instant;

use common::faults::{Delivery, FaultConfig, FaultCounts, Faults};
use serde::Serialize;

/// What the network does to one direction.
#[derive(Debug, Clone, Copy, Default, PartialEq)]
pub struct FlowFaults {
    /// Loss, duplication, delay and reordering (with their seed), as the receivers inject them.
    pub faults: FaultConfig,
    /// Probability that one byte of a datagram is flipped (`--corrupt`).
    pub corrupt: f64,
    /// Every datagram is cut to at most this many bytes (`--truncate`).
    pub truncate: Option<usize>,
}

impl FlowFaults {
    /// Whether anything at all is done to this direction.
    pub fn is_active(&self) -> bool {
        self.faults.is_active() || self.corrupt > 0.0 || self.truncate.is_some()
    }

    /// `--drop 0.2 --corrupt 0.1 --seed 7`, for the start-up log.
    pub fn describe(&self) -> String {
        let mut text = self.faults.describe();
        if self.corrupt > 0.0 {
            text += &format!(" --corrupt {}", self.corrupt);
        }
        if let Some(n) = self.truncate {
            text += &format!(" --truncate {n}");
        }
        text
    }
}

/// What happened in one direction: the summary's `up` and `down`.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize)]
pub struct Flow {
    /// Datagrams that entered the relay in this direction.
    pub received: u64,
    /// Their bytes.
    pub bytes_in: u64,
    /// Datagrams sent on (a duplicate counts twice): what the other side can count.
    pub forwarded: u64,
    /// Their bytes: never more than `bytes_in` unless `--duplicate` was asked for.
    pub bytes_out: u64,
    /// Lost on purpose (`--drop`).
    pub dropped: u64,
    /// Sent twice (`--duplicate`).
    pub duplicated: u64,
    /// Held back (`--delay`).
    pub delayed: u64,
    /// Delivered after a later one (`--reorder`, or a longer delay).
    pub reordered: u64,
    /// One byte flipped (`--corrupt`).
    pub corrupted: u64,
    /// Cut to `--truncate` bytes.
    pub truncated: u64,
    /// Dropped because the delay queue was full ([`MAX_QUEUED`] datagrams).
    pub overflow: u64,
    /// Could not be sent (the OS refused: nobody listening, a full buffer).
    pub unsent: u64,
}

impl Flow {
    fn add_faults(&mut self, f: FaultCounts) {
        self.dropped = f.dropped;
        self.duplicated = f.duplicated;
        self.delayed = f.delayed;
        self.reordered = f.reordered;
    }

    /// `forwarded 10 (120 B), dropped 2, …`: only the faults that happened, after the rest.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "received {} ({} B), forwarded {} ({} B)",
            self.received, self.bytes_in, self.forwarded, self.bytes_out
        );
        for (name, n) in [
            ("dropped", self.dropped),
            ("duplicated", self.duplicated),
            ("delayed", self.delayed),
            ("reordered", self.reordered),
            ("corrupted", self.corrupted),
            ("truncated", self.truncated),
            ("overflow", self.overflow),
            ("unsent", self.unsent),
        ] {
            if n > 0 {
                text += &format!(", {name} {n}");
            }
        }
        text
    }
}

/// What happened during a run: the summary printed on stop.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct Summary {
    /// The address the relay was bound to (with the real port).
    #[serde(skip)]
    pub local: Option<SocketAddr>,
    /// Clients to the server.
    pub up: Flow,
    /// The server to its clients.
    pub down: Flow,
    /// Clients seen (each got an upstream socket).
    pub clients: u64,
    /// The most clients mapped at one time.
    pub peak_clients: u64,
    /// Mappings closed after `--idle` without traffic.
    pub expired: u64,
    /// Datagrams from new clients refused because `--max-clients` were mapped.
    pub full: u64,
    /// Datagrams from clients outside `--allow`.
    pub not_allowed: u64,
    /// Datagrams refused for safety (source port 0 or below 1024, this relay's own address).
    pub refused: u64,
    /// Datagrams refused because they were going round a loop (this relay, or relays in a ring).
    pub looped: u64,
    /// Bytes appended to `--save-up`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_up: Option<u64>,
    /// Bytes appended to `--save-down`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub saved_down: Option<u64>,
    /// Datagrams whose check bytes were wrong, up and down (`--checksum`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_bad: Option<u64>,
}

impl Summary {
    /// The `{"event":"summary",…}` fields.
    pub fn to_json(&self) -> serde_json::Value {
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The lines for stderr: one per direction, then the clients.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "udp-relay: up (clients to server): {}\nudp-relay: down (server to clients): {}\nudp-relay: {}, at most {} at once, {} expired",
            self.up.to_text(),
            self.down.to_text(),
            common::output::plural(self.clients, "client"),
            self.peak_clients,
            self.expired
        );
        for (what, n) in [
            ("refused (--max-clients reached)", self.full),
            ("not allowed (--allow)", self.not_allowed),
            ("refused (loop protection)", self.refused),
            ("stopped going round a loop", self.looped),
        ] {
            if n > 0 {
                text += &format!(", {what} {n}");
            }
        }
        if let Some(bad) = self.checksum_bad {
            text += &format!(", checksum bad {bad}");
        }
        text
    }
}

/// The most datagrams held back (delayed or reordered) in one direction: a flood through
/// `--delay` drops what does not fit (counted as `overflow`) instead of growing memory.
pub const MAX_QUEUED: u64 = 4096;

/// The most bytes held back in one direction (4096 datagrams of 65 507 bytes would be 268 MB):
/// the same cap as the receivers' `--delay` queue.
const QUEUED_BYTES_CAP: u64 = common::faults::MAX_QUEUED_BYTES as u64;

/// One direction's simulated network: the receivers' faults, then corruption and cuts.
#[derive(Debug)]
pub(crate) struct Network {
    faults: Option<Faults>,
    corrupt: f64,
    truncate: Option<usize>,
    /// The generator of `--corrupt`, seeded apart from the faults' own (whose four draws
    /// per datagram stay as the receivers make them, so the same seed drops the same ones).
    rng: u64,
    queued: u64,
    queued_bytes: u64,
    pub(crate) flow: Flow,
}

/// What [`Network::enter`] did with a datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Fate {
    /// Send it now, `len` bytes of it (after any cut).
    Now { len: usize, note: Option<&'static str> },
    /// The simulated network holds it (or lost it); see [`Network::take_due`].
    Held { dropped: bool },
}

impl Network {
    pub(crate) fn new(config: FlowFaults) -> Self {
        Network {
            faults: config.faults.is_active().then(|| Faults::new(config.faults)),
            corrupt: config.corrupt,
            truncate: config.truncate,
            rng: config.faults.seed ^ 0x5eed_c0de_0000_0001,
            queued: 0,
            queued_bytes: 0,
            flow: Flow::default(),
        }
    }

    /// A datagram enters: it is counted, maybe corrupted or cut (in place), then sent now
    /// or handed to the simulated network. No allocation unless the network holds it.
    pub(crate) fn enter(&mut self, data: &mut [u8], client: SocketAddr, now: Instant) -> Fate {
        self.flow.received += 1;
        self.flow.bytes_in += data.len() as u64;
        let (len, note) = self.mangle(data);
        let Some(faults) = &mut self.faults else {
            return Fate::Now { len, note };
        };
        if self.queued >= MAX_QUEUED || self.queued_bytes + len as u64 > QUEUED_BYTES_CAP {
            self.flow.overflow += 1;
            return Fate::Held { dropped: true };
        }
        let before = faults.counts();
        faults.arrive(now, &data[..len], client, None, len < data.len());
        let after = faults.counts();
        let dropped = after.dropped > before.dropped;
        let held = u64::from(!dropped) + (after.duplicated - before.duplicated);
        self.queued += held;
        self.queued_bytes += held * len as u64;
        Fate::Held { dropped }
    }

    /// The held datagrams due by `now`.
    pub(crate) fn take_due(&mut self, now: Instant, due: &mut Vec<Delivery>) {
        if let Some(faults) = &mut self.faults {
            let before = due.len();
            due.extend(faults.take_due(now));
            let released = &due[before..];
            self.queued = self.queued.saturating_sub(released.len() as u64);
            let bytes: u64 = released.iter().map(|d| d.data.len() as u64).sum();
            self.queued_bytes = self.queued_bytes.saturating_sub(bytes);
        }
    }

    /// When something held next falls due.
    pub(crate) fn next_due(&self) -> Option<Instant> {
        self.faults.as_ref()?.next_due()
    }

    /// One datagram went out (or could not).
    pub(crate) fn sent(&mut self, len: usize, ok: bool) {
        if ok {
            self.flow.forwarded += 1;
            self.flow.bytes_out += len as u64;
        } else {
            self.flow.unsent += 1;
        }
    }

    /// The counts, with what the simulated network did.
    pub(crate) fn flow(&self) -> Flow {
        let mut flow = self.flow;
        if let Some(faults) = &self.faults {
            flow.add_faults(faults.counts());
        }
        flow
    }

    /// `--truncate` and `--corrupt`, in place. Always two draws per datagram, so the same
    /// seed and the same traffic corrupt the same bytes of the same datagrams.
    fn mangle(&mut self, data: &mut [u8]) -> (usize, Option<&'static str>) {
        let (r_corrupt, r_where) = (self.unit(), self.unit());
        let mut note = None;
        let mut len = data.len();
        if let Some(n) = self.truncate.filter(|&n| n < len) {
            len = n;
            self.flow.truncated += 1;
            note = Some("truncated");
        }
        if r_corrupt < self.corrupt && len > 0 {
            let at = ((r_where * len as f64) as usize).min(len - 1);
            // XOR with 0xff flips every bit of the byte: never the same byte by chance.
            data[at] ^= 0xff;
            self.flow.corrupted += 1;
            note = Some(if note.is_some() {
                "truncated, corrupted"
            } else {
                "corrupted"
            });
        }
        (len, note)
    }

    /// A uniform number in [0, 1) (splitmix64).
    fn unit(&mut self) -> f64 {
        self.rng = self.rng.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.rng;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^= z >> 31;
        (z >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    fn corrupted(seed: u64) -> Vec<Vec<u8>> {
        let mut net = Network::new(FlowFaults {
            corrupt: 0.5,
            truncate: Some(6),
            faults: FaultConfig {
                seed,
                ..Default::default()
            },
        });
        (0..100u8)
            .map(|i| {
                let mut data = vec![i; 10];
                match net.enter(&mut data, peer(), Instant::now()) {
                    Fate::Now { len, .. } => data[..len].to_vec(),
                    Fate::Held { .. } => unreachable!("no faults that hold"),
                }
            })
            .collect()
    }

    #[test]
    fn corruption_flips_one_byte_and_cuts_are_exact_and_both_repeat_for_a_seed() {
        let a = corrupted(7);
        assert!(a.iter().all(|d| d.len() == 6), "every datagram cut to 6 bytes");
        for (i, d) in a.iter().enumerate() {
            let flipped = d.iter().filter(|&&b| b != i as u8).count();
            assert!(flipped <= 1, "{d:?}");
            if flipped == 1 {
                assert!(d.contains(&(i as u8 ^ 0xff)));
            }
        }
        let n = a
            .iter()
            .enumerate()
            .filter(|(i, d)| d.iter().any(|&b| b != *i as u8))
            .count();
        assert!((30..=70).contains(&n), "about half corrupted: {n}");
        assert_eq!(a, corrupted(7), "the same seed, the same bytes");
        assert_ne!(a, corrupted(8));
    }

    #[test]
    fn the_delay_queue_is_bounded() {
        let mut net = Network::new(FlowFaults {
            faults: FaultConfig {
                delay: Some((std::time::Duration::from_secs(60), std::time::Duration::from_secs(60))),
                ..Default::default()
            },
            ..Default::default()
        });
        let now = Instant::now();
        for _ in 0..MAX_QUEUED + 10 {
            net.enter(&mut [1, 2, 3], peer(), now);
        }
        assert_eq!(net.flow().overflow, 10);
        assert_eq!(net.flow().delayed, MAX_QUEUED);
        // In bytes too: 65 507-byte datagrams fill 16 MiB after 256 of them.
        let mut net = Network::new(FlowFaults {
            faults: FaultConfig {
                delay: Some((std::time::Duration::from_secs(60), std::time::Duration::from_secs(60))),
                ..Default::default()
            },
            ..Default::default()
        });
        let mut big = vec![0u8; 65_507];
        for _ in 0..300 {
            net.enter(&mut big, peer(), now);
        }
        assert_eq!(net.flow().delayed, QUEUED_BYTES_CAP / 65_507);
        assert_eq!(net.flow().overflow, 300 - QUEUED_BYTES_CAP / 65_507);
    }
}
