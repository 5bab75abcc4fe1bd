//! The one test harness the workspace's tests share: every wait has a deadline
//! ([`WAIT`]), and readiness is the `listening` line, never a sleep. A crate of its own that
//! only dev-dependencies name (`publish = false`), so no program carries test code.
//!
//! - [`InProcess`]: a program's `run` on a thread, its stdout captured line by line;
//! - [`Process`]: a program's binary as a real process ([`bin`] finds it);
//! - [`closed_port`], [`local_socket`], [`recv`]: the peer side of a test;
//! - [`assert_help_and_version`]: what every program's `--help` and `--version` owe;
//! - `offload` (Linux): GSO bursts and GRO receives, to see how datagrams were sent.

// Test helpers fail the test that calls them, the way assertions do.
#![allow(clippy::expect_used, clippy::panic)]

#[cfg(target_os = "linux")]
pub mod offload;
pub mod tshark;

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

/// The command [`output`] runs: std's `Command` with a deadline (`timeout`).
pub use assert_cmd::Command;

use common::output::{Output, OutputOptions};
use common::shutdown::Shutdown;

/// The deadline for anything that should happen at once; generous for a loaded machine.
pub const WAIT: Duration = Duration::from_secs(5);

/// The deadline for a program a test runs to its end ([`run_to_end`], [`output`]): past
/// it the program is killed and the test fails, so a hung program cannot hang `cargo test`.
/// The longest run in the suite (a 300-ping burst, a file sent in pieces) takes ~1 s.
pub const RUN_DEADLINE: Duration = Duration::from_secs(30);

/// Lines arriving from a reader or an in-process [`Output`], read with deadlines.
pub struct Lines {
    rx: Receiver<String>,
}

impl Lines {
    /// Reads `reader` line by line on a thread of its own.
    pub fn from_reader<R: Read + Send + 'static>(reader: R) -> Self {
        let (tx, rx) = mpsc::channel();
        thread::spawn(move || {
            for line in BufReader::new(reader).lines() {
                let Ok(line) = line else { break };
                if tx.send(line).is_err() {
                    break;
                }
            }
        });
        Lines { rx }
    }

    /// The next line, or `None` if none comes within `within` or the writer is gone.
    pub fn next(&self, within: Duration) -> Option<String> {
        self.rx.recv_timeout(within).ok()
    }

    /// The first line (skipping others) that satisfies `pred`, within `within`.
    pub fn find(&self, within: Duration, pred: impl Fn(&str) -> bool) -> Option<String> {
        let deadline = Instant::now() + within;
        loop {
            let left = deadline.checked_duration_since(Instant::now())?;
            let line = self.rx.recv_timeout(left).ok()?;
            if pred(&line) {
                return Some(line);
            }
        }
    }

    /// Every line until the writer closes, or until `within` runs out.
    pub fn rest(&self, within: Duration) -> Vec<String> {
        let deadline = Instant::now() + within;
        let mut lines = Vec::new();
        loop {
            let left = deadline.saturating_duration_since(Instant::now());
            match self.rx.recv_timeout(left) {
                Ok(line) => lines.push(line),
                Err(RecvTimeoutError::Timeout | RecvTimeoutError::Disconnected) => return lines,
            }
        }
    }
}

/// An [`Output`] whose lines arrive in a [`Lines`], for running a program in-process.
pub fn capture(options: OutputOptions) -> (Output, Lines) {
    let (tx, rx) = mpsc::channel();
    (
        Output::new(
            Box::new(LineSender {
                tx,
                partial: Vec::new(),
            }),
            options,
        ),
        Lines { rx },
    )
}

/// A writer that sends each complete line over a channel.
pub struct LineSender {
    tx: Sender<String>,
    partial: Vec<u8>,
}

impl LineSender {
    /// Lines written to it arrive on `tx`'s receiver.
    pub fn new(tx: Sender<String>) -> Self {
        LineSender {
            tx,
            partial: Vec::new(),
        }
    }
}

impl Write for LineSender {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(end) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=end).collect();
            let text = String::from_utf8_lossy(&line[..end]).into_owned();
            // A test that stopped listening is like a closed stdout.
            self.tx
                .send(text)
                .map_err(|_| io::Error::from(io::ErrorKind::BrokenPipe))?;
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> io::Result<()> {
        Ok(())
    }
}

/// The address in a `listening on ADDR` line or a `{"event":"listening"}` object.
pub fn listening_addr(line: &str) -> Option<SocketAddr> {
    if let Some(addr) = line.strip_prefix("listening on ") {
        return addr.split_whitespace().next()?.parse().ok();
    }
    let value: serde_json::Value = serde_json::from_str(line).ok()?;
    (value["event"] == "listening").then(|| value["addr"].as_str()?.parse().ok())?
}

/// A UDP socket on `127.0.0.1:0` whose receives give up after `within`.
///
/// # Errors
/// When the socket cannot be made.
pub fn local_socket(within: Duration) -> io::Result<UdpSocket> {
    let socket = UdpSocket::bind("127.0.0.1:0")?;
    socket.set_read_timeout(Some(within))?;
    Ok(socket)
}

/// Receives one datagram (up to 64 KiB) within the socket's read timeout.
///
/// # Errors
/// `WouldBlock`/`TimedOut` when nothing arrived in time.
pub fn recv(socket: &UdpSocket) -> io::Result<(Vec<u8>, SocketAddr)> {
    let mut buf = vec![0u8; 65_536];
    // A signal meant for a program under test in this process (a stop request to an
    // in-process server) can land on this thread and cut the wait short: wait again.
    let (len, peer) = loop {
        match socket.recv_from(&mut buf) {
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            other => break other?,
        }
    };
    buf.truncate(len);
    Ok((buf, peer))
}

/// A program started as a real process, its stdout and stderr read line by line.
pub struct Process {
    pid: u32,
    exit: Receiver<io::Result<ExitStatus>>,
    exited: Option<ExitStatus>,
    /// The program's stdin, when started with [`Process::spawn_with_stdin`].
    pub stdin: Option<ChildStdin>,
    /// Its stdout.
    pub stdout: Lines,
    /// Its stderr.
    pub stderr: Lines,
}

impl Process {
    /// Starts `program` with `args`, stdin closed.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn(program: &str, args: &[&str]) -> io::Result<Self> {
        Self::start(program, args, Stdio::null())
    }

    /// Starts `program` with `args` and a pipe to its stdin.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn_with_stdin(program: &str, args: &[&str]) -> io::Result<Self> {
        Self::start(program, args, Stdio::piped())
    }

    /// Starts `program` with `args` and these environment variables set, stdin closed.
    ///
    /// # Errors
    /// When the program cannot be started.
    pub fn spawn_env(program: &str, args: &[&str], env: &[(&str, &str)]) -> io::Result<Self> {
        Self::start_env(program, args, Stdio::null(), env)
    }

    fn start(program: &str, args: &[&str], stdin: Stdio) -> io::Result<Self> {
        Self::start_env(program, args, stdin, &[])
    }

    fn start_env(program: &str, args: &[&str], stdin: Stdio, env: &[(&str, &str)]) -> io::Result<Self> {
        let child: Child = std::process::Command::new(program)
            .args(args)
            .envs(env.iter().copied())
            .env_remove("RUST_LOG")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        Ok(Self::adopt(child))
    }

    /// Takes over a child a test spawned itself (to hold one of its pipes in its own way):
    /// the pipes still in `child` are read as [`Lines`] (one already taken gives no lines),
    /// [`Process::wait`] waits with a deadline, and dropping it kills the child if still running.
    pub fn adopt(mut child: Child) -> Self {
        let stdout = Self::lines(child.stdout.take());
        let stderr = Self::lines(child.stderr.take());
        let stdin = child.stdin.take();
        let pid = child.id();
        let (tx, exit) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        Process {
            pid,
            exit,
            exited: None,
            stdin,
            stdout,
            stderr,
        }
    }

    fn lines<R: Read + Send + 'static>(pipe: Option<R>) -> Lines {
        match pipe {
            Some(pipe) => Lines::from_reader(pipe),
            None => Lines::from_reader(io::empty()),
        }
    }

    /// The process id.
    pub fn pid(&self) -> u32 {
        self.pid
    }

    /// Sends a signal by name (`TERM`, `INT`) to this process, by its PID.
    ///
    /// # Errors
    /// When `kill` cannot be run or fails.
    pub fn signal(&self, name: &str) -> io::Result<()> {
        let status = std::process::Command::new("kill")
            .args(["-s", name, &self.pid.to_string()])
            .status()?;
        if status.success() {
            Ok(())
        } else {
            Err(io::Error::other(format!("kill -s {name} failed")))
        }
    }

    /// Waits up to `within` for the process to exit.
    pub fn wait(&mut self, within: Duration) -> Option<ExitStatus> {
        if self.exited.is_none() {
            if let Ok(Ok(status)) = self.exit.recv_timeout(within) {
                self.exited = Some(status);
            }
        }
        self.exited
    }

    /// Reads the `listening` line within `within` and returns its address.
    pub fn listening(&self, within: Duration) -> Option<SocketAddr> {
        listening_addr(&self.stdout.next(within)?)
    }

    /// Starts a server (`udp-server`) on `--bind 127.0.0.1:0` with `args` after it, and
    /// waits up to [`WAIT`] for its `listening` line: the process, and the port the OS gave.
    ///
    /// # Panics
    /// When the program cannot start or says nothing within [`WAIT`] (a test helper).
    pub fn server(program: &str, args: &[&str]) -> (Self, SocketAddr) {
        let mut all = vec!["--bind", "127.0.0.1:0"];
        all.extend_from_slice(args);
        let process = Self::spawn(program, &all).expect("the server starts");
        let addr = process.listening(WAIT).expect("a listening line first");
        (process, addr)
    }
}

impl Drop for Process {
    /// A test that failed half-way must not leave its program running.
    fn drop(&mut self) {
        if self.wait(Duration::ZERO).is_none() {
            let _ = self.signal("KILL");
            let _ = self.wait(Duration::from_secs(5));
        }
    }
}

/// A port on 127.0.0.1 that nobody listens on, and that nobody else can take while the
/// tests run: a socket holds it, connected to port 1, so the kernel gives it no datagram
/// from anyone else and answers those with ICMP "port unreachable" as for a closed port.
/// (A port bound and released could be taken by a test running alongside.) The socket is
/// kept open until the test process ends.
///
/// # Panics
/// When no socket can be bound (a test helper).
pub fn closed_port() -> SocketAddr {
    let holder = UdpSocket::bind("127.0.0.1:0").expect("a free port");
    holder.connect("127.0.0.1:1").expect("connect the holder elsewhere");
    let addr = holder.local_addr().expect("its address");
    std::mem::forget(holder);
    addr
}

/// A port on 127.0.0.1 that the OS just gave out and released, for a program that must be
/// told its own port before it starts (`udp-client --bind`). Another program could take it
/// in between; the OS hands out ports at random, so that is rare.
///
/// # Panics
/// When no socket can be bound (a test helper).
pub fn free_port() -> SocketAddr {
    UdpSocket::bind("127.0.0.1:0")
        .expect("a free port")
        .local_addr()
        .expect("its address")
}

/// What a test needs that only root may do (a port below 1024, a raw socket): the result
/// of `attempt`, or `None` with a skip printed on stderr when the OS refuses permission.
/// In CI (`CI=true`), which runs as root, a refusal fails the test instead, so there the
/// test always runs. Any other error (a port in use, say) fails it everywhere.
///
/// # Panics
/// On any error but `PermissionDenied`, and on that one too in CI.
pub fn needs_root<T>(what: &str, attempt: io::Result<T>) -> Option<T> {
    let ci = std::env::var("CI").is_ok_and(|v| v == "true" || v == "1");
    needs_root_in(what, attempt, ci)
}

fn needs_root_in<T>(what: &str, attempt: io::Result<T>, ci: bool) -> Option<T> {
    match attempt {
        Ok(done) => Some(done),
        Err(e) if e.kind() == io::ErrorKind::PermissionDenied && !ci => {
            eprintln!("skipped {what}: {e}; run as root to test it (with CI=true this fails)");
            None
        }
        Err(e) if ci => panic!("{what}: {e} (CI runs as root: this must work there)"),
        Err(e) => panic!("{what}: {e}"),
    }
}

/// A program's `run` on a thread of this test, with its output captured: started, then
/// ready once its `listening` line names the address.
pub struct InProcess<S> {
    /// The address the program listens on.
    pub addr: SocketAddr,
    /// Its stdout after the `listening` line.
    pub lines: Lines,
    shutdown: Shutdown,
    done: Receiver<common::Result<S>>,
}

impl<S: Send + 'static> InProcess<S> {
    /// Starts `run` and waits (up to [`WAIT`]) for its `listening` line.
    ///
    /// # Panics
    /// When no `listening` line comes: the program failed to start.
    pub fn start(
        options: OutputOptions,
        run: impl FnOnce(&Shutdown, &Output) -> common::Result<S> + Send + 'static,
    ) -> Self {
        let (out, lines) = capture(options);
        let shutdown = Shutdown::new();
        let (tx, done) = mpsc::channel();
        let stop = shutdown.clone();
        thread::spawn(move || {
            let _ = tx.send(run(&stop, &out));
        });
        let Some(first) = lines.next(WAIT) else {
            let why = done
                .recv_timeout(Duration::ZERO)
                .err()
                .map_or("it ended".into(), |e| e.to_string());
            panic!("no listening line within {WAIT:?} ({why})");
        };
        let addr = listening_addr(&first).unwrap_or_else(|| panic!("no address in {first:?}"));
        InProcess {
            addr,
            lines,
            shutdown,
            done,
        }
    }

    /// Asks the program to stop (as Ctrl-C does) and returns its result.
    ///
    /// # Panics
    /// When it does not stop within [`WAIT`] or stops with an error.
    pub fn stop(&self) -> S {
        self.shutdown.trigger();
        self.finish().expect("a clean stop")
    }

    /// Waits (up to [`WAIT`]) for the program to end by itself (`--count`), and returns
    /// what it returned.
    ///
    /// # Panics
    /// When it does not end in time.
    pub fn finish(&self) -> common::Result<S> {
        self.done.recv_timeout(WAIT).expect("the program ends within WAIT")
    }

    /// A stop flag to trigger later (as a signal would).
    pub fn shutdown(&self) -> Shutdown {
        self.shutdown.clone()
    }
}

/// The path of a program built by this workspace (`cargo test --workspace` builds every
/// binary), found as assert_cmd finds it.
///
/// # Panics
/// When the binary was not built.
pub fn bin(name: &str) -> String {
    #[allow(deprecated)] // the macro form works only inside the binary's own package
    let path = assert_cmd::cargo::cargo_bin(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`, which builds it",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// The path of an example built by this workspace (`cargo test` builds every example,
/// next to the binaries, in `examples/`).
///
/// # Panics
/// When the example was not built.
pub fn example(name: &str) -> String {
    let exe = std::env::current_exe().expect("the test's own path");
    let profile = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target/PROFILE/deps");
    let path = profile
        .join("examples")
        .join(format!("{name}{}", std::env::consts::EXE_SUFFIX));
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`, which builds every example",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

/// What a program run to its end said: its exit code, stdout and stderr.
#[derive(Debug)]
pub struct Ran {
    /// The exit code (`None` if a signal ended it).
    pub code: Option<i32>,
    /// Its stdout.
    pub stdout: String,
    /// Its stderr.
    pub stderr: String,
}

/// Runs `program` with `args` to its end (through assert_cmd, stdin empty, `RUST_LOG`
/// unset so the logs are the program's defaults), killed past [`RUN_DEADLINE`].
///
/// # Panics
/// When the program cannot be started or does not end within [`RUN_DEADLINE`].
pub fn run_to_end(program: &str, args: &[&str]) -> Ran {
    let out = output(Command::new(program).args(args).env_remove("RUST_LOG"));
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    }
}

/// Runs `command` to its end with stdin empty, and returns what it said. Past [`RUN_DEADLINE`] assert_cmd kills it and the test
/// fails, naming the program.
///
/// # Panics
/// When it cannot be started or does not end in time.
pub fn output(command: &mut assert_cmd::Command) -> std::process::Output {
    output_within(command, RUN_DEADLINE)
}

/// [`output`] with a deadline of `within`.
///
/// # Panics
/// When it cannot be started or does not end within `within`.
pub fn output_within(command: &mut assert_cmd::Command, within: Duration) -> std::process::Output {
    let what = format!("{:?}", command.get_program());
    let started = Instant::now();
    let out = command
        .timeout(within)
        .output()
        .unwrap_or_else(|e| panic!("{what} did not start: {e}"));
    // A kill by the deadline leaves no exit code; a program that exits by a signal of its
    // own well before the deadline is not mistaken for it. (assert_cmd's wait counts in
    // whole milliseconds and may give up a little early: hence the margin.)
    let margin = Duration::from_millis(50).min(within / 2);
    assert!(
        out.status.code().is_some() || started.elapsed() + margin < within,
        "{what} did not end within {within:?}: killed (stderr: {})",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}

/// `--help` exits 0 and shows every one of `examples`; `--version` prints
/// `PROGRAM VERSION`.
///
/// # Panics
/// When either is not so (a test assertion).
pub fn assert_help_and_version(path: &str, program: &str, version: &str, examples: &[&str]) {
    let help = assert_cmd::Command::new(path)
        .arg("--help")
        .timeout(WAIT)
        .assert()
        .success();
    let text = String::from_utf8_lossy(&help.get_output().stdout).into_owned();
    for example in examples {
        assert!(text.contains(example), "--help is missing {example}");
    }
    assert_examples_line_up(&text);
    assert_cmd::Command::new(path)
        .arg("--version")
        .timeout(WAIT)
        .assert()
        .success()
        .stdout(format!("{program} {version}\n"));
}

/// In the `Examples:` block of a `--help`, every description starts in the same column
/// (a long command puts its description on the next line, in that column).
///
/// # Panics
/// When one does not (a test assertion).
pub fn assert_examples_line_up(help: &str) {
    let examples = help.split("Examples:").nth(1).expect("an Examples: block");
    let block = examples.split("\n\n").next().unwrap_or_default();
    let column = |line: &str| {
        let indent = line.len() - line.trim_start().len();
        let body = &line[indent..];
        body.find("  ")
            .map(|gap| indent + gap + body[gap..].len() - body[gap..].trim_start().len())
            .or((indent > 2).then_some(indent))
    };
    let columns: Vec<(usize, &str)> = block
        .lines()
        .filter(|l| !l.trim().is_empty())
        .filter_map(|l| column(l).map(|c| (c, l)))
        .collect();
    assert!(!columns.is_empty(), "no examples in: {block}");
    for (c, line) in &columns {
        assert_eq!(
            *c, columns[0].0,
            "this example's description is out of line:\n{line}\n{}",
            columns[0].1
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[cfg(unix)]
    #[test]
    fn a_program_that_outlives_its_deadline_is_killed_and_fails_the_test() {
        let started = Instant::now();
        let hung =
            std::panic::catch_unwind(|| output_within(Command::new("sleep").arg("30"), Duration::from_millis(300)));
        let message = hung.expect_err("a hung program fails the test");
        let message = message.downcast_ref::<String>().expect("a message");
        assert!(message.contains("did not end within 300ms: killed"), "{message}");
        assert!(started.elapsed() < WAIT, "killed at the deadline, not waited out");
    }

    #[test]
    fn a_refused_permission_skips_outside_ci_and_fails_in_ci() {
        let refused = || Err::<(), _>(io::Error::from(io::ErrorKind::PermissionDenied));
        assert_eq!(needs_root_in("port 19", refused(), false), None);
        assert!(std::panic::catch_unwind(|| needs_root_in("port 19", refused(), true)).is_err());
        assert_eq!(needs_root_in("port 19", Ok(19), true), Some(19));
    }

    #[test]
    fn any_other_error_fails_even_outside_ci() {
        let taken = || Err::<(), _>(io::Error::from(io::ErrorKind::AddrInUse));
        assert!(std::panic::catch_unwind(|| needs_root_in("port 19", taken(), false)).is_err());
    }

    #[cfg(unix)]
    #[test]
    fn a_program_that_ends_in_time_gives_its_exit_code_and_output() {
        let out = output_within(Command::new("sh").args(["-c", "echo hi; exit 3"]), WAIT);
        assert_eq!((out.status.code(), out.stdout.as_slice()), (Some(3), &b"hi\n"[..]));
    }
}
