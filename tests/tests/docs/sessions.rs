//! The transcripts trycmd cannot run: ```shellsession blocks that start a server in the
//! background (`udp-server … &`), talk to it, and stop it (`kill %1`). Each is run as
//! printed, in a fresh folder, and what the programs print must be what the block shows.
//!
//! A terminal interleaves stdout and stderr, and a background server's lines with the
//! foreground command's; a pipe cannot tell that order. So a block matches when its lines
//! are an interleaving of the streams, each stream's lines in their own order: a command's
//! stdout and stderr within its step, a background job's from its start onwards. `[..]`
//! stands for any text within a line, a line `...` for any lines, `? N` right after a
//! command for its exit code (as in trycmd).
//!
//! No fixed port is bound: a background server given `--bind PORT` is started on port 0,
//! its `listening on` line says which port it got (readiness), and that port is written
//! back as PORT in everything printed, so the block reads as the reader will see it.

use std::collections::HashSet;
use std::io;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc::{self, Receiver};
use std::time::Duration;

use testkit::Lines;

/// How long any one command may take, and a stopped server may take to print its summary.
const DEADLINE: Duration = Duration::from_secs(20);

/// One `$ …` line and what the block prints after it.
#[derive(Debug)]
pub struct Step {
    pub command: String,
    pub code: i32,
    pub expected: Vec<String>,
}

/// The ```shellsession blocks of a document, each as its steps.
pub fn sessions(doc: &str) -> Vec<Vec<Step>> {
    let mut blocks = Vec::new();
    let mut current: Option<Vec<Step>> = None;
    for line in doc.lines() {
        match (&mut current, line) {
            (None, "```shellsession") => current = Some(Vec::new()),
            (Some(_), "```") => blocks.extend(current.take()),
            (Some(steps), _) => match line.strip_prefix("$ ") {
                Some(command) => steps.push(Step {
                    command: command.to_string(),
                    code: 0,
                    expected: Vec::new(),
                }),
                None => {
                    let step = steps.last_mut().expect("a session starts with a `$ ` line");
                    match line.strip_prefix("? ").and_then(|c| c.parse().ok()) {
                        Some(code) if step.expected.is_empty() => step.code = code,
                        _ => step.expected.push(line.to_string()),
                    }
                }
            },
            (None, _) => {}
        }
    }
    blocks
}

/// The words of a command line, as sh splits them (quotes, no expansions).
fn words(line: &str) -> Vec<String> {
    let (mut words, mut word, mut quote, mut started) = (Vec::new(), String::new(), None, false);
    for c in line.chars() {
        match (quote, c) {
            (None, '\'' | '"') => (quote, started) = (Some(c), true),
            (Some(q), _) if c == q => quote = None,
            (None, ' ') => {
                if started {
                    words.push(std::mem::take(&mut word));
                }
                started = false;
            }
            _ => (word, started) = (word + &c.to_string(), true),
        }
    }
    if started {
        words.push(word);
    }
    words
}

/// `text` with every whole number `from` replaced by `to` (a port, never part of a longer
/// number).
fn swap_number(text: &str, from: &str, to: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(from) {
        let before = rest[..at].chars().next_back();
        let after = rest[at + from.len()..].chars().next();
        out.push_str(&rest[..at]);
        let whole = !before.is_some_and(|c| c.is_ascii_digit()) && !after.is_some_and(|c| c.is_ascii_digit());
        out.push_str(if whole { to } else { from });
        rest = &rest[at + from.len()..];
    }
    out.push_str(rest);
    out
}

/// A program a session runs: ours from the build, anything else (python3, cmp, rm) from PATH.
fn program(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("the test's own path");
    let built = exe.parent().and_then(Path::parent).expect("target/PROFILE").join(name);
    if name.starts_with("udp-") {
        built
    } else {
        PathBuf::from(name)
    }
}

/// A process of a session, its output read line by line.
struct Running {
    pid: u32,
    /// The exit code, sent by the thread that waits for it (-1: ended by a signal).
    exit: Receiver<i32>,
    ended: bool,
    stdout: Lines,
    stderr: Lines,
    /// Lines already read (the `listening on` line of a background server).
    seen: Vec<String>,
}

impl Running {
    fn start(dir: &Path, words: &[String]) -> io::Result<Self> {
        let mut child = Command::new(program(&words[0]))
            .args(&words[1..])
            .current_dir(dir)
            .env_remove("RUST_LOG")
            .env("NO_COLOR", "1")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = Lines::from_reader(child.stdout.take().expect("a stdout pipe"));
        let stderr = Lines::from_reader(child.stderr.take().expect("a stderr pipe"));
        let (pid, (tx, exit)) = (child.id(), mpsc::channel());
        std::thread::spawn(move || {
            let code = child.wait().ok().and_then(|s| s.code()).unwrap_or(-1);
            let _ = tx.send(code);
        });
        Ok(Running {
            pid,
            exit,
            ended: false,
            stdout,
            stderr,
            seen: Vec::new(),
        })
    }

    /// Sends a signal (`TERM`, `KILL`) by PID.
    fn signal(&self, name: &str) {
        let _ = Command::new("kill").args(["-s", name, &self.pid.to_string()]).status();
    }

    /// Waits for the end (within [`DEADLINE`], then kills it): the exit code, stdout and
    /// stderr.
    fn finish(mut self) -> (i32, Vec<String>, Vec<String>) {
        let code = self.exit.recv_timeout(DEADLINE).unwrap_or_else(|_| {
            self.signal("KILL");
            let _ = self.exit.recv_timeout(DEADLINE);
            -1
        });
        self.ended = true;
        let mut out = std::mem::take(&mut self.seen);
        out.extend(self.stdout.rest(Duration::from_secs(2)));
        (code, out, self.stderr.rest(Duration::from_secs(2)))
    }
}

impl Drop for Running {
    /// A session that failed half-way leaves no server running.
    fn drop(&mut self) {
        if !self.ended && self.exit.try_recv().is_err() {
            self.signal("KILL");
        }
    }
}

/// A stream of printed lines and the steps whose output it may appear in.
struct Stream {
    lines: Vec<String>,
    from: usize,
    to: usize,
}

/// Does `line` match `pattern`, where `[..]` in the pattern stands for any text?
fn line_matches(pattern: &str, line: &str) -> bool {
    let parts: Vec<&str> = pattern.split("[..]").collect();
    if parts.len() == 1 {
        return pattern == line;
    }
    let (first, last) = (parts[0], parts[parts.len() - 1]);
    if !line.starts_with(first) || line.len() < first.len() + last.len() || !line.ends_with(last) {
        return false;
    }
    let mut rest = &line[first.len()..line.len() - last.len()];
    for part in &parts[1..parts.len() - 1] {
        match rest.find(part) {
            Some(at) => rest = &rest[at + part.len()..],
            None => return false,
        }
    }
    true
}

/// Whether the expected lines (each with its step) are an interleaving of the streams.
struct Matcher<'a> {
    expected: Vec<(usize, &'a str)>,
    streams: &'a [Stream],
    failed: HashSet<(usize, Vec<usize>)>,
}

impl Matcher<'_> {
    fn matches(&mut self, at: usize, read: &mut Vec<usize>) -> bool {
        if self.failed.contains(&(at, read.clone())) {
            return false;
        }
        let done = at == self.expected.len();
        if done && read.iter().zip(self.streams).all(|(&r, s)| r == s.lines.len()) {
            return true;
        }
        let mut ok = false;
        let step = self.expected.get(at).map_or(usize::MAX, |e| e.0);
        let pattern = self.expected.get(at).map(|e| e.1);
        if pattern == Some("...") {
            ok = self.matches(at + 1, read);
        }
        for i in 0..self.streams.len() {
            let stream = &self.streams[i];
            if ok || done || step < stream.from || step > stream.to || read[i] == stream.lines.len() {
                continue;
            }
            let line = &stream.lines[read[i]];
            let next = match pattern {
                Some("...") => at,
                Some(p) if line_matches(p, line) => at + 1,
                _ => continue,
            };
            read[i] += 1;
            ok = self.matches(next, read);
            read[i] -= 1;
        }
        if !ok {
            self.failed.insert((at, read.clone()));
        }
        ok
    }
}

/// Runs one session in `dir` and says what differs from the block, if anything.
pub fn run(dir: &Path, steps: &[Step]) -> Result<(), String> {
    let mut ports: Vec<(String, String)> = Vec::new();
    let mut jobs: Vec<(usize, Option<Running>)> = Vec::new();
    let mut streams = Vec::new();
    for (n, step) in steps.iter().enumerate() {
        let mut words = words(&step.command);
        for word in &mut words {
            for (doc, real) in &ports {
                *word = swap_number(word, doc, real);
            }
        }
        if words.last().is_some_and(|w| w == "&") {
            words.pop();
            jobs.push((n, Some(start_server(dir, &mut words, &mut ports)?)));
            continue;
        }
        let mut code = 0;
        for command in words.split(|w| w == "&&") {
            code = run_one(dir, command, n, &mut jobs, &mut streams)?;
            if code != 0 {
                break;
            }
        }
        if code != step.code {
            return Err(format!(
                "`{}` exited {code}, the block says {}",
                step.command, step.code
            ));
        }
    }
    // A job not killed must end by itself (`--count N`), within the deadline.
    for (started, job) in &mut jobs {
        if let Some(job) = job.take() {
            let (code, out, err) = job.finish();
            if code != 0 {
                return Err(format!("job {started} did not end by itself: stop it with `kill %N`"));
            }
            streams.push(Stream {
                lines: out,
                from: *started,
                to: usize::MAX,
            });
            streams.push(Stream {
                lines: err,
                from: *started,
                to: usize::MAX,
            });
        }
    }
    for stream in &mut streams {
        for line in &mut stream.lines {
            for (doc, real) in &ports {
                *line = swap_number(line, real, doc);
            }
        }
    }
    compare(steps, &streams)
}

/// Starts a background server, on port 0 in place of the block's port the first time, and
/// reads its `listening on` line.
fn start_server(dir: &Path, words: &mut [String], ports: &mut Vec<(String, String)>) -> Result<Running, String> {
    let bind = words.iter().position(|w| w == "--bind").map(|i| i + 1);
    let Some(value) = bind.and_then(|i| words.get_mut(i)) else {
        return Err(format!("a background {} without --bind", words[0]));
    };
    let (host, port) = value
        .rsplit_once(':')
        .map_or(("127.0.0.1".to_string(), value.clone()), |(h, p)| {
            (h.to_string(), p.to_string())
        });
    let fresh = !ports.iter().any(|(_, real)| *real == port);
    if fresh {
        *value = format!("{host}:0");
    }
    let mut job = Running::start(dir, words).map_err(|e| format!("{}: {e}", words[0]))?;
    let line = job.stdout.next(Duration::from_secs(10)).unwrap_or_default();
    let Some(real) = line.strip_prefix("listening on ").and_then(|a| a.rsplit_once(':')) else {
        return Err(format!(
            "`{}` said {line:?} first, not `listening on …`",
            words.join(" ")
        ));
    };
    if fresh {
        ports.push((port, real.1.to_string()));
    }
    job.seen.push(line);
    Ok(job)
}

/// Runs one command of a step (`kill %N`, `echo`, or a program) and records what it printed.
fn run_one(
    dir: &Path,
    command: &[String],
    step: usize,
    jobs: &mut [(usize, Option<Running>)],
    streams: &mut Vec<Stream>,
) -> Result<i32, String> {
    match command[0].as_str() {
        "kill" => {
            for spec in &command[1..] {
                let n: usize = spec
                    .trim_start_matches('%')
                    .parse()
                    .map_err(|_| format!("kill {spec}"))?;
                let (started, job) = jobs.get_mut(n - 1).ok_or(format!("no job {spec}"))?;
                let job = job.take().ok_or(format!("job {spec} was stopped already"))?;
                job.signal("TERM");
                let (_, out, err) = job.finish();
                streams.push(Stream {
                    lines: out,
                    from: *started,
                    to: usize::MAX,
                });
                streams.push(Stream {
                    lines: err,
                    from: *started,
                    to: usize::MAX,
                });
            }
            Ok(0)
        }
        "echo" => {
            streams.push(Stream {
                lines: vec![command[1..].join(" ")],
                from: step,
                to: step,
            });
            Ok(0)
        }
        _ => {
            let job = Running::start(dir, command).map_err(|e| format!("{}: {e}", command[0]))?;
            let (code, out, err) = job.finish();
            streams.push(Stream {
                lines: out,
                from: step,
                to: step,
            });
            streams.push(Stream {
                lines: err,
                from: step,
                to: step,
            });
            Ok(code)
        }
    }
}

fn compare(steps: &[Step], streams: &[Stream]) -> Result<(), String> {
    let expected: Vec<(usize, &str)> = steps
        .iter()
        .enumerate()
        .flat_map(|(n, s)| s.expected.iter().map(move |l| (n, l.as_str())))
        .collect();
    let mut matcher = Matcher {
        expected,
        streams,
        failed: HashSet::new(),
    };
    if matcher.matches(0, &mut vec![0; streams.len()]) {
        return Ok(());
    }
    let printed: Vec<String> = streams.iter().map(|s| s.lines.join("\n")).collect();
    Err(format!(
        "what was printed, stream by stream:\n{}",
        printed.join("\n--\n")
    ))
}
