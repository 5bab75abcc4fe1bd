//! One-shot (MESSAGE given): send one datagram, wait for one reply, print it; resend up to
//! `--retries` times (stop-and-wait, the simplest way an application adds the reliability
//! UDP lacks).

use std::time::Instant;

use common::duration::display;
use common::output::plural;
use common::{Error, Result};
use serde::Serialize;

use crate::DEFAULT_TIMEOUT;
use crate::errors::{TRY_ONE_SHOT, no_reply, what_to_try};
use crate::expect::Verdict;
use crate::session::{OnRefused, Session, later};
use crate::summary::{Summary, fields};

/// The one-shot's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OneShot {
    /// The datagram.
    pub message: Vec<u8>,
    /// Resend this many times when no reply comes (stop-and-wait).
    pub retries: u32,
}

/// Sends the message and waits for its reply, resending on silence.
pub(crate) fn run(session: &mut Session<'_>, mode: &OneShot) -> Result<Summary> {
    // With nothing else to do, "nobody is listening" ends the run at once (exit 1).
    session.on_refused = OnRefused::Fail;
    let target = session.target();
    let timeout = session.config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    for attempt in 0..=mode.retries {
        if attempt > 0 {
            log::warn!(
                "no reply within {}; sending again (retry {attempt} of {})",
                display(timeout),
                mode.retries
            );
        }
        let sent_at = Instant::now();
        session.send(&mode.message)?;
        session.out.sent(target, mode.message.len()).map_err(Error::stdout)?;
        let summary = |reply, short_by| Summary::OneShot {
            reply,
            retries: attempt,
            short_by,
        };
        if session.config.no_reply {
            return Ok(summary(false, None));
        }
        if let Some(arrival) = session.recv(later(sent_at, timeout))? {
            let short_by = cut_echo(&mode.message, session.data(arrival));
            let note = short_by.map(|n| format!("echo {n} B shorter than the request: the peer's buffer cut it"));
            let verdict = session.judge(arrival);
            session.show_judged(arrival, Some(sent_at.elapsed()), note.as_deref(), verdict.as_ref())?;
            return match verdict {
                Some(Verdict::Failed(why)) => Err(not_as_expected(arrival.peer, &why)),
                _ => Ok(summary(true, short_by)),
            };
        }
        if session.shutdown.is_triggered() {
            return Ok(summary(false, None));
        }
    }
    let tries = if mode.retries > 0 {
        format!(" within {} ({} tries)", display(timeout), mode.retries + 1)
    } else {
        format!(" within {}", display(timeout))
    };
    if session.ignored() > 0 {
        // What did arrive is worth knowing before the "no reply" line: the filter may be wrong.
        log::warn!(
            "{} from other senders ignored (--only-from; -v shows each)",
            plural(session.ignored(), "datagram")
        );
    }
    let connected = session.config.any_source.is_none();
    Err(no_reply(target, &tries, &what_to_try(TRY_ONE_SHOT, connected)))
}

/// The reply was not what `--expect` asked for: exit 1, saying what arrived.
fn not_as_expected(from: std::net::SocketAddr, why: &str) -> Error {
    Error::Runtime(format!("the reply from {from} does not match --expect: {why}"))
}

/// How many bytes an echo lacks, when it is the start of the request and shorter: what a
/// peer reading with a small buffer (the chapter's `recvfrom(1024)`) sends back.
fn cut_echo(request: &[u8], reply: &[u8]) -> Option<u64> {
    (reply.len() < request.len() && request.starts_with(reply)).then(|| (request.len() - reply.len()) as u64)
}

/// The summary's JSON fields.
#[derive(Serialize)]
struct Json {
    sent: u32,
    retries: u32,
    reply: bool,
    #[serde(skip_serializing_if = "Option::is_none")]
    short_by: Option<u64>,
}

/// The summary: no text when it needed no resend (a one-shot's output is its reply), else
/// how many resends it took.
pub(crate) fn report(reply: bool, retries: u32, short_by: Option<u64>) -> (String, serde_json::Value) {
    let text = if retries == 0 {
        String::new()
    } else {
        format!(
            "udp-client: {} after {} ({})",
            if reply { "reply" } else { "stopped" },
            if retries == 1 {
                "1 retry".to_string()
            } else {
                format!("{retries} retries")
            },
            plural(u64::from(retries + 1), "send")
        )
    };
    (
        text,
        fields(&Json {
            sent: retries + 1,
            retries,
            reply,
            short_by,
        }),
    )
}
