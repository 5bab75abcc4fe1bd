//! `--repeat N`: the exact MESSAGE N times, every `--interval` (NetAssist's loop send). No
//! sequence number is added, so a reply cannot be matched to its request: each is printed
//! as it comes, and the summary counts them.

use std::time::{Duration, Instant};

use common::output::plural;
use common::{Error, Result};
use serde::Serialize;

use crate::DEFAULT_TIMEOUT;
use crate::expect::Tally;
use crate::session::{Session, later};
use crate::summary::{Summary, fields};

/// The repeat's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Repeat {
    /// The datagram, sent as it is.
    pub message: Vec<u8>,
    /// How many times.
    pub count: u64,
    /// Time between sends.
    pub interval: Duration,
}

/// Sends MESSAGE `count` times, printing every reply; after the last, waits up to
/// `--timeout` for replies still on their way (unless `--no-reply`).
pub(crate) fn run(session: &mut Session<'_>, mode: &Repeat) -> Result<Summary> {
    let times = std::iter::successors(Some(Instant::now()), |next| Some(later(*next, mode.interval)));
    paced(
        session,
        times
            .take(usize::try_from(mode.count).unwrap_or(usize::MAX))
            .map(|due| (due, &mode.message[..])),
    )
}

/// Sends each payload when it is due, printing every reply that arrives meanwhile; after
/// the last, waits up to `--timeout` for replies still on their way (unless `--no-reply`).
/// `--replay` sends a capture the same way.
pub(crate) fn paced<'p>(
    session: &mut Session<'_>,
    sends: impl Iterator<Item = (Instant, &'p [u8])>,
) -> Result<Summary> {
    let target = session.target();
    let mut sent = 0u64;
    let mut got = Got::default();
    for (due, payload) in sends {
        replies_until(session, due, &mut got)?;
        if session.stopped() {
            break;
        }
        if session.send(payload)? {
            session.out.sent(target, payload.len()).map_err(Error::stdout)?;
            sent += 1;
        }
    }
    if !session.config.no_reply {
        let deadline = later(Instant::now(), session.config.timeout.unwrap_or(DEFAULT_TIMEOUT));
        while got.received < sent && !session.shutdown.is_triggered() && Instant::now() < deadline {
            let until = deadline.min(later(Instant::now(), Duration::from_millis(100)));
            replies_until(session, until, &mut got)?;
        }
    }
    Ok(Summary::Repeat(RepeatSummary {
        sent,
        received: got.received,
        expect: session.config.expect.is_some().then_some(got.tally),
        expect_replies: !session.config.no_reply,
        connected: session.destination().is_none(),
        stopped: session.shutdown.is_triggered(),
    }))
}

/// Replies received so far, and what `--expect` said of them.
#[derive(Default)]
struct Got {
    received: u64,
    tally: Tally,
}

/// Prints every reply that arrives until `until` (judged, with `--expect`), counting them.
fn replies_until(session: &mut Session<'_>, until: Instant, got: &mut Got) -> Result<()> {
    while let Some(arrival) = session.recv(until)? {
        got.received += 1;
        let verdict = session.judge(arrival);
        if let Some(verdict) = &verdict {
            got.tally.add(verdict);
        }
        session.show_judged(arrival, None, None, verdict.as_ref())?;
    }
    Ok(())
}

/// What a repeat (or a replay) did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RepeatSummary {
    /// Datagrams sent.
    pub sent: u64,
    /// Replies received.
    pub received: u64,
    /// Whether replies were awaited (not with `--no-reply`).
    pub expect_replies: bool,
    /// Whether the socket was connected (not `--any-source`): the no-reply hint says what
    /// a connected client cannot hear.
    pub connected: bool,
    /// Whether Ctrl-C or SIGTERM stopped it.
    pub stopped: bool,
    /// With `--expect`: how many replies matched and failed.
    pub expect: Option<Tally>,
}

impl RepeatSummary {
    /// Waited for replies and got none (not stopped): exit 1, saying what may help. With
    /// `--expect`, every reply must have matched and every request had its reply.
    pub(crate) fn check(&self, target: std::net::SocketAddr) -> Result<()> {
        if let Some(tally) = self.expect {
            let lost = self.sent.saturating_sub(self.received);
            let lost = if self.stopped { 0 } else { lost };
            if tally.failed > 0 || (lost > 0 && self.received > 0) {
                return Err(Error::Runtime(format!(
                    "not every reply was what --expect asks for: {} matched, {} failed, {lost} lost (each reply's line says why)",
                    tally.matched, tally.failed
                )));
            }
        }
        if self.sent > 0 && self.received == 0 && self.expect_replies && !self.stopped {
            return Err(crate::errors::no_reply(
                target,
                &crate::errors::to_any_of(self.sent, "datagram"),
                &crate::errors::what_to_try(crate::errors::TRY_LONGER, self.connected),
            ));
        }
        Ok(())
    }

    /// `udp-client: sent 3 datagrams, received 3, lost 0` (with `--expect`, `; expect:
    /// 2 matched, 1 failed`), and the JSON fields (`matched`, `failed`).
    pub(crate) fn report(&self) -> (String, serde_json::Value) {
        let (mut text, mut json) = report(self.sent, self.received, self.expect_replies);
        if let Some(tally) = self.expect {
            text += &format!("; expect: {} matched, {} failed", tally.matched, tally.failed);
            json["matched"] = tally.matched.into();
            json["failed"] = tally.failed.into();
        }
        (text, json)
    }
}

/// The summary's JSON fields; no `lost` when replies were not awaited.
#[derive(Serialize)]
struct Json {
    sent: u64,
    received: u64,
    #[serde(skip_serializing_if = "Option::is_none")]
    lost: Option<u64>,
}

/// `udp-client: sent 3 datagrams, received 3, lost 0`; with `--no-reply` nothing was
/// awaited, so nothing can be called lost.
fn report(sent: u64, received: u64, expect_replies: bool) -> (String, serde_json::Value) {
    let sent_text = plural(sent, "datagram");
    if !expect_replies {
        let got = if received > 0 {
            format!(", received {received}")
        } else {
            String::new()
        };
        return (
            format!("udp-client: sent {sent_text}{got}, replies not awaited (--no-reply)"),
            fields(&Json {
                sent,
                received,
                lost: None,
            }),
        );
    }
    let lost = sent.saturating_sub(received);
    (
        format!("udp-client: sent {sent_text}, received {received}, lost {lost}"),
        fields(&Json {
            sent,
            received,
            lost: Some(lost),
        }),
    )
}
