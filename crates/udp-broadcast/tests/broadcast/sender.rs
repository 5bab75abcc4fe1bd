use std::net::{Ipv4Addr, UdpSocket};

use common::testkit::{Command, output};
use serde_json::Value;

use crate::{WAIT, listener, send};

#[test]
fn two_listeners_on_one_port_both_hear_every_broadcast() {
    let (mut first, addr) = listener(&["--bind", "0.0.0.0:0", "--json"]);
    let port = addr.port().to_string();
    let (mut second, _) = listener(&["--bind", &format!("0.0.0.0:{port}"), "--json"]);
    let to = format!("127.255.255.255:{port}");
    let (code, stderr) = send(&["--to", &to, "--count", "5", "--interval", "10ms", "hello", "all"]);
    assert_eq!(code, Some(0), "{stderr}");
    for listener in [&mut first, &mut second] {
        let events: Vec<Value> = (0..5)
            .map(|_| serde_json::from_str(&listener.stdout.next(WAIT).unwrap()).unwrap())
            .collect();
        let seqs: Vec<u64> = events.iter().map(|e| e["seq"].as_u64().unwrap()).collect();
        assert_eq!(seqs, [1, 2, 3, 4, 5]);
        assert!(events[0]["text"].as_str().unwrap().ends_with(" hello all"));
        listener.signal("TERM").unwrap();
        assert_eq!(listener.wait(WAIT).and_then(|s| s.code()), Some(0));
        let summary: Value = serde_json::from_str(&listener.stdout.rest(WAIT).pop().unwrap()).unwrap();
        assert_eq!(
            summary,
            serde_json::json!({"event": "summary", "received": 5, "senders": 1, "lost": 0, "duplicates": 0,
                               "reordered": 0, "restarts": 0, "malformed": 0, "untracked": 0, "kernel_drops": 0})
        );
    }
}

#[test]
fn without_so_broadcast_the_os_refuses_with_eacces() {
    // The fact the sender's SO_BROADCAST step exists for (FACTS.md): a socket that did not
    // ask for broadcast cannot send to a broadcast address.
    let plain = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let err = plain.send_to(b"x", "127.255.255.255:9").unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    plain.set_broadcast(true).unwrap();
    let listener = UdpSocket::bind("0.0.0.0:0").unwrap();
    listener.set_read_timeout(Some(WAIT)).unwrap();
    let port = listener.local_addr().unwrap().port();
    plain
        .send_to(b"now allowed", (Ipv4Addr::new(127, 255, 255, 255), port))
        .unwrap();
    assert_eq!(common::testkit::recv(&listener).unwrap().0, b"now allowed");
}

#[test]
fn a_feed_sends_readable_numbered_quotes() {
    let (mut listening, addr) = listener(&["--bind", "0.0.0.0:0", "--count", "3"]);
    let to = format!("127.255.255.255:{}", addr.port());
    let (code, _) = send(&["--to", &to, "-n", "3", "-i", "10ms", "--feed", "quotes"]);
    assert_eq!(code, Some(0));
    let lines: Vec<String> = (0..3).map(|_| listening.stdout.next(WAIT).unwrap()).collect();
    for (i, (line, symbol)) in lines.iter().zip(["AAPL", "MSFT", "GOOG"]).enumerate() {
        let payload = line.split("  ").nth(2).unwrap();
        let words: Vec<&str> = payload.split(' ').collect();
        assert_eq!(words[0], format!("seq={}", i + 1));
        assert!(words[1].starts_with("session=") && words[1].len() == 16, "{line}");
        assert_eq!(words[2], symbol);
        assert!(words[3].parse::<f64>().unwrap() > 0.0, "{line}");
    }
    assert_eq!(listening.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn ipv4_multicast_on_loopback_reaches_a_listener_that_joined() {
    let group = "239.255.77.1";
    let (mut joined, addr) = listener(&["--bind", "0.0.0.0:0", "--group", group, "--count", "3", "--json"]);
    let to = format!("{group}:{}", addr.port());
    let (code, stderr) = send(&["--to", &to, "-n", "3", "-i", "10ms", "multicast"]);
    assert_eq!(code, Some(0), "{stderr}");
    for seq in 1..=3 {
        let event: Value = serde_json::from_str(&joined.stdout.next(WAIT).unwrap()).unwrap();
        assert_eq!(event["seq"], seq);
    }
    assert_eq!(joined.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn usage_mistakes_are_one_line_and_exit_2() {
    for (args, needle) in [
        (&["send", "--interval", "1ms"][..], "the minimum is 10ms"),
        (&["send", "--interval", "0"], "the minimum is 10ms"),
        (&["send", "--to", "[::1]:7788"], "IPv6 has no broadcast"),
        (
            &["send", "--to", "[ff02::1]:7788"],
            "Linux loopback carries no IPv6 multicast",
        ),
        (&["send", "--feed", "weather"], "unknown feed 'weather'"),
        (
            &["send", "--to", "239.1.2.3:9", "--interface", "eth9"],
            "give the interface's IPv4 address",
        ),
        (&["listen", "--group", "10.0.0.1"], "not a multicast address"),
        (&["listen", "--group", "ff02::1234"], "needs --interface NAME"),
        (
            &["listen", "--group", "ff02::1234", "--interface", "no-such-if0"],
            "no such network interface",
        ),
    ] {
        let out = output(Command::new(crate::BIN).args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        let errors: Vec<&str> = stderr.lines().collect();
        assert_eq!(errors.len(), 1, "{args:?}: {stderr}");
        assert!(
            errors[0].starts_with("udp-broadcast: ") && errors[0].contains(needle),
            "{args:?}: {stderr}"
        );
    }
}

#[test]
fn no_subcommand_says_send_or_listen_in_one_line() {
    let out = output(&mut Command::new(crate::BIN));
    assert_eq!(out.status.code(), Some(2));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(
        stderr.trim_end(),
        "udp-broadcast: a subcommand is missing: send or listen (see --help)"
    );
}

#[test]
fn help_shows_an_example_per_mode_and_version_works() {
    common::testkit::assert_help_and_version(
        crate::BIN,
        "udp-broadcast",
        env!("CARGO_PKG_VERSION"),
        &[
            "udp-broadcast listen",
            "send --feed quotes",
            "--board",
            "--group 239.1.2.3",
        ],
    );
}
