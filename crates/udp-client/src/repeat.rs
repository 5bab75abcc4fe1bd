//! `--repeat N`: the exact MESSAGE N times, every `--interval` (NetAssist's loop send). No
//! sequence number is added, so a reply cannot be matched to its request: each is printed
//! as it comes, and the summary counts them.

use std::net::UdpSocket;
use std::time::{Duration, Instant};

use common::output::Output;
use common::save::Save;
use common::shutdown::Shutdown;
use common::{Error, Result};

use crate::{Config, DEFAULT_TIMEOUT, RECV_BUFFER, Summary, nobody_listening, recv_until, send, show_reply};

/// Sends MESSAGE `--repeat` times, printing every reply; after the last, waits up to
/// `--timeout` for replies still on their way (unless `--no-reply`).
pub(crate) fn run(
    socket: &UdpSocket,
    config: &Config,
    message: &[u8],
    shutdown: &Shutdown,
    out: &Output,
    save: &mut Option<Save>,
) -> Result<Summary> {
    let mut replies = Replies {
        socket,
        config,
        shutdown,
        out,
        buf: vec![0u8; RECV_BUFFER],
        received: 0,
        refused: false,
    };
    let (mut sent, mut next) = (0u64, Instant::now());
    for _ in 0..config.repeat.unwrap_or(1) {
        replies.until(next, save)?;
        if shutdown.is_triggered() || out.is_closed() {
            break;
        }
        send(socket, message, config.target)?;
        out.sent(config.target, message.len()).map_err(Error::stdout)?;
        sent += 1;
        next += config.interval;
    }
    if !config.no_reply {
        let deadline = Instant::now() + config.timeout.unwrap_or(DEFAULT_TIMEOUT);
        while replies.received < sent && !shutdown.is_triggered() && Instant::now() < deadline {
            replies.until(deadline.min(Instant::now() + Duration::from_millis(100)), save)?;
        }
    }
    Ok(Summary::Repeat {
        sent,
        received: replies.received,
        expect_replies: !config.no_reply,
    })
}

/// What arrives between sends.
struct Replies<'a> {
    socket: &'a UdpSocket,
    config: &'a Config,
    shutdown: &'a Shutdown,
    out: &'a Output,
    buf: Vec<u8>,
    received: u64,
    /// Whether "nobody listening" was already said.
    refused: bool,
}

impl Replies<'_> {
    /// Prints every reply that arrives until `until`.
    fn until(&mut self, until: Instant, save: &mut Option<Save>) -> Result<()> {
        loop {
            match recv_until(self.socket, &mut self.buf, until, self.shutdown) {
                Ok(Some((len, peer))) => {
                    self.received += 1;
                    show_reply(self.out, self.config, save, peer, &self.buf[..len], None)?;
                }
                Ok(None) => return Ok(()),
                Err(e) if common::error::is_port_unreachable(&e) => {
                    if !self.refused {
                        log::warn!("{}", nobody_listening(self.config.target));
                        self.refused = true;
                    }
                }
                Err(e) => return Err(Error::io(format!("receiving from {} failed", self.config.target), &e)),
            }
        }
    }
}
