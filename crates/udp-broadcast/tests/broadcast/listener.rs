use std::net::{SocketAddr, UdpSocket};

use common::output::OutputOptions;
use common::testkit::{self, Command, Lines, output};
use serde_json::Value;
use udp_broadcast::feed::Counts;
use udp_broadcast::listen::Board;
use udp_broadcast::{ListenConfig, ListenSummary};

use crate::{WAIT, listener};

/// `listen` on a thread; its printed lines, its result when it stops, and its address.
fn start(config: ListenConfig) -> testkit::InProcess<ListenSummary> {
    testkit::InProcess::start(config.output, move |stop, out| {
        udp_broadcast::listen(&config, stop, out)
    })
}

/// `listen` in-process on 127.0.0.1:0, fed crafted datagrams from one socket; stops after
/// `count` datagrams and returns the summary and the printed lines.
fn heard(datagrams: &[&[u8]], board: Option<Board>, json: bool) -> (ListenSummary, Vec<String>) {
    let output = OutputOptions {
        json,
        ..Default::default()
    };
    let config = ListenConfig {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        count: Some(datagrams.len() as u64),
        board,
        output,
        ..Default::default()
    };
    let listener = start(config);
    let (lines, addr) = (&listener.lines, listener.addr);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for datagram in datagrams {
        sender.send_to(datagram, addr).unwrap();
    }
    let summary = listener.finish().unwrap();
    (summary, lines.rest(std::time::Duration::from_millis(50)))
}

#[test]
fn seq_1_2_5_6_reports_2_lost() {
    let (summary, lines) = heard(&[b"seq=1 a", b"seq=2 b", b"seq=5 e", b"seq=6 f"], None, false);
    assert_eq!(
        summary.counts,
        Counts {
            received: 4,
            senders: 1,
            lost: 2,
            ..Default::default()
        }
    );
    assert!(lines[2].ends_with("  seq=5 e  [2 lost]"), "{lines:?}");
    assert!(!lines[3].contains('['), "{lines:?}");
}

#[test]
fn duplicates_reordering_and_a_restart_are_each_named() {
    let (summary, lines) = heard(
        &[
            b"seq=1 session=aa x",
            b"seq=3 session=aa x",
            b"seq=2 session=aa x",
            b"seq=2 session=aa x",
            b"seq=1 session=bb x",
        ],
        None,
        true,
    );
    let c = summary.counts;
    assert_eq!(
        (c.received, c.lost, c.reordered, c.duplicates, c.restarts),
        (5, 0, 1, 1, 1)
    );
    let notes: Vec<Value> = lines
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap()["note"].clone())
        .collect();
    assert_eq!(
        notes,
        [
            Value::Null,
            "1 lost".into(),
            "late: reordered".into(),
            "duplicate".into(),
            "sender restarted".into()
        ]
    );
}

#[test]
fn malformed_datagrams_are_counted_and_shown_never_fatal() {
    let (summary, lines) = heard(&[b"\xff\xfe", b"hello", b"seq=1 ok", b"seq=x"], None, false);
    let c = summary.counts;
    assert_eq!((c.received, c.malformed, c.senders), (4, 3, 1));
    assert_eq!(lines.iter().filter(|l| l.ends_with("[malformed]")).count(), 3);
    assert!(lines[0].contains("  2 B  \\xff\\xfe  [malformed]"), "{lines:?}");
}

#[test]
fn a_board_keeps_the_latest_value_per_key() {
    let (_, lines) = heard(
        &[b"seq=1 AAPL 1.00", b"seq=2 MSFT 2.00", b"seq=4 AAPL 1.50"],
        Some(Board::Lines),
        false,
    );
    assert_eq!(lines.len(), 3, "one plain line per update: {lines:?}");
    assert!(
        lines[0].starts_with("AAPL       1.00") && lines[2].starts_with("AAPL       1.50"),
        "{lines:?}"
    );
    assert!(lines[2].contains("seq=4 from 127.0.0.1:"));
}

#[test]
fn sigterm_ends_a_listener_with_its_summary() {
    let (mut process, _) = listener(&["--bind", "127.0.0.1:0"]);
    let asked = std::time::Instant::now();
    process.signal("TERM").unwrap();
    assert_eq!(process.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(
        asked.elapsed() < std::time::Duration::from_millis(250),
        "{:?}",
        asked.elapsed()
    );
    let summary = process.stderr.find(WAIT, |l| l.contains("received")).unwrap();
    assert_eq!(
        summary,
        "udp-broadcast: received 0 messages from 0 senders: 0 lost, 0 duplicates, 0 reordered, 0 restarts, 0 malformed"
    );
}

#[test]
fn with_injected_drops_the_listeners_lost_is_its_dropped() {
    let output = OutputOptions {
        json: true,
        ..Default::default()
    };
    let faults = common::faults::FaultConfig {
        drop: 0.3,
        seed: 5,
        ..Default::default()
    };
    let config = ListenConfig {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        output,
        faults,
        ..Default::default()
    };
    let listener = start(config);
    let (lines, addr) = (&listener.lines, listener.addr);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    for seq in 1..=100 {
        sender.send_to(format!("seq={seq} x").as_bytes(), addr).unwrap();
    }
    // Sequence numbers cannot show a drop before the first message heard (a listener may
    // join a running feed) nor after the last one heard; the test allows for the first and
    // keeps sending until the newest message is heard.
    let first: Value = serde_json::from_str(&lines.next(WAIT).unwrap()).unwrap();
    let first = first["seq"].as_u64().unwrap();
    let mut last = 100;
    let heard_last = |lines: &Lines, seq: u64| {
        lines.find(std::time::Duration::from_millis(300), |l| {
            serde_json::from_str::<Value>(l).is_ok_and(|v| v["seq"] == seq)
        })
    };
    while heard_last(lines, last).is_none() {
        assert!(last < 150, "heard nothing new for 50 messages");
        last += 1;
        sender.send_to(format!("seq={last} x").as_bytes(), addr).unwrap();
    }
    let summary = listener.stop();
    let dropped = summary.faults.unwrap().dropped;
    assert!(dropped > 10, "{summary:?}");
    assert_eq!(summary.counts.lost, dropped - (first - 1), "{summary:?}");
    assert_eq!(summary.counts.received + dropped, last, "{summary:?}");
}

#[test]
fn show_header_uses_the_broadcast_address_in_the_checksum() {
    let output = OutputOptions {
        json: true,
        ..Default::default()
    };
    let config = ListenConfig {
        bind: Some("0.0.0.0:0".parse().unwrap()),
        count: Some(1),
        output,
        show_header: true,
        ..Default::default()
    };
    let listener = start(config);
    let (lines, addr) = (&listener.lines, listener.addr);
    let port = addr.port();
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    sender.set_broadcast(true).unwrap();
    let to: SocketAddr = ([127, 255, 255, 255], port).into();
    sender.send_to(b"seq=1 hi", to).unwrap();
    listener.finish().unwrap();
    let event: Value = serde_json::from_str(&lines.next(WAIT).unwrap()).unwrap();
    let from = sender.local_addr().unwrap();
    let expected = common::header::checksum(from, to, b"seq=1 hi").unwrap();
    assert_eq!(
        event["udp_header"],
        serde_json::json!({"src_port": from.port(), "dst_port": port, "length": 16,
                           "checksum": format!("{expected:#06x}"), "ip_protocol": 17})
    );
    // With the listener's own address (0.0.0.0) instead, the checksum would differ.
    assert_ne!(
        common::header::checksum(from, ([127, 0, 0, 1], port).into(), b"seq=1 hi"),
        Some(expected)
    );
}

#[test]
fn the_board_holds_at_most_256_keys_whatever_senders_invent() {
    let config = ListenConfig {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        count: Some(300),
        board: Some(Board::Lines),
        ..Default::default()
    };
    let listener = start(config);
    let (lines, addr) = (&listener.lines, listener.addr);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    // In lock step (each line awaited), so no datagram is lost in a full receive queue.
    let mut shown = Vec::new();
    for i in 1..=300 {
        sender.send_to(format!("seq={i} K{i} {i}.00").as_bytes(), addr).unwrap();
        shown.push(lines.next(WAIT).unwrap());
    }
    assert_eq!(listener.finish().unwrap().counts.received, 300);
    assert!(shown[255].starts_with("K256 "), "{}", shown[255]);
    // Keys past the cap are not added: the board's newest row stays K256.
    assert!(shown[299].starts_with("K256 "), "{}", shown[299]);
    assert_eq!(udp_broadcast::listen::MAX_BOARD_KEYS, 256);
}

/// Bound to one unicast address, a listener hears no broadcast: it says so at start-up. A
/// port held by a socket that does not share it gets the server's hint.
#[test]
fn a_listener_on_one_address_says_it_hears_no_broadcasts_and_a_taken_port_gets_a_hint() {
    let (mut process, _) = listener(&["--bind", "127.0.0.1:0", "--count", "1"]);
    let warning = process
        .stderr
        .find(WAIT, |l| l.contains("hears no broadcasts"))
        .unwrap();
    assert!(warning.contains("use --bind 0.0.0.0:"), "{warning}");
    process.signal("TERM").unwrap();
    assert_eq!(process.wait(WAIT).and_then(|s| s.code()), Some(0));

    let taken = UdpSocket::bind("0.0.0.0:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let out = output(Command::new(crate::BIN).args(["listen", "--bind", &format!("0.0.0.0:{port}")]));
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is another server running? try another port, e.g. --bind 0.0.0.0:0"),
        "{stderr}"
    );
}

/// The listener verifies check bytes and saves what it hears, as the server does.
#[test]
fn the_listener_checks_and_saves_what_it_hears() {
    let path = std::env::temp_dir().join(format!("udp-listen-save-{}.bin", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let config = ListenConfig {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        count: Some(2),
        checksum: Some(common::checksum::Checksum::Xor8),
        save: Some(path.clone()),
        ..Default::default()
    };
    let listener = start(config);
    let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
    let good = common::checksum::Checksum::Xor8.append(b"seq=1 x".to_vec());
    sender.send_to(&good, listener.addr).unwrap();
    sender.send_to(b"seq=2 y!", listener.addr).unwrap();
    let summary = listener.finish().unwrap();
    assert_eq!(summary.checksum_bad, Some(1));
    let lines = listener.lines.rest(std::time::Duration::from_millis(50));
    assert!(
        lines[0].contains("[checksum ok]") && lines[1].contains("[checksum BAD: want "),
        "{lines:?}"
    );
    let mut both = good.clone();
    both.extend_from_slice(b"seq=2 y!");
    assert_eq!(std::fs::read(&path).unwrap(), both);
    std::fs::remove_file(&path).unwrap();
}
