//! `--file PATH`: a file sent as consecutive datagrams of at most `--chunk` bytes. UDP keeps
//! each chunk whole but promises nothing about the whole file: with `udp-server --save` on
//! the other side, the file crosses intact on loopback, and with `--drop` it arrives with
//! holes — the chapter's unreliability, in a hash.
//!
//! With replies (an echo server), chunks are paced like the flood: a window in flight,
//! refilled as echoes return, and each echo compared with what was sent. With `--no-reply`,
//! they go back to back, in bursts of 16 a millisecond apart so that a receiver on the same
//! machine keeps up (`--interval` sets another pace).

use std::collections::VecDeque;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::output::plural;
use common::{Error, Result};
use serde::Serialize;

use crate::DEFAULT_FLOOD_TIMEOUT;
use crate::errors::check_size;
use crate::progress::Progress;
use crate::session::{OnRefused, Session};

/// The file send's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSend {
    /// The file.
    pub path: PathBuf,
    /// The most bytes per datagram (`--chunk`).
    pub chunk: usize,
    /// Time between chunks; zero sends them back to back (in bursts).
    pub interval: Duration,
    /// With replies: chunks in flight at once.
    pub window: usize,
}

/// What a file send did.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct FileSummary {
    /// Where the file went.
    #[serde(skip)]
    pub target: SocketAddr,
    /// Datagrams sent.
    pub chunks: u64,
    /// Bytes sent (the file's length, unless stopped).
    pub bytes: u64,
    /// With replies: how many came back, and how many were identical to a chunk sent.
    #[serde(flatten, serialize_with = "echoes")]
    pub replies: Option<(u64, u64)>,
}

/// `"replies": N, "identical": M` in the summary, or nothing with `--no-reply`.
fn echoes<S: serde::Serializer>(replies: &Option<(u64, u64)>, s: S) -> std::result::Result<S::Ok, S::Error> {
    #[derive(Serialize)]
    struct Echoes {
        replies: u64,
        identical: u64,
    }
    replies
        .map(|(replies, identical)| Echoes { replies, identical })
        .serialize(s)
}

impl FileSummary {
    /// `udp-client: sent 1048576 B in 713 chunks to 127.0.0.1:9000; 713 replies, 713 identical`.
    pub fn to_text(&self) -> String {
        let mut text = format!(
            "udp-client: sent {} B in {} to {}",
            self.bytes,
            plural(self.chunks, "chunk"),
            self.target
        );
        if let Some((received, identical)) = self.replies {
            let replies = if received == 1 {
                "1 reply".to_string()
            } else {
                format!("{received} replies")
            };
            text += &format!("; {replies}, {identical} identical");
        }
        text
    }

    /// The summary's JSON fields.
    pub fn to_json(&self) -> serde_json::Value {
        crate::summary::fields(self)
    }
}

/// Chunks sent back to back before a millisecond's pause, when nothing paces them: 16 × 1472
/// bytes is about a tenth of a default receive queue, so a receiver on the same machine
/// that stalls for a few milliseconds still loses nothing.
const BURST: usize = 16;

impl FileSend {
    /// Checks the chunk size and that the file can be read, before any socket is made.
    ///
    /// # Errors
    /// [`Error::Usage`] for a file that cannot be read or a chunk over the UDP limit.
    pub(crate) fn check(&self, target: SocketAddr) -> Result<()> {
        read(&self.path, self.chunk, target).map(drop)
    }
}

/// Reads the `--file` and checks its chunk size.
///
/// # Errors
/// [`Error::Usage`] for a file that cannot be read or a chunk over the UDP limit.
fn read(path: &Path, chunk: usize, target: SocketAddr) -> Result<Vec<u8>> {
    if chunk == 0 {
        return Err(Error::Usage("--chunk 0: a chunk must hold at least one byte".into()));
    }
    let data = std::fs::read(path).map_err(|e| {
        let why = common::error::describe(&e);
        Error::Usage(format!("cannot read --file {}: {why}", path.display()))
    })?;
    check_size(chunk.min(data.len()), target)?;
    Ok(data)
}

/// Sends the file's bytes.
///
/// # Errors
/// [`Error::Runtime`] when sending fails.
pub(crate) fn run(session: &mut Session<'_>, mode: &FileSend) -> Result<FileSummary> {
    session.on_refused = OnRefused::Warn("");
    let target = session.target();
    let data = read(&mode.path, mode.chunk, target)?;
    let chunks: Vec<&[u8]> = data.chunks(mode.chunk).collect();
    log::info!(
        "sending {} B to {target} in {}",
        data.len(),
        plural(chunks.len() as u64, "chunk")
    );
    let mut summary = FileSummary {
        target,
        chunks: 0,
        bytes: 0,
        replies: None,
    };
    let mut progress = Progress::new(data.len() as u64, true);
    let mut sending = Sending {
        session,
        mode,
        summary: &mut summary,
        progress: &mut progress,
    };
    if sending.session.config.no_reply {
        sending.back_to_back(&chunks)?;
    } else {
        sending.windowed(&chunks)?;
    }
    progress.finish();
    Ok(summary)
}

/// A file send under way.
struct Sending<'s, 'a> {
    session: &'s mut Session<'a>,
    mode: &'s FileSend,
    summary: &'s mut FileSummary,
    progress: &'s mut Progress,
}

impl Sending<'_, '_> {
    /// Sends one chunk and counts it; `false` if the target refused it.
    fn send(&mut self, chunk: &[u8]) -> Result<bool> {
        let sent = self.session.send(chunk)?;
        if sent {
            self.summary.chunks += 1;
            self.summary.bytes += chunk.len() as u64;
            self.progress.add(chunk.len() as u64);
        }
        Ok(sent)
    }

    /// `--no-reply`: every chunk, in bursts a millisecond apart (or one every `--interval`).
    fn back_to_back(&mut self, chunks: &[&[u8]]) -> Result<()> {
        for (i, chunk) in chunks.iter().enumerate() {
            let pause = if !self.mode.interval.is_zero() {
                self.mode.interval
            } else if i > 0 && i % BURST == 0 {
                Duration::from_millis(1)
            } else {
                Duration::ZERO
            };
            if !pause.is_zero() && i > 0 && self.session.shutdown.sleep(pause) {
                break;
            }
            self.send(chunk)?;
        }
        Ok(())
    }

    /// With replies: `--window` chunks in flight; each echo is matched with a chunk sent,
    /// and a chunk unanswered for the loss timeout is given up.
    fn windowed(&mut self, chunks: &[&[u8]]) -> Result<()> {
        let loss_timeout = self.session.config.timeout.unwrap_or(DEFAULT_FLOOD_TIMEOUT);
        let mut in_flight: VecDeque<(usize, Instant)> = VecDeque::new();
        let (mut next, mut received, mut identical) = (0, 0u64, 0u64);
        while !self.session.shutdown.is_triggered() && (next < chunks.len() || !in_flight.is_empty()) {
            while in_flight.len() < self.mode.window.max(1) && next < chunks.len() {
                if self.send(chunks[next])? {
                    in_flight.push_back((next, Instant::now()));
                }
                next += 1;
            }
            if let Some(arrival) = self.session.poll()? {
                received += 1;
                let echo = self.session.data(arrival);
                if let Some(pos) = in_flight.iter().position(|(i, _)| chunks[*i] == echo) {
                    in_flight.remove(pos);
                    identical += 1;
                }
                self.session.save(arrival)?;
            }
            let now = Instant::now();
            while in_flight
                .front()
                .is_some_and(|(_, at)| now.duration_since(*at) >= loss_timeout)
            {
                in_flight.pop_front();
            }
        }
        self.summary.replies = Some((received, identical));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Any --file path (existing or not, odd characters and all) is read or refused in
        /// one usage error.
        #[test]
        fn random_file_paths_never_panic(path in "[a-z0-9/._ 时-]{0,30}") {
            if let Err(e) = read(Path::new(&path), crate::DEFAULT_CHUNK, crate::DEFAULT_TARGET) {
                proptest::prop_assert_eq!(e.exit_code(), 2);
            }
        }
    }
}
