//! The first rung: each chapter example, run as a process against a real peer that no
//! example wrote (the chapter's Python, or the workspace's tools).

use std::net::UdpSocket;

use std::time::Duration;

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
    let ended = run(
        &example("chapter_client"),
        &["127.0.0.1", &nobody.port().to_string(), "anyone?"],
    );
    assert_eq!(ended, no_reply(nobody));
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

/// How a program run to its end ended: exit code, stdout lines, stderr lines.
#[derive(Debug, PartialEq, Eq)]
struct Ended {
    code: Option<i32>,
    stdout: Vec<String>,
    stderr: Vec<String>,
}

/// Runs `program` with `args` to its end, with a deadline: a program still running after
/// 15 s (one that listens instead of failing) fails the test, and is killed by its PID.
fn run(program: &str, args: &[&str]) -> Ended {
    let mut process = Process::spawn(program, args).unwrap();
    let status = process.wait(Duration::from_secs(15));
    assert!(status.is_some(), "{program} {args:?} was still running after 15 s");
    Ended {
        code: status.and_then(|s| s.code()),
        stdout: process.stdout.rest(WAIT),
        stderr: process.stderr.rest(WAIT),
    }
}

/// A chapter peer in Python, run to its end with a deadline.
fn run_python(script: &str, args: &[&str]) -> Ended {
    let path = root().join("scripts/peers").join(script);
    let mut all = vec![path.to_str().unwrap()];
    all.extend_from_slice(args);
    run("python3", &all)
}

/// What a chapter client prints when nobody answers at `nobody`: one line, exit code 1.
fn no_reply(nobody: std::net::SocketAddr) -> Ended {
    Ended {
        code: Some(1),
        stdout: vec![],
        stderr: vec![format!("no reply within 5 s: is a server running on {nobody}?")],
    }
}

/// The usage line on stderr, nothing on stdout, exit code 2.
fn usage(line: &str) -> Ended {
    Ended {
        code: Some(2),
        stdout: vec![],
        stderr: vec![line.to_string()],
    }
}

/// A port on `ip` held by a socket of this test (no SO_REUSEADDR), so binding it again fails.
/// It is only bound: nothing is sent to or from it.
fn taken_port(ip: &str) -> (UdpSocket, u16) {
    let holder = UdpSocket::bind((ip, 0)).unwrap();
    let port = holder.local_addr().unwrap().port();
    (holder, port)
}

/// Exit code 1, nothing on stdout, and one line naming the address with the OS's words:
/// `address already in use` on Linux and macOS; Windows words it its own way.
fn assert_cannot_bind(ended: &Ended, ip: &str, port: u16) {
    assert_eq!(
        (ended.code, ended.stdout.len(), ended.stderr.len()),
        (Some(1), 0, 1),
        "{ended:?}"
    );
    let line = &ended.stderr[0];
    if cfg!(windows) {
        assert!(
            line.starts_with(&format!(
                "cannot bind {ip}:{port}: only one usage of each socket address"
            )),
            "{line}"
        );
    } else {
        assert_eq!(*line, format!("cannot bind {ip}:{port}: address already in use"));
    }
}

#[test]
fn each_example_prints_its_usage_in_one_line_and_exits_2_on_a_bad_command_line() {
    let server = "usage: chapter_server [PORT [COUNT]]";
    assert_eq!(run(&example("chapter_server"), &["8888", "hello"]), usage(server));
    assert_eq!(run(&example("chapter_server"), &["--help"]), usage(server));
    assert_eq!(run(&example("chapter_server"), &["0", "1", "2"]), usage(server));
    let client = "usage: chapter_client HOST PORT MESSAGE";
    // The two cases: the port given without the host, and --help.
    assert_eq!(run(&example("chapter_client"), &["8888", "hello"]), usage(client));
    assert_eq!(run(&example("chapter_client"), &["--help"]), usage(client));
    assert_eq!(
        run(&example("chapter_client"), &["127.0.0.1", "70000", "hi"]),
        usage(client)
    );
}

#[test]
fn chapter_broadcast_without_a_known_subcommand_prints_its_usage_instead_of_listening() {
    let line = "usage: chapter_broadcast send|listen [PORT [COUNT]]   (default 7788 10)";
    // With no subcommand it used to listen on 0.0.0.0:7788 until killed: `run` would time out.
    assert_eq!(run(&example("chapter_broadcast"), &[]), usage(line));
    assert_eq!(run(&example("chapter_broadcast"), &["lisen", "0", "1"]), usage(line));
    assert_eq!(run(&example("chapter_broadcast"), &["send", "x"]), usage(line));
}

#[test]
fn the_examples_on_a_taken_port_say_so_in_one_line_and_exit_1() {
    let (_holder, port) = taken_port("127.0.0.1");
    assert_cannot_bind(
        &run(&example("chapter_server"), &[&port.to_string()]),
        "127.0.0.1",
        port,
    );
    let (_holder, port) = taken_port("0.0.0.0");
    let ended = run(&example("chapter_broadcast"), &["listen", &port.to_string(), "1"]);
    assert_cannot_bind(&ended, "0.0.0.0", port);
}

#[test]
fn chapter_client_and_its_python_peer_send_hello_when_no_message_is_given() {
    let (mut server, addr) = Process::server(&bin("udp-server"), &["--count", "2"]);
    let port = addr.port().to_string();
    let rust = run(&example("chapter_client"), &["127.0.0.1", &port]);
    assert_eq!((rust.code, rust.stdout), (Some(0), vec!["hello".to_string()]));
    let python = run_python("chapter_client.py", &["127.0.0.1", &port]);
    assert_eq!((python.code, python.stdout), (Some(0), vec!["hello".to_string()]));
    for _ in 0..2 {
        let line = server.stdout.next(WAIT).unwrap();
        assert!(line.ends_with("  5 B  hello"), "{line}");
    }
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn the_python_server_with_count_0_serves_forever_and_prints_every_datagram() {
    // No COUNT: 0, never stop, as the Rust example.
    let server = Process::spawn(
        "python3",
        &[root().join("scripts/peers/chapter_server.py").to_str().unwrap(), "0"],
    )
    .unwrap();
    let addr = server.listening(WAIT).unwrap();
    let peer = testkit::local_socket(WAIT).unwrap();
    let me = peer.local_addr().unwrap();
    for text in ["one", "two", "three"] {
        peer.send_to(text.as_bytes(), addr).unwrap();
        assert_eq!(testkit::recv(&peer).unwrap().0, text.as_bytes());
        assert_eq!(server.stdout.next(WAIT).unwrap(), format!("{me} {text}"));
    }
    // Still serving after three: the test's end stops it, by its PID.
}

#[test]
fn the_python_peers_print_their_usage_in_one_line_and_exit_2() {
    let cases = [
        (
            "chapter_server.py",
            &["8888", "hello"][..],
            "usage: chapter_server.py [PORT [COUNT]]",
        ),
        (
            "chapter_client.py",
            &["8888", "hello"],
            "usage: chapter_client.py HOST PORT MESSAGE",
        ),
        (
            "chapter_client.py",
            &["--help"],
            "usage: chapter_client.py HOST PORT MESSAGE",
        ),
        (
            "chapter_broadcast_listener.py",
            &["x"],
            "usage: chapter_broadcast_listener.py [PORT [COUNT]]",
        ),
        (
            "chapter_broadcast_sender.py",
            &["1", "-3"],
            "usage: chapter_broadcast_sender.py [PORT [COUNT]]",
        ),
    ];
    for (script, args, line) in cases {
        assert_eq!(run_python(script, args), usage(line), "{script} {args:?}");
    }
}

#[test]
fn the_python_peers_say_in_one_line_what_failed_and_exit_1() {
    let (_holder, port) = taken_port("127.0.0.1");
    assert_cannot_bind(
        &run_python("chapter_server.py", &[&port.to_string()]),
        "127.0.0.1",
        port,
    );
    let (_holder, port) = taken_port("0.0.0.0");
    let ended = run_python("chapter_broadcast_listener.py", &[&port.to_string()]);
    assert_cannot_bind(&ended, "0.0.0.0", port);
    let nobody = testkit::closed_port();
    let ended = run_python(
        "chapter_client.py",
        &["127.0.0.1", &nobody.port().to_string(), "anyone?"],
    );
    assert_eq!(ended, no_reply(nobody));
}

#[test]
fn the_broadcast_listeners_stop_after_10_messages_when_no_count_is_given() {
    for listener in [
        Process::spawn(&example("chapter_broadcast"), &["listen", "0"]).unwrap(),
        Process::spawn(
            "python3",
            &[
                root()
                    .join("scripts/peers/chapter_broadcast_listener.py")
                    .to_str()
                    .unwrap(),
                "0",
            ],
        )
        .unwrap(),
    ] {
        let mut listener = listener;
        let port = listener.listening(WAIT).unwrap().port();
        let sender = run(
            &bin("udp-broadcast"),
            &[
                "send",
                "--to",
                &format!("127.255.255.255:{port}"),
                "--count",
                "10",
                "--interval",
                "10ms",
                "hi",
            ],
        );
        assert_eq!(sender.code, Some(0), "{sender:?}");
        let heard = listener.stdout.rest(WAIT);
        assert_eq!(heard.len(), 10, "{heard:?}");
        assert!(heard.iter().all(|l| l.ends_with(" hi")), "{heard:?}");
        assert_eq!(listener.wait(WAIT).and_then(|s| s.code()), Some(0));
    }
}

#[test]
fn each_example_stays_short_enough_to_sit_beside_the_python() {
    for path in [
        "crates/udp-server/examples/chapter_server.rs",
        "crates/udp-client/examples/chapter_client.rs",
        "crates/udp-broadcast/examples/chapter_broadcast.rs",
    ] {
        let text = std::fs::read_to_string(root().join(path)).unwrap();
        assert!(text.lines().count() <= 50, "{path} has {} lines", text.lines().count());
        // std only: no `use` of anything but the standard library.
        assert!(
            text.lines()
                .filter(|l| l.starts_with("use "))
                .all(|l| l.starts_with("use std::")),
            "{path}"
        );
    }
}
