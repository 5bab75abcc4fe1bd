use std::net::{SocketAddr, UdpSocket};
use std::thread;
use std::time::{Duration, Instant};

use common::Error;
use common::output::OutputOptions;
use common::shutdown::Shutdown;
use udp_server::{Config, Reply, Summary};

use crate::WAIT;

/// A server running on a thread, bound to 127.0.0.1:0 unless the config says otherwise.
type Running = testkit::InProcess<Summary>;

fn start(config: Config) -> Running {
    testkit::InProcess::start(config.output, move |stop, out| udp_server::run(&config, stop, out))
}

fn local() -> Config {
    Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        ..Default::default()
    }
}

fn client() -> UdpSocket {
    testkit::local_socket(WAIT).unwrap()
}

#[test]
fn echoes_each_peer_its_own_bytes_on_one_socket() {
    let server = start(local());
    let peers: Vec<UdpSocket> = (0..3).map(|_| client()).collect();
    for (i, peer) in peers.iter().enumerate() {
        peer.send_to(format!("from peer {i}").as_bytes(), server.addr).unwrap();
    }
    for (i, peer) in peers.iter().enumerate() {
        let (data, from) = testkit::recv(peer).unwrap();
        assert_eq!(data, format!("from peer {i}").as_bytes());
        assert_eq!(from, server.addr, "the reply comes from the server's address");
    }
    let summary = server.stop();
    assert_eq!(
        (summary.received, summary.replied, summary.peers, summary.bytes),
        (3, 3, 3, 33)
    );
}

#[test]
fn prints_one_line_per_datagram_with_peer_length_and_payload() {
    let server = start(local());
    let peer = client();
    peer.send_to(b"hello\nworld\xff", server.addr).unwrap();
    testkit::recv(&peer).unwrap();
    let line = server.lines.next(WAIT).unwrap();
    assert_eq!(
        line,
        format!("{}  12 B  hello\\nworld\\xff", peer.local_addr().unwrap())
    );
    server.stop();
}

#[test]
fn a_zero_byte_datagram_is_a_datagram() {
    let server = start(local());
    let peer = client();
    peer.send_to(b"", server.addr).unwrap();
    let (data, _) = testkit::recv(&peer).unwrap();
    assert!(data.is_empty());
    assert_eq!(server.stop().received, 1);
}

#[test]
fn the_largest_ipv4_datagram_is_echoed_whole() {
    let server = start(local());
    let peer = client();
    let big: Vec<u8> = (0..common::MAX_UDP_PAYLOAD_V4).map(|i| (i % 251) as u8).collect();
    peer.send_to(&big, server.addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, big);
    let summary = server.stop();
    assert_eq!((summary.bytes, summary.truncated), (65_507, 0));
}

#[test]
fn reply_none_answers_nothing() {
    let server = start(Config {
        reply: Reply::None,
        count: Some(1),
        ..local()
    });
    let peer = client();
    peer.send_to(b"anyone?", server.addr).unwrap();
    let summary = server.finish().unwrap();
    assert_eq!((summary.received, summary.replied), (1, 0));
    // The server has stopped and said it sent nothing; the wire agrees.
    peer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
    assert!(testkit::recv(&peer).is_err());
}

#[test]
fn a_fixed_reply_is_never_longer_than_its_request() {
    let server = start(Config {
        reply: Reply::Text(b"HELLO WORLD".to_vec()),
        ..local()
    });
    let peer = client();
    for (request, expected) in [(&b"abc"[..], &b"HEL"[..]), (b"twenty bytes long...", b"HELLO WORLD")] {
        peer.send_to(request, server.addr).unwrap();
        assert_eq!(testkit::recv(&peer).unwrap().0, expected);
    }
    assert_eq!(server.stop().replied, 2);
}

#[test]
fn a_small_buffer_truncates_like_recvfrom_1024_and_says_so() {
    let server = start(Config {
        buffer_size: 1024,
        ..local()
    });
    let peer = client();
    let long: Vec<u8> = (0..3000).map(|i| b'a' + (i % 26) as u8).collect();
    peer.send_to(&long, server.addr).unwrap();
    assert_eq!(
        testkit::recv(&peer).unwrap().0,
        &long[..1024],
        "the echo holds what recvfrom kept"
    );
    assert!(server.lines.next(WAIT).unwrap().contains("  1024 B (truncated)  abc"));
    peer.send_to(&long[..1024], server.addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0.len(), 1024);
    assert!(
        !server.lines.next(WAIT).unwrap().contains("truncated"),
        "exactly 1024 bytes fit"
    );
    let summary = server.stop();
    assert_eq!((summary.received, summary.truncated, summary.bytes), (2, 1, 2048));
}

#[test]
fn json_lines_report_truncation_and_every_field() {
    let output = OutputOptions {
        json: true,
        ..Default::default()
    };
    let server = start(Config {
        buffer_size: 4,
        output,
        ..local()
    });
    let peer = client();
    peer.send_to(b"hello", server.addr).unwrap();
    testkit::recv(&peer).unwrap();
    let event: serde_json::Value = serde_json::from_str(&server.lines.next(WAIT).unwrap()).unwrap();
    assert_eq!(
        event,
        serde_json::json!({"event": "recv", "peer": peer.local_addr().unwrap().to_string(), "len": 4,
                           "text": "hell", "hex": "68656c6c", "truncated": true})
    );
    server.stop();
}

#[test]
fn count_stops_after_n_datagrams() {
    let server = start(Config {
        count: Some(2),
        ..local()
    });
    let peer = client();
    for payload in [b"one", b"two"] {
        peer.send_to(payload, server.addr).unwrap();
        testkit::recv(&peer).unwrap();
    }
    let summary = server.finish().unwrap();
    assert_eq!((summary.received, summary.replied), (2, 2));
}

#[test]
fn a_stop_request_ends_the_loop_within_250_ms() {
    let server = start(local());
    let asked = Instant::now();
    server.stop();
    assert!(
        asked.elapsed() < Duration::from_millis(250),
        "took {:?}",
        asked.elapsed()
    );
}

#[test]
fn gbk_payloads_are_shown_as_chinese_text() {
    let output = OutputOptions {
        encoding: common::codec::Encoding::Gbk,
        ..Default::default()
    };
    let server = start(Config { output, ..local() });
    let peer = client();
    peer.send_to(&[0xc4, 0xe3, 0xba, 0xc3], server.addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, [0xc4, 0xe3, 0xba, 0xc3]);
    assert!(server.lines.next(WAIT).unwrap().ends_with("  4 B  你好"));
    server.stop();
}

#[test]
fn serves_ipv6() {
    let server = start(Config {
        bind: "[::1]:0".parse().unwrap(),
        ..Default::default()
    });
    assert!(server.addr.is_ipv6() && server.addr.port() != 0);
    let peer = UdpSocket::bind("[::1]:0").unwrap();
    peer.set_read_timeout(Some(WAIT)).unwrap();
    peer.send_to(b"over IPv6", server.addr).unwrap();
    let (data, from) = testkit::recv(&peer).unwrap();
    assert_eq!((data.as_slice(), from), (&b"over IPv6"[..], server.addr));
    server.stop();
}

#[test]
fn a_port_in_use_is_a_runtime_error_with_a_hint() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let config = Config {
        bind: taken.local_addr().unwrap(),
        ..Default::default()
    };
    let (out, _lines) = testkit::capture(OutputOptions::default());
    let err = udp_server::run(&config, &Shutdown::new(), &out).unwrap_err();
    assert!(matches!(err, Error::Runtime(_)));
    let text = err.to_string();
    assert!(
        text.starts_with(&format!("cannot bind {}: address already in use", config.bind)),
        "{text}"
    );
    assert!(text.contains("is another server running?"), "{text}");
}

#[test]
fn a_peer_that_went_away_does_not_stop_the_server() {
    let server = start(local());
    // This peer sends, then closes before the echo arrives: the echo earns an ICMP
    // "port unreachable", which Linux may report on the server's next receive.
    let gone = client();
    gone.send_to(b"bye", server.addr).unwrap();
    drop(gone);
    let peer = client();
    for i in 0..3 {
        peer.send_to(format!("still there {i}").as_bytes(), server.addr)
            .unwrap();
        assert_eq!(testkit::recv(&peer).unwrap().0, format!("still there {i}").as_bytes());
    }
    assert_eq!(server.stop().received, 4);
}

#[test]
fn a_delay_never_stops_other_peers_being_served() {
    // Every datagram waits 300 ms inside the simulated network; ten peers sending at once
    // must all be answered about 300 ms later, not one after another (3 s).
    let delay = Some((Duration::from_millis(300), Duration::from_millis(300)));
    let faults = common::faults::FaultConfig {
        delay,
        ..Default::default()
    };
    let server = start(Config { faults, ..local() });
    let peers: Vec<UdpSocket> = (0..10).map(|_| client()).collect();
    let sent = Instant::now();
    for (i, peer) in peers.iter().enumerate() {
        peer.send_to(format!("peer {i}").as_bytes(), server.addr).unwrap();
    }
    for (i, peer) in peers.iter().enumerate() {
        assert_eq!(testkit::recv(peer).unwrap().0, format!("peer {i}").as_bytes());
    }
    let took = sent.elapsed();
    assert!(took >= Duration::from_millis(300), "delayed: {took:?}");
    assert!(
        took < Duration::from_millis(1500),
        "served together, not in turn: {took:?}"
    );
    assert_eq!(server.stop().faults.unwrap().delayed, 10);
}

#[test]
fn batch_echoes_every_peer_its_own_bytes_and_reports_truncation() {
    let server = start(Config {
        batch: Some(8),
        buffer_size: 1024,
        ..local()
    });
    let peers: Vec<UdpSocket> = (0..20).map(|_| client()).collect();
    for round in 0..3 {
        for (i, peer) in peers.iter().enumerate() {
            peer.send_to(format!("round {round} peer {i}").as_bytes(), server.addr)
                .unwrap();
        }
    }
    for round in 0..3 {
        for (i, peer) in peers.iter().enumerate() {
            let (data, from) = testkit::recv(peer).unwrap();
            assert_eq!(
                (data, from),
                (format!("round {round} peer {i}").into_bytes(), server.addr)
            );
        }
    }
    let long = vec![b'z'; 3000];
    peers[0].send_to(&long, server.addr).unwrap();
    assert_eq!(testkit::recv(&peers[0]).unwrap().0, &long[..1024]);
    let truncated = server.lines.find(WAIT, |l| l.contains("(truncated)")).unwrap();
    assert!(truncated.contains("  1024 B (truncated)  zzz"), "{truncated}");
    let summary = server.stop();
    assert_eq!(
        (summary.received, summary.replied, summary.peers, summary.truncated),
        (61, 61, 20, 1)
    );
}

#[test]
fn batch_stops_at_the_count_and_on_request() {
    let server = start(Config {
        batch: Some(64),
        count: Some(5),
        ..local()
    });
    let peer = client();
    for i in 0..5 {
        peer.send_to(format!("{i}").as_bytes(), server.addr).unwrap();
    }
    let summary = server.finish().unwrap();
    assert_eq!((summary.received, summary.replied), (5, 5));

    let idle = start(Config {
        batch: Some(64),
        ..local()
    });
    let asked = Instant::now();
    idle.stop();
    assert!(asked.elapsed() < Duration::from_millis(250), "{:?}", asked.elapsed());
}

#[test]
fn batch_and_fault_injection_do_not_mix() {
    let faults = common::faults::FaultConfig {
        drop: 0.5,
        ..Default::default()
    };
    let config = Config {
        batch: Some(8),
        faults,
        ..local()
    };
    let (out, _lines) = testkit::capture(OutputOptions::default());
    let err = udp_server::run(&config, &Shutdown::new(), &out).unwrap_err();
    assert_eq!(err.exit_code(), 2);
    assert!(err.to_string().contains("--batch cannot be combined"), "{err}");
}

#[test]
fn no_reply_is_longer_than_its_request_and_each_request_gets_one() {
    let fixed = vec![b'R'; 100];
    // A rule that answers anything with the same 100 bytes: cut like the fixed reply.
    let rule = udp_server::rules::Rules::parse(
        &[format!("/(?s).*/=>{}", "R".repeat(100))],
        &[],
        common::codec::Encoding::Utf8,
        false,
    )
    .unwrap();
    for (reply, rules) in [
        (Reply::Echo, udp_server::rules::Rules::default()),
        (Reply::Text(fixed.clone()), udp_server::rules::Rules::default()),
        (Reply::Text(fixed.clone()), rule),
    ] {
        let server = start(Config {
            reply: reply.clone(),
            rules,
            ..local()
        });
        let peer = client();
        for len in [0usize, 1, 1472, common::MAX_UDP_PAYLOAD_V4] {
            let request = vec![b'q'; len];
            peer.send_to(&request, server.addr).unwrap();
            let (answer, _) = testkit::recv(&peer).unwrap();
            assert!(
                answer.len() <= len,
                "{reply:?}: {} bytes for a {len}-byte request",
                answer.len()
            );
            let expected = match &reply {
                Reply::Text(text) => &text[..len.min(text.len())],
                _ => &request[..],
            };
            assert_eq!(answer, expected);
        }
        // Exactly one reply each: nothing more is waiting.
        peer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        assert!(testkit::recv(&peer).is_err(), "{reply:?}: a second reply");
        assert_eq!(server.stop().replied, 4);
    }
}

/// The tests that bind well-known ports (7, 19, 1023) take turns: run in parallel, one
/// would find port 19 taken by the other.
static WELL_KNOWN_PORTS: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn well_known_source_ports_get_no_reply_and_are_counted() {
    let _alone = WELL_KNOWN_PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let server = start(local());
    let mut refused = 0;
    for port in [7u16, 19, 1023] {
        // Binding a port below 1024 needs root (CAP_NET_BIND_SERVICE); CI runs as root.
        let Some(peer) = testkit::needs_root(&format!("port {port}"), UdpSocket::bind(("127.0.0.1", port))) else {
            continue;
        };
        peer.set_read_timeout(Some(Duration::from_millis(200))).unwrap();
        peer.send_to(b"loop?", server.addr).unwrap();
        assert!(testkit::recv(&peer).is_err(), "port {port} got a reply");
        refused += 1;
    }
    // An ordinary client is still answered.
    let ok = client();
    ok.send_to(b"fine", server.addr).unwrap();
    assert_eq!(testkit::recv(&ok).unwrap().0, b"fine");
    let summary = server.stop();
    assert_eq!((summary.refused, summary.replied), (refused, 1));
}

/// A server bound to every address (0.0.0.0), and the port to reach it on loopback.
fn on_any_address(config: Config) -> (Running, SocketAddr) {
    let server = start(Config {
        bind: "0.0.0.0:0".parse().unwrap(),
        ..config
    });
    let addr = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    (server, addr)
}

#[test]
fn broadcast_and_multicast_datagrams_get_no_reply() {
    let (server, addr) = on_any_address(local());
    let peer = client();
    peer.set_broadcast(true).unwrap();
    // Loopback's broadcast address reaches every socket bound to 0.0.0.0 on this port.
    peer.send_to(b"to everyone", ("127.255.255.255", addr.port())).unwrap();
    // Linux also hands a 0.0.0.0 socket the multicast of groups any other socket joined
    // (IP_MULTICAST_ALL): join one on loopback, send to it with TTL 0 out of lo.
    let group = std::net::Ipv4Addr::new(239, 255, 70, 7);
    let member = UdpSocket::bind("127.0.0.1:0").unwrap();
    member.join_multicast_v4(&group, &"127.0.0.1".parse().unwrap()).unwrap();
    let sender = socket2::Socket::new(socket2::Domain::IPV4, socket2::Type::DGRAM, None).unwrap();
    sender.bind(&SocketAddr::from(([127, 0, 0, 1], 0)).into()).unwrap();
    sender.set_multicast_if_v4(&"127.0.0.1".parse().unwrap()).unwrap();
    sender.set_multicast_ttl_v4(0).unwrap();
    sender
        .send_to(b"to a group", &SocketAddr::from((group, addr.port())).into())
        .unwrap();
    // Both arrive and are printed as refused; then an ordinary datagram is answered.
    for text in ["to everyone", "to a group"] {
        let line = server.lines.find(WAIT, |l| l.contains(text)).expect(text);
        assert!(line.contains("refused"), "{line}");
    }
    peer.send_to(b"to you", addr).unwrap();
    let (answer, _) = testkit::recv(&peer).unwrap();
    assert_eq!(answer, b"to you", "the first reply is the unicast one");
    let summary = server.stop();
    assert_eq!((summary.received, summary.refused, summary.replied), (3, 2, 1));
}

#[test]
fn a_datagram_forged_from_the_servers_own_address_starts_no_loop() {
    use socket2::{Domain, Protocol, Socket, Type};
    // Forging a source address takes a raw socket, which needs CAP_NET_RAW (root); CI has it.
    let attempt = Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255)));
    let Some(raw) = testkit::needs_root("a forged source (raw socket, CAP_NET_RAW)", attempt) else {
        return;
    };
    let server = start(local());
    let payload = b"loop me";
    // IPv4 header (IPPROTO_RAW: we write it; the kernel fills in the ID, total length and
    // header checksum), then the UDP header claiming to come from the server itself.
    let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0, 127, 0, 0, 1, 127, 0, 0, 1];
    let header = common::header::UdpHeader::new(server.addr, server.addr, payload).unwrap();
    packet.extend_from_slice(&header.to_bytes());
    packet.extend_from_slice(payload);
    raw.send_to(&packet, &server.addr.into()).unwrap();

    let line = server
        .lines
        .find(WAIT, |l| l.contains("loop me"))
        .expect("the forged datagram arrives");
    assert!(
        line.starts_with(&server.addr.to_string()),
        "from the server's own address: {line}"
    );
    assert!(line.contains("refused"), "{line}");
    // Had the server answered itself, it would receive its own reply next; it must not.
    assert_eq!(server.lines.next(Duration::from_millis(300)), None);
    let summary = server.stop();
    assert_eq!((summary.received, summary.replied, summary.refused), (1, 0, 1));
}

#[test]
fn a_flooding_source_is_held_to_its_rate_and_a_quiet_one_is_not() {
    use udp_server::ratelimit::RateLimit;
    let limit = RateLimit {
        per_second: 50,
        burst: 50,
        exempt_loopback: false,
    };
    let server = start(Config {
        rate_limit: Some(limit),
        output: OutputOptions {
            quiet: true,
            ..OutputOptions::default()
        },
        ..local()
    });
    let addr = server.addr;

    // The flood: 10× the limit (500/s) for 2 s, from 127.0.0.1.
    let (flood, replies) = flood_for_two_seconds(addr);

    // Meanwhile a second source (127.0.0.2) asks 10 times a second: every request answered.
    let quiet = UdpSocket::bind("127.0.0.2:0").unwrap();
    quiet.set_read_timeout(Some(WAIT)).unwrap();
    for i in 0..20 {
        let request = format!("quiet {i}");
        quiet.send_to(request.as_bytes(), addr).unwrap();
        assert_eq!(testkit::recv(&quiet).unwrap().0, request.as_bytes());
        thread::sleep(Duration::from_millis(100)); // pacing: 10 a second
    }

    let flood_sent = flood.join().unwrap();
    let flood_replies = replies.join().unwrap();
    // limit × 2 s + burst.
    let most = u64::from(limit.per_second) * 2 + u64::from(limit.burst);
    assert!(flood_sent >= 900, "the flood ran at 10× the limit: {flood_sent} in 2 s");
    assert!(
        flood_replies <= most && flood_replies >= u64::from(limit.burst),
        "{flood_replies} replies (at most {most})"
    );
    eprintln!(
        "rate limit: {flood_replies} of {flood_sent} flood requests answered in 2 s (at most {most}); 20 of 20 quiet ones"
    );
    let summary = server.stop();
    assert_eq!(summary.received, flood_sent + 20);
    assert_eq!(summary.replied, flood_replies + 20);
    assert_eq!(summary.rate_limited, flood_sent - flood_replies);
}

/// The RFC 768 checksum worked out a second way, for checking the server's: one's
/// complement addition is addition modulo 0xffff, so sum every 16-bit word as a big
/// number, reduce once, complement.
fn checksum_mod_ffff(src: SocketAddr, dst: SocketAddr, payload: &[u8]) -> u16 {
    let (SocketAddr::V4(s), SocketAddr::V4(d)) = (src, dst) else {
        unreachable!()
    };
    let len = (payload.len() + 8) as u16;
    let mut bytes = Vec::new();
    bytes.extend(s.ip().octets());
    bytes.extend(d.ip().octets());
    bytes.extend([0, 17]);
    bytes.extend(len.to_be_bytes());
    bytes.extend(s.port().to_be_bytes());
    bytes.extend(d.port().to_be_bytes());
    bytes.extend(len.to_be_bytes());
    bytes.extend([0, 0]);
    bytes.extend(payload);
    if bytes.len() % 2 == 1 {
        bytes.push(0);
    }
    let total: u64 = bytes.chunks(2).map(|w| u64::from(w[0]) << 8 | u64::from(w[1])).sum();
    let folded = match total % 0xffff {
        0 => 0xffff,
        r => r,
    };
    match !(folded as u16) {
        0 => 0xffff,
        c => c,
    }
}

#[test]
fn show_header_gives_the_8_byte_header_with_length_and_checksum() {
    let (server, addr) = on_any_address(Config {
        show_header: true,
        output: OutputOptions {
            json: true,
            ..OutputOptions::default()
        },
        ..local()
    });
    let peer = client();
    peer.send_to(b"hello", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"hello");
    let line = server.lines.find(WAIT, |l| l.contains("udp_header")).unwrap();
    let event: serde_json::Value = serde_json::from_str(&line).unwrap();
    let h = &event["udp_header"];
    let src = peer.local_addr().unwrap();
    assert_eq!(h["src_port"], src.port());
    assert_eq!(h["dst_port"], addr.port());
    assert_eq!(h["length"], 13, "5 bytes of payload + the 8-byte header");
    assert_eq!(h["ip_protocol"], 17);
    let expected = checksum_mod_ffff(src, addr, b"hello");
    assert_eq!(h["checksum"], format!("{expected:#06x}"));
    server.stop();
}

/// 500 datagrams a second to `addr` for 2 s from one socket, and a thread counting the
/// replies (until 300 ms pass without one after the flood). Joined: (sent, replies).
fn flood_for_two_seconds(addr: SocketAddr) -> (thread::JoinHandle<u64>, thread::JoinHandle<u64>) {
    let flooder = client();
    flooder.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let replies = {
        let rx = flooder.try_clone().unwrap();
        thread::spawn(move || {
            let mut n = 0u64;
            let mut buf = [0u8; 64];
            let start = Instant::now();
            // Until 300 ms pass without a reply after the flood (every receive has a deadline).
            while rx.recv_from(&mut buf).is_ok() || start.elapsed() < Duration::from_millis(2500) {
                n += u64::from(buf.starts_with(b"flood"));
                buf = [0u8; 64];
                if start.elapsed() > Duration::from_secs(10) {
                    break;
                }
            }
            n
        })
    };
    let flood = thread::spawn(move || {
        // 500 datagrams a second on a fixed schedule, inside a 2-second window.
        let start = Instant::now();
        let mut sent = 0u64;
        while start.elapsed() < Duration::from_secs(2) {
            flooder.send_to(format!("flood {sent}").as_bytes(), addr).unwrap();
            sent += 1;
            let next = start + Duration::from_millis(2 * sent);
            thread::sleep(next.saturating_duration_since(Instant::now())); // pacing
        }
        sent
    });
    (flood, replies)
}

/// Bound to 0.0.0.0, the default rate limit (100/s) does not hold back this machine's own
/// loopback flood: 1000 requests in lock step, 1000 replies, nothing rate-limited.
#[test]
fn the_default_rate_limit_exempts_loopback_sources() {
    let bind: SocketAddr = "0.0.0.0:0".parse().unwrap();
    let server = start(Config {
        bind,
        rate_limit: udp_server::default_rate_limit(bind),
        output: OutputOptions {
            quiet: true,
            ..OutputOptions::default()
        },
        ..Config::default()
    });
    let peer = client();
    let to: SocketAddr = ([127, 0, 0, 1], server.addr.port()).into();
    for i in 0..1000u32 {
        peer.send_to(&i.to_be_bytes(), to).unwrap();
        assert_eq!(testkit::recv(&peer).unwrap().0, i.to_be_bytes());
    }
    let summary = server.stop();
    assert_eq!((summary.replied, summary.rate_limited), (1000, 0));
}

/// `--answer-broadcasts` (device discovery): a broadcast is answered, within the rate limit,
/// where by default it is refused.
#[test]
fn answer_broadcasts_answers_what_is_sent_to_everyone() {
    let (server, addr) = on_any_address(Config {
        answer_broadcasts: true,
        ..local()
    });
    let peer = client();
    peer.set_broadcast(true).unwrap();
    peer.send_to(b"who is there", ("127.255.255.255", addr.port())).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"who is there");
    // A source that must never be answered (a well-known port) stays refused.
    let _alone = WELL_KNOWN_PORTS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let refused = match testkit::needs_root("port 19", UdpSocket::bind("127.0.0.1:19")) {
        Some(chargen) => {
            chargen.set_broadcast(true).unwrap();
            chargen.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
            chargen.send_to(b"loop?", ("127.255.255.255", addr.port())).unwrap();
            assert!(
                testkit::recv(&chargen).is_err(),
                "no reply to port 19, broadcast or not"
            );
            1
        }
        None => 0,
    };
    let summary = server.stop();
    assert_eq!(
        (summary.received, summary.replied, summary.refused),
        (1 + refused, 1, refused)
    );
}
