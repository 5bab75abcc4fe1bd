use std::net::{SocketAddr, UdpSocket};

use common::output::OutputOptions;
use serde_json::Value;
use testkit::Lines;
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
    let from_one: Vec<(usize, &[u8])> = datagrams.iter().map(|d| (0, *d)).collect();
    let (summary, lines, _) = heard_from(&from_one, board, json);
    (summary, lines)
}

/// [`heard`], each datagram sent from the socket its number names (0, 1, …): the summary,
/// the printed lines, and each socket's address.
fn heard_from(
    datagrams: &[(usize, &[u8])],
    board: Option<Board>,
    json: bool,
) -> (ListenSummary, Vec<String>, Vec<SocketAddr>) {
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
    let senders: Vec<UdpSocket> = (0..=datagrams.iter().map(|(i, _)| *i).max().unwrap_or(0))
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    for (i, datagram) in datagrams {
        senders[*i].send_to(datagram, addr).unwrap();
    }
    let summary = listener.finish().unwrap();
    let addrs = senders.iter().map(|s| s.local_addr().unwrap()).collect();
    (summary, lines.rest(std::time::Duration::from_millis(50)), addrs)
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

/// Only what looks like the feed but is broken (`seq=x`) is malformed; anything else is
/// some other protocol, shown as it is.
#[test]
fn malformed_datagrams_are_counted_and_shown_never_fatal() {
    let (summary, lines) = heard(&[b"\xff\xfe", b"hello", b"seq=1 ok", b"seq=x"], None, false);
    let c = summary.counts;
    assert_eq!((c.received, c.malformed, c.foreign, c.senders), (4, 1, 2, 1));
    assert_eq!(lines.iter().filter(|l| l.contains('[')).count(), 1, "{lines:?}");
    assert!(lines[3].ends_with("  5 B  seq=x  [malformed]"), "{lines:?}");
    assert!(lines[0].ends_with("  2 B  \\xff\\xfe"), "{lines:?}");
}

/// A sensor's `T=23.0;H=41` and a binary frame are the common case for a listener: shown
/// plainly, their senders counted, while the feed beside them is still tracked for loss.
#[test]
fn foreign_datagrams_are_shown_plainly_and_their_senders_counted() {
    let (summary, lines, from) = heard_from(
        &[
            (0, b"T=23.0;H=41"),
            (1, &[0xaa, 0x55, 0x01, 0x17]),
            (2, b"seq=1 session=ab AAPL 1.00"),
            (0, b"T=23.5;H=40"),
            (2, b"seq=3 session=ab AAPL 1.10"),
        ],
        None,
        false,
    );
    let c = summary.counts;
    assert_eq!(
        (c.received, c.senders, c.foreign, c.malformed, c.lost),
        (5, 3, 3, 0, 1),
        "{summary:?}"
    );
    assert_eq!(lines[0], format!("{}  11 B  T=23.0;H=41", from[0]));
    assert_eq!(lines[1], format!("{}  4 B  \\xaaU\\x01\\x17", from[1]));
    assert_eq!(lines[3], format!("{}  11 B  T=23.5;H=40", from[0]));
    assert!(lines[4].ends_with("AAPL 1.10  [1 lost]"), "{lines:?}");
    assert_eq!(
        summary.to_text(),
        "udp-broadcast: received 5 messages from 3 senders: 1 lost, 0 duplicates, 0 reordered, 0 restarts, 0 malformed, 3 not in the seq= feed format (shown, not checked for loss)"
    );
    assert_eq!(summary.to_json()["foreign"], 3);
}

/// A board shows the latest payload of every sender that does not speak the feed format,
/// beside the feed's keys.
#[test]
fn the_board_shows_the_latest_payload_per_foreign_sender() {
    let datagrams: [(usize, &[u8]); 4] = [
        (0, b"T=23.0;H=41"),
        (1, &[0xaa, 0x55]),
        (2, b"seq=1 AAPL 1.00"),
        (0, b"T=23.5;H=40"),
    ];
    let (_, lines, from) = heard_from(&datagrams, Some(Board::Lines), false);
    assert_eq!(lines.len(), 4, "one line per update: {lines:?}");
    assert_eq!(lines[0], format!("{:<21} T=23.0;H=41", from[0]));
    assert_eq!(lines[1], format!("{:<21} \\xaaU", from[1]));
    assert!(lines[2].starts_with("AAPL       1.00"), "{lines:?}");
    assert_eq!(lines[3], format!("{:<21} T=23.5;H=40", from[0]));

    let (_, screens, from) = heard_from(&datagrams, Some(Board::Redraw), false);
    let last = screens.iter().rposition(|l| l.starts_with("\x1b[H\x1b[2J")).unwrap();
    let screen = &screens[last..];
    assert_eq!(
        screen[0],
        "\x1b[H\x1b[2J4 messages from 3 senders; 0 lost, 0 reordered, 0 duplicates"
    );
    assert_eq!(screen.len(), 5, "a header, a blank line and 3 rows: {screen:?}");
    assert!(screen[2].starts_with("AAPL       1.00"), "{screen:?}");
    // Senders' rows come after the keys, in address order.
    let mut rows = [
        (from[0], format!("{:<21} T=23.5;H=40", from[0])),
        (from[1], format!("{:<21} \\xaaU", from[1])),
    ];
    rows.sort();
    assert_eq!(screen[3..], [rows[0].1.clone(), rows[1].1.clone()], "{screen:?}");
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
    let (code, stderr) = crate::run(&["listen", "--bind", &format!("0.0.0.0:{port}")]);
    assert_eq!(code, Some(1));
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

/// Terminal injection: whatever a peer sends, the board prints no ESC, BEL, CR or NUL of
/// theirs (no window title, no OSC 52 clipboard write, no cleared screen, no fake line),
/// in line mode and in redraw mode, for feed keys, feed values and foreign payloads.
#[test]
fn nothing_a_peer_sends_reaches_the_terminal_as_a_control_code() {
    let hostile: [&[u8]; 5] = [
        b"seq=1 session=ab \x1b]0;PWNED\x07KEY \x1b]52;c;cHduZWQ=\x07 v",
        b"seq=2 session=ab K2 \x1b[2J\x1b[H cleared",
        b"seq=3 session=ab K3 ok\nAAPL       0.01                         seq=9 from 10.0.0.1:1\r\x00",
        b"seq=4 session=ab \x9b2J \xc2\x9b31m",
        b"\x1b]0;PWNED\x07\r\n\x00 foreign",
    ];
    let ours = "\x1b[H\x1b[2J";
    for board in [None, Some(Board::Lines), Some(Board::Redraw)] {
        let config = ListenConfig {
            bind: Some("127.0.0.1:0".parse().unwrap()),
            count: Some(hostile.len() as u64),
            board,
            ..Default::default()
        };
        let listener = start(config);
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let foreign = UdpSocket::bind("127.0.0.1:0").unwrap();
        for (i, datagram) in hostile.iter().enumerate() {
            let from = if i == 4 { &foreign } else { &sender };
            from.send_to(datagram, listener.addr).unwrap();
        }
        listener.finish().unwrap();
        let lines = listener.lines.rest(std::time::Duration::from_millis(50));
        for line in &lines {
            let theirs = line.strip_prefix(ours).unwrap_or(line);
            assert!(
                !theirs.contains(['\x1b', '\x07', '\r', '\0', '\u{9b}']),
                "{board:?}: {theirs:?}"
            );
        }
        // No fake line either: one line per datagram, or per screen line when redrawn.
        let expected = match board {
            None | Some(Board::Lines) => hostile.len(),
            // Screens after 1, 2, 3, 4, 5 datagrams: a header, a blank line and the rows.
            Some(Board::Redraw) => [1, 2, 3, 4, 5].iter().map(|rows| 2 + rows).sum(),
        };
        assert_eq!(lines.len(), expected, "{board:?}: {lines:#?}");
    }
}
