//! What the programs print on stdout: one line per datagram, or one JSON object per line.
//!
//! Data goes to stdout and diagnostics to stderr (the `log` crate), so `udp-server > log.txt`
//! keeps exactly the datagrams. Every write is one whole line, so lines from two threads
//! never interleave. A closed stdout (`udp-server | head -1`) is not an error: the output
//! marks itself closed and the program stops quietly.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::thread;
use std::time::Duration;

use serde_json::{Value, json};

use crate::codec::{Encoding, to_hex};
use crate::time::LocalTime;

/// How output looks; every program has these flags.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct OutputOptions {
    /// JSON Lines instead of text (`--json`).
    pub json: bool,
    /// Prefix each datagram with the local time (`--timestamp`).
    pub timestamp: bool,
    /// How payloads are shown (`--encoding`).
    pub encoding: Encoding,
    /// No per-datagram lines (`-q`); the `listening` line and the summary stay.
    pub quiet: bool,
}

/// One datagram to show.
#[derive(Debug, Clone, Copy)]
pub struct Datagram<'a> {
    /// Who sent it.
    pub peer: SocketAddr,
    /// The payload as received (after any truncation).
    pub bytes: &'a [u8],
    /// Whether the datagram was longer than the receive buffer and cut.
    pub truncated: bool,
    /// The sequence number a ping reply carried, if any.
    pub seq: Option<u64>,
    /// The round-trip time of a ping reply, if it matched a request.
    pub rtt: Option<Duration>,
    /// Something worth saying about it (`2 lost`, `duplicate`): `[note]` in text, `"note"` in JSON.
    pub note: Option<&'a str>,
    /// What its trailing check bytes said (`--checksum`): `[checksum ok]` in text,
    /// `"checksum_ok"` in JSON.
    pub check: Option<&'a crate::checksum::Check>,
    /// The rule that answered it (`udp-server --rule`): `[rule …]` in text, `"rule"` in JSON.
    pub rule: Option<&'a str>,
    /// The UDP header it crossed the wire with (`--show-header`): `"udp_header"` in JSON.
    /// The same field with or without the `receive` feature, so code that builds a
    /// `Datagram` compiles either way.
    pub header: Option<crate::header::UdpHeader>,
}

impl<'a> Datagram<'a> {
    /// A datagram with just a peer and bytes.
    pub fn new(peer: SocketAddr, bytes: &'a [u8]) -> Self {
        Datagram {
            peer,
            bytes,
            truncated: false,
            seq: None,
            rtt: None,
            note: None,
            check: None,
            rule: None,
            header: None,
        }
    }
}

/// The program's stdout. Cheap to clone; clones share one writer.
#[derive(Clone)]
pub struct Output {
    options: OutputOptions,
    inner: Arc<Mutex<Inner>>,
    closed: Arc<AtomicBool>,
}

struct Inner {
    writer: Box<dyn Write + Send>,
    /// Flush after every line (a terminal, a test); otherwise a background thread does.
    line_flush: bool,
    /// Lines written since the last flush.
    pending: bool,
}

/// The program's buffered stdout, for [`flush_stdout`]; weak, so it never keeps it alive.
static STDOUT: Mutex<Option<WeakOutput>> = Mutex::new(None);

/// Writes out what stdout holds, before a line goes to stderr (the logger and the summary
/// call it): stdout is buffered and stderr is not, so on one pipe the later line would
/// otherwise come first. Skipped when another thread is writing stdout this very moment.
pub fn flush_stdout() {
    let Some((inner, closed)) = STDOUT
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .as_ref()
        .and_then(WeakOutput::upgrade)
    else {
        return;
    };
    if let Ok(mut inner) = inner.try_lock() {
        let _ = flush_inner(&mut inner, &closed);
    }
}

/// The longest a line waits in the buffer when stdout is a pipe or a file.
pub const FLUSH_INTERVAL: Duration = Duration::from_millis(50);

impl Output {
    /// Output to the process's stdout: each line at once on a terminal; into a buffer that
    /// reaches a pipe or file every [`FLUSH_INTERVAL`] otherwise, so that printing costs no
    /// system call per datagram under load. The `listening` line and the summary are
    /// flushed at once.
    pub fn stdout(options: OutputOptions) -> Self {
        use std::io::IsTerminal;
        let stdout = io::stdout();
        if !stdout.is_terminal() {
            // std's Stdout flushes at every newline; a duplicate of fd 1 in a BufWriter does not.
            #[cfg(unix)]
            if let Ok(fd) = std::os::fd::AsFd::as_fd(&stdout).try_clone_to_owned() {
                let watch = fd.try_clone().ok();
                let out = Self::buffered_watching(Box::new(std::fs::File::from(fd)), options, watch);
                out.flush_before_stderr();
                return out;
            }
        }
        Self::new(Box::new(stdout), options)
    }

    /// Makes this the output [`flush_stdout`] flushes: with stdout and stderr on one pipe
    /// (`2>&1 | tee`), a warning or a summary then never overtakes the lines before it.
    /// (Elsewhere than Unix stdout is std's, which flushes every line itself.)
    #[cfg(unix)]
    fn flush_before_stderr(&self) {
        let weak = WeakOutput {
            inner: Arc::downgrade(&self.inner),
            closed: Arc::downgrade(&self.closed),
        };
        *STDOUT.lock().unwrap_or_else(PoisonError::into_inner) = Some(weak);
    }

    /// Output to any writer, each line flushed at once (tests pass a channel; see
    /// `testkit::capture`, in the dev-only `testkit` crate).
    pub fn new(writer: Box<dyn Write + Send>, options: OutputOptions) -> Self {
        Output {
            options,
            inner: Arc::new(Mutex::new(Inner {
                writer,
                line_flush: true,
                pending: false,
            })),
            closed: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Output to `writer` through a buffer, flushed by a background thread every
    /// [`FLUSH_INTERVAL`], and when the output is dropped.
    pub fn buffered(writer: Box<dyn Write + Send>, options: OutputOptions) -> Self {
        Self::buffered_watching(writer, options, None)
    }

    /// [`Output::buffered`], and with `pipe` (a copy of stdout's descriptor) the same thread
    /// also notices when the pipe's reader goes away (`udp-server | head -1`) even if nothing
    /// is printed, so an idle program stops then instead of at its next datagram.
    fn buffered_watching(writer: Box<dyn Write + Send>, options: OutputOptions, pipe: Option<Watched>) -> Self {
        let writer = Box::new(io::BufWriter::with_capacity(64 * 1024, writer));
        let out = Output {
            options,
            inner: Arc::new(Mutex::new(Inner {
                writer,
                line_flush: false,
                pending: false,
            })),
            closed: Arc::new(AtomicBool::new(false)),
        };
        // The thread holds a weak reference: once every clone of the output is gone, it ends.
        let weak = WeakOutput {
            inner: Arc::downgrade(&out.inner),
            closed: Arc::downgrade(&out.closed),
        };
        thread::spawn(move || {
            loop {
                thread::sleep(FLUSH_INTERVAL);
                // While the output lives, its writer (and so `reader`) is open.
                let Some((inner, closed)) = weak.upgrade() else { return };
                let _ = flush_inner(&mut lock(&inner), &closed);
                if pipe.as_ref().is_some_and(reader_gone) {
                    log::debug!("stdout was closed; stopping");
                    closed.store(true, Ordering::Relaxed);
                    return;
                }
            }
        });
        out
    }

    /// Writes out what is buffered.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn flush(&self) -> io::Result<()> {
        flush_inner(&mut self.lock(), &self.closed)
    }

    /// Whether stdout was closed by the reader; the program should stop.
    pub fn is_closed(&self) -> bool {
        // An atomic, not the writer's lock: receive loops ask this for every datagram.
        self.closed.load(Ordering::Relaxed)
    }

    /// The first line of every receiving program: `listening on 127.0.0.1:8888`, with the
    /// real port when bound to port 0. Printed even with `-q`: scripts wait for it.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn listening(&self, addr: SocketAddr) -> io::Result<()> {
        if self.options.json {
            self.json_line(json!({"event": "listening", "addr": addr.to_string()}))
        } else {
            self.line(&format!("listening on {addr}"))
        }
        .and_then(|()| self.flush())
    }

    /// A datagram that arrived (`"event":"recv"`). Nothing with `-q`.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn received(&self, d: &Datagram<'_>) -> io::Result<()> {
        self.datagram("recv", d)
    }

    /// A reply that arrived at the client (`"event":"reply"`, with `seq` and `rtt_ms`).
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn reply(&self, d: &Datagram<'_>) -> io::Result<()> {
        self.datagram("reply", d)
    }

    /// A datagram this program sent: a JSON event only (in text mode the sender knows).
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn sent(&self, peer: SocketAddr, len: usize) -> io::Result<()> {
        if self.options.json && !self.options.quiet {
            self.json_line(json!({"event": "sent", "peer": peer.to_string(), "len": len}))
        } else {
            Ok(())
        }
    }

    /// A datagram this program sent, shown like a received one (`"event":"sent"`): for
    /// senders whose output is what they send, such as a broadcaster.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn sent_datagram(&self, d: &Datagram<'_>) -> io::Result<()> {
        self.datagram("sent", d)
    }

    /// A report that sums up part of a run (`--report-every`): `text` as a line, or with
    /// `--json` the object `fields` (which names its `"event"`). Printed even with `-q`,
    /// like the summary.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn report(&self, text: &str, fields: Value) -> io::Result<()> {
        if self.options.json {
            self.json_line(fields)
        } else {
            self.line(text)
        }
    }

    /// Text as it is, without a line end, flushed at once (a live graph on a terminal).
    /// Nothing with `-q`.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn raw(&self, text: &str) -> io::Result<()> {
        if self.options.quiet || text.is_empty() {
            return Ok(());
        }
        let mut inner = self.lock();
        if self.is_closed() {
            return Ok(());
        }
        let written = inner.writer.write_all(text.as_bytes());
        inner.pending = true;
        closed_is_fine(
            written.and_then(|()| flush_inner(&mut inner, &self.closed)),
            &self.closed,
        )
    }

    /// A line of plain text (a board row). Nothing with `-q`.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn text(&self, text: &str) -> io::Result<()> {
        if self.options.quiet { Ok(()) } else { self.line(text) }
    }

    /// The summary on a clean stop: `text` to stderr, and with `--json` the object (with
    /// `"event":"summary"` added) as the last stdout line. Nothing once stdout was closed:
    /// the program was stopped by its reader, quietly.
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn summary(&self, text: &str, mut fields: Value) -> crate::Result<()> {
        if self.is_closed() {
            return Ok(());
        }
        // Every line this summary sums up goes out first.
        self.flush()
            .map_err(|e| crate::Error::io("cannot write to stdout", &e))?;
        if !text.is_empty() {
            let _ = writeln!(io::stderr(), "{text}");
        }
        if self.options.json {
            if let Value::Object(map) = &mut fields {
                map.insert("event".into(), "summary".into());
            }
            self.json_line(fields)
                .map_err(|e| crate::Error::io("cannot write to stdout", &e))?;
        }
        self.flush().map_err(|e| crate::Error::io("cannot write to stdout", &e))
    }

    fn datagram(&self, event: &str, d: &Datagram<'_>) -> io::Result<()> {
        if self.options.quiet {
            return Ok(());
        }
        if self.options.json {
            return self.json_line(self.datagram_json(event, d));
        }
        let time = if self.options.timestamp {
            format!("{}  ", LocalTime::now().clock())
        } else {
            String::new()
        };
        let truncated = if d.truncated { " (truncated)" } else { "" };
        let rtt = d
            .rtt
            .map_or(String::new(), |r| format!("  rtt {:.3} ms", r.as_secs_f64() * 1e3));
        let payload = self.options.encoding.render(d.bytes);
        let note = d.note.map_or(String::new(), |n| format!("  [{n}]"));
        let check = d.check.map_or(String::new(), |c| format!("  [{}]", c.to_text()));
        let rule = d.rule.map_or(String::new(), |r| format!("  [rule {r}]"));
        let header = d.header.map_or(String::new(), |h| format!("  | {}", h.to_text()));
        self.line(&format!(
            "{time}{}  {} B{truncated}  {payload}{rtt}{note}{check}{rule}{header}",
            d.peer,
            d.bytes.len()
        ))
    }

    /// One datagram as a JSON object: `"text"` is the escaped one-line rendering, `"hex"`
    /// the exact bytes.
    fn datagram_json(&self, event: &str, d: &Datagram<'_>) -> Value {
        let text = match self.options.encoding {
            Encoding::Hex => Encoding::Utf8.render(d.bytes),
            other => other.render(d.bytes),
        };
        let mut obj = json!({
            "event": event,
            "peer": d.peer.to_string(),
            "len": d.bytes.len(),
            "text": text,
            "hex": to_hex(d.bytes).replace(' ', ""),
            "truncated": d.truncated,
        });
        if event == "reply" {
            obj["seq"] = d.seq.map_or(Value::Null, Value::from);
            obj["rtt_ms"] = d
                .rtt
                .map_or(Value::Null, |r| Value::from(round3(r.as_secs_f64() * 1e3)));
        } else if let Some(seq) = d.seq {
            obj["seq"] = seq.into();
        }
        if let Some(note) = d.note {
            obj["note"] = note.into();
        }
        if let Some(check) = d.check {
            obj["checksum_ok"] = check.is_ok().into();
        }
        if let Some(rule) = d.rule {
            obj["rule"] = rule.into();
        }
        if let Some(header) = d.header {
            obj["udp_header"] = header.to_json();
        }
        if self.options.timestamp {
            obj["time"] = LocalTime::now().rfc3339().into();
        }
        obj
    }

    fn json_line(&self, value: Value) -> io::Result<()> {
        self.line(&value.to_string())
    }

    /// Writes one whole line, so lines from two threads never interleave; flushed at once
    /// on a terminal, within [`FLUSH_INTERVAL`] otherwise.
    fn line(&self, text: &str) -> io::Result<()> {
        let mut inner = self.lock();
        if self.is_closed() {
            return Ok(());
        }
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        let written = inner.writer.write_all(&buf);
        inner.pending = true;
        let result = if inner.line_flush {
            written.and_then(|()| flush_inner(&mut inner, &self.closed))
        } else {
            written
        };
        closed_is_fine(result, &self.closed)
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner)
    }
}

impl Drop for Output {
    /// Whatever is buffered goes out when the output is dropped, at the latest.
    fn drop(&mut self) {
        let _ = self.flush();
    }
}

/// What the flushing thread holds: it must not keep the output alive.
struct WeakOutput {
    inner: std::sync::Weak<Mutex<Inner>>,
    closed: std::sync::Weak<AtomicBool>,
}

impl WeakOutput {
    fn upgrade(&self) -> Option<(Arc<Mutex<Inner>>, Arc<AtomicBool>)> {
        Some((self.inner.upgrade()?, self.closed.upgrade()?))
    }
}

fn lock(inner: &Mutex<Inner>) -> std::sync::MutexGuard<'_, Inner> {
    // A panic while printing cannot leave the writer half-valid, so a poisoned lock is fine.
    inner.lock().unwrap_or_else(PoisonError::into_inner)
}

/// A copy of stdout's descriptor, watched for its reader going away.
#[cfg(unix)]
type Watched = std::os::fd::OwnedFd;
#[cfg(not(unix))]
type Watched = ();

/// Whether the read end of the pipe is closed: poll reports POLLERR for it. A file or
/// /dev/null never reports it.
#[cfg(unix)]
fn reader_gone(fd: &Watched) -> bool {
    use nix::poll::{PollFd, PollFlags, PollTimeout, poll};
    use std::os::fd::AsFd;
    let mut probe = [PollFd::new(fd.as_fd(), PollFlags::empty())];
    let ready = poll(&mut probe, PollTimeout::ZERO).unwrap_or(0);
    let revents = probe[0].revents().unwrap_or(PollFlags::empty());
    ready > 0 && revents.intersects(PollFlags::POLLERR | PollFlags::POLLHUP)
}

#[cfg(not(unix))]
fn reader_gone(_: &Watched) -> bool {
    false
}

fn flush_inner(inner: &mut Inner, closed: &AtomicBool) -> io::Result<()> {
    if !inner.pending {
        return Ok(());
    }
    inner.pending = false;
    closed_is_fine(inner.writer.flush(), closed)
}

/// A closed pipe (`udp-server | head -1`) is not an error: the output marks itself closed
/// and the program stops quietly.
fn closed_is_fine(result: io::Result<()>, closed: &AtomicBool) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            log::debug!("stdout was closed; stopping");
            closed.store(true, Ordering::Relaxed);
            Ok(())
        }
        other => other,
    }
}

/// `1 datagram`, `2 datagrams`: a count and its noun, in the right number.
pub fn plural(n: u64, noun: &str) -> String {
    if n == 1 {
        format!("1 {noun}")
    } else {
        format!("{n} {noun}s")
    }
}

/// Three decimals, as every millisecond figure in the JSON output is given.
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::mpsc::{self, Receiver, Sender};

    /// Each complete line written to it arrives on a channel. (The workspace's harness,
    /// crates/testkit, has the same and more, but it depends on this crate.)
    struct LineSender(Sender<String>, Vec<u8>);

    impl Write for LineSender {
        fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
            self.1.extend_from_slice(buf);
            while let Some(end) = self.1.iter().position(|&b| b == b'\n') {
                let line: Vec<u8> = self.1.drain(..=end).collect();
                let text = String::from_utf8_lossy(&line[..end]).into_owned();
                self.0
                    .send(text)
                    .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
            }
            Ok(buf.len())
        }

        fn flush(&mut self) -> io::Result<()> {
            Ok(())
        }
    }

    struct Lines(Receiver<String>);

    impl Lines {
        fn next(&self, within: Duration) -> Option<String> {
            self.0.recv_timeout(within).ok()
        }
    }

    fn capture(options: OutputOptions) -> (Output, Lines) {
        let (tx, rx) = mpsc::channel();
        (Output::new(Box::new(LineSender(tx, Vec::new())), options), Lines(rx))
    }

    fn peer() -> SocketAddr {
        "127.0.0.1:54321".parse().unwrap()
    }

    #[test]
    fn text_lines_hold_address_length_and_escaped_payload() {
        let (out, lines) = capture(OutputOptions::default());
        out.listening("127.0.0.1:8888".parse().unwrap()).unwrap();
        out.received(&Datagram::new(peer(), b"hi\nthere")).unwrap();
        out.received(&Datagram {
            truncated: true,
            ..Datagram::new(peer(), b"abc")
        })
        .unwrap();
        out.reply(&Datagram {
            seq: Some(3),
            rtt: Some(Duration::from_micros(1500)),
            ..Datagram::new(peer(), b"seq=3 ping")
        })
        .unwrap();
        let within = Duration::from_secs(1);
        assert_eq!(lines.next(within).unwrap(), "listening on 127.0.0.1:8888");
        assert_eq!(lines.next(within).unwrap(), "127.0.0.1:54321  8 B  hi\\nthere");
        assert_eq!(lines.next(within).unwrap(), "127.0.0.1:54321  3 B (truncated)  abc");
        assert_eq!(
            lines.next(within).unwrap(),
            "127.0.0.1:54321  10 B  seq=3 ping  rtt 1.500 ms"
        );
    }

    #[test]
    fn json_lines_carry_the_spec_fields() {
        let (out, lines) = capture(OutputOptions {
            json: true,
            ..Default::default()
        });
        out.listening("[::1]:9".parse().unwrap()).unwrap();
        out.received(&Datagram::new(peer(), b"A\xff")).unwrap();
        out.sent(peer(), 2).unwrap();
        out.reply(&Datagram {
            seq: Some(1),
            rtt: Some(Duration::from_micros(250)),
            ..Datagram::new(peer(), b"x")
        })
        .unwrap();
        out.summary("done", json!({"received": 1})).unwrap();
        let within = Duration::from_secs(1);
        let next = || -> Value { serde_json::from_str(&lines.next(within).unwrap()).unwrap() };
        assert_eq!(next(), json!({"event": "listening", "addr": "[::1]:9"}));
        assert_eq!(
            next(),
            json!({"event": "recv", "peer": "127.0.0.1:54321", "len": 2, "text": "A\\xff", "hex": "41ff", "truncated": false})
        );
        assert_eq!(next(), json!({"event": "sent", "peer": "127.0.0.1:54321", "len": 2}));
        let reply = next();
        assert_eq!(
            (reply["event"].as_str(), reply["seq"].as_u64(), reply["rtt_ms"].as_f64()),
            (Some("reply"), Some(1), Some(0.25))
        );
        assert_eq!(next(), json!({"event": "summary", "received": 1}));
    }

    #[test]
    fn quiet_keeps_only_the_listening_line() {
        let (out, lines) = capture(OutputOptions {
            quiet: true,
            ..Default::default()
        });
        out.received(&Datagram::new(peer(), b"x")).unwrap();
        out.listening(peer()).unwrap();
        assert_eq!(
            lines.next(Duration::from_secs(1)).unwrap(),
            "listening on 127.0.0.1:54321"
        );
    }

    #[test]
    fn timestamps_prefix_text_and_add_a_time_field() {
        let (out, lines) = capture(OutputOptions {
            timestamp: true,
            ..Default::default()
        });
        out.received(&Datagram::new(peer(), b"x")).unwrap();
        let line = lines.next(Duration::from_secs(1)).unwrap();
        let (clock, rest) = line.split_once("  ").unwrap();
        assert_eq!(clock.len(), "08:15:07.123".len(), "{line}");
        assert_eq!(rest, "127.0.0.1:54321  1 B  x");
    }

    #[test]
    fn buffered_output_arrives_within_the_flush_interval_and_on_drop() {
        let (tx, rx) = std::sync::mpsc::channel();
        let writer = LineSender(tx, Vec::new());
        let out = Output::buffered(Box::new(writer), OutputOptions::default());
        out.received(&Datagram::new(peer(), b"soon")).unwrap();
        let line = rx.recv_timeout(Duration::from_secs(2)).unwrap();
        assert_eq!(line, "127.0.0.1:54321  4 B  soon");
        out.received(&Datagram::new(peer(), b"last")).unwrap();
        drop(out);
        assert_eq!(
            rx.recv_timeout(Duration::from_secs(2)).unwrap(),
            "127.0.0.1:54321  4 B  last"
        );
    }

    #[test]
    fn a_closed_reader_stops_output_without_an_error() {
        struct Closed;
        impl Write for Closed {
            fn write(&mut self, _: &[u8]) -> io::Result<usize> {
                Err(io::ErrorKind::BrokenPipe.into())
            }
            fn flush(&mut self) -> io::Result<()> {
                Ok(())
            }
        }
        let out = Output::new(Box::new(Closed), OutputOptions::default());
        assert!(!out.is_closed());
        out.received(&Datagram::new(peer(), b"x")).unwrap();
        assert!(out.is_closed());
    }
}
