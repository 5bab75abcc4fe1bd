//! Every count the client prints tells the truth (issue 20): no "lost" where nothing was
//! awaited, a cut echo named, no flag silently ignored, no hint that cannot help, exit 1
//! when nobody listens, plurals that agree.

use std::io::Write;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{Process, WAIT, closed_port};

use crate::{BIN, Peer};

/// What one run of the client said, within a deadline.
struct Said {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
    took: Duration,
}

impl Said {
    fn stderr_has(&self, part: &str) -> bool {
        self.stderr.iter().any(|l| l.contains(part))
    }

    fn assert_said(&self, part: &str) {
        assert!(self.stderr_has(part), "no {part:?} in {:?}", self.stderr);
    }

    fn summary(&self) -> Value {
        serde_json::from_str(self.stdout.last().expect("a summary line")).unwrap()
    }
}

/// A peer that never answers, and its address as an argument.
fn silent() -> (Peer, String) {
    let peer = Peer::silent();
    let target = peer.addr.to_string();
    (peer, target)
}

/// Runs the client with `args` and `stdin`, killing it if it outlives `WAIT`.
fn said(args: &[&str], stdin: &[u8]) -> Said {
    let started = Instant::now();
    let mut p = Process::spawn_with_stdin(BIN, args).unwrap();
    let mut input = p.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let Some(status) = p.wait(WAIT) else {
        let _ = p.signal("KILL");
        panic!("udp-client {args:?} did not end within {WAIT:?}");
    };
    Said {
        code: status.code(),
        stdout: p.stdout.rest(Duration::from_millis(100)),
        stderr: p.stderr.rest(Duration::from_millis(100)),
        took: started.elapsed(),
    }
}

#[test]
fn a_repeat_without_replies_says_they_were_not_awaited_and_counts_none_lost() {
    let (peer, target) = silent();
    let ran = said(
        &["--repeat", "3", "--interval", "10ms", "--no-reply", &target, "hi"],
        b"",
    );
    assert_eq!(ran.code, Some(0), "{:?}", ran.stderr);
    assert_eq!(peer.all(Duration::from_millis(200)).len(), 3);
    let last = ran.stderr.last().unwrap();
    assert!(last.contains("sent 3 datagrams, replies not awaited"), "{last}");
    assert!(!last.contains("lost"), "{last}");
    let ran = said(
        &["--json", "--repeat", "2", "-i", "10ms", "--no-reply", &target, "hi"],
        b"",
    );
    let summary = ran.summary();
    assert_eq!(
        (summary["sent"].as_u64(), summary.get("lost")),
        (Some(2), None),
        "{summary}"
    );
}

#[test]
fn an_echo_cut_by_the_peers_buffer_is_named_with_how_much_is_missing() {
    // The chapter's server reads with recvfrom(1024): a 1500-byte request comes back cut.
    let peer = Peer::new(|_, data| vec![data[..data.len().min(1024)].to_vec()]);
    let target = peer.addr.to_string();
    let message = "B".repeat(1500);
    let ran = said(&[&target, &message], b"");
    assert_eq!(ran.code, Some(0), "{:?}", ran.stderr);
    let reply = &ran.stdout[0];
    assert!(reply.contains("  1024 B  "), "{reply}");
    assert!(
        reply.contains("echo 476 B shorter than the request: the peer's buffer cut it"),
        "{reply}"
    );
    let ran = said(&["--json", &target, &message], b"");
    assert_eq!(ran.summary()["short_by"].as_u64(), Some(476));
    // A whole echo says nothing of the kind.
    let ran = said(&["--json", &target, "hello"], b"");
    assert_eq!(ran.summary().get("short_by"), None);
    assert!(!ran.stdout[0].contains("shorter"), "{}", ran.stdout[0]);
}

#[test]
fn a_flag_the_mode_would_ignore_is_a_usage_error() {
    let target = closed_port().to_string();
    for args in [
        &["--count", "3", "--retries", "2", &target][..],
        &["--repeat", "3", "--retries", "2", &target, "hi"],
        &["--broadcast", "--retries", "2", "127.255.255.255:9", "who"],
        &["--retries", "2", &target],
        &["--count", "3", "--interval", "0", "--graph", &target],
        &["--chunk", "10", &target, "hi"],
        &["--window", "8", &target, "hi"],
        &["--interval", "1s", &target, "hi"],
        &["--report-every", "1s", &target, "hi"],
        &["--graph", &target, "hi"],
        &["--no-reply", "--timeout", "1s", &target, "hi"],
    ] {
        let ran = said(args, b"");
        assert_eq!(ran.code, Some(2), "{args:?}: {:?}", ran.stderr);
        assert_eq!(ran.stderr.len(), 1, "{args:?}: one line: {:?}", ran.stderr);
    }
}

#[test]
fn a_ping_that_gets_no_reply_suggests_only_flags_that_change_that() {
    let (_peer, target) = silent();
    let ran = said(&["-n", "2", "-i", "10ms", "--timeout", "50ms", &target], b"");
    assert_eq!(ran.code, Some(1));
    let last = ran.stderr.last().unwrap();
    assert!(last.contains("--timeout") && last.contains("--no-reply"), "{last}");
    assert!(
        !last.contains("--retries"),
        "--retries does nothing with --count: {last}"
    );
    // A one-shot is where --retries helps.
    let ran = said(&["--timeout", "50ms", &target, "hi"], b"");
    assert!(ran.stderr.last().unwrap().contains("--retries 3"), "{:?}", ran.stderr);
}

#[test]
fn a_broadcast_with_no_reply_sends_once_and_does_not_wait() {
    let listener = UdpSocket::bind("0.0.0.0:0").unwrap();
    listener.set_read_timeout(Some(WAIT)).unwrap();
    let to = format!("127.255.255.255:{}", listener.local_addr().unwrap().port());
    let ran = said(&["--broadcast", "--no-reply", &to, "who"], b"").code_and_quick();
    let mut buf = [0u8; 16];
    let (len, _) = listener.recv_from(&mut buf).unwrap();
    assert_eq!(&buf[..len], b"who");
    assert_eq!(ran, Some(0));
}

impl Said {
    /// The exit code, after checking the run did not wait out the 2 s default timeout.
    fn code_and_quick(self) -> Option<i32> {
        assert!(
            self.took < Duration::from_millis(1500),
            "took {:?}: {:?}",
            self.took,
            self.stderr
        );
        self.code
    }
}

#[test]
fn interactive_from_a_pipe_with_nobody_listening_exits_1() {
    let target = closed_port().to_string();
    let ran = said(&[&target], b"hello\nagain\n");
    assert_eq!(ran.code, Some(1), "{:?}", ran.stderr);
    ran.assert_said(&format!("no one is listening at {target}"));
}

#[test]
fn an_empty_input_line_says_it_sends_0_bytes() {
    let peer = Peer::echo();
    let ran = said(&[&peer.addr.to_string()], b"\nhi\n");
    assert_eq!(ran.code, Some(0), "{:?}", ran.stderr);
    assert_eq!(peer.next().0, b"");
    assert_eq!(peer.next().0, b"hi");
    ran.assert_said("empty line: sending a 0-byte datagram");
}

#[test]
fn counts_of_one_are_singular() {
    let (_peer, target) = silent();
    let ran = said(&["-n", "1", "-i", "0", "--timeout", "50ms", &target], b"");
    assert_eq!(ran.code, Some(1));
    ran.assert_said(&format!("flooding {target} with 1 datagram,"));
    ran.assert_said(&format!("no reply from {target} to its 1 request"));
    let ran = said(&["--repeat", "1", "--timeout", "50ms", &target, "hi"], b"");
    ran.assert_said(&format!("no reply from {target} to its 1 datagram"));
    // A ping summary with one duplicate: "1 duplicate", not "1 duplicates".
    let dup = Peer::new(|_, data| vec![data.to_vec(), data.to_vec()]);
    let ran = said(&["-n", "1", "-i", "10ms", &dup.addr.to_string()], b"");
    ran.assert_said("0.0% loss, 1 duplicate, 0 reordered");
}

/// `--report-every`: a request is lost in an interval only once its timeout has run out,
/// and the intervals add up to the summary, the last pings included.
#[test]
fn report_intervals_add_up_to_the_summary_and_count_a_loss_only_after_its_timeout() {
    // Lossless: no interval may say anything was lost.
    let peer = Peer::echo();
    let target = peer.addr.to_string();
    let args = ["--json", "-n", "30", "-i", "20ms", "--report-every", "100ms", &target];
    let ran = said(&args, b"");
    let (intervals, summary) = intervals_and_summary(&ran);
    assert!(intervals.iter().all(|e| e["lost"] == 0), "{intervals:?}");
    assert_eq!(sum(&intervals, "sent"), 30, "{intervals:?}");
    assert_eq!(sum(&intervals, "received"), summary["received"].as_u64().unwrap());
    // Every third request unanswered, a short timeout: the losses show, and add up.
    let lossy = Peer::new(|n, data| if n % 3 == 2 { Vec::new() } else { vec![data.to_vec()] });
    let target = lossy.addr.to_string();
    for interval in ["20ms", "0"] {
        let args = [
            "--json",
            "-n",
            "30",
            "-i",
            interval,
            "--timeout",
            "60ms",
            "--report-every",
            "100ms",
            &target,
        ];
        let ran = said(&args, b"");
        let (intervals, summary) = intervals_and_summary(&ran);
        assert_eq!(
            sum(&intervals, "sent"),
            summary["sent"].as_u64().unwrap(),
            "{intervals:?}"
        );
        assert_eq!(sum(&intervals, "received"), summary["received"].as_u64().unwrap());
        assert_eq!(
            sum(&intervals, "lost") - sum(&intervals, "late"),
            summary["lost"].as_u64().unwrap(),
            "{intervals:?} {summary}"
        );
        assert!(summary["lost"].as_u64().unwrap() >= 1, "{summary}");
    }
}

fn intervals_and_summary(ran: &Said) -> (Vec<Value>, Value) {
    let events: Vec<Value> = ran.stdout.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let intervals = events.iter().filter(|e| e["event"] == "interval").cloned().collect();
    (intervals, ran.summary())
}

fn sum(events: &[Value], field: &str) -> u64 {
    events.iter().map(|e| e[field].as_u64().unwrap_or(0)).sum()
}
