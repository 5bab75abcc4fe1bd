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
use std::fs::File;
use std::io::Read;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, SyncSender};
use std::thread;
use std::time::{Duration, Instant};

use common::output::plural;
use common::{Error, Result};
use serde::Serialize;

use crate::DEFAULT_FLOOD_TIMEOUT;
use crate::errors::check_size;
use crate::progress::Progress;
use common::shutdown::POLL_INTERVAL;

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
    /// Read a FIFO, a device or a pipe as it comes (`--stream`); otherwise only a regular
    /// file is sent, so that `/dev/zero` is not sent forever by mistake.
    pub stream: bool,
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
    /// Checks the chunk size, and that the file is there and can be read, before any
    /// socket is made and before a byte of it is read.
    ///
    /// # Errors
    /// [`Error::Usage`] for a file that cannot be read, one that is not a regular file
    /// (without `--stream`), or a chunk over the UDP limit.
    pub(crate) fn check(&self, target: SocketAddr) -> Result<()> {
        if self.chunk == 0 {
            return Err(Error::Usage("--chunk 0: a chunk must hold at least one byte".into()));
        }
        let meta = std::fs::metadata(&self.path).map_err(|e| cannot_read(&self.path, &e))?;
        if meta.is_file() {
            // Opening a regular file never blocks; a FIFO's open would, so it waits for `run`.
            File::open(&self.path).map_err(|e| cannot_read(&self.path, &e))?;
            let len = usize::try_from(meta.len()).unwrap_or(usize::MAX);
            return check_size(self.chunk.min(len), target);
        }
        if !self.stream {
            return Err(Error::Usage(format!(
                "--file {} is not a regular file (a FIFO, a device or a directory): add --stream to send what it gives as it comes, or send a file",
                self.path.display()
            )));
        }
        check_size(self.chunk, target)
    }
}

fn cannot_read(path: &Path, e: &std::io::Error) -> Error {
    Error::Usage(format!(
        "cannot read --file {}: {}",
        path.display(),
        common::error::describe(e)
    ))
}

/// Sends the file's bytes, a chunk at a time: the file is never held whole.
///
/// # Errors
/// [`Error::Runtime`] when reading or sending fails.
pub(crate) fn run(session: &mut Session<'_>, mode: &FileSend) -> Result<FileSummary> {
    session.on_refused = OnRefused::Warn("");
    let target = session.target();
    let len = std::fs::metadata(&mode.path)
        .ok()
        .filter(std::fs::Metadata::is_file)
        .map(|m| m.len());
    match len {
        Some(len) => log::info!(
            "sending {len} B to {target} in {}",
            plural(len.div_ceil(mode.chunk as u64), "chunk")
        ),
        None => log::info!(
            "sending {} to {target} as it comes, in chunks of at most {} B; stop with Ctrl-C",
            mode.path.display(),
            mode.chunk
        ),
    }
    let mut summary = FileSummary {
        target,
        chunks: 0,
        bytes: 0,
        replies: None,
    };
    let mut progress = Progress::new(len.unwrap_or(0), true);
    let mut sending = Sending {
        reader: Reader::start(&mode.path, mode.chunk),
        session,
        mode,
        summary: &mut summary,
        progress: &mut progress,
    };
    if sending.session.config.no_reply {
        sending.back_to_back()?;
    } else {
        sending.windowed()?;
    }
    progress.finish();
    Ok(summary)
}

/// The file read on a thread of its own, a chunk at a time: a FIFO with no writer blocks
/// in `open`, a slow device in `read`, and neither may keep Ctrl-C from stopping the send.
struct Reader {
    chunks: Receiver<std::io::Result<Vec<u8>>>,
    path: PathBuf,
}

/// Chunks read ahead of the sender: enough to keep it busy, few enough to bound memory.
const READ_AHEAD: usize = 64;

impl Reader {
    fn start(path: &Path, chunk: usize) -> Self {
        let (tx, chunks) = mpsc::sync_channel(READ_AHEAD);
        let owned = path.to_path_buf();
        // Not joined: on Ctrl-C it may be blocked in open or read, and exiting ends it.
        thread::spawn(move || read_chunks(&owned, chunk, &tx));
        Reader {
            chunks,
            path: path.to_path_buf(),
        }
    }

    /// The next chunk; `None` at the end of the file or on a stop request.
    fn next(&self, session: &Session<'_>) -> Result<Option<Vec<u8>>> {
        loop {
            if session.shutdown.is_triggered() {
                return Ok(None);
            }
            match self.chunks.recv_timeout(POLL_INTERVAL) {
                Ok(Ok(chunk)) => return Ok(Some(chunk)),
                Ok(Err(e)) => {
                    return Err(Error::io(format!("cannot read --file {}", self.path.display()), &e));
                }
                Err(RecvTimeoutError::Timeout) => {}
                Err(RecvTimeoutError::Disconnected) => return Ok(None),
            }
        }
    }
}

/// The reading thread: chunks of `chunk` bytes (the last may be shorter) until the end.
fn read_chunks(path: &Path, chunk: usize, tx: &SyncSender<std::io::Result<Vec<u8>>>) {
    let mut file = match File::open(path) {
        Ok(file) => file,
        Err(e) => {
            let _ = tx.send(Err(e));
            return;
        }
    };
    loop {
        let mut buf = Vec::with_capacity(chunk);
        match (&mut file).take(chunk as u64).read_to_end(&mut buf) {
            Ok(0) => return,
            Ok(_) => {
                if tx.send(Ok(buf)).is_err() {
                    return;
                }
            }
            Err(e) => {
                let _ = tx.send(Err(e));
                return;
            }
        }
    }
}

/// A file send under way.
struct Sending<'s, 'a> {
    reader: Reader,
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

    /// `--no-reply`: every chunk, in bursts of [`BURST`] a millisecond apart (or one every
    /// `--interval`). The session sends a burst's chunks, all of one length but the file's
    /// last, in one call where GSO is on (`common::offload`): the same datagrams, the
    /// same pace, a sixteenth of the calls.
    fn back_to_back(&mut self) -> Result<()> {
        if !self.mode.interval.is_zero() {
            return self.paced();
        }
        let mut first = true;
        loop {
            let mut burst = Vec::with_capacity(BURST);
            while burst.len() < BURST {
                match self.reader.next(self.session)? {
                    Some(chunk) => burst.push(chunk),
                    None => break,
                }
            }
            if burst.is_empty() || (!first && self.session.pause(Duration::from_millis(1))) {
                return Ok(());
            }
            first = false;
            let (summary, progress) = (&mut *self.summary, &mut *self.progress);
            self.session.send_all(&burst, |i| {
                summary.chunks += 1;
                summary.bytes += burst[i].len() as u64;
                progress.add(burst[i].len() as u64);
            })?;
        }
    }

    /// `--no-reply --interval DUR`: one chunk every DUR.
    fn paced(&mut self) -> Result<()> {
        let mut i = 0usize;
        while let Some(chunk) = self.reader.next(self.session)? {
            if i > 0 && self.session.pause(self.mode.interval) {
                break;
            }
            self.send(&chunk)?;
            i += 1;
        }
        Ok(())
    }

    /// With replies: `--window` chunks in flight; each echo is matched with a chunk sent,
    /// and a chunk unanswered for the loss timeout is given up.
    fn windowed(&mut self) -> Result<()> {
        let loss_timeout = self.session.config.timeout.unwrap_or(DEFAULT_FLOOD_TIMEOUT);
        let mut in_flight: VecDeque<(Vec<u8>, Instant)> = VecDeque::new();
        let (mut ended, mut received, mut identical) = (false, 0u64, 0u64);
        while !self.session.shutdown.is_triggered() && (!ended || !in_flight.is_empty()) {
            while in_flight.len() < self.mode.window.max(1) && !ended {
                match self.reader.next(self.session)? {
                    Some(chunk) if self.send(&chunk)? => in_flight.push_back((chunk, Instant::now())),
                    Some(_) => {}
                    None => ended = true,
                }
            }
            if let Some(arrival) = self.session.poll()? {
                received += 1;
                let echo = self.session.data(arrival);
                if let Some(pos) = in_flight.iter().position(|(sent, _)| sent[..] == *echo) {
                    in_flight.remove(pos);
                    identical += 1;
                }
                self.session.save(arrival)?;
            }
            let now = Instant::now();
            while in_flight
                .front()
                .is_some_and(|(_, at)| now.saturating_duration_since(*at) >= loss_timeout)
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
        /// Any --file path (existing or not, odd characters and all) is accepted or refused
        /// in one usage error, without reading it.
        #[test]
        fn random_file_paths_never_panic(path in "[a-z0-9/._ 时-]{0,30}") {
            let mode = FileSend {
                path: PathBuf::from(&path),
                chunk: crate::DEFAULT_CHUNK,
                interval: Duration::ZERO,
                window: 1,
                stream: false,
            };
            if let Err(e) = mode.check(crate::DEFAULT_TARGET) {
                proptest::prop_assert_eq!(e.exit_code(), 2);
            }
        }
    }
}
