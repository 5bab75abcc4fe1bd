//! `--repeat N`: the exact MESSAGE N times, every `--interval` (NetAssist's loop send). No
//! sequence number is added, so a reply cannot be matched to its request: each is printed
//! as it comes, and the summary counts them.

use std::time::{Duration, Instant};

use common::output::plural;
use common::{Error, Result};
use serde::Serialize;

use crate::DEFAULT_TIMEOUT;
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
    let (mut sent, mut received) = (0u64, 0u64);
    for (due, payload) in sends {
        received += replies_until(session, due)?;
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
        while received < sent && !session.shutdown.is_triggered() && Instant::now() < deadline {
            received += replies_until(session, deadline.min(later(Instant::now(), Duration::from_millis(100))))?;
        }
    }
    Ok(Summary::Repeat(RepeatSummary {
        sent,
        received,
        expect_replies: !session.config.no_reply,
        connected: session.destination().is_none(),
        stopped: session.shutdown.is_triggered(),
    }))
}

/// Prints every reply that arrives until `until`; how many.
pub(crate) fn replies_until(session: &mut Session<'_>, until: Instant) -> Result<u64> {
    let mut received = 0;
    while let Some(arrival) = session.recv(until)? {
        received += 1;
        session.show_reply(arrival, None)?;
    }
    Ok(received)
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
}

impl RepeatSummary {
    /// Waited for replies and got none (not stopped): exit 1, saying what may help.
    pub(crate) fn check(&self, target: std::net::SocketAddr) -> Result<()> {
        if self.sent > 0 && self.received == 0 && self.expect_replies && !self.stopped {
            return Err(crate::errors::no_reply(
                target,
                &crate::errors::to_any_of(self.sent, "datagram"),
                &crate::errors::what_to_try(crate::errors::TRY_LONGER, self.connected),
            ));
        }
        Ok(())
    }

    /// `udp-client: sent 3 datagrams, received 3, lost 0`, and the JSON fields.
    pub(crate) fn report(&self) -> (String, serde_json::Value) {
        report(self.sent, self.received, self.expect_replies)
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
