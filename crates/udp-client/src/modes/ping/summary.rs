//! The ping statistics printed at the end: sent, received, loss, duplicates, reordering,
//! round trips, and the flood's rate.

use std::net::SocketAddr;

use common::Result;
use common::output::{plural, round3};
use serde::Serialize;

use crate::stats::{Bucket, RttSummary};

/// The summary's JSON fields; those after `rtt_ms` only when there is something to say.
#[derive(Serialize)]
struct Json<'a> {
    sent: u64,
    received: u64,
    lost: u64,
    duplicates: u64,
    reordered: u64,
    unmatched: u64,
    loss_percent: f64,
    rtt_ms: Option<RttJson>,
    #[serde(skip_serializing_if = "Option::is_none")]
    jitter_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    mdev_ms: Option<f64>,
    #[serde(skip_serializing_if = "Option::is_none")]
    histogram: Option<&'a [Bucket]>,
    #[serde(skip_serializing_if = "Option::is_none")]
    rate_per_s: Option<f64>,
}

/// `"rtt_ms": {"min":…,"avg":…,"p50":…,"p99":…,"max":…,"mdev":…}`, to the microsecond.
#[derive(Serialize)]
struct RttJson {
    min: f64,
    avg: f64,
    p50: f64,
    p99: f64,
    max: f64,
    mdev: f64,
}

impl From<&RttSummary> for RttJson {
    fn from(r: &RttSummary) -> Self {
        RttJson {
            min: round3(r.min),
            avg: round3(r.avg),
            p50: round3(r.p50),
            p99: round3(r.p99),
            max: round3(r.max),
            mdev: round3(r.mdev),
        }
    }
}

/// The ping statistics printed at the end.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PingSummary {
    /// Where the pings went.
    pub target: Option<SocketAddr>,
    /// Requests sent.
    pub sent: u64,
    /// Requests that got at least one reply.
    pub received: u64,
    /// Requests that got no reply.
    pub lost: u64,
    /// Extra copies of replies already received.
    pub duplicates: u64,
    /// Replies that arrived after the reply to a later request.
    pub reordered: u64,
    /// Datagrams whose content matched no request (not an echo).
    pub unmatched: u64,
    /// Round-trip times of first replies.
    pub rtt: Option<RttSummary>,
    /// How the round trips spread (counts sum to `received`).
    pub histogram: Vec<crate::stats::Bucket>,
    /// Flood only: echoed datagrams per second.
    pub rate: Option<f64>,
    /// Whether a reply was expected (false with `--no-reply`).
    pub expect_replies: bool,
    /// Whether the run was stopped by Ctrl-C or SIGTERM.
    pub stopped: bool,
}

impl PingSummary {
    /// Lost replies as a percentage of requests.
    pub fn loss_percent(&self) -> f64 {
        if self.sent == 0 {
            0.0
        } else {
            self.lost as f64 * 100.0 / self.sent as f64
        }
    }

    /// The summary's JSON fields.
    pub fn to_json(&self) -> serde_json::Value {
        let rtt = self.rtt.as_ref();
        crate::summary::fields(&Json {
            sent: self.sent,
            received: self.received,
            lost: self.lost,
            duplicates: self.duplicates,
            reordered: self.reordered,
            unmatched: self.unmatched,
            loss_percent: (self.loss_percent() * 100.0).round() / 100.0,
            rtt_ms: rtt.map(RttJson::from),
            jitter_ms: rtt.map(|r| round3(r.jitter)),
            mdev_ms: rtt.map(|r| round3(r.mdev)),
            histogram: rtt.map(|_| self.histogram.as_slice()),
            rate_per_s: self.rate.map(f64::round),
        })
    }

    /// Ping-style text for stderr.
    pub fn to_text(&self) -> String {
        let target = self.target.map_or(String::new(), |t| format!("{t} "));
        if !self.expect_replies {
            let mut text = format!(
                "--- {target}udp send statistics ---\n{} sent, replies not awaited (--no-reply)",
                self.sent
            );
            if let Some(rate) = self.rate {
                text += &format!("\n{rate:.0} datagrams/s sent");
            }
            return text;
        }
        let mut text = format!(
            "--- {target}udp ping statistics ---\n{} sent, {} received, {:.1}% loss, {}, {} reordered",
            self.sent,
            self.received,
            self.loss_percent(),
            plural(self.duplicates, "duplicate"),
            self.reordered
        );
        if self.unmatched > 0 {
            text += &format!(", {} unmatched", self.unmatched);
        }
        if let Some(r) = self.rtt {
            text += &format!(
                "\nrtt min/avg/p50/p99/max/mdev = {:.3}/{:.3}/{:.3}/{:.3}/{:.3}/{:.3} ms, jitter {:.3} ms",
                r.min, r.avg, r.p50, r.p99, r.max, r.mdev, r.jitter
            );
            text += "\n";
            text += &crate::stats::histogram_text(&self.histogram);
        }
        if let Some(rate) = self.rate {
            text += &format!("\n{rate:.0} datagrams/s echoed");
        }
        text
    }

    /// A run with replies expected and none received failed (exit 1), unless stopped.
    ///
    /// # Errors
    /// [`Error::Runtime`](common::Error::Runtime) when no request got a reply.
    pub fn check(&self) -> Result<()> {
        if self.expect_replies && self.received == 0 && self.sent > 0 && !self.stopped {
            let target = self.target.unwrap_or(crate::DEFAULT_TARGET);
            return Err(crate::errors::no_reply(
                target,
                &crate::errors::to_any_of(self.sent, "request"),
                crate::errors::TRY_LONGER,
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_reply_at_all_is_a_failure_unless_stopped() {
        let s = PingSummary {
            sent: 3,
            expect_replies: true,
            ..Default::default()
        };
        assert_eq!(s.check().unwrap_err().exit_code(), 1);
        assert!(
            PingSummary {
                stopped: true,
                ..s.clone()
            }
            .check()
            .is_ok()
        );
        assert!(
            PingSummary {
                expect_replies: false,
                ..s
            }
            .check()
            .is_ok()
        );
    }
}
