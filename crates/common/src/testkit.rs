//! Helpers the workspace's tests share: every wait has a deadline, and readiness is the
//! `listening` line, never a sleep. Not used by the programs themselves.

use std::io::{self, BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, UdpSocket};
use std::process::{Child, ChildStdin, Command, ExitStatus, Stdio};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::thread;
use std::time::{Duration, Instant};

use crate::output::{Output, OutputOptions};

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
    let (len, peer) = socket.recv_from(&mut buf)?;
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

    fn start(program: &str, args: &[&str], stdin: Stdio) -> io::Result<Self> {
        let mut child: Child = Command::new(program)
            .args(args)
            .env_remove("RUST_LOG")
            .stdin(stdin)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()?;
        let stdout = child.stdout.take().ok_or_else(|| io::Error::other("no stdout pipe"))?;
        let stderr = child.stderr.take().ok_or_else(|| io::Error::other("no stderr pipe"))?;
        let stdin = child.stdin.take();
        let pid = child.id();
        let (tx, exit) = mpsc::channel();
        thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        Ok(Process {
            pid,
            exit,
            exited: None,
            stdin,
            stdout: Lines::from_reader(stdout),
            stderr: Lines::from_reader(stderr),
        })
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
        let status = Command::new("kill")
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

/// `count` random texts of up to `max_len` characters from `alphabet`, the same every run
/// (xorshift64 from `seed`, which must not be 0): bounded property tests for CI.
pub fn random_texts(alphabet: &str, seed: u64, count: usize, max_len: u64) -> impl Iterator<Item = String> {
    let chars: Vec<char> = alphabet.chars().collect();
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    (0..count).map(move |_| {
        let len = next() % (max_len + 1);
        (0..len)
            .map(|_| chars[(next() % chars.len() as u64) as usize])
            .collect()
    })
}
