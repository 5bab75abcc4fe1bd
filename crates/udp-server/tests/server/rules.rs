//! `--rule`: a device simulator, talked to by the chapter's own Python client.

use std::time::{Duration, Instant};

use common::checksum::Checksum::Crc16Modbus;
use serde_json::Value;
use testkit::{Process, WAIT, run_to_end};

use crate::process::{BIN, echo};

fn server(args: &[&str]) -> (Process, std::net::SocketAddr) {
    Process::server(BIN, args)
}

/// A rule reply longer than its request is cut to the request's length unless
/// `--max-reply-ratio` raises it; the start-up log says which exact rules will be cut.
#[test]
fn a_rule_reply_is_cut_to_the_ratio_and_the_log_says_so() {
    let (plain, addr) = server(&["--rule", "T?=>TEMP=23.5"]);
    assert_eq!(echo(addr, b"T?"), b"TE");
    let warning = plain.stderr.find(WAIT, |l| l.contains("rule 'T?=>TEMP=23.5'")).unwrap();
    assert!(
        warning.contains("replies 9 bytes to a 2-byte request: cut to 2"),
        "{warning}"
    );
    let (_raised, addr) = server(&["--rule", "T?=>TEMP=23.5", "--max-reply-ratio", "4"]);
    assert_eq!(echo(addr, b"T?"), b"TEMP=23.");
    let (_whole, addr) = server(&["--rule", "T?=>TEMP=23.5", "--max-reply-ratio", "5"]);
    assert_eq!(echo(addr, b"T?"), b"TEMP=23.5");
}

/// A Modbus slave in hex: the rule is written without the CRC, as the slave reads its frame;
/// the request (with its CRC) gets the canned response, CRC appended.
#[test]
fn a_simulated_modbus_slave_answers_in_hex_with_its_crc() {
    let (_slave, addr) = server(&[
        "-e",
        "hex",
        "--checksum",
        "crc16-modbus",
        "--rule",
        "01 03 00 00 00 01=>01 03 02 00 17",
    ]);
    let request = [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0a];
    let reply = echo(addr, &request);
    assert_eq!(reply[..5], [0x01, 0x03, 0x02, 0x00, 0x17]);
    assert_eq!(reply.len(), 7);
    assert_eq!(Crc16Modbus.check(&reply), common::checksum::Check::Ok);
}

/// A request whose CRC is wrong gets no answer from a simulated device: marked on its
/// line, counted in the summary (text and JSON), logged once. `--answer-bad-checksum`
/// answers it, matched without its (wrong) check bytes.
#[test]
fn a_request_with_a_bad_crc_is_not_answered_unless_asked() {
    let rule = "01 03 00 00 00 01=>01 03 02 00 17";
    let args = ["-e", "hex", "--checksum", "crc16-modbus", "--rule", rule, "--json"];
    let (mut slave, addr) = server(&args);
    let bad = [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    let peer = testkit::local_socket(Duration::from_millis(300)).unwrap();
    for _ in 0..2 {
        peer.send_to(&bad, addr).unwrap();
    }
    assert!(testkit::recv(&peer).is_err(), "no reply to a bad frame");
    for _ in 0..2 {
        let line: Value = serde_json::from_str(&slave.stdout.next(WAIT).unwrap()).unwrap();
        assert_eq!(
            (line["checksum_ok"].as_bool(), line["note"].as_str(), line.get("rule")),
            (Some(false), Some("not answered: bad check bytes"), None),
            "{line}"
        );
    }
    slave.signal("TERM").unwrap();
    assert_eq!(slave.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary: Value = serde_json::from_str(&slave.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(
        (
            summary["checksum_bad"].as_u64(),
            summary["checksum_bad_unanswered"].as_u64()
        ),
        (Some(2), Some(2))
    );
    assert_eq!(summary["replied"].as_u64(), Some(0));
    let stderr = slave.stderr.rest(WAIT);
    let warned: Vec<&String> = stderr.iter().filter(|l| l.contains("warning: not answering")).collect();
    assert_eq!(warned.len(), 1, "logged once: {stderr:?}");
    assert!(
        stderr.iter().any(|l| l.contains("checksum bad 2 (2 not answered)")),
        "{stderr:?}"
    );
    assert!(
        !stderr.iter().any(|l| l.contains("cut to")),
        "a 5-byte reply + CRC fits the 8-byte request: {stderr:?}"
    );

    let (_lenient, addr) = server(&[&args[..6], &["--answer-bad-checksum"]].concat());
    let reply = echo(addr, &bad);
    assert_eq!(
        reply[..5],
        [0x01, 0x03, 0x02, 0x00, 0x17],
        "matched without its check bytes"
    );
    assert_eq!(Crc16Modbus.check(&reply), common::checksum::Check::Ok);
}

/// A fixed `--reply` plays a device too: no answer to a bad frame. A plain echo reflects
/// it (how a relay's corruption is seen).
#[test]
fn a_fixed_reply_ignores_a_bad_frame_and_an_echo_reflects_it() {
    let bad = [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00];
    let peer = testkit::local_socket(Duration::from_millis(300)).unwrap();
    let (_fixed, addr) = server(&["-e", "hex", "--checksum", "crc16-modbus", "--reply", "01 03 02 00 17"]);
    peer.send_to(&bad, addr).unwrap();
    assert!(testkit::recv(&peer).is_err(), "no fixed reply to a bad frame");
    let (_echo, addr) = server(&["-e", "hex", "--checksum", "crc16-modbus"]);
    assert_eq!(echo(addr, &bad), bad);
}

/// `PING=>[300ms]PONG`: the reply waits, and the server answers others meanwhile (the
/// receive loop is not blocked by the wait).
#[test]
fn a_delayed_reply_waits_without_holding_up_other_requests() {
    let (_sim, addr) = server(&["--rule", "PING=>[300ms]PONG", "--rule", "FAST=>NOW!"]);
    let slow = testkit::local_socket(WAIT).unwrap();
    let fast = testkit::local_socket(WAIT).unwrap();
    let sent = Instant::now();
    slow.send_to(b"PING", addr).unwrap();
    fast.send_to(b"FAST", addr).unwrap();
    assert_eq!(testkit::recv(&fast).unwrap().0, b"NOW!");
    let answered_fast = sent.elapsed();
    assert_eq!(testkit::recv(&slow).unwrap().0, b"PONG");
    let answered_slow = sent.elapsed();
    assert!(answered_fast < Duration::from_millis(300), "{answered_fast:?}");
    assert!(answered_slow >= Duration::from_millis(300), "{answered_slow:?}");
}

/// `A||[DUR]B`: several datagrams answer one request, in order; the summary counts each
/// one sent. Cut by `--max-reply-ratio`, the whole answer fits the allowance and the
/// request's line says so (`[reply cut to N B]`, `"reply_cut_to"`).
#[test]
fn a_rule_may_answer_with_several_datagrams_and_a_cut_is_marked_on_the_line() {
    let rule = "AT+RST=>OK||[100ms]ready";
    let (whole, addr) = server(&["--rule", rule, "--max-reply-ratio", "2"]);
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(b"AT+RST", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"OK");
    assert_eq!(testkit::recv(&peer).unwrap().0, b"ready");
    let line = whole.stdout.next(WAIT).unwrap();
    assert!(
        line.ends_with("  6 B  AT+RST  [rule AT+RST=>OK||[100ms]ready]"),
        "{line}"
    );
    whole.signal("TERM").unwrap();
    assert!(whole.stderr.find(WAIT, |l| l.contains("replied 2,")).is_some());

    let (mut cut, addr) = server(&["--rule", rule, "--json"]);
    peer.send_to(b"AT+RST", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"OK");
    assert_eq!(testkit::recv(&peer).unwrap().0, b"read", "6 bytes in all: 2 + 4");
    let line: Value = serde_json::from_str(&cut.stdout.next(WAIT).unwrap()).unwrap();
    assert_eq!(line["reply_cut_to"].as_u64(), Some(6), "{line}");
    cut.signal("TERM").unwrap();
    assert_eq!(cut.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary: Value = serde_json::from_str(&cut.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(
        (summary["replies_cut"].as_u64(), summary["replied"].as_u64()),
        (Some(1), Some(2))
    );

    // In text, on the request's line.
    let (text, addr) = server(&["--rule", "T?=>TEMP=23.5"]);
    peer.send_to(b"T?", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"TE");
    let line = text.stdout.next(WAIT).unwrap();
    assert!(
        line.ends_with("  2 B  T?  [rule T?=>TEMP=23.5]  [reply cut to 2 B]"),
        "{line}"
    );
}

/// "A real device says ERROR": a last rule `*=>ERROR` answers whatever no other rule
/// matched; `--reply none` answers nothing instead.
#[test]
fn a_catch_all_rule_says_error_to_anything_else() {
    let (_modem, addr) = server(&["--rule", "AT=>OK", "--rule", "*=>ERROR", "--max-reply-ratio", "4"]);
    assert_eq!(echo(addr, b"AT"), b"OK");
    assert_eq!(echo(addr, b"AT+GMR"), b"ERROR");
    assert_eq!(echo(addr, b"?"), b"ERRO", "cut to 4 x 1 byte");
}

/// `--count 1` with a delayed reply: the server sends it when due, then exits 0.
#[test]
fn a_delayed_reply_is_still_sent_after_the_last_counted_request() {
    let peer = testkit::local_socket(WAIT).unwrap();
    let (mut once, addr) = server(&["--rule", "PING=>[200ms]PONG", "--count", "1"]);
    peer.send_to(b"PING", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"PONG");
    assert_eq!(once.wait(WAIT).and_then(|s| s.code()), Some(0));
}

/// A stop does not wait for a delayed reply: it is counted as never sent.
#[test]
fn a_stop_counts_the_delayed_replies_never_sent() {
    let (mut slow, addr) = server(&["--rule", "PING=>[10s]PONG", "--json"]);
    let peer = testkit::local_socket(Duration::from_millis(200)).unwrap();
    peer.send_to(b"PING", addr).unwrap();
    slow.stdout.next(WAIT).unwrap();
    let asked = Instant::now();
    slow.signal("TERM").unwrap();
    assert_eq!(slow.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(asked.elapsed() < Duration::from_secs(1), "{:?}", asked.elapsed());
    let summary: Value = serde_json::from_str(&slow.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(
        (summary["replied"].as_u64(), summary["replies_pending_at_stop"].as_u64()),
        (Some(0), Some(1))
    );
    assert!(testkit::recv(&peer).is_err(), "never sent");
}

/// `--batch` answers at once in one system call: a delayed or multi-datagram rule is a
/// usage error, before anything is bound.
#[test]
fn batch_refuses_timed_rules() {
    for rule in ["PING=>[1s]PONG", "PING=>A||B"] {
        let ran = run_to_end(BIN, &["--batch", "8", "--rule", rule]);
        assert_eq!(ran.code, Some(2), "{rule}: {}", ran.stderr);
        assert!(ran.stderr.contains("leave out --batch"), "{}", ran.stderr);
    }
}

#[test]
fn no_match_with_reply_none_is_silent() {
    let (_quiet, addr) = server(&["--rule", "PING=>PONG", "--reply", "none"]);
    assert_eq!(echo(addr, b"PING"), b"PONG");
    let peer = testkit::local_socket(std::time::Duration::from_millis(300)).unwrap();
    peer.send_to(b"other", addr).unwrap();
    assert!(testkit::recv(&peer).is_err(), "no reply to what no rule matches");
}

#[test]
fn a_bad_rule_or_rules_file_is_a_one_line_usage_error_naming_it() {
    let ran = run_to_end(BIN, &["--rule", "/(unbalanced/=>x"]);
    assert_eq!(ran.code, Some(2));
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(ran.stderr.contains("bad rule '/(unbalanced/=>x'"), "{}", ran.stderr);
    let path = std::env::temp_dir().join(format!("udp-bad-{}.rules", std::process::id()));
    std::fs::write(&path, "# ok so far\nPING=>PONG\nno arrow here\n").unwrap();
    let ran = run_to_end(BIN, &["--rules", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains(&format!("{} line 3: bad rule 'no arrow here'", path.display())),
        "{}",
        ran.stderr
    );
}
