//! What a run did, by mode: the text for stderr, the JSON fields of the last `--json`
//! line, and the exit rule.

use std::net::SocketAddr;

use common::Result;
use serde::Serialize;

use crate::errors::{TRY_LONGER, no_reply};
use crate::modes::{interactive, one_shot};

pub use crate::modes::discover::DiscoverySummary;
pub use crate::modes::file::FileSummary;
pub use crate::modes::ping::summary::PingSummary;
pub use crate::modes::repeat::RepeatSummary;
pub use crate::modes::script::ScriptSummary;

/// What a run did, by mode.
#[derive(Debug, Clone, PartialEq)]
pub enum Summary {
    /// One datagram sent; `reply` is false with `--no-reply` or after a stop request.
    OneShot {
        /// Whether a reply arrived.
        reply: bool,
        /// How many resends it took.
        retries: u32,
        /// How many bytes an echo lacked (a peer's buffer cut it), if it was cut.
        short_by: Option<u64>,
    },
    /// Lines sent, datagrams received.
    Interactive {
        /// Datagrams sent (one per line).
        sent: u64,
        /// Datagrams received from the target.
        received: u64,
    },
    /// The ping statistics (paced or flood).
    Ping(PingSummary),
    /// The same message sent again and again (or a capture's payloads).
    Repeat(RepeatSummary),
    /// A file sent in chunks.
    File(FileSummary),
    /// Probes to many (`--broadcast`), and who answered.
    Discovery(DiscoverySummary),
    /// A script's steps, passed and failed.
    Script(ScriptSummary),
}

impl Summary {
    /// The summary text (stderr; empty for a one-shot run that needed no resend, whose
    /// output is the reply itself) and JSON fields (every mode ends `--json` with them).
    pub fn report(&self) -> Option<(String, serde_json::Value)> {
        Some(match self {
            Summary::OneShot {
                reply,
                retries,
                short_by,
            } => one_shot::report(*reply, *retries, *short_by),
            Summary::Interactive { sent, received } => interactive::report(*sent, *received),
            Summary::Ping(p) => (p.to_text(), p.to_json()),
            Summary::Repeat(r) => r.report(),
            Summary::File(f) => (f.to_text(), f.to_json()),
            Summary::Discovery(d) => d.report(),
            Summary::Script(s) => s.report(),
        })
    }

    /// The exit rule: a run that waited for replies and got none (and was not stopped)
    /// failed; see `no_reply`.
    ///
    /// # Errors
    /// [`common::Error::Runtime`] saying no reply came.
    pub fn check(&self, target: SocketAddr) -> Result<()> {
        match self {
            Summary::Ping(p) => p.check(),
            Summary::Repeat(r) => r.check(target),
            Summary::Script(s) => s.check(),
            Summary::Discovery(d) if d.replies == 0 && d.expect_replies && !d.stopped => {
                Err(no_reply(target, ": no responder answered", TRY_LONGER))
            }
            _ => Ok(()),
        }
    }
}

/// A summary's JSON fields from its `Serialize` form. A derived struct with named fields
/// always serializes to an object, so the `Null` fallback is never seen.
pub(crate) fn fields(summary: &impl Serialize) -> serde_json::Value {
    serde_json::to_value(summary).unwrap_or(serde_json::Value::Null)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn pinned_ping() -> PingSummary {
        let rtt = crate::stats::RttSummary {
            min: 0.1234,
            avg: 0.5,
            p50: 0.25,
            p99: 2.0,
            max: 3.0,
            mdev: 0.75,
            jitter: 0.0625,
        };
        PingSummary {
            target: Some("127.0.0.1:9".parse().unwrap()),
            sent: 10,
            received: 9,
            lost: 1,
            duplicates: 2,
            reordered: 3,
            unmatched: 4,
            rtt: Some(rtt),
            histogram: vec![crate::stats::Bucket {
                le_ms: 1.23456,
                count: 9,
            }],
            rate: Some(1234.6),
            expect_replies: true,
            stopped: false,
        }
    }

    fn pinned_file() -> FileSummary {
        FileSummary {
            target: "127.0.0.1:9".parse().unwrap(),
            chunks: 3,
            bytes: 3000,
            replies: Some((3, 2)),
        }
    }

    /// The summary JSON of every mode, byte for byte: what scripts parse must not drift.
    #[test]
    fn every_summary_serializes_to_the_pinned_json() {
        let cases = [
            (
                Summary::OneShot {
                    reply: true,
                    retries: 0,
                    short_by: None,
                },
                r#"{"reply":true,"retries":0,"sent":1}"#,
            ),
            (
                Summary::OneShot {
                    reply: false,
                    retries: 2,
                    short_by: None,
                },
                r#"{"reply":false,"retries":2,"sent":3}"#,
            ),
            (
                Summary::Interactive { sent: 3, received: 2 },
                r#"{"received":2,"sent":3}"#,
            ),
        ];
        for (summary, want) in cases {
            assert_json(&summary, want);
        }
    }

    /// The same for the summaries with statistics (ping, flood, file).
    #[test]
    fn the_ping_and_file_summaries_serialize_to_the_pinned_json() {
        let (ping, file) = (pinned_ping(), pinned_file());
        let cases = [
            (
                Summary::Ping(ping.clone()),
                r#"{"duplicates":2,"histogram":[{"count":9,"le_ms":1.235}],"jitter_ms":0.063,"loss_percent":10.0,"lost":1,"mdev_ms":0.75,"rate_per_s":1235.0,"received":9,"reordered":3,"rtt_ms":{"avg":0.5,"max":3.0,"mdev":0.75,"min":0.123,"p50":0.25,"p99":2.0},"sent":10,"unmatched":4}"#,
            ),
            (
                Summary::Ping(PingSummary {
                    rtt: None,
                    rate: None,
                    ..ping
                }),
                r#"{"duplicates":2,"loss_percent":10.0,"lost":1,"received":9,"reordered":3,"rtt_ms":null,"sent":10,"unmatched":4}"#,
            ),
            (
                Summary::Repeat(RepeatSummary {
                    sent: 3,
                    received: 1,
                    expect_replies: true,
                    connected: true,
                    stopped: false,
                    expect: None,
                }),
                r#"{"lost":2,"received":1,"sent":3}"#,
            ),
            (
                Summary::File(file.clone()),
                r#"{"bytes":3000,"chunks":3,"identical":2,"replies":3}"#,
            ),
            (
                Summary::File(FileSummary { replies: None, ..file }),
                r#"{"bytes":3000,"chunks":3}"#,
            ),
            (
                Summary::Discovery(DiscoverySummary {
                    probes: 1,
                    replies: 3,
                    responders: 2,
                    stopped: false,
                    expect_replies: true,
                }),
                r#"{"replies":3,"responders":2}"#,
            ),
        ];
        for (summary, want) in cases {
            assert_json(&summary, want);
        }
    }

    fn assert_json(summary: &Summary, want: &str) {
        let (_, json) = summary.report().unwrap();
        assert_eq!(serde_json::to_string(&json).unwrap(), want, "{summary:?}");
    }
}
