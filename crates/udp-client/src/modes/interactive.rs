//! Interactive (no MESSAGE): each input line is one datagram; whatever the target sends is
//! printed as it arrives, like the chapter's chat program and NetAssist. Input is read on a
//! thread of its own, so the receiving loop keeps going (and notices Ctrl-C) while the
//! user types.

use std::collections::VecDeque;
use std::io::BufRead;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError, mpsc};
use std::thread;
use std::time::{Duration, Instant};

use common::codec::Encoding;
use common::output::{Output, plural};
use common::shutdown::POLL_INTERVAL;
use common::{Error, Result};
use serde::Serialize;

use crate::errors::{check_size, nobody_listening, send_error};
use crate::session::{OnRefused, Recorder, Session, later, send_once};
use crate::summary::{Summary, fields};
use crate::{DEFAULT_TIMEOUT, Typing};

/// Sends each input line and prints every arrival, until the input ends and the echoes
/// (or the timeout) are in, or a stop.
pub(crate) fn run(session: &mut Session<'_>, input: Box<dyn BufRead + Send>) -> Result<Summary> {
    log::info!("each line you type is sent as one datagram; end with Ctrl-D, stop with Ctrl-C");
    session.on_refused = OnRefused::Warn("; what you send is lost until a server runs there");
    let lines = Lines::spawn(session, input)?;
    let timeout = if session.config.no_reply {
        Duration::ZERO
    } else {
        session.config.timeout.unwrap_or(DEFAULT_TIMEOUT)
    };
    let mut received = 0u64;
    let mut input_ended_at: Option<Instant> = None;
    while !session.stopped() {
        if input_ended_at.is_none() && lines.ended() {
            input_ended_at = Some(Instant::now());
        }
        // Nobody listens, and nothing more will be sent: no reply can come.
        let refusals = session.refusals() + lines.refused.load(Ordering::SeqCst);
        if input_ended_at.is_some() && refusals > 0 && received == 0 {
            return Err(nobody_listening(session.target()));
        }
        // After the last line, wait for stragglers: until every line has come back (an
        // echo server is done), or until the timeout (any other peer).
        if input_ended_at.is_some_and(|ended| lines.all_echoed() || ended.elapsed() >= timeout) {
            break;
        }
        if let Some(arrival) = session.recv(later(Instant::now(), POLL_INTERVAL))? {
            received += 1;
            lines.echoed(session.data(arrival));
            session.show_arrival(arrival)?;
        }
    }
    Ok(Summary::Interactive {
        sent: lines.sent.load(Ordering::SeqCst),
        received,
    })
}

/// The summary's JSON fields.
#[derive(Serialize)]
struct Json {
    sent: u64,
    received: u64,
}

/// `udp-client: sent 3 datagrams, received 3`.
pub(crate) fn report(sent: u64, received: u64) -> (String, serde_json::Value) {
    (
        format!("udp-client: sent {}, received {received}", plural(sent, "datagram")),
        fields(&Json { sent, received }),
    )
}

/// Lines sent, and sends the target refused (shared with the input thread).
type Counts = (Arc<AtomicU64>, Arc<AtomicU64>);

/// Lines sent whose echo has not come back yet, newest last; only the latest few are kept.
type Unechoed = Mutex<VecDeque<Vec<u8>>>;
const UNECHOED_KEPT: usize = 1024;

fn lock(unechoed: &Unechoed) -> std::sync::MutexGuard<'_, VecDeque<Vec<u8>>> {
    unechoed.lock().unwrap_or_else(PoisonError::into_inner)
}

/// The input side of the interactive mode, shared with its thread.
struct Lines {
    sent: Arc<AtomicU64>,
    /// Sends on which the OS reported an earlier line's ICMP "port unreachable".
    refused: Arc<AtomicU64>,
    unechoed: Arc<Unechoed>,
    done: mpsc::Receiver<()>,
}

/// What the input thread needs: its own handle on the socket, and how to frame a line.
struct Sender {
    socket: UdpSocket,
    target: SocketAddr,
    /// `None` on a connected socket; the target with `--any-source` (`send_to`).
    to: Option<SocketAddr>,
    encoding: Encoding,
    typing: Typing,
    out: Output,
    /// `--pcap`: what this thread sends is recorded too.
    pcap: Recorder,
}

impl Lines {
    /// Starts the thread that sends each input line.
    fn spawn(session: &Session<'_>, input: Box<dyn BufRead + Send>) -> Result<Self> {
        let sender = Sender {
            socket: session
                .socket
                .try_clone()
                .map_err(|e| Error::io("cannot share the socket", &e))?,
            target: session.target(),
            to: session.destination(),
            encoding: session.config.output.encoding,
            typing: session.config.typing,
            out: session.out.clone(),
            pcap: session.pcap.clone(),
        };
        let (done_tx, done) = mpsc::channel::<()>();
        let lines = Lines {
            sent: Arc::new(AtomicU64::new(0)),
            refused: Arc::new(AtomicU64::new(0)),
            unechoed: Arc::new(Mutex::new(VecDeque::new())),
            done,
        };
        let counts = (Arc::clone(&lines.sent), Arc::clone(&lines.refused));
        let unechoed = Arc::clone(&lines.unechoed);
        // Not joined: on Ctrl-C it may be blocked reading a terminal, and exiting ends it.
        thread::spawn(move || {
            sender.send_lines(input, &counts, &unechoed);
            let _ = done_tx.send(());
        });
        Ok(lines)
    }

    /// Whether the input has ended (EOF or a read error).
    fn ended(&self) -> bool {
        self.done.try_recv().is_ok()
    }

    /// Whether every line sent has come back.
    fn all_echoed(&self) -> bool {
        lock(&self.unechoed).is_empty()
    }

    /// A datagram arrived: if it is the echo of a line, that line is no longer awaited.
    fn echoed(&self, data: &[u8]) {
        let mut waiting = lock(&self.unechoed);
        if let Some(i) = waiting.iter().position(|sent: &Vec<u8>| sent[..] == *data) {
            waiting.remove(i);
        }
    }
}

impl Sender {
    /// The input thread: one datagram per line, without its newline.
    fn send_lines(&self, mut input: Box<dyn BufRead + Send>, (sent, refused): &Counts, unechoed: &Unechoed) {
        let mut line = Vec::new();
        loop {
            line.clear();
            match input.read_until(b'\n', &mut line) {
                Ok(0) => return,
                Ok(_) => {}
                Err(e) => {
                    log::error!("cannot read input: {}", common::error::describe(&e));
                    return;
                }
            }
            let text = line.strip_suffix(b"\n").unwrap_or(&line);
            let text = text.strip_suffix(b"\r").unwrap_or(text);
            match self.send_line(text, unechoed, refused) {
                Ok(len) => {
                    sent.fetch_add(1, Ordering::SeqCst);
                    if self.out.sent(self.target, len).is_err() || self.out.is_closed() {
                        return;
                    }
                }
                Err(e) => log::warn!("line not sent: {e}"),
            }
        }
    }

    /// Frames and sends one line; its length.
    fn send_line(&self, text: &[u8], unechoed: &Unechoed, refused: &AtomicU64) -> Result<usize> {
        if text.is_empty() {
            // A 0-byte datagram is valid UDP; say so, since nothing visible was typed.
            log::info!("empty line: sending a 0-byte datagram");
        }
        // UTF-8 input goes out byte for byte, even if it is not valid UTF-8.
        let bytes = self.typing.frame(self.encoding, text)?;
        check_size(bytes.len(), self.target)?;
        {
            // Recorded before sending, so a fast echo always finds its line.
            let mut waiting = lock(unechoed);
            if waiting.len() == UNECHOED_KEPT {
                waiting.pop_front();
            }
            waiting.push_back(bytes.clone());
        }
        // An earlier line's ICMP "port unreachable" can surface on this send, which then
        // did not go out: count it, and try once more (as `Session::send` does).
        let unreachable = |e: &std::io::Error| {
            let is = common::error::is_port_unreachable(e);
            refused.fetch_add(u64::from(is), Ordering::SeqCst);
            is
        };
        send_once(&self.socket, self.to, &bytes)
            .or_else(|e| {
                if unreachable(&e) {
                    send_once(&self.socket, self.to, &bytes)
                } else {
                    Err(e)
                }
            })
            .map_err(|e| {
                unreachable(&e);
                send_error(&e, bytes.len(), self.target)
            })?;
        self.pcap.sent(self.target, &bytes);
        Ok(bytes.len())
    }
}
