use testkit::{Command, output, run_to_end};

use crate::{BIN, Peer};

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    let peer = Peer::silent();
    let addr = peer.addr.to_string();
    let too_big = "x".repeat(common::MAX_UDP_PAYLOAD_V4 + 1);
    for (args, needle) in [
        (vec!["127.0.0.1:70000", "hi"], "bad address '127.0.0.1:70000'"),
        (vec!["127.0.0.1:0", "hi"], "port 0 is not a destination"),
        (vec!["--encoding", "latin9", "hi"], "unknown encoding 'latin9'"),
        (vec!["--encoding", "hex", &addr, "4g"], "bad hex '4g'"),
        (vec!["--encoding", "gbk", &addr, "😀"], "cannot be written in GBK"),
        (vec!["--count", "0"], "--count"),
        (vec!["--interval", "soon"], "bad duration 'soon'"),
        (vec!["--timeout=-1s", "x"], "bad duration '-1s'"),
        (vec![&addr, &too_big], "carries at most 65507"),
    ] {
        let out = output(Command::new(BIN).args(&args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        let short: Vec<&str> = args.iter().map(|a| if a.len() > 20 { "…" } else { a }).collect();
        assert_eq!(out.status.code(), Some(2), "{short:?}: {stderr}");
        let errors: Vec<&str> = stderr.lines().filter(|l| !l.contains("sending to")).collect();
        assert_eq!(errors.len(), 1, "{short:?}: {stderr}");
        assert!(
            errors[0].starts_with("udp-client: ") && errors[0].contains(needle),
            "{short:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
    assert!(
        peer.all(std::time::Duration::from_millis(100)).is_empty(),
        "nothing bad was sent"
    );
}

#[test]
fn help_shows_an_example_per_mode_and_version_works() {
    testkit::assert_help_and_version(
        BIN,
        "udp-client",
        env!("CARGO_PKG_VERSION"),
        &[
            "udp-client hello",
            "udp-client 9000",
            "--count 10",
            "--interval 0",
            "--no-reply",
            "--retries 3",
            "--encoding hex",
        ],
    );
}

/// A message that starts with a dash: clap's own tip says how to send it.
#[test]
fn a_dash_message_gets_clap_s_tip_in_one_line() {
    let ran = run_to_end(BIN, &["-5 degrees"]);
    assert_eq!(ran.code, Some(2));
    let stderr = ran.stderr;
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("use '-- -5'"), "{stderr}");
}

/// `udp-client 127.0.0.1 hi` must not send "127.0.0.1 hi" to the default target: it is an
/// error showing the right spelling, and nothing is sent.
#[test]
fn an_address_without_a_port_is_an_error_not_a_message() {
    for (args, spelled) in [
        (&["::1:9005", "hi"][..], "[::1]:9005"),
        (&["localhost", "hi"], "localhost:8888"),
    ] {
        let ran = run_to_end(BIN, args);
        assert_eq!(ran.code, Some(2), "{args:?}");
        assert!(ran.stderr.contains(&format!("write {spelled} ")), "{}", ran.stderr);
        assert!(ran.stdout.is_empty());
    }
}

/// `--timeout 500` is 500 seconds: the client says so, and how to write milliseconds.
#[test]
fn a_bare_long_timeout_is_questioned() {
    let peer = Peer::echo();
    let ran = run_to_end(BIN, &[&peer.addr.to_string(), "hi", "--timeout", "500"]);
    assert_eq!(ran.code, Some(0));
    let stderr = ran.stderr;
    assert!(
        stderr.contains("--timeout 500 means 500 seconds (a bare number is seconds); for milliseconds write 500ms"),
        "{stderr}"
    );
}

/// `udp-client 127.0.0.1 PORT hello`, as `nc -u HOST PORT` takes it: the peer gets "hello".
#[test]
fn host_and_port_as_two_words_reach_the_peer() {
    let peer = Peer::echo();
    let port = peer.addr.port().to_string();
    assert_eq!(run_to_end(BIN, &["127.0.0.1", &port, "hello"]).code, Some(0));
    assert_eq!(peer.next().0, b"hello");
}
