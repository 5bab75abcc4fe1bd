//! Device discovery: one `udp-client --broadcast` probe, every responder's reply. On
//! loopback only (127.255.255.255); `scripts/lan.sh` does the same across hosts.

use testkit::{Process, WAIT, bin, run_to_end};

/// Three servers share one port (`--reuse`) on 0.0.0.0, each answering broadcasts with a
/// rule of its own; one probe collects three replies.
#[test]
fn one_probe_finds_every_responder() {
    let first = Process::spawn(
        &bin("udp-server"),
        &[
            "--bind",
            "0.0.0.0:0",
            "--reuse",
            "--answer-broadcasts",
            "--rule",
            "who=>A",
        ],
    )
    .unwrap();
    let port = first.listening(WAIT).unwrap().port().to_string();
    let bind = format!("0.0.0.0:{port}");
    let others: Vec<Process> = ["who=>B", "who=>C"]
        .iter()
        .map(|rule| {
            let p = Process::spawn(
                &bin("udp-server"),
                &["--bind", &bind, "--reuse", "--answer-broadcasts", "--rule", rule],
            )
            .unwrap();
            p.listening(WAIT).unwrap();
            p
        })
        .collect();
    let target = format!("127.255.255.255:{port}");
    let ran = run_to_end(
        &bin("udp-client"),
        &["--broadcast", &target, "who", "--timeout", "500ms", "--json"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let events: Vec<serde_json::Value> = ran.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let mut answers: Vec<&str> = events
        .iter()
        .filter(|e| e["event"] == "reply")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    answers.sort_unstable();
    assert_eq!(answers, ["A", "B", "C"]);
    let summary = events.last().unwrap();
    assert_eq!(
        (summary["event"].as_str(), summary["replies"].as_u64()),
        (Some("summary"), Some(3))
    );
    assert!(
        ran.stderr.contains("udp-client: 3 replies from 1 responder"),
        "{}",
        ran.stderr
    );
    drop(others);
}

#[test]
fn a_probe_nobody_answers_exits_1_and_a_broadcast_without_the_flag_is_refused() {
    let nobody = testkit::closed_port();
    let target = format!("127.255.255.255:{}", nobody.port());
    let ran = run_to_end(
        &bin("udp-client"),
        &["--broadcast", &target, "who", "--timeout", "200ms"],
    );
    assert_eq!(ran.code, Some(1));
    assert!(ran.stderr.contains("no responder answered"), "{}", ran.stderr);
    let ran = run_to_end(&bin("udp-client"), &[&target, "who"]);
    assert_eq!(ran.code, Some(2));
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains("add --broadcast") && ran.stderr.contains("EACCES"),
        "{}",
        ran.stderr
    );
    // A multicast group without --broadcast is refused too: nothing may leave by mistake.
    let ran = run_to_end(&bin("udp-client"), &["239.255.70.8:9", "who"]);
    assert_eq!(ran.code, Some(2));
}
