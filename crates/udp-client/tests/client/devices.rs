//! What device people type: escapes and line ends, hex with separators, check bytes, the
//! same message again and again, a local port of their choosing, replies saved to a file.
//! Each test asserts the bytes a raw receiver saw.

use std::io::Write;

use testkit::{Process, WAIT, free_port, run_to_end};

use crate::{BIN, Peer};

fn sent_bytes(args: &[&str]) -> (Option<i32>, Vec<u8>) {
    let peer = Peer::silent();
    let mut all = vec!["--no-reply".to_string(), peer.addr.to_string()];
    all.extend(args.iter().map(|a| a.to_string()));
    let all: Vec<&str> = all.iter().map(String::as_str).collect();
    let ran = run_to_end(BIN, &all);
    (ran.code, peer.next().0)
}

#[test]
fn escapes_and_crlf_put_the_bytes_named_on_the_wire() {
    assert_eq!(
        sent_bytes(&["--escapes", "AT\\r\\n"]),
        (Some(0), vec![0x41, 0x54, 0x0d, 0x0a])
    );
    assert_eq!(sent_bytes(&["-C", "AT"]), (Some(0), vec![0x41, 0x54, 0x0d, 0x0a]));
    assert_eq!(sent_bytes(&["--escapes", "\\x00\\xff"]), (Some(0), vec![0x00, 0xff]));
    // Without --escapes a backslash is a backslash.
    assert_eq!(sent_bytes(&["AT\\r"]).1, b"AT\\r");
    let ran = run_to_end(BIN, &["--escapes", "--no-reply", "9", "AT\\q"]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("bad escape '\\q'"), "{}", ran.stderr);
}

#[test]
fn hex_takes_colons_and_hyphens_and_names_a_bad_digit() {
    assert_eq!(sent_bytes(&["-e", "hex", "48:65"]).1, b"He");
    assert_eq!(sent_bytes(&["-e", "hex", "48-65"]).1, b"He");
    let ran = run_to_end(BIN, &["-e", "hex", "--no-reply", "9", "48:6g"]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("'g' is not a hex digit"), "{}", ran.stderr);
}

#[test]
fn a_modbus_request_goes_out_with_its_crc_and_replies_are_checked() {
    assert_eq!(
        sent_bytes(&["-e", "hex", "--checksum", "crc16-modbus", "01 03 00 00 00 0a"]).1,
        [0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd]
    );
    // A device that answers with a good CRC, then one whose CRC is wrong.
    for (answer, shown, ok) in [
        (
            vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd],
            "[checksum ok]",
            true,
        ),
        (
            vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00],
            "[checksum BAD: want c5cd]",
            false,
        ),
    ] {
        let peer = Peer::new(move |_, _| vec![answer.clone()]);
        let target = peer.addr.to_string();
        let text = run_to_end(
            BIN,
            &["-e", "hex", "--checksum", "crc16-modbus", &target, "01 03 00 00 00 0a"],
        );
        assert!(text.stdout.contains(shown), "{}", text.stdout);
        let json = run_to_end(
            BIN,
            &["--json", "-e", "hex", "--checksum", "crc16-modbus", &target, "01"],
        );
        let reply: serde_json::Value = serde_json::from_str(json.stdout.lines().nth(1).unwrap()).unwrap();
        assert_eq!(reply["checksum_ok"], ok, "{reply}");
    }
    let ran = run_to_end(BIN, &["--checksum", "crc8", "9", "x"]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("unknown checksum 'crc8'"), "{}", ran.stderr);
}

#[test]
fn repeat_sends_exactly_the_message_n_times_and_counts_the_replies() {
    let peer = Peer::echo();
    let ran = run_to_end(
        BIN,
        &[&peer.addr.to_string(), "--repeat", "3", "--interval", "20ms", "hi"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(peer.all(std::time::Duration::from_millis(200)), [b"hi", b"hi", b"hi"]);
    assert_eq!(ran.stdout.lines().count(), 3, "{}", ran.stdout);
    assert!(
        ran.stderr.contains("udp-client: sent 3 datagrams, received 3, lost 0"),
        "{}",
        ran.stderr
    );
    // Nobody answering: every one lost, and exit 1.
    let silent = Peer::silent();
    let ran = run_to_end(
        BIN,
        &[
            &silent.addr.to_string(),
            "--repeat",
            "2",
            "--interval",
            "10ms",
            "--timeout",
            "200ms",
            "x",
        ],
    );
    assert_eq!(ran.code, Some(1));
    assert!(
        ran.stderr.contains("sent 2 datagrams, received 0, lost 2"),
        "{}",
        ran.stderr
    );
}

#[test]
fn two_clients_with_bound_ports_chat_both_ways() {
    let (a, b) = (free_port(), free_port());
    let (a_port, b_port) = (a.port().to_string(), b.port().to_string());
    let mut one = Process::spawn_with_stdin(BIN, &["--bind", &a_port, &b_port, "--timeout", "500ms"]).unwrap();
    one.stderr
        .find(WAIT, |l| l.contains(&format!("from {a} (bound with --bind)")))
        .expect("one bound");
    let mut two = Process::spawn_with_stdin(BIN, &["--bind", &b_port, &a_port, "--timeout", "500ms"]).unwrap();
    two.stderr
        .find(WAIT, |l| l.contains(&format!("from {b} (bound with --bind)")))
        .expect("two bound");
    writeln!(one.stdin.as_mut().unwrap(), "hello from one").unwrap();
    assert_eq!(two.stdout.next(WAIT).unwrap(), format!("{a}  14 B  hello from one"));
    writeln!(two.stdin.as_mut().unwrap(), "hi from two").unwrap();
    assert_eq!(one.stdout.next(WAIT).unwrap(), format!("{b}  11 B  hi from two"));
    drop(one.stdin.take());
    drop(two.stdin.take());
    assert_eq!(one.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert_eq!(two.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn a_bound_port_in_use_is_the_servers_one_line_error() {
    let taken = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let ran = run_to_end(BIN, &["--bind", &port, "9", "hi"]);
    assert_eq!(ran.code, Some(1));
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr.contains(&format!(
            "cannot bind 127.0.0.1:{port}: address already in use (is another server running?"
        )),
        "{}",
        ran.stderr
    );
}

#[test]
fn replies_are_saved_and_an_unwritable_save_fails_before_sending() {
    let peer = Peer::echo();
    let path = std::env::temp_dir().join(format!("udp-client-save-{}.bin", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let target = peer.addr.to_string();
    let ran = run_to_end(
        BIN,
        &[
            &target,
            "--repeat",
            "2",
            "--interval",
            "10ms",
            "--save",
            path.to_str().unwrap(),
            "ab",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(std::fs::read(&path).unwrap(), b"abab");
    std::fs::remove_file(&path).unwrap();
    let silent = Peer::silent();
    let ran = run_to_end(BIN, &[&silent.addr.to_string(), "--save", "/nonexistent-dir/x", "hi"]);
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr.contains("cannot write --save /nonexistent-dir/x"),
        "{}",
        ran.stderr
    );
    assert!(
        silent.all(std::time::Duration::from_millis(100)).is_empty(),
        "nothing was sent"
    );
}

/// Ctrl-C (here SIGTERM) stops `--repeat` between sends: the summary, and exit 0.
#[test]
fn a_stopped_repeat_prints_its_summary_and_exits_0() {
    let peer = Peer::echo();
    let mut client = Process::spawn(
        BIN,
        &[&peer.addr.to_string(), "--repeat", "100", "--interval", "100ms", "hi"],
    )
    .unwrap();
    assert!(client.stdout.next(WAIT).unwrap().ends_with("  2 B  hi"));
    client.signal("TERM").unwrap();
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary = client.stderr.find(WAIT, |l| l.contains("udp-client: sent ")).unwrap();
    let sent: u64 = summary.split_whitespace().nth(2).unwrap().parse().unwrap();
    assert!((1..100).contains(&sent), "{summary}");
}
