//! Ping mode: sequence-numbered datagrams, replies matched by their number, and the loss,
//! duplicates, reordering and round-trip times a network really shows.
//!
//! Each request is the text `seq=N MESSAGE` (MESSAGE defaults to `ping`), readable in any
//! server's output; an echo server returns it unchanged, so the number identifies the
//! reply. Paced pings (`pinger.rs`) print a line per reply; with `--interval 0` the client
//! floods instead (`flood.rs`): it keeps `--window` datagrams in flight and reports echoed
//! datagrams per second. Both count with the same tracker (`tracker.rs`) and end with the
//! same summary (`summary.rs`).

pub(crate) mod flood;
mod graph;
pub(crate) mod pinger;
mod report;
pub(crate) mod summary;
mod tracker;

use std::net::SocketAddr;
use std::time::Duration;

use common::Result;

/// What paced pings and floods share: what to send, how many, how often to report.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Requests {
    /// The text after `seq=N ` (`ping` when `None`).
    pub message: Option<Vec<u8>>,
    /// How many requests.
    pub count: u64,
    /// A report line every so often (`--report-every`).
    pub report_every: Option<Duration>,
}

/// Paced pings: one request every `interval`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Ping {
    /// What to send, how many.
    pub requests: Requests,
    /// Time between requests (not zero: that is a [`Flood`]).
    pub interval: Duration,
    /// Draw a bar per reply on a terminal (`--graph`).
    pub graph: bool,
}

/// `--interval 0`: a window of requests in flight, refilled as echoes return.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Flood {
    /// What to send, how many.
    pub requests: Requests,
    /// The most requests in flight at once (`--window`).
    pub window: usize,
}

const DEFAULT_MESSAGE: &[u8] = b"ping";

impl Requests {
    /// The text after the sequence number.
    fn message(&self) -> &[u8] {
        self.message.as_deref().unwrap_or(DEFAULT_MESSAGE)
    }

    /// The largest request must fit the UDP limit: the message and the longest `seq=N `.
    pub(crate) fn check(&self, target: SocketAddr) -> Result<()> {
        match &self.message {
            Some(message) => crate::errors::check_size(message.len() + format!("seq={} ", self.count).len(), target),
            None => Ok(()),
        }
    }
}

/// The sequence number at the start of a reply: `seq=17 …`.
fn parse_seq(payload: &[u8]) -> Option<u64> {
    let rest = payload.strip_prefix(b"seq=")?;
    let end = rest.iter().position(|&b| b == b' ').unwrap_or(rest.len());
    std::str::from_utf8(&rest[..end]).ok()?.parse().ok()
}

/// The request for `seq`: `seq=N MESSAGE`.
fn request(seq: u64, message: &[u8]) -> Vec<u8> {
    let mut payload = format!("seq={seq} ").into_bytes();
    payload.extend_from_slice(message);
    payload
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_round_trip_through_the_payload() {
        assert_eq!(request(17, b"ping"), b"seq=17 ping");
        assert_eq!(parse_seq(b"seq=17 ping"), Some(17));
        assert_eq!(parse_seq(b"seq=3"), Some(3));
        for bad in [&b"seq= 1"[..], b"seq=x", b"SEQ=1", b"", b"seq=99999999999999999999999"] {
            assert_eq!(parse_seq(bad), None);
        }
    }
}
