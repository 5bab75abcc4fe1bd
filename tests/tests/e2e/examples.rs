//! The first rung: each chapter example, run as a process against a real peer that no
//! example wrote (the chapter's Python, or the workspace's tools).

use testkit::{Command, Process, WAIT, bin, example, output};

/// The repository's root, where `scripts/peers/` is.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

#[test]
fn chapter_server_answers_the_chapters_python_client_and_udp_client() {
    let mut server = Process::spawn(&example("chapter_server"), &["0", "2"]).unwrap();
    let addr = server.listening(WAIT).unwrap();
    let python = output(
        Command::new("python3")
            .arg(root().join("scripts/peers/chapter_client.py"))
            .args(["127.0.0.1", &addr.port().to_string(), "你好 hello"]),
    );
    assert_eq!(python.status.code(), Some(0), "{python:?}");
    assert_eq!(String::from_utf8_lossy(&python.stdout), "你好 hello\n");
    let line = server.stdout.next(WAIT).unwrap();
    assert!(
        line.starts_with("127.0.0.1:") && line.ends_with(" 你好 hello"),
        "{line}"
    );

    let client = output(Command::new(bin("udp-client")).args([&addr.to_string(), "hi"]));
    assert_eq!(client.status.code(), Some(0));
    assert!(String::from_utf8_lossy(&client.stdout).starts_with(&format!("{addr}  2 B  hi  rtt ")));
    // COUNT 2 reached: the example ends by itself, as the Python does.
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn chapter_server_cuts_a_long_datagram_to_1024_bytes_like_recvfrom_1024() {
    let mut server = Process::spawn(&example("chapter_server"), &["0", "1"]).unwrap();
    let addr = server.listening(WAIT).unwrap();
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(&[b'x'; 3000], addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0.len(), 1024);
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn chapter_client_gets_its_echo_from_udp_server() {
    let (mut server, addr) = Process::server(&bin("udp-server"), &["--count", "1"]);
    let client = output(Command::new(example("chapter_client")).args(["127.0.0.1", &addr.port().to_string(), "hello"]));
    assert_eq!(client.status.code(), Some(0), "{client:?}");
    assert_eq!(String::from_utf8_lossy(&client.stdout), "hello\n");
    let line = server.stdout.next(WAIT).unwrap();
    assert!(line.ends_with("  5 B  hello"), "{line}");
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn chapter_client_fails_instead_of_hanging_when_no_reply_comes() {
    let nobody = testkit::closed_port();
    let client =
        output(Command::new(example("chapter_client")).args(["127.0.0.1", &nobody.port().to_string(), "anyone?"]));
    assert_eq!(client.status.code(), Some(1), "{client:?}");
    assert!(client.stdout.is_empty());
}

#[test]
fn chapter_broadcast_sender_reaches_udp_broadcast_listen() {
    let mut listener = Process::spawn(
        &bin("udp-broadcast"),
        &["listen", "--bind", "0.0.0.0:0", "--count", "3", "--json"],
    )
    .unwrap();
    let port = listener.listening(WAIT).unwrap().port().to_string();
    let sender = output(Command::new(example("chapter_broadcast")).args(["send", &port, "3"]));
    assert_eq!(sender.status.code(), Some(0), "{sender:?}");
    for seq in 1..=3u64 {
        let event: serde_json::Value = serde_json::from_str(&listener.stdout.next(WAIT).unwrap()).unwrap();
        assert_eq!(
            (event["event"].as_str(), event["seq"].as_u64()),
            (Some("recv"), Some(seq)),
            "{event}"
        );
        assert!(event["text"].as_str().unwrap().starts_with(&format!("seq={seq} AAPL ")));
    }
    assert_eq!(listener.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn chapter_broadcast_listener_hears_udp_broadcast_send() {
    let mut listener = Process::spawn(&example("chapter_broadcast"), &["listen", "0", "2"]).unwrap();
    let port = listener.listening(WAIT).unwrap().port();
    let sender = output(Command::new(bin("udp-broadcast")).args([
        "send",
        "--to",
        &format!("127.255.255.255:{port}"),
        "--count",
        "2",
        "--interval",
        "10ms",
        "hello",
    ]));
    assert_eq!(sender.status.code(), Some(0), "{sender:?}");
    for seq in 1..=2 {
        let line = listener.stdout.next(WAIT).unwrap();
        assert!(
            line.starts_with(&format!("seq={seq} ")) && line.ends_with(" hello"),
            "{line}"
        );
    }
    assert_eq!(listener.wait(WAIT).and_then(|s| s.code()), Some(0));
}
