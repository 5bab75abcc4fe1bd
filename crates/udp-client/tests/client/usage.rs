use std::process::Command;

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
        let out = Command::new(BIN).args(&args).output().unwrap();
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
    common::testkit::assert_help_and_version(
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
