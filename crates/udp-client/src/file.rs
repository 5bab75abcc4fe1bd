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
use std::net::{SocketAddr, UdpSocket};
use std::path::Path;
use std::time::{Duration, Instant};

use common::output::plural;
use common::save::Save;
use common::shutdown::{Shutdown, is_wake_up};
use common::{Error, Result};

use crate::progress::Progress;
use crate::{Config, DEFAULT_FLOOD_TIMEOUT, RECV_BUFFER, check_size, send};

/// What a file send did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileSummary {
    /// Where the file went.
    pub target: SocketAddr,
    /// Datagrams sent.
    pub chunks: u64,
    /// Bytes sent (the file's length, unless stopped).
    pub bytes: u64,
    /// With replies: how many came back, and how many were identical to a chunk sent.
    pub replies: Option<(u64, u64)>,
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
        let mut obj = serde_json::json!({"chunks": self.chunks, "bytes": self.bytes});
        if let Some((received, identical)) = self.replies {
            obj["replies"] = received.into();
            obj["identical"] = identical.into();
        }
        obj
    }
}

/// Chunks sent back to back before a millisecond's pause, when nothing paces them: 16 × 1472
/// bytes is about a tenth of a default receive queue, so a receiver on the same machine
/// that stalls for a few milliseconds still loses nothing.
const BURST: usize = 16;

/// Reads the `--file` and checks its chunk size, before any socket is made.
///
/// # Errors
/// [`Error::Usage`] for a file that cannot be read or a chunk over the UDP limit.
pub(crate) fn read(path: &Path, config: &Config) -> Result<Vec<u8>> {
    if config.chunk == 0 {
        return Err(Error::Usage("--chunk 0: a chunk must hold at least one byte".into()));
    }
    let data = std::fs::read(path).map_err(|e| {
        let why = common::error::describe(&e);
        Error::Usage(format!("cannot read --file {}: {why}", path.display()))
    })?;
    check_size(config.chunk.min(data.len()), config.target)?;
    Ok(data)
}

/// Sends the file's bytes.
///
/// # Errors
/// [`Error::Runtime`] when sending fails.
pub(crate) fn send_file(
    socket: &UdpSocket,
    config: &Config,
    data: &[u8],
    shutdown: &Shutdown,
    save: &mut Option<Save>,
) -> Result<FileSummary> {
    let chunks: Vec<&[u8]> = data.chunks(config.chunk).collect();
    log::info!(
        "sending {} B to {} in {}",
        data.len(),
        config.target,
        plural(chunks.len() as u64, "chunk")
    );
    let mut summary = FileSummary {
        target: config.target,
        chunks: 0,
        bytes: 0,
        replies: None,
    };
    let mut progress = Progress::new(data.len() as u64, true);
    if config.no_reply {
        back_to_back(socket, config, &chunks, shutdown, &mut summary, &mut progress)?;
    } else {
        windowed(socket, config, &chunks, shutdown, save, (&mut summary, &mut progress))?;
    }
    progress.finish();
    Ok(summary)
}

/// `--no-reply`: every chunk, in bursts a millisecond apart (or one every `--interval`).
fn back_to_back(
    socket: &UdpSocket,
    config: &Config,
    chunks: &[&[u8]],
    shutdown: &Shutdown,
    summary: &mut FileSummary,
    progress: &mut Progress,
) -> Result<()> {
    for (i, chunk) in chunks.iter().enumerate() {
        let pause = if !config.interval.is_zero() {
            config.interval
        } else if i > 0 && i % BURST == 0 {
            Duration::from_millis(1)
        } else {
            Duration::ZERO
        };
        if !pause.is_zero() && i > 0 && shutdown.sleep(pause) {
            break;
        }
        send(socket, chunk, config.target)?;
        summary.chunks += 1;
        summary.bytes += chunk.len() as u64;
        progress.add(chunk.len() as u64);
    }
    Ok(())
}

/// With replies: `--window` chunks in flight; each echo is matched with a chunk sent, and a
/// chunk unanswered for the loss timeout is given up.
fn windowed(
    socket: &UdpSocket,
    config: &Config,
    chunks: &[&[u8]],
    shutdown: &Shutdown,
    save: &mut Option<Save>,
    (summary, progress): (&mut FileSummary, &mut Progress),
) -> Result<()> {
    socket
        .set_read_timeout(Some(Duration::from_millis(10)))
        .map_err(|e| Error::io("cannot set a read timeout", &e))?;
    let loss_timeout = config.timeout.unwrap_or(DEFAULT_FLOOD_TIMEOUT);
    let mut in_flight: VecDeque<(usize, Instant)> = VecDeque::new();
    let (mut next, mut received, mut identical) = (0, 0u64, 0u64);
    let mut buf = vec![0u8; RECV_BUFFER];
    while !shutdown.is_triggered() && (next < chunks.len() || !in_flight.is_empty()) {
        while in_flight.len() < config.window.max(1) && next < chunks.len() {
            send(socket, chunks[next], config.target)?;
            in_flight.push_back((next, Instant::now()));
            summary.chunks += 1;
            summary.bytes += chunks[next].len() as u64;
            progress.add(chunks[next].len() as u64);
            next += 1;
        }
        match socket.recv(&mut buf) {
            Ok(len) => {
                received += 1;
                if let Some(pos) = in_flight.iter().position(|(i, _)| chunks[*i] == &buf[..len]) {
                    in_flight.remove(pos);
                    identical += 1;
                }
                save.as_mut().map_or(Ok(()), |s| s.write(&buf[..len]))?;
            }
            Err(e) if is_wake_up(&e) || common::error::is_port_unreachable(&e) => {}
            Err(e) => return Err(Error::io(format!("receiving from {} failed", config.target), &e)),
        }
        let now = Instant::now();
        while in_flight
            .front()
            .is_some_and(|(_, at)| now.duration_since(*at) >= loss_timeout)
        {
            in_flight.pop_front();
        }
    }
    summary.replies = Some((received, identical));
    Ok(())
}
