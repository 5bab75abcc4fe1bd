use std::io::Write;
use std::net::UdpSocket;
use std::time::{Duration, Instant};

use serde_json::Value;
use testkit::{Command, Process, output};

use crate::{BIN, Peer, WAIT, closed_port};

fn run(args: &[&str]) -> (Option<i32>, Vec<String>, Vec<String>) {
    let out = output(Command::new(BIN).args(args).env_remove("RUST_LOG"));
    let lines = |b: &[u8]| {
        String::from_utf8_lossy(b)
            .lines()
            .map(str::to_string)
            .collect::<Vec<_>>()
    };
    (out.status.code(), lines(&out.stdout), lines(&out.stderr))
}

#[test]
fn one_shot_sends_the_words_as_one_datagram_and_prints_the_reply() {
    let peer = Peer::echo();
    let addr = peer.addr.to_string();
    let (code, stdout, stderr) = run(&[&addr, "hello", "world"]);
    let (data, from) = peer.next();
    assert_eq!(data, b"hello world");
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(stdout.len(), 1);
    assert!(
        stdout[0].starts_with(&format!("{addr}  11 B  hello world  rtt ")),
        "{stdout:?}"
    );
    // No summary line for a plain one-shot: its output is the reply (and no empty line).
    assert!(
        !stderr.iter().any(|l| l.is_empty() || l.contains("after")),
        "{stderr:?}"
    );
    // The client did not bind a port: the OS chose one, and the client says which.
    assert_ne!(from.port(), 0);
    assert!(
        stderr
            .iter()
            .any(|l| l.contains(&format!("from {from} (a port the OS chose"))),
        "{stderr:?}"
    );
}

#[test]
fn nobody_listening_is_reported_at_once_not_after_the_timeout() {
    let target = closed_port().to_string();
    let started = Instant::now();
    let (code, stdout, stderr) = run(&["--timeout", "10s", &target, "anyone?"]);
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "took {:?}",
        started.elapsed()
    );
    assert_eq!(code, Some(1));
    assert!(stdout.is_empty());
    let said = stderr.last().unwrap();
    assert!(
        said.starts_with(&format!("udp-client: no one is listening at {target}")),
        "{stderr:?}"
    );
    // The hint is the command that starts a server right there.
    assert!(
        said.contains(&format!("(cargo run -p udp-server -- --bind {target})")),
        "{stderr:?}"
    );
}

#[test]
fn a_silent_peer_means_exit_1_after_the_timeout() {
    let peer = Peer::silent();
    let started = Instant::now();
    let (code, _, stderr) = run(&["--timeout", "300ms", &peer.addr.to_string(), "hello?"]);
    assert!(started.elapsed() >= Duration::from_millis(300));
    assert_eq!(code, Some(1));
    assert!(
        stderr
            .last()
            .unwrap()
            .contains(&format!("no reply from {} within 300ms", peer.addr)),
        "{stderr:?}"
    );
    assert_eq!(
        peer.all(Duration::from_millis(100)),
        vec![b"hello?".to_vec()],
        "sent once, no retries"
    );
}

#[test]
fn no_reply_sends_and_exits_0() {
    let peer = Peer::silent();
    let (code, stdout, _) = run(&["--no-reply", &peer.addr.to_string(), "fire and forget"]);
    assert_eq!(code, Some(0));
    assert!(stdout.is_empty());
    assert_eq!(peer.next().0, b"fire and forget");
}

#[test]
fn retries_resend_until_a_reply_comes() {
    // The peer ignores the first two copies and answers the third.
    let peer = Peer::new(|n, data| if n < 2 { vec![] } else { vec![data.to_vec()] });
    let (code, stdout, stderr) = run(&["--retries", "3", "--timeout", "200ms", &peer.addr.to_string(), "again"]);
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(stdout.len(), 1);
    assert_eq!(peer.all(Duration::from_millis(300)), vec![b"again".to_vec(); 3]);
    assert_eq!(stderr.iter().filter(|l| l.contains("sending again")).count(), 2);
    assert_eq!(stderr.last().unwrap(), "udp-client: reply after 2 retries (3 sends)");
}

#[test]
fn interactive_sends_each_line_and_prints_everything_the_target_sends() {
    // The peer echoes, and answers the first line with an unsolicited datagram too.
    let peer = Peer::new(|n, data| {
        if n == 0 {
            vec![b"news".to_vec(), data.to_vec()]
        } else {
            vec![data.to_vec()]
        }
    });
    let mut client = Process::spawn_with_stdin(BIN, &[&peer.addr.to_string()]).unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"first line\n").unwrap();
    assert!(client.stdout.next(WAIT).unwrap().ends_with("  4 B  news"));
    assert!(client.stdout.next(WAIT).unwrap().ends_with("  10 B  first line"));
    stdin.write_all("second 你好\r\n".as_bytes()).unwrap();
    drop(stdin);
    assert!(client.stdout.next(WAIT).unwrap().ends_with("  13 B  second 你好"));
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(
        client
            .stderr
            .find(WAIT, |l| l == "udp-client: sent 2 datagrams, received 3")
            .is_some()
    );
    assert_eq!(
        peer.all(Duration::from_millis(100)),
        vec![b"first line".to_vec(), "second 你好".as_bytes().to_vec()]
    );
}

#[test]
fn sigterm_stops_an_interactive_client_within_250_ms() {
    let peer = Peer::echo();
    let mut client = Process::spawn_with_stdin(BIN, &["--json", &peer.addr.to_string()]).unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"x\n").unwrap();
    assert!(
        client
            .stdout
            .find(WAIT, |l| l.contains("\"reply\"") || l.contains("\"recv\""))
            .is_some()
    );
    let asked = Instant::now();
    client.signal("TERM").unwrap();
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(
        asked.elapsed() < Duration::from_millis(250),
        "stopped in {:?}",
        asked.elapsed()
    );
    let last: Value = serde_json::from_str(&client.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(last, serde_json::json!({"event": "summary", "sent": 1, "received": 1}));
}

#[test]
fn ping_matches_replies_by_sequence_number() {
    let peer = Peer::echo();
    let (code, stdout, stderr) = run(&["--count", "5", "--interval", "10ms", &peer.addr.to_string()]);
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(stdout.len(), 5);
    for (i, line) in stdout.iter().enumerate() {
        assert!(line.contains(&format!("  seq={} ping  rtt ", i + 1)), "{line}");
    }
    assert!(
        stderr.contains(&"5 sent, 5 received, 0.0% loss, 0 duplicates, 0 reordered".to_string()),
        "{stderr:?}"
    );
    assert!(
        stderr
            .iter()
            .any(|l| l.starts_with("rtt min/avg/p50/p99/max/mdev = ") && l.contains(" ms, jitter "))
    );
    // The histogram: a title and 8 log-spaced buckets whose counts sum to the 5 replies.
    let title = stderr
        .iter()
        .position(|l| l == "rtt histogram (ms):")
        .expect("a histogram");
    let counts: u64 = stderr[title + 1..]
        .iter()
        .take_while(|l| l.starts_with("  <= "))
        .map(|l| l.rsplit(' ').next().unwrap().parse::<u64>().unwrap())
        .sum();
    assert_eq!(counts, 5, "{stderr:?}");
    let sent: Vec<Vec<u8>> = peer.all(Duration::from_millis(100));
    assert_eq!(
        sent,
        (1..=5)
            .map(|i| format!("seq={i} ping").into_bytes())
            .collect::<Vec<_>>()
    );
}

#[test]
fn ping_reports_loss_duplicates_and_reordering_exactly() {
    // seq=2 is dropped, seq=3 answered twice, seq=4's reply held back until after seq=5's.
    let peer = Peer::new(|n, data| match n {
        1 => vec![],
        2 => vec![data.to_vec(), data.to_vec()],
        3 => vec![],
        4 => vec![data.to_vec(), b"seq=4 ping".to_vec()],
        _ => vec![data.to_vec()],
    });
    let (code, stdout, stderr) = run(&[
        "--json",
        "-n",
        "5",
        "-i",
        "20ms",
        "--timeout",
        "500ms",
        &peer.addr.to_string(),
    ]);
    assert_eq!(code, Some(0), "{stderr:?}");
    let summary: Value = serde_json::from_str(stdout.last().unwrap()).unwrap();
    assert_eq!(summary["event"], "summary");
    assert_eq!(
        (
            &summary["sent"],
            &summary["received"],
            &summary["lost"],
            &summary["duplicates"],
            &summary["reordered"]
        ),
        (
            &Value::from(5),
            &Value::from(4),
            &Value::from(1),
            &Value::from(1),
            &Value::from(1)
        ),
        "{summary}"
    );
    for key in ["min", "avg", "p50", "p99", "max"] {
        assert!(summary["rtt_ms"][key].as_f64().is_some(), "{summary}");
    }
    let replies: Vec<Value> = stdout
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .filter(|v: &Value| v["event"] == "reply")
        .collect();
    let seqs: Vec<u64> = replies.iter().map(|r| r["seq"].as_u64().unwrap()).collect();
    assert_eq!(seqs, [1, 3, 3, 5, 4]);
    assert!(replies[2]["rtt_ms"].is_null(), "a duplicate has no round-trip time");
}

#[test]
fn ping_with_nobody_listening_fails_with_exit_1() {
    let target = closed_port().to_string();
    let (code, _, stderr) = run(&["-n", "3", "-i", "10ms", "--timeout", "200ms", &target]);
    assert_eq!(code, Some(1));
    assert!(
        stderr
            .iter()
            .any(|l| l.contains(&format!("no one is listening at {target}")))
    );
    assert_eq!(
        stderr.last().unwrap(),
        &format!(
            "udp-client: no reply from {target} to any of 3 requests: the datagram or its reply may be lost, or the peer never answers (try --timeout 5s or --no-reply)"
        )
    );
}

#[test]
fn a_flood_keeps_a_window_in_flight_and_counts_every_echo() {
    let peer = Peer::echo();
    let (code, stdout, stderr) = run(&["--json", "-n", "2000", "-i", "0", "-w", "32", &peer.addr.to_string()]);
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(stdout.len(), 1, "a flood prints only the summary");
    let summary: Value = serde_json::from_str(&stdout[0]).unwrap();
    assert_eq!(
        (
            summary["sent"].as_u64(),
            summary["received"].as_u64(),
            summary["lost"].as_u64()
        ),
        (Some(2000), Some(2000), Some(0))
    );
    assert!(summary["rate_per_s"].as_f64().unwrap() > 0.0);
    let seen = peer.all(Duration::from_millis(200));
    assert_eq!(seen.len(), 2000);
    assert_eq!(seen[1999], b"seq=2000 ping");
}

#[test]
fn gbk_and_hex_encode_what_is_sent_and_render_what_comes_back() {
    let peer = Peer::echo();
    let addr = peer.addr.to_string();
    let (code, stdout, _) = run(&["--encoding", "gbk", &addr, "你好"]);
    assert_eq!((code, peer.next().0), (Some(0), vec![0xc4, 0xe3, 0xba, 0xc3]));
    assert!(stdout[0].contains("  4 B  你好  rtt"), "{stdout:?}");
    let (code, stdout, _) = run(&["--encoding", "hex", &addr, "48 65", "0x6c"]);
    assert_eq!((code, peer.next().0), (Some(0), b"Hel".to_vec()));
    assert!(stdout[0].contains("  3 B  48 65 6c  rtt"), "{stdout:?}");
}

#[test]
fn the_largest_ipv4_payload_goes_through_whole() {
    let peer = Peer::echo();
    let message = "x".repeat(common::MAX_UDP_PAYLOAD_V4);
    let (code, stdout, _) = run(&[&peer.addr.to_string(), &message]);
    assert_eq!(code, Some(0));
    assert_eq!(peer.next().0.len(), 65_507);
    assert!(stdout[0].contains("  65507 B  xxx"));
}

#[test]
fn localhost_reaches_a_server_on_127_0_0_1() {
    let peer = Peer::echo();
    let target = format!("localhost:{}", peer.addr.port());
    let (code, stdout, _) = run(&[&target, "via name"]);
    assert_eq!(code, Some(0));
    assert_eq!(peer.next().0, b"via name");
    assert!(stdout[0].starts_with(&format!("{}  8 B  via name", peer.addr)));
}

#[test]
fn talks_ipv6() {
    let peer = Peer::on(UdpSocket::bind("[::1]:0").unwrap(), |_, d| vec![d.to_vec()]);
    let (code, stdout, _) = run(&[&peer.addr.to_string(), "six"]);
    assert_eq!(code, Some(0));
    assert!(peer.next().1.is_ipv6());
    assert!(stdout[0].starts_with(&format!("{}  3 B  six", peer.addr)));
}

#[test]
fn a_closed_stdout_ends_the_client_quietly() {
    let peer = Peer::echo();
    let mut child = std::process::Command::new(BIN)
        .args(["-n", "3", "-i", "10ms", &peer.addr.to_string()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    drop(child.stdout.take()); // nobody will read: like `udp-client … | true`
    let mut client = Process::adopt(child);
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert_eq!(peer.next().0, b"seq=1 ping");
    assert!(!client.stderr.rest(WAIT).iter().any(|l| l.contains("panicked")));
}

#[test]
fn datagrams_from_anyone_but_the_target_are_ignored() {
    let peer = Peer::echo();
    let mut client = Process::spawn_with_stdin(BIN, &[&peer.addr.to_string()]).unwrap();
    let mut stdin = client.stdin.take().unwrap();
    stdin.write_all(b"one\n").unwrap();
    assert!(client.stdout.next(WAIT).unwrap().ends_with("  3 B  one"));
    let (_, client_addr) = peer.next();
    // A third party writes to the client's port; the connected socket drops it.
    let intruder = UdpSocket::bind("127.0.0.1:0").unwrap();
    intruder.send_to(b"intruder", client_addr).unwrap();
    stdin.write_all(b"two\n").unwrap();
    drop(stdin);
    assert!(client.stdout.next(WAIT).unwrap().ends_with("  3 B  two"));
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(
        client.stdout.rest(Duration::from_millis(50)).is_empty(),
        "nothing from the intruder"
    );
}

/// Every mode ends `--json` with a summary, the one-shot too; a ping says what it sent.
#[test]
fn json_ends_with_a_summary_in_every_mode_and_ping_reports_what_it_sent() {
    let peer = Peer::echo();
    let addr = peer.addr.to_string();
    let (code, stdout, _) = run(&[&addr, "hi", "--json"]);
    assert_eq!(code, Some(0));
    let events: Vec<Value> = stdout.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    let kinds: Vec<&str> = events.iter().map(|e| e["event"].as_str().unwrap()).collect();
    assert_eq!(kinds, ["sent", "reply", "summary"]);
    assert_eq!(
        (events[2]["sent"].as_u64(), events[2]["reply"].as_bool()),
        (Some(1), Some(true))
    );

    let (code, stdout, _) = run(&[&addr, "--count", "3", "--interval", "10ms", "--json"]);
    assert_eq!(code, Some(0));
    let kinds: Vec<String> = stdout
        .iter()
        .map(|l| {
            serde_json::from_str::<Value>(l).unwrap()["event"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(kinds.iter().filter(|k| *k == "sent").count(), 3, "{kinds:?}");
    assert_eq!(kinds.iter().filter(|k| *k == "reply").count(), 3, "{kinds:?}");
    assert_eq!(kinds.last().map(String::as_str), Some("summary"));
}

/// `-v` shows the chapter's steps as the client takes them.
#[test]
fn verbose_one_shot_names_the_socket_steps() {
    let peer = Peer::echo();
    let (code, _, stderr) = run(&[&peer.addr.to_string(), "hi", "-v"]);
    assert_eq!(code, Some(0));
    let steps: Vec<&String> = stderr.iter().filter(|l| l.contains("step ")).collect();
    assert_eq!(steps.len(), 3, "{stderr:?}");
    for (line, step) in steps
        .iter()
        .zip(["step 1, socket()", "step 2, sendto()", "step 3, close()"])
    {
        assert!(line.contains(step), "{line}");
    }
}

/// A `--no-reply` flood awaits nothing, and says nothing about replies in flight.
#[test]
fn a_no_reply_flood_does_not_talk_about_replies_in_flight() {
    let peer = Peer::silent();
    let (code, _, stderr) = run(&[
        &peer.addr.to_string(),
        "--count",
        "100",
        "--interval",
        "0",
        "--no-reply",
    ]);
    assert_eq!(code, Some(0));
    assert_eq!(peer.all(Duration::from_millis(200)).len(), 100);
    assert!(!stderr.iter().any(|l| l.contains("in flight")), "{stderr:?}");
    assert!(
        stderr.iter().any(|l| l.contains("nothing is awaited (--no-reply)")),
        "{stderr:?}"
    );
    // Stderr is a pipe: no progress line.
    assert!(
        !stderr.iter().any(|l| l.contains("datagrams sent") || l.contains('\r')),
        "{stderr:?}"
    );
}

/// `--report-every`: JSON `interval` events while the ping runs, their sends adding up to
/// no more than were sent, each with the interval's p50 and jitter.
#[test]
fn report_every_prints_one_interval_event_per_period() {
    let peer = Peer::echo();
    let target = peer.addr.to_string();
    let (code, stdout, _) = run(&[
        &target,
        "--count",
        "30",
        "--interval",
        "20ms",
        "--report-every",
        "150ms",
        "--json",
    ]);
    assert_eq!(code, Some(0));
    let intervals: Vec<Value> = stdout
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "interval")
        .collect();
    assert!((2..=5).contains(&intervals.len()), "{intervals:?}");
    let sent: u64 = intervals.iter().map(|e| e["sent"].as_u64().unwrap()).sum();
    assert!(sent > 10 && sent <= 30, "{intervals:?}");
    assert!(
        intervals
            .iter()
            .all(|e| e["p50_ms"].is_number() && e["jitter_ms"].is_number()),
        "{intervals:?}"
    );
    assert!(
        intervals.windows(2).all(|w| w[0]["end_s"] == w[1]["start_s"]),
        "back to back: {intervals:?}"
    );
}

/// `--graph` off a terminal (here a pipe): a one-line note, then the plain lines.
#[test]
fn graph_off_a_terminal_says_so_and_prints_plain_lines() {
    let peer = Peer::echo();
    let (code, stdout, stderr) = run(&[&peer.addr.to_string(), "--count", "3", "--interval", "10ms", "--graph"]);
    assert_eq!(code, Some(0));
    assert!(
        stderr
            .iter()
            .any(|l| l.contains("--graph draws on a terminal; stdout is not one")),
        "{stderr:?}"
    );
    assert_eq!(stdout.len(), 3, "{stdout:?}");
    assert!(stdout.iter().all(|l| l.contains(" ping  rtt ")), "{stdout:?}");
}
