//! Hostile or careless input (issue 27): each test fails on the code before its fix. Every
//! process has a deadline (WAIT); nothing is sent off loopback.

use std::process::ExitStatus;

use testkit::Process;

use crate::WAIT;
use crate::process::BIN;

/// Runs the server with `args` to its end (within WAIT): exit status and stderr lines.
fn run(args: &[&str]) -> (Option<ExitStatus>, Vec<String>) {
    let mut process = Process::spawn(BIN, args).expect("the server starts");
    let status = process.wait(WAIT);
    (status, process.stderr.rest(WAIT))
}

/// `--delay 9223372036854775807s` was accepted, and the first datagram panicked the server
/// (exit 101, "overflow when adding duration to instant").
#[test]
fn a_huge_duration_is_a_usage_error_not_a_panic() {
    for delay in ["9223372036854775807s", "1s..9223372036854775807s", "8761h"] {
        let (status, stderr) = run(&["--bind", "127.0.0.1:0", "--delay", delay]);
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{delay}: {stderr:?}");
        assert!(stderr[0].contains("is too long: the most is 365 days"), "{stderr:?}");
    }
}

/// `--rate-limit 0/s` meant "no limit at all".
#[test]
fn a_rate_limit_of_zero_is_a_usage_error() {
    let (status, stderr) = run(&["--bind", "127.0.0.1:0", "--rate-limit", "0/s"]);
    assert_eq!(status.and_then(|s| s.code()), Some(2));
    assert!(stderr[0].contains("a rate of 0 would never reply"), "{stderr:?}");
}

/// nc's habit `-p PORT` / `--port PORT` gets the spelling that works.
#[test]
fn port_flags_from_nc_suggest_bind() {
    for args in [&["--port", "9000"][..], &["-p", "9000"]] {
        let (status, stderr) = run(args);
        assert_eq!(status.and_then(|s| s.code()), Some(2));
        assert!(
            stderr[0].ends_with(
                "write --bind 127.0.0.1:9000 (this machine only) or --bind 0.0.0.0:9000 (other machines too)"
            ),
            "{stderr:?}"
        );
    }
}

/// `[::1%999]` was bound as `[::1]`, the scope silently dropped.
#[test]
fn a_scope_on_a_loopback_ipv6_address_is_refused() {
    let (status, stderr) = run(&["--bind", "[::1%999]:0"]);
    assert_eq!(status.and_then(|s| s.code()), Some(2));
    assert!(
        stderr[0].contains("a scope (%999) only applies to link-local addresses"),
        "{stderr:?}"
    );
}

/// What needs FIFOs, /dev/zero, /dev/full or signals by name.
#[cfg(unix)]
mod unix {
    use std::net::SocketAddr;
    use std::path::PathBuf;
    use std::time::{Duration, Instant};

    #[cfg(target_os = "linux")]
    use testkit::Process;

    use super::run;
    use crate::WAIT;
    use crate::process::BIN;

    fn temp_path(name: &str) -> PathBuf {
        let path = std::env::temp_dir().join(format!("udp-hostile-{}-{name}", std::process::id()));
        let _ = std::fs::remove_file(&path);
        path
    }

    /// `--rules /dev/zero` read without end (3.6 GB in 15 s); now it stops at 4 MiB.
    #[test]
    fn a_rules_file_without_end_is_refused_at_once() {
        let started = Instant::now();
        let (status, stderr) = run(&["--bind", "127.0.0.1:0", "--rules", "/dev/zero"]);
        assert_eq!(status.and_then(|s| s.code()), Some(2), "{stderr:?}");
        assert_eq!(
            stderr,
            [
                "udp-server: cannot read --rules /dev/zero: larger than 4 MiB (a rules file holds text rules, one a line)"
            ]
        );
        assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
    }

    /// A full disk under `--save` ended the server with an error and no summary.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_full_disk_under_save_still_prints_the_summary_then_exits_1() {
        let (mut server, addr) = Process::server(BIN, &["--save", "/dev/full"]);
        assert_eq!(crate::process::echo(addr, b"hello"), b"hello");
        server.signal("TERM").unwrap();
        assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(1));
        let stderr = server.stderr.rest(WAIT);
        let summary = stderr
            .iter()
            .find(|l| l.contains("received 1 datagram"))
            .expect("a summary");
        assert!(
            summary.ends_with(", saved 0 B (then --save failed: no space left on device (the disk is full: free space or write elsewhere))"),
            "{summary}"
        );
        assert_eq!(
            stderr.last().unwrap(),
            "udp-server: --save: no space left on device (the disk is full: free space or write elsewhere)"
        );
    }

    /// `udp-server > /dev/full` said "no space left on device" with no hint.
    #[test]
    #[cfg(target_os = "linux")]
    fn stdout_on_a_full_disk_is_one_line_with_a_hint_and_exit_1() {
        let full = std::fs::OpenOptions::new().write(true).open("/dev/full").unwrap();
        let child = std::process::Command::new(BIN)
            .args(["--bind", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdout(full)
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap();
        let (tx, done) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait_with_output());
        });
        let out = done.recv_timeout(WAIT).expect("exits").unwrap();
        assert_eq!(out.status.code(), Some(1));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(
            stderr.lines().last().unwrap(),
            "udp-server: cannot write to stdout: no space left on device (the disk is full: free space or write elsewhere)"
        );
    }

    fn mkfifo(name: &str) -> PathBuf {
        let path = temp_path(name);
        let made = std::process::Command::new("mkfifo").arg(&path).status().unwrap();
        assert!(made.success());
        path
    }

    /// `--save FIFO` with nobody reading it blocked before the `listening` line and ignored
    /// SIGINT and SIGTERM for minutes.
    #[test]
    fn a_fifo_nobody_reads_is_refused_before_listening() {
        let fifo = mkfifo("noreader.fifo");
        let (status, stderr) = run(&["--bind", "127.0.0.1:0", "--save", fifo.to_str().unwrap()]);
        std::fs::remove_file(&fifo).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(1), "{stderr:?}");
        assert!(
            stderr[0].contains("it is a FIFO and nobody reads it yet: start its reader first"),
            "{stderr:?}"
        );
    }

    /// A FIFO reader that stops reading (as `kill -STOP` would) held the server in a write,
    /// deaf to SIGINT, until the reader resumed.
    #[test]
    #[cfg(target_os = "linux")]
    fn a_fifo_reader_that_stops_reading_does_not_keep_the_server_from_stopping() {
        use std::os::unix::fs::OpenOptionsExt;
        let fifo = mkfifo("stalled.fifo");
        // A reader that never reads: opened without blocking, so the open does not wait.
        let reader = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NONBLOCK)
            .open(&fifo)
            .unwrap();
        let (mut server, addr) = Process::server(BIN, &["-q", "--save", fifo.to_str().unwrap()]);
        // The server writes, then replies: once the FIFO (64 KiB) and the server's buffer
        // (64 KiB) are full, the echo stops coming.
        let stalled = (0..40).find(|_| !echoes_within(addr, &[b's'; 32_000], Duration::from_millis(500)));
        assert!(stalled.is_some(), "the FIFO never filled");
        let asked = Instant::now();
        server.signal("INT").unwrap();
        let status = server.wait(WAIT);
        let took = asked.elapsed();
        drop(reader);
        std::fs::remove_file(&fifo).unwrap();
        assert_eq!(status.and_then(|s| s.code()), Some(1));
        assert!(took < Duration::from_millis(250), "stopped in {took:?}");
        let stderr = server.stderr.rest(WAIT);
        assert!(
            stderr.iter().any(|l| l.starts_with("udp-server: received ")),
            "{stderr:?}"
        );
        assert!(
            stderr
                .last()
                .unwrap()
                .contains("its reader is not reading (the program was asked to stop)"),
            "{stderr:?}"
        );
    }

    fn echoes_within(addr: SocketAddr, payload: &[u8], within: Duration) -> bool {
        let peer = testkit::local_socket(within).unwrap();
        peer.send_to(payload, addr).unwrap();
        testkit::recv(&peer).is_ok()
    }

    /// A server whose stdout reader stops reading (as `kill -STOP` on it would) kept running
    /// after SIGINT until the reader resumed: it was inside a write to the full pipe.
    #[test]
    fn a_stdout_reader_that_stops_reading_does_not_keep_the_server_from_stopping() {
        use std::io::BufRead;
        use std::process::{Command, Stdio};
        let mut child = Command::new(BIN)
            .args(["--bind", "127.0.0.1:0"])
            .env_remove("RUST_LOG")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap();
        let pid = child.id();
        let stderr = testkit::Lines::from_reader(child.stderr.take().unwrap());
        // Read the listening line, then never read again: the pipe stays open and fills.
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut first = String::new();
        stdout.read_line(&mut first).unwrap();
        let addr = testkit::listening_addr(first.trim_end()).unwrap();
        let (tx, exited) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            let _ = tx.send(child.wait());
        });
        // Each echo is printed first: once the pipe (64 KiB) and the server's queue (64 KiB)
        // are full, the echoes stop.
        let stalled = (0..2000).find(|_| !echoes_within(addr, &[b'o'; 1000], Duration::from_millis(300)));
        assert!(stalled.is_some(), "stdout never filled");
        let asked = Instant::now();
        let killed = std::process::Command::new("kill")
            .args(["-s", "INT", &pid.to_string()])
            .status()
            .unwrap();
        assert!(killed.success());
        let status = exited.recv_timeout(WAIT).expect("exits").unwrap();
        let took = asked.elapsed();
        drop(stdout);
        assert!(took < Duration::from_millis(250), "stopped in {took:?}");
        assert_eq!(status.code(), Some(0));
        let lines = stderr.rest(WAIT);
        assert!(
            lines.iter().any(|l| l.starts_with("udp-server: received ")),
            "{lines:?}"
        );
        let last = lines.last().unwrap();
        assert!(
            last.ends_with(
                " B of output could not be written to stdout: its reader was not reading when the stop came"
            ),
            "{lines:?}"
        );
    }
}

/// A server on `[::]` showed its IPv4 peers as `[::ffff:127.0.0.1]:…`; the echo still goes
/// back to them.
#[test]
fn ipv4_peers_of_a_server_on_every_ipv6_address_are_shown_as_ipv4() {
    let server = Process::spawn(BIN, &["--bind", "[::]:0"]).expect("the server starts");
    let addr = server.listening(WAIT).expect("a listening line first");
    let v4 = std::net::SocketAddr::from(([127, 0, 0, 1], addr.port()));
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(b"mapped?", v4).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"mapped?");
    let line = server.stdout.next(WAIT).unwrap();
    let from = peer.local_addr().unwrap();
    assert_eq!(line, format!("{from}  7 B  mapped?"));
}

/// A server on `[::1]` suggested `--bind 0.0.0.0:PORT`, an IPv4 address.
#[test]
fn an_ipv6_server_gets_its_hint_in_ipv6() {
    let server = Process::spawn(BIN, &["--bind", "[::1]:0"]).expect("the server starts");
    let addr = server.listening(WAIT).expect("a listening line first");
    let hint = server
        .stderr
        .find(WAIT, |l| l.contains("only programs on this machine"))
        .unwrap();
    assert!(
        hint.ends_with(&format!(
            "to accept datagrams from other machines use --bind [::]:{}",
            addr.port()
        )),
        "{hint}"
    );
}

/// Datagrams still in the receive queue at stop were in neither `received` nor
/// `kernel_drops`. Here the server stops after one (`--count 1`), whose delay keeps it
/// running while two more arrive and are never read.
#[test]
fn datagrams_left_in_the_queue_at_stop_are_counted() {
    let (mut server, addr) = Process::server(BIN, &["--count", "1", "--delay", "1s", "--seed", "1", "--json"]);
    let peer = testkit::local_socket(WAIT).unwrap();
    for payload in [&b"read"[..], b"unread 1", b"unread 2"] {
        peer.send_to(payload, addr).unwrap();
    }
    assert_eq!(testkit::recv(&peer).unwrap().0, b"read");
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary = server.stderr.find(WAIT, |l| l.contains("received 1 datagram")).unwrap();
    assert!(
        summary.ends_with("; 2 left unread in the receive queue at stop"),
        "{summary}"
    );
    let last: serde_json::Value = serde_json::from_str(&server.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(
        (last["received"].as_u64(), last["unread_at_stop"].as_u64()),
        (Some(1), Some(2))
    );
}
