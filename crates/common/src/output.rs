//! What the programs print on stdout: one line per datagram, or one JSON object per line.
//!
//! Data goes to stdout and diagnostics to stderr (the `log` crate), so `udp-server > log.txt`
//! keeps exactly the datagrams. Every write is one whole line, so lines from two threads
//! never interleave. A closed stdout (`udp-server | head -1`) is not an error: the output
//! marks itself closed and the program stops quietly.
//!
//! When stdout is a pipe, a background thread does every write, and the program only hands
//! it lines. So a reader that stops reading (`kill -STOP`, a paused `less`) makes the
//! program wait for room, as a pipe should, but never inside a system call it cannot
//! leave: once a stop is asked for ([`Output::stop_on`]), the program gives up waiting,
//! counts what could not be written and says so after its summary.

use std::io::{self, Write};
use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Condvar, Mutex, OnceLock, PoisonError};
use std::thread;
use std::time::{Duration, Instant};

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
    /// How payloads are typed, and shown unless `show` says otherwise (`--encoding`).
    pub encoding: Encoding,
    /// No per-datagram lines (`-q`); the `listening` line and the summary stay.
    pub quiet: bool,
    /// How payloads are shown (`--show`); `None`: as `encoding` says.
    pub show: Option<Show>,
}

/// What a datagram's line shows of its payload (`--show`), whatever it was typed in: a
/// device that speaks AT text may still be read byte by byte, as NetAssist's "hex display".
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Show {
    /// Text in `--encoding` (UTF-8 when that is hex).
    Text,
    /// Hex bytes: `48 65 6c`.
    Hex,
    /// Text, then the hex bytes in brackets: `Hel  [hex 48 65 6c]`.
    Both,
}

impl std::str::FromStr for Show {
    type Err = crate::Error;

    fn from_str(text: &str) -> crate::Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "text" => Ok(Show::Text),
            "hex" => Ok(Show::Hex),
            "both" => Ok(Show::Both),
            _ => Err(crate::Error::Usage(format!(
                "unknown --show '{}': use hex, text or both",
                crate::error::echo(text)
            ))),
        }
    }
}

impl OutputOptions {
    /// A payload as its line shows it: `--show`, else as `--encoding` says. Never fails,
    /// always one line.
    ///
    /// # Examples
    /// ```
    /// use common::output::{OutputOptions, Show};
    /// let typed_as_text = OutputOptions::default();
    /// assert_eq!(typed_as_text.render(b"OK"), "OK");
    /// assert_eq!(OutputOptions { show: Some(Show::Hex), ..typed_as_text }.render(b"OK"), "4f 4b");
    /// assert_eq!(OutputOptions { show: Some(Show::Both), ..typed_as_text }.render(b"OK"), "OK  [hex 4f 4b]");
    /// ```
    pub fn render(&self, bytes: &[u8]) -> String {
        // Text of hex-typed bytes is UTF-8, as the JSON's "text" has always been.
        let text = |bytes: &[u8]| match self.encoding {
            Encoding::Hex => Encoding::Utf8.render(bytes),
            other => other.render(bytes),
        };
        match self.show {
            None => self.encoding.render(bytes),
            Some(Show::Text) => text(bytes),
            Some(Show::Hex) => to_hex(bytes),
            Some(Show::Both) => format!("{}  [hex {}]", text(bytes), to_hex(bytes)),
        }
    }
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
    /// The server's reply to it was cut to this many bytes (`--max-reply-ratio`):
    /// `[reply cut to N B]` in text, `"reply_cut_to"` in JSON.
    pub reply_cut: Option<usize>,
    /// What its trailing check bytes said (`--checksum`): `[checksum ok]` in text,
    /// `"checksum_ok"` in JSON.
    pub check: Option<&'a crate::checksum::Check>,
    /// The rule that answered it (`udp-server --rule`): `[rule …]` in text, `"rule"` in JSON.
    pub rule: Option<&'a str>,
    /// What `udp-client --expect` said of it: `Ok(())` is `[expect ok]`, `Err(why)`
    /// `[expect FAILED: why]`; `"expect_ok"` (and `"expect_failed"`, the why) in JSON.
    pub expect: Option<Result<(), &'a str>>,
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
            reply_cut: None,
            check: None,
            rule: None,
            expect: None,
            header: None,
        }
    }
}

/// The program's stdout. Cheap to clone; clones share one writer.
#[derive(Clone)]
pub struct Output {
    options: OutputOptions,
    inner: Arc<Shared>,
    closed: Arc<AtomicBool>,
    /// A stop request: from then on, waiting for a reader that does not read is given up.
    stop: Arc<OnceLock<crate::shutdown::Shutdown>>,
}

/// The state behind the lock, and the two ways the threads wake each other.
struct Shared {
    state: Mutex<Inner>,
    /// The writing thread has made room (or written everything).
    room: Condvar,
    /// There is a full queue, or a flush is asked for.
    work: Condvar,
}

struct Inner {
    sink: Sink,
    /// Lines written since the last flush.
    pending: bool,
    /// Buffered mode: the writing thread is in the middle of a write.
    writing: bool,
    /// Buffered mode: the writing thread's last error other than a closed pipe, for the
    /// program's next line or flush to report.
    error: Option<io::Error>,
    /// Bytes given up on: the reader did not read, and a stop was asked for.
    unwritten: u64,
    /// The writing thread is wanted now (a full queue, a flush), not at its next round.
    wanted: bool,
    /// A flush after a stop request gave up on the reader: later ones do not wait again.
    abandoned: bool,
}

/// Where lines go.
enum Sink {
    /// Written and flushed at once, by the caller (a terminal, a test).
    Direct(Box<dyn Write + Send>),
    /// Queued for the writing thread (a pipe or a file), up to [`QUEUE`] bytes.
    Queue(Vec<u8>),
}

/// The most bytes queued for the writing thread; beyond, a line waits for room.
const QUEUE: usize = 64 * 1024;

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
    let Ok(mut state) = inner.state.try_lock() else { return };
    if let Sink::Direct(_) = state.sink {
        let _ = flush_inner(&mut state, &closed);
        return;
    }
    drop(state);
    // The writing thread empties the queue; the logger waits for it, but not for long
    // behind a reader that does not read. An error is left for the program to see.
    let _ = wait_drained(&inner, &closed, Errors::Leave, |_, waited| waited >= LOG_WAIT);
}

/// The longest a log line waits for stdout's lines before it (a reader that reads slowly).
const LOG_WAIT: Duration = Duration::from_millis(200);

/// Whether [`wait_drained`] reports the writing thread's error (and so clears it).
#[derive(Clone, Copy, PartialEq, Eq)]
enum Errors {
    Take,
    Leave,
}

/// Waits until the writing thread has written everything queued, the pipe is closed, or
/// `enough(state, waited so far)` says to stop waiting.
fn wait_drained(
    shared: &Shared,
    closed: &AtomicBool,
    errors: Errors,
    mut enough: impl FnMut(&mut Inner, Duration) -> bool,
) -> io::Result<()> {
    let started = Instant::now();
    let mut state = lock(&shared.state);
    loop {
        if state.error.is_some() {
            return match errors {
                Errors::Take => state.error.take().map_or(Ok(()), Err),
                Errors::Leave => Ok(()),
            };
        }
        let empty = matches!(&state.sink, Sink::Queue(q) if q.is_empty());
        if (empty && !state.writing) || closed.load(Ordering::Relaxed) || enough(&mut state, started.elapsed()) {
            return Ok(());
        }
        if !empty {
            state.wanted = true;
            shared.work.notify_one();
        }
        state = shared
            .room
            .wait_timeout(state, Duration::from_millis(10))
            .unwrap_or_else(PoisonError::into_inner)
            .0;
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
        Self::with_sink(Sink::Direct(writer), options)
    }

    fn with_sink(sink: Sink, options: OutputOptions) -> Self {
        Output {
            options,
            inner: Arc::new(Shared {
                state: Mutex::new(Inner {
                    sink,
                    pending: false,
                    writing: false,
                    error: None,
                    unwritten: 0,
                    wanted: false,
                    abandoned: false,
                }),
                room: Condvar::new(),
                work: Condvar::new(),
            }),
            closed: Arc::new(AtomicBool::new(false)),
            stop: Arc::new(OnceLock::new()),
        }
    }

    /// Once `shutdown` is triggered, a reader that does not read is no longer waited for:
    /// what cannot be written is counted, and [`Output::summary`] says so.
    pub fn stop_on(&self, shutdown: &crate::shutdown::Shutdown) {
        let _ = self.stop.set(shutdown.clone());
    }

    fn stopping(&self) -> bool {
        self.stop.get().is_some_and(crate::shutdown::Shutdown::is_triggered)
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
        let out = Self::with_sink(Sink::Queue(Vec::with_capacity(QUEUE)), options);
        // The thread holds a weak reference: once every clone of the output is gone, it ends.
        let weak = WeakOutput {
            inner: Arc::downgrade(&out.inner),
            closed: Arc::downgrade(&out.closed),
        };
        thread::spawn(move || write_queued(&weak, writer, pipe.as_ref()));
        out
    }

    /// Writes out what is buffered. When stdout is a pipe, this waits for the writing
    /// thread, and stops waiting once a stop was asked for and the reader is not reading
    /// (what is left is counted as unwritten).
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn flush(&self) -> io::Result<()> {
        let mut state = self.lock();
        if let Sink::Direct(_) = state.sink {
            return flush_inner(&mut state, &self.closed);
        }
        drop(state);
        wait_drained(&self.inner, &self.closed, Errors::Take, |inner, waited| {
            // A slow reader gets a moment after a stop request; one that does not read, no more.
            if !self.stopping() || !(inner.abandoned || waited >= GIVE_UP) {
                return false;
            }
            inner.abandoned = true;
            if let Sink::Queue(q) = &mut inner.sink {
                inner.unwritten += q.len() as u64;
                q.clear();
            }
            true
        })
    }

    /// Bytes of output that could not be written (the reader did not read, and a stop was
    /// asked for).
    pub fn unwritten(&self) -> u64 {
        self.lock().unwritten
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
        // Chinese Windows (NetAssist's default) sends GBK: shown as UTF-8 it is a row of
        // \xNN escapes, so say once what would show it as text. With -q nothing is shown,
        // and the look at every datagram's bytes would be a flood's largest cost here.
        if !self.options.quiet {
            crate::codec::hint_gbk_once(self.options.encoding, d.bytes);
        }
        self.datagram("recv", d)
    }

    /// A reply that arrived at the client (`"event":"reply"`, with `seq` and `rtt_ms`).
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn reply(&self, d: &Datagram<'_>) -> io::Result<()> {
        crate::codec::hint_gbk_once(self.options.encoding, d.bytes);
        self.datagram("reply", d)
    }

    /// A datagram this program sent: a JSON event only (in text mode the sender knows).
    ///
    /// # Errors
    /// Any stdout error other than a closed pipe.
    pub fn sent(&self, peer: SocketAddr, len: usize) -> io::Result<()> {
        if self.options.json && !self.options.quiet {
            let peer = crate::addr::unmapped(peer);
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
        self.write_bytes(text.as_bytes())?;
        self.flush()
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
        self.flush()
            .map_err(|e| crate::Error::io("cannot write to stdout", &e))?;
        let unwritten = self.unwritten();
        if unwritten > 0 {
            let _ = writeln!(
                io::stderr(),
                "{unwritten} B of output could not be written to stdout: its reader was not reading when the stop came"
            );
        }
        Ok(())
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
        let payload = self.options.render(d.bytes);
        let note = d.note.map_or(String::new(), |n| format!("  [{n}]"));
        let cut = d.reply_cut.map_or(String::new(), |n| format!("  [reply cut to {n} B]"));
        let check = d.check.map_or(String::new(), |c| format!("  [{}]", c.to_text()));
        let rule = d
            .rule
            .map_or(String::new(), |r| format!("  [rule {}]", crate::error::echo(r)));
        let expect = match d.expect {
            None => String::new(),
            Some(Ok(())) => "  [expect ok]".to_string(),
            Some(Err(why)) => format!("  [expect FAILED: {why}]"),
        };
        let header = d.header.map_or(String::new(), |h| format!("  | {}", h.to_text()));
        self.line(&format!(
            "{time}{}  {} B{truncated}  {payload}{rtt}{note}{check}{expect}{rule}{cut}{header}",
            crate::addr::unmapped(d.peer),
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
            "peer": crate::addr::unmapped(d.peer).to_string(),
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
        if let Some(cut) = d.reply_cut {
            obj["reply_cut_to"] = cut.into();
        }
        if let Some(rule) = d.rule {
            obj["rule"] = rule.into();
        }
        if let Some(expect) = d.expect {
            obj["expect_ok"] = expect.is_ok().into();
            if let Err(why) = expect {
                obj["expect_failed"] = why.into();
            }
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
        let mut buf = Vec::with_capacity(text.len() + 1);
        buf.extend_from_slice(text.as_bytes());
        buf.push(b'\n');
        self.write_bytes(&buf)
    }

    /// Writes `bytes` whole: straight to a direct sink (flushed), or into the queue once
    /// it has room.
    fn write_bytes(&self, bytes: &[u8]) -> io::Result<()> {
        let mut state = self.lock();
        loop {
            if self.is_closed() {
                return Ok(());
            }
            if let Some(e) = state.error.take() {
                return Err(e);
            }
            let stopping = self.stopping();
            let inner = &mut *state;
            match &mut inner.sink {
                Sink::Direct(writer) => {
                    let written = writer.write_all(bytes);
                    inner.pending = true;
                    let result = written.and_then(|()| flush_inner(inner, &self.closed));
                    return closed_is_fine(result, &self.closed);
                }
                Sink::Queue(queue) if queue.len() + bytes.len() <= QUEUE || queue.is_empty() => {
                    queue.extend_from_slice(bytes);
                    inner.pending = true;
                    return Ok(());
                }
                Sink::Queue(_) if stopping => {
                    inner.unwritten += bytes.len() as u64;
                    return Ok(());
                }
                Sink::Queue(_) => {}
            }
            // Full: the writing thread makes room, unless the reader does not read.
            state.wanted = true;
            self.inner.work.notify_one();
            state = self
                .inner
                .room
                .wait_timeout(state, WAIT_SLICE)
                .unwrap_or_else(PoisonError::into_inner)
                .0;
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Inner> {
        lock(&self.inner.state)
    }
}

/// How long a flush after a stop request waits for a reader before giving up.
const GIVE_UP: Duration = Duration::from_millis(50);

/// How often a line waiting for room looks at the stop request.
const WAIT_SLICE: Duration = Duration::from_millis(20);

/// The writing thread of a buffered output: takes the queue every [`FLUSH_INTERVAL`] (or
/// at once when asked) and writes it, outside the lock, so the program never waits inside
/// a write that a stopped reader holds. With `pipe`, it also notices the reader going away.
fn write_queued(weak: &WeakOutput, mut writer: Box<dyn Write + Send>, pipe: Option<&Watched>) {
    let mut batch = Vec::with_capacity(QUEUE);
    // The reader is looked at once a round, not after every write: a line just written
    // (`listening on …`) may be the one the reader wanted (`| head -1`), and what the
    // program does next still gets its moment, as the chapter's loop would.
    let mut looked = Instant::now();
    loop {
        // While the output lives, its writer (and so `pipe`) is open.
        let Some((shared, closed)) = weak.upgrade() else { return };
        {
            let mut state = lock(&shared.state);
            // One write per round (FLUSH_INTERVAL) under load, not one per line.
            if !state.wanted {
                state = shared
                    .work
                    .wait_timeout(state, FLUSH_INTERVAL)
                    .unwrap_or_else(PoisonError::into_inner)
                    .0;
            }
            state.wanted = false;
            if let Sink::Queue(q) = &mut state.sink {
                std::mem::swap(q, &mut batch);
            }
            state.writing = !batch.is_empty();
            state.pending = false;
        }
        shared.room.notify_all();
        if !batch.is_empty() {
            let result = closed_is_fine(writer.write_all(&batch).and_then(|()| writer.flush()), &closed);
            batch.clear();
            let mut state = lock(&shared.state);
            state.writing = false;
            if let Err(e) = result {
                state.error = Some(e);
            }
            drop(state);
            shared.room.notify_all();
        }
        if looked.elapsed() < FLUSH_INTERVAL {
            continue;
        }
        looked = Instant::now();
        if pipe.is_some_and(reader_gone) {
            // Closed first: the log line below waits for stdout unless it is closed.
            closed.store(true, Ordering::Relaxed);
            shared.room.notify_all();
            log::debug!("stdout was closed; stopping");
            return;
        }
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
    inner: std::sync::Weak<Shared>,
    closed: std::sync::Weak<AtomicBool>,
}

impl WeakOutput {
    fn upgrade(&self) -> Option<(Arc<Shared>, Arc<AtomicBool>)> {
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

/// Flushes a direct sink (a queued one is the writing thread's).
fn flush_inner(inner: &mut Inner, closed: &AtomicBool) -> io::Result<()> {
    if !inner.pending {
        return Ok(());
    }
    inner.pending = false;
    match &mut inner.sink {
        Sink::Direct(writer) => closed_is_fine(writer.flush(), closed),
        Sink::Queue(_) => Ok(()),
    }
}

/// A closed pipe (`udp-server | head -1`) is not an error: the output marks itself closed
/// and the program stops quietly.
fn closed_is_fine(result: io::Result<()>, closed: &AtomicBool) -> io::Result<()> {
    match result {
        Err(e) if e.kind() == io::ErrorKind::BrokenPipe => {
            closed.store(true, Ordering::Relaxed);
            log::debug!("stdout was closed; stopping");
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

    /// `udp-client --expect`: the verdict after the check bytes, and in JSON `expect_ok`
    /// with, for a failure, why.
    #[test]
    fn an_expect_verdict_is_marked_on_the_line_and_in_json() {
        let (out, lines) = capture(OutputOptions::default());
        out.reply(&Datagram {
            expect: Some(Ok(())),
            ..Datagram::new(peer(), b"OK")
        })
        .unwrap();
        out.reply(&Datagram {
            expect: Some(Err("got \"NO\", want OK")),
            ..Datagram::new(peer(), b"NO")
        })
        .unwrap();
        let within = Duration::from_secs(1);
        assert_eq!(lines.next(within).unwrap(), "127.0.0.1:54321  2 B  OK  [expect ok]");
        assert_eq!(
            lines.next(within).unwrap(),
            "127.0.0.1:54321  2 B  NO  [expect FAILED: got \"NO\", want OK]"
        );
        let (out, lines) = capture(OutputOptions {
            json: true,
            ..Default::default()
        });
        out.reply(&Datagram {
            expect: Some(Err("why")),
            ..Datagram::new(peer(), b"NO")
        })
        .unwrap();
        let line: Value = serde_json::from_str(&lines.next(within).unwrap()).unwrap();
        assert_eq!(
            (line["expect_ok"].as_bool(), line["expect_failed"].as_str()),
            (Some(false), Some("why"))
        );
    }

    /// An IPv4 peer of a server on `[::]` was shown as `[::ffff:127.0.0.1]:…`.
    #[test]
    fn ipv4_peers_of_a_dual_stack_socket_are_shown_as_ipv4() {
        let mapped: SocketAddr = "[::ffff:127.0.0.1]:54321".parse().unwrap();
        let (out, lines) = capture(OutputOptions::default());
        out.received(&Datagram::new(mapped, b"x")).unwrap();
        assert_eq!(lines.next(Duration::from_secs(1)).unwrap(), "127.0.0.1:54321  1 B  x");
        let (out, lines) = capture(OutputOptions {
            json: true,
            ..Default::default()
        });
        out.received(&Datagram::new(mapped, b"x")).unwrap();
        out.sent(mapped, 1).unwrap();
        for _ in 0..2 {
            let line: Value = serde_json::from_str(&lines.next(Duration::from_secs(1)).unwrap()).unwrap();
            assert_eq!(line["peer"], "127.0.0.1:54321");
        }
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
