//! Hostile or odd input cannot crash, hang or exhaust the client (issue 27): huge
//! durations, stops during a flood or a file that never ends, files that are not files,
//! a multicast local address.

use std::net::UdpSocket;

use std::time::{Duration, Instant};

use common::output::OutputOptions;
use common::shutdown::Shutdown;
use testkit::{Process, WAIT, closed_port};
use udp_client::{Config, Mode, Summary};

use crate::{BIN, Peer};

/// The longest a stop may take (the project's promise).
const STOP: Duration = Duration::from_millis(250);

/// Runs the client in-process on a thread; the caller may stop it with the returned flag.
fn in_process(config: Config, mode: Mode) -> (Shutdown, std::sync::mpsc::Receiver<common::Result<Summary>>) {
    let shutdown = Shutdown::new();
    let stop = shutdown.clone();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let (out, _lines) = testkit::capture(OutputOptions::default());
        let _ = tx.send(udp_client::run(&config, &mode, &stop, &out, Box::new(std::io::empty())));
    });
    (shutdown, rx)
}

/// `Instant + Duration` overflows for durations like these: every deadline is checked, so
/// a one-shot still gets its reply, and a ping or a repeat paced that slowly just waits
/// (until stopped) instead of panicking.
#[test]
fn huge_timeouts_and_intervals_wait_instead_of_panicking() {
    let peer = Peer::echo();
    let config = Config {
        target: peer.addr,
        timeout: Some(Duration::MAX),
        ..Default::default()
    };
    let (_, done) = in_process(config.clone(), Mode::one_shot(b"hi"));
    let summary = done.recv_timeout(WAIT).expect("a reply, not a hang").unwrap();
    assert!(matches!(summary, Summary::OneShot { reply: true, .. }), "{summary:?}");
    assert_eq!(peer.next().0, b"hi");
    let repeat = Mode::Repeat(udp_client::Repeat {
        message: b"again".to_vec(),
        count: 3,
        interval: Duration::MAX,
    });
    for mode in [Mode::ping(3, Duration::MAX), repeat] {
        let (stop, done) = in_process(config.clone(), mode);
        // The first request goes out at once; the second would come after "forever".
        peer.next();
        stop.trigger();
        let summary = done.recv_timeout(WAIT).expect("stopped, not a hang").unwrap();
        match summary {
            // Its echo may or may not have been read before the stop.
            Summary::Ping(p) => assert_eq!((p.sent, p.received.min(1)), (1, p.received)),
            Summary::Repeat(r) => assert_eq!(r.sent, 1),
            other => panic!("{other:?}"),
        }
    }
}

/// The same from the command line: never exit 101 ("panicked"), whether the value is
/// refused as a usage error (exit 2) or honoured (a reply, exit 0).
#[test]
fn a_huge_timeout_on_the_command_line_never_panics() {
    let peer = Peer::echo();
    let ran = run(&["--timeout", "9223372036854775807", &peer.addr.to_string(), "hi"]);
    assert!(matches!(ran.code, Some(0 | 2)), "{ran:?}");
    assert!(!ran.stderr.contains("panicked"), "{}", ran.stderr);
}

/// What a run said: its exit code and its stderr.
#[derive(Debug)]
struct Ran {
    code: Option<i32>,
    stderr: String,
}

/// Runs the client to its end, killing it if it outlives `WAIT` (a test never hangs).
fn run(args: &[&str]) -> Ran {
    let mut p = Process::spawn(BIN, args).unwrap();
    let Some(status) = p.wait(WAIT) else {
        let _ = p.signal("KILL");
        panic!("udp-client {args:?} did not end within {WAIT:?}");
    };
    let stderr = p.stderr.rest(Duration::from_millis(100)).join("\n");
    Ran {
        code: status.code(),
        stderr,
    }
}

/// Starts the client, waits for `ready` on its stderr, sends SIGTERM and returns how long
/// it took to exit, its exit code and its stderr.
fn stop_after(args: &[&str], ready: &str) -> (Duration, Option<i32>, Vec<String>) {
    let mut p = Process::spawn(BIN, args).unwrap();
    let seen = p.stderr.find(WAIT, |l| l.contains(ready));
    assert!(seen.is_some(), "no {ready:?} from udp-client {args:?}");
    let signalled = Instant::now();
    p.signal("TERM").unwrap();
    let status = p.wait(WAIT);
    let took = signalled.elapsed();
    if status.is_none() {
        let _ = p.signal("KILL");
        panic!("udp-client {args:?} ignored SIGTERM");
    }
    (
        took,
        status.and_then(|s| s.code()),
        p.stderr.rest(Duration::from_millis(100)),
    )
}

/// A socket that never reads: sends to it succeed, and the kernel drops what overflows.
fn sink() -> UdpSocket {
    UdpSocket::bind("127.0.0.1:0").unwrap()
}

#[test]
fn a_no_reply_flood_stops_within_250_ms_of_sigterm_with_its_summary() {
    let sink = sink();
    let target = sink.local_addr().unwrap().to_string();
    let (took, code, stderr) = stop_after(
        &["-n", "1000000000", "-i", "0", "--no-reply", &target],
        "as fast as the OS takes them",
    );
    assert!(took < STOP, "took {took:?}");
    assert_eq!(code, Some(0));
    assert!(stderr.iter().any(|l| l.contains("replies not awaited")), "{stderr:?}");
}

#[cfg(unix)]
#[test]
fn a_file_that_never_ends_streams_in_chunks_and_stops_within_250_ms() {
    let sink = sink();
    let target = sink.local_addr().unwrap().to_string();
    let (took, code, stderr) = stop_after(
        &["--file", "/dev/zero", "--stream", "--no-reply", &target],
        "as it comes",
    );
    assert!(took < STOP, "took {took:?}");
    assert_eq!(code, Some(0));
    assert!(stderr.iter().any(|l| l.starts_with("udp-client: sent ")), "{stderr:?}");
    // A FIFO nobody writes to blocks in open(): the send still stops at once.
    let dir = TempDir::new("fifo");
    let fifo = dir.0.join("in");
    let made = std::process::Command::new("mkfifo").arg(&fifo).status().unwrap();
    assert!(made.success());
    let fifo = fifo.to_string_lossy().into_owned();
    let (took, code, _) = stop_after(&["--file", &fifo, "--stream", "--no-reply", &target], "as it comes");
    assert!(took < STOP, "took {took:?}");
    assert_eq!(code, Some(0));
}

#[cfg(unix)]
#[test]
fn files_that_are_not_regular_and_chunks_too_large_are_refused_before_any_reading() {
    let target = closed_port().to_string();
    let ran = run(&["--file", "/dev/zero", "--no-reply", &target]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(
        ran.stderr.contains("not a regular file") && ran.stderr.contains("--stream"),
        "{}",
        ran.stderr
    );
    // A 2 GiB sparse file and a chunk over the limit: refused at once, not after reading it.
    let dir = TempDir::new("sparse");
    let big = dir.0.join("big.bin");
    std::fs::File::create(&big).unwrap().set_len(2 << 30).unwrap();
    let started = Instant::now();
    let big = big.to_string_lossy().into_owned();
    let ran = run(&["--file", &big, "--chunk", "70000", "--no-reply", &target]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("at most 65507"), "{}", ran.stderr);
    assert!(started.elapsed() < Duration::from_secs(1), "{:?}", started.elapsed());
}

#[test]
fn a_multicast_local_address_is_refused() {
    let target = closed_port().to_string();
    for bind in ["224.0.0.1:0", "255.255.255.255:0"] {
        let ran = run(&["--bind", bind, &target, "hi"]);
        assert_eq!(ran.code, Some(2), "{bind}: {ran:?}");
        assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
        assert!(ran.stderr.contains(&format!("--bind {bind}")), "{}", ran.stderr);
    }
}

/// A directory of this test's own under the system's temp dir, removed at the end.
#[cfg(unix)]
struct TempDir(std::path::PathBuf);

#[cfg(unix)]
impl TempDir {
    fn new(name: &str) -> Self {
        let dir = std::env::temp_dir().join(format!("udp-client-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&dir);
        std::fs::create_dir_all(&dir).unwrap();
        TempDir(dir)
    }
}

#[cfg(unix)]
impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}
