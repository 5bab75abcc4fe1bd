use std::net::{Ipv4Addr, UdpSocket};

use serde_json::Value;

use crate::{WAIT, listener, nobody, send};

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
        // Byte for byte, as a script reads it.
        assert_eq!(
            listener.stdout.rest(WAIT).pop().unwrap(),
            r#"{"duplicates":0,"event":"summary","kernel_drops":0,"lost":0,"malformed":0,"received":5,"reordered":0,"restarts":0,"senders":1,"untracked":0}"#
        );
    }
}

#[test]
fn without_so_broadcast_the_os_refuses_with_eacces() {
    // The fact the sender's SO_BROADCAST step exists for (FACTS.md): a socket that did not
    // ask for broadcast cannot send to a broadcast address.
    let listener = UdpSocket::bind("0.0.0.0:0").unwrap();
    listener.set_read_timeout(Some(WAIT)).unwrap();
    let port = listener.local_addr().unwrap().port();
    let plain = UdpSocket::bind((Ipv4Addr::LOCALHOST, 0)).unwrap();
    let err = plain
        .send_to(b"x", (Ipv4Addr::new(127, 255, 255, 255), port))
        .unwrap_err();
    assert_eq!(err.kind(), std::io::ErrorKind::PermissionDenied);
    plain.set_broadcast(true).unwrap();
    plain
        .send_to(b"now allowed", (Ipv4Addr::new(127, 255, 255, 255), port))
        .unwrap();
    assert_eq!(testkit::recv(&listener).unwrap().0, b"now allowed");
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
    // Every destination is a port this test holds, every listener binds port 0: a usage
    // check that regressed would still send nothing to anyone else.
    let port = nobody();
    let to = format!("127.255.255.255:{port}");
    let (v6, ff02, group) = (
        format!("[::1]:{port}"),
        format!("[ff02::1]:{port}"),
        format!("239.1.2.3:{port}"),
    );
    for (args, needle) in [
        (&["send", "--to", &to, "--interval", "1ms"][..], "the minimum is 10ms"),
        (&["send", "--to", &to, "--interval", "0"], "the minimum is 10ms"),
        (&["send", "--to", &v6], "IPv6 has no broadcast"),
        (&["send", "--to", &ff02], "Linux loopback carries no IPv6 multicast"),
        (&["send", "--to", &to, "--feed", "weather"], "unknown feed 'weather'"),
        (
            &["send", "--to", &group, "--interface", "eth9"],
            "give the interface's IPv4 address",
        ),
        (
            &["listen", "--bind", "0.0.0.0:0", "--group", "10.0.0.1"],
            "not a multicast address",
        ),
        (
            &["listen", "--bind", "[::]:0", "--group", "ff02::1234"],
            "needs --interface NAME",
        ),
        (
            &[
                "listen",
                "--bind",
                "[::]:0",
                "--group",
                "ff02::1234",
                "--interface",
                "no-such-if0",
            ],
            "no such network interface",
        ),
    ] {
        let (code, stderr) = crate::run(args);
        assert_eq!(code, Some(2), "{args:?}: {stderr}");
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
    let (code, stderr) = crate::run(&[]);
    assert_eq!(code, Some(2));
    assert_eq!(
        stderr.trim_end(),
        "udp-broadcast: a subcommand is missing: send or listen (see --help)"
    );
}

#[test]
fn help_shows_an_example_per_mode_and_version_works() {
    testkit::assert_help_and_version(
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

/// A bound socket on 0.0.0.0:0 that hears loopback broadcasts, and the `--to` for it.
fn hearer() -> (UdpSocket, String) {
    let socket = UdpSocket::bind("0.0.0.0:0").unwrap();
    socket.set_read_timeout(Some(WAIT)).unwrap();
    let to = format!("127.255.255.255:{}", socket.local_addr().unwrap().port());
    (socket, to)
}

#[test]
fn one_message_is_one_message_in_the_summary() {
    let (socket, to) = hearer();
    let (code, stderr) = send(&["--to", &to, "--count", "1", "hi"]);
    assert_eq!(code, Some(0), "{stderr}");
    let (bytes, _) = testkit::recv(&socket).unwrap();
    assert!(bytes.starts_with(b"seq=1 session=") && bytes.ends_with(b" hi"));
    let summary = stderr.lines().last().unwrap();
    assert!(
        summary.starts_with(&format!("udp-broadcast: sent 1 message to {to} (session ")),
        "{summary}"
    );
}

/// The header `seq=N session=ID ` and the rest of a datagram; the session is 8 hex digits.
fn split_header(datagram: &[u8], seq: u64) -> &[u8] {
    let head = format!("seq={seq} session=");
    assert!(datagram.starts_with(head.as_bytes()), "{datagram:02x?}");
    let rest = &datagram[head.len()..];
    assert!(
        rest[..8].iter().all(u8::is_ascii_hexdigit) && rest[8] == b' ',
        "{datagram:02x?}"
    );
    &rest[9..]
}

#[test]
fn the_typed_bytes_go_on_the_wire_in_every_encoding_after_the_header() {
    for (encoding, typed, wire) in [
        ("hex", "aa 55 01 17", &[0xaa, 0x55, 0x01, 0x17][..]),
        ("hex", "0xaa55:ff", &[0xaa, 0x55, 0xff]),
        ("gbk", "温度", &[0xce, 0xc2, 0xb6, 0xc8]),
        ("utf8", "温度", "温度".as_bytes()),
    ] {
        let (socket, to) = hearer();
        let (code, stderr) = send(&["--to", &to, "-n", "2", "-i", "10ms", "-e", encoding, typed]);
        assert_eq!(code, Some(0), "{encoding} {typed}: {stderr}");
        for seq in 1..=2 {
            let (bytes, _) = testkit::recv(&socket).unwrap();
            assert_eq!(split_header(&bytes, seq), wire, "{encoding} {typed}");
        }
    }
}

#[test]
fn raw_sends_the_typed_bytes_alone_as_a_sensor_would() {
    for (args, wire) in [
        (&["-e", "hex", "aa 55 01 17"][..], &[0xaa, 0x55, 0x01, 0x17][..]),
        (&["T=23.0;H=41"], b"T=23.0;H=41"),
        (&["-e", "gbk", "温度"], &[0xce, 0xc2, 0xb6, 0xc8]),
    ] {
        let (socket, to) = hearer();
        let mut all = vec!["send", "--to", &to, "-n", "2", "-i", "10ms", "--raw", "--json"];
        all.extend_from_slice(args);
        let mut process = crate::Process::spawn(crate::BIN, &all).unwrap();
        for _ in 0..2 {
            assert_eq!(testkit::recv(&socket).unwrap().0, wire, "{args:?}");
        }
        assert_eq!(process.wait(WAIT).and_then(|s| s.code()), Some(0), "{args:?}");
        let events: Vec<Value> = process
            .stdout
            .rest(WAIT)
            .iter()
            .map(|l| serde_json::from_str(l).unwrap())
            .collect();
        // No sequence number is shown, since none crossed the wire; nor a session.
        assert_eq!(events[0]["seq"], Value::Null, "{events:?}");
        assert_eq!(events[0]["hex"], common::codec::to_hex(wire).replace(' ', ""));
        assert_eq!(
            events[2],
            serde_json::json!({"event": "summary", "sent": 2, "to": to}),
            "{events:?}"
        );
    }
    let (socket, to) = hearer();
    let (code, stderr) = send(&["--to", &to, "-n", "1", "--raw", "--feed", "flights"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(testkit::recv(&socket).unwrap().0.starts_with(b"CA1501 PEK-SHA 08:30 "));
    assert!(stderr.ends_with("(raw: no seq=/session= header)"), "{stderr}");
}

#[test]
fn bad_hex_is_a_usage_error_before_anything_is_sent() {
    let (socket, to) = hearer();
    socket
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let (code, stderr) = send(&["--to", &to, "-e", "hex", "aa 5g"]);
    assert_eq!(code, Some(2), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("bad hex 'aa 5g': 'g' is not a hex digit"), "{stderr}");
    assert!(testkit::recv(&socket).is_err(), "nothing was sent");
}

/// `--interval` of 2^63 − 1 seconds: the wait after the first message must not overflow the
/// clock (it panicked: "overflow when adding duration to instant"); a stop ends it.
#[test]
fn an_interval_too_long_for_the_clock_waits_until_the_stop() {
    let (socket, to) = hearer();
    let config = udp_broadcast::SendConfig {
        to: to.parse().unwrap(),
        // What `--interval 9223372036854775807s` parsed to (before a parse-time bound).
        interval: std::time::Duration::from_secs(i64::MAX as u64),
        count: Some(2),
        body: udp_broadcast::Body::Text("slow".into()),
        interface: None,
        ttl: None,
        raw: true,
        output: Default::default(),
    };
    let (out, _lines) = testkit::capture(config.output);
    let stop = common::shutdown::Shutdown::new();
    let (done, result) = std::sync::mpsc::channel();
    let flag = stop.clone();
    std::thread::spawn(move || done.send(udp_broadcast::send(&config, &flag, &out)));
    assert_eq!(testkit::recv(&socket).unwrap().0, b"slow");
    stop.trigger();
    let summary = result.recv_timeout(WAIT).expect("send returns, without a panic");
    assert_eq!(summary.unwrap().sent, 1);
}

/// `listen --group` says which group it joined, on which interface (it said "listening for
/// broadcasts" and nothing of the group).
#[test]
fn a_listener_says_which_group_it_joined_on_which_interface() {
    let group = "239.255.77.2";
    let (mut joined, addr) = listener(&["--bind", "0.0.0.0:0", "--group", group, "--count", "1"]);
    let said = joined.stderr.next(WAIT).unwrap();
    assert_eq!(
        said,
        format!(
            "udp-broadcast: joined multicast group {group} on interface 127.0.0.1 (loopback: only senders on this machine reach it); listening on port {}, other listeners may share it",
            addr.port()
        )
    );
    let (code, stderr) = send(&["--to", &format!("{group}:{}", addr.port()), "-n", "1", "joined"]);
    assert_eq!(code, Some(0), "{stderr}");
    assert!(joined.stdout.next(WAIT).unwrap().ends_with(" joined"));
    assert_eq!(joined.wait(WAIT).and_then(|s| s.code()), Some(0));
}

/// A GBK feed (`send -e gbk`) is a feed to a GBK listener: tracked, shown in its encoding.
#[test]
fn a_gbk_feed_is_tracked_and_shown_by_a_gbk_listener() {
    let (mut gbk, addr) = listener(&["--bind", "0.0.0.0:0", "-e", "gbk", "--count", "2", "--json"]);
    let to = format!("127.255.255.255:{}", addr.port());
    let (code, stderr) = send(&["--to", &to, "-n", "2", "-i", "10ms", "-e", "gbk", "温度", "23"]);
    assert_eq!(code, Some(0), "{stderr}");
    for seq in 1..=2 {
        let event: Value = serde_json::from_str(&gbk.stdout.next(WAIT).unwrap()).unwrap();
        assert_eq!(event["seq"], seq, "{event}");
        assert!(event["text"].as_str().unwrap().ends_with(" 温度 23"), "{event}");
        assert!(event["hex"].as_str().unwrap().ends_with("cec2b6c8203233"), "{event}");
    }
    assert_eq!(gbk.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary: Value = serde_json::from_str(&gbk.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(
        (summary["malformed"].as_u64(), summary["lost"].as_u64()),
        (Some(0), Some(0))
    );
}

/// A group's interface is checked before the bind: a mistake is a usage error, whatever
/// holds the port (it bound first, and a taken port hid the real mistake).
#[test]
fn a_bad_interface_is_refused_before_anything_is_bound() {
    let taken = UdpSocket::bind("[::1]:0").unwrap();
    let bind = format!("[::1]:{}", taken.local_addr().unwrap().port());
    let (code, stderr) = crate::run(&[
        "listen",
        "--bind",
        &bind,
        "--group",
        "ff02::1234",
        "--interface",
        "no-such-if0",
    ]);
    assert_eq!(code, Some(2), "{stderr}");
    assert!(stderr.contains("no such network interface"), "{stderr}");
}
