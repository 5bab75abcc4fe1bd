use std::io::Cursor;
use std::time::Duration;

use common::output::OutputOptions;
use common::shutdown::Shutdown;
use testkit::Lines;
use udp_client::{Mode, Summary};

use crate::WAIT;

/// `udp_server::run` on a thread: its address, its output, and a way to stop it.
pub(crate) type Server = testkit::InProcess<udp_server::Summary>;

pub(crate) fn server(config: udp_server::Config) -> Server {
    testkit::InProcess::start(config.output, move |stop, out| udp_server::run(&config, stop, out))
}

fn local_server() -> Server {
    server(udp_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    })
}

fn client(config: udp_client::Config, mode: Mode, input: &'static [u8]) -> (common::Result<Summary>, Lines) {
    let (out, lines) = testkit::capture(config.output);
    let result = udp_client::run(&config, &mode, &Shutdown::new(), &out, Box::new(Cursor::new(input)));
    (result, lines)
}

#[test]
fn one_shot_echo() {
    let server = local_server();
    let config = udp_client::Config {
        target: server.addr,
        ..Default::default()
    };
    let (result, lines) = client(config, Mode::one_shot(b"hello"), b"");
    assert_eq!(
        result.unwrap(),
        Summary::OneShot {
            reply: true,
            retries: 0,
            short_by: None
        }
    );
    assert!(
        lines
            .next(WAIT)
            .unwrap()
            .starts_with(&format!("{}  5 B  hello  rtt ", server.addr))
    );
    let seen = server.lines.next(WAIT).unwrap();
    assert!(seen.ends_with("  5 B  hello"), "{seen}");
    let s = server.stop();
    assert_eq!((s.received, s.replied, s.bytes), (1, 1, 5));
}

#[test]
fn ping_counts_agree_on_both_sides() {
    let server = local_server();
    let config = udp_client::Config {
        target: server.addr,
        ..Default::default()
    };
    let (result, lines) = client(config, Mode::ping(20, Duration::from_millis(2)), b"");
    let Summary::Ping(ping) = result.unwrap() else {
        panic!("a ping summary")
    };
    assert_eq!(
        (ping.sent, ping.received, ping.lost, ping.duplicates, ping.reordered),
        (20, 20, 0, 0, 0)
    );
    assert_eq!(lines.rest(Duration::from_millis(50)).len(), 20);
    let s = server.stop();
    assert_eq!((s.received, s.replied, s.peers), (20, 20, 1));
}

#[test]
fn interactive_lines_are_datagrams_with_their_boundaries() {
    let server = local_server();
    let config = udp_client::Config {
        target: server.addr,
        ..Default::default()
    };
    // Three lines, three datagrams: UDP keeps message boundaries (TCP would not).
    let (result, lines) = client(config, Mode::Interactive, b"one\ntwo two\nthree three three\n");
    assert_eq!(result.unwrap(), Summary::Interactive { sent: 3, received: 3 });
    let shown: Vec<String> = lines.rest(Duration::from_millis(50));
    let lengths: Vec<&str> = shown.iter().map(|l| l.split("  ").nth(1).unwrap()).collect();
    assert_eq!(lengths, ["3 B", "7 B", "17 B"]);
    assert_eq!(server.stop().bytes, 27);
}

#[test]
fn a_server_with_the_chapters_buffer_cuts_what_the_client_sends() {
    let server = server(udp_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        buffer_size: 1024,
        ..Default::default()
    });
    let config = udp_client::Config {
        target: server.addr,
        ..Default::default()
    };
    let (result, lines) = client(config, Mode::one_shot(&[b'z'; 3000]), b"");
    result.unwrap();
    assert!(
        lines.next(WAIT).unwrap().contains("  1024 B  zzz"),
        "the echo holds 1024 of 3000 bytes"
    );
    assert_eq!(server.stop().truncated, 1);
}

#[test]
fn json_on_both_sides_agrees_on_peer_and_length() {
    let json = OutputOptions {
        json: true,
        ..Default::default()
    };
    let server = server(udp_server::Config {
        bind: "[::1]:0".parse().unwrap(),
        output: json,
        ..Default::default()
    });
    let config = udp_client::Config {
        target: server.addr,
        output: json,
        ..Default::default()
    };
    let (result, lines) = client(config, Mode::one_shot("你好".as_bytes()), b"");
    result.unwrap();
    let sent: serde_json::Value = serde_json::from_str(&lines.next(WAIT).unwrap()).unwrap();
    let reply: serde_json::Value = serde_json::from_str(&lines.next(WAIT).unwrap()).unwrap();
    let recv: serde_json::Value = serde_json::from_str(&server.lines.next(WAIT).unwrap()).unwrap();
    assert_eq!((sent["event"].as_str(), sent["len"].as_u64()), (Some("sent"), Some(6)));
    assert_eq!(
        (reply["event"].as_str(), reply["text"].as_str(), reply["hex"].as_str()),
        (Some("reply"), Some("你好"), Some("e4bda0e5a5bd"))
    );
    assert_eq!(reply["peer"], server.addr.to_string());
    assert_eq!(
        (recv["event"].as_str(), recv["len"].as_u64(), recv["hex"].as_str()),
        (Some("recv"), Some(6), Some("e4bda0e5a5bd"))
    );
    server.stop();
}
