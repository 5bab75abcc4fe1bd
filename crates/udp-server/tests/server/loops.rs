//! Echo loops (Loop DoS, CVE-2024-2169): one forged datagram sets two servers bouncing, or
//! a server answering itself. Each loop must stop within 1 s or 1,000 datagrams, and be
//! counted; ordinary floods must not be mistaken for one.

use std::net::{SocketAddr, UdpSocket};
use std::time::{Duration, Instant};

use common::codec::Encoding;
use common::loopguard::LOOP_REPEATS;
use common::output::OutputOptions;

use socket2::{Domain, Protocol, Socket, Type};
use udp_server::{Config, Reply, Summary, rules::Rules};

use crate::WAIT;

type Running = testkit::InProcess<Summary>;

fn start(config: Config) -> Running {
    testkit::InProcess::start(config.output, move |stop, out| udp_server::run(&config, stop, out))
}

fn on(bind: &str) -> Config {
    Config {
        bind: bind.parse().unwrap(),
        ..Default::default()
    }
}

fn rules(rules: &[&str]) -> Config {
    let inline: Vec<String> = rules.iter().map(|r| r.to_string()).collect();
    Config {
        rules: Rules::parse(&inline, &[], Encoding::Utf8, false).unwrap(),
        ..on("127.0.0.1:0")
    }
}

/// A raw socket to forge source addresses with; it needs CAP_NET_RAW (root), which CI has.
fn raw_socket() -> Option<Socket> {
    // Only root may forge a source: skipped (and said) elsewhere, never under CI.
    testkit::needs_root(
        "a raw socket to forge a source",
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))),
    )
}

/// Sends `payload` to `to` as if `from` had sent it: an IPv4 header we write (the kernel
/// fills in the ID, length and header checksum), then a UDP header claiming `from`.
fn forge(raw: &Socket, from: SocketAddr, to: SocketAddr, payload: &[u8]) {
    let (SocketAddr::V4(f), SocketAddr::V4(t)) = (from, to) else {
        panic!("IPv4 only: {from} -> {to}");
    };
    let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    packet.extend_from_slice(&f.ip().octets());
    packet.extend_from_slice(&t.ip().octets());
    let header = common::header::UdpHeader::new(from, to, payload).unwrap();
    packet.extend_from_slice(&header.to_bytes());
    packet.extend_from_slice(payload);
    raw.send_to(&packet, &to.into()).unwrap();
}

/// Reads a server's lines until it has printed nothing for 300 ms (or fails after [`WAIT`]):
/// the lines, and when the last one came.
fn until_quiet(server: &Running, since: Instant) -> (Vec<String>, Duration) {
    let mut lines = Vec::new();
    let mut last = Duration::ZERO;
    while let Some(line) = server.lines.next(Duration::from_millis(300)) {
        lines.push(line);
        last = since.elapsed();
        assert!(last < WAIT, "still printing after {last:?}: the loop goes on");
    }
    (lines, last)
}

/// Starts `a` and `b`, forges `first` from `a` to `b`, and checks the loop stops within 1 s
/// and 1,000 datagrams, found once, with one datagram refused. The two summaries.
fn bounce(a: Config, b: Config, first: &[u8]) -> Option<(Summary, Summary)> {
    let raw = raw_socket()?;
    let (a, b) = (start(a), start(b));
    let t0 = Instant::now();
    forge(&raw, a.addr, b.addr, first);
    let (lines_a, took_a) = until_quiet(&a, t0);
    let (lines_b, took_b) = until_quiet(&b, t0);
    let (sa, sb) = (a.stop(), b.stop());
    eprintln!(
        "loop stopped: A {} datagrams in {took_a:?}, B {} in {took_b:?}",
        sa.received, sb.received
    );
    assert!(took_a.max(took_b) < Duration::from_secs(1), "{took_a:?} {took_b:?}");
    for (s, lines) in [(&sa, &lines_a), (&sb, &lines_b)] {
        assert!(s.received <= 1000, "{s:?}");
        assert_eq!(s.received, lines.len() as u64, "one line per datagram");
    }
    // The loop really ran (it was not refused at once), and it was found exactly once: the
    // datagram that showed it went unanswered, and nothing came after it.
    assert!(sa.received + sb.received > u64::from(LOOP_REPEATS), "{sa:?} {sb:?}");
    assert_eq!(sa.loops_broken + sb.loops_broken, 1, "{sa:?} {sb:?}");
    assert_eq!((sa.refused + sb.refused), 1, "{sa:?} {sb:?}");
    assert_eq!(sa.replied + sb.replied, sa.received + sb.received - 1);
    let refused: Vec<&String> = lines_a
        .iter()
        .chain(&lines_b)
        .filter(|l| l.contains("refused"))
        .collect();
    assert_eq!(refused.len(), 1, "{refused:?}");
    assert!(refused[0].contains("echo loop"), "{}", refused[0]);
    Some((sa, sb))
}

#[test]
fn two_echo_servers_bounced_by_one_forged_datagram_stop_within_a_thousand() {
    let Some((a, b)) = bounce(on("127.0.0.1:0"), on("127.0.0.1:0"), b"bounce") else {
        return;
    };
    // B got the forged datagram, then each echo of its echo: B repeats first, and breaks it
    // (the first echo back is hashed whole to be sure, so repeats count from the second).
    let n = u64::from(LOOP_REPEATS);
    assert_eq!((b.received, b.replied, b.loops_broken), (n + 2, n + 1, 1));
    assert_eq!((a.received, a.replied, a.loops_broken), (n + 1, n + 1, 0));
}

#[test]
fn two_fixed_reply_servers_answering_ok_with_ok_stop() {
    let ok = || Config {
        reply: Reply::Text(b"OK".to_vec()),
        ..on("127.0.0.1:0")
    };
    bounce(ok(), ok(), b"hello");
}

#[test]
fn rules_that_answer_each_other_stop() {
    bounce(rules(&["PING=>PONG"]), rules(&["PONG=>PING"]), b"PONG");
}

#[cfg(target_os = "linux")]
#[test]
fn batched_servers_stop_too() {
    let batched = || Config {
        batch: Some(64),
        ..on("127.0.0.1:0")
    };
    bounce(batched(), batched(), b"bounce");
}

/// The same over the offloads: replies leave in GSO runs and arrive glued (GRO), and the
/// loop guard still sees every datagram on its own; 50 of one length in flight make runs.
#[cfg(target_os = "linux")]
#[test]
fn batched_servers_with_offloads_stop_too() {
    let offloaded = || Config {
        batch: Some(64),
        offloads: common::offload::Offloads::from_flags(true, false),
        ..on("127.0.0.1:0")
    };
    bounce(offloaded(), offloaded(), b"bounce");
    many_in_flight_stop(offloaded);
}

#[test]
fn a_loop_with_many_datagrams_in_flight_stops() {
    many_in_flight_stop(|| on("127.0.0.1:0"));
}

/// Two servers set bouncing 50 different forged datagrams at once: within 1 s and 1,000
/// datagrams each, every one printed, the loop broken at least once.
fn many_in_flight_stop(config: impl Fn() -> Config) {
    let Some(raw) = raw_socket() else { return };
    let (a, b) = (start(config()), start(config()));
    let t0 = Instant::now();
    for i in 0..50 {
        forge(&raw, a.addr, b.addr, format!("in flight {i:02}").as_bytes());
    }
    let (lines_a, took_a) = until_quiet(&a, t0);
    let (lines_b, took_b) = until_quiet(&b, t0);
    let (sa, sb) = (a.stop(), b.stop());
    assert!(took_a.max(took_b) < Duration::from_secs(1), "{took_a:?} {took_b:?}");
    assert!(sa.received <= 1000 && sb.received <= 1000, "{sa:?} {sb:?}");
    assert_eq!((lines_a.len() as u64, lines_b.len() as u64), (sa.received, sb.received));
    assert!(sa.loops_broken + sb.loops_broken >= 1, "{sa:?} {sb:?}");
}

#[test]
fn a_server_on_any_ipv6_address_does_not_answer_itself_in_v4_mapped_form() {
    let Some(raw) = raw_socket() else { return };
    // An IPv6 socket on [::] also receives IPv4, and sees 127.0.0.1 as ::ffff:127.0.0.1.
    let server = start(on("[::]:0"));
    let own = SocketAddr::from(([127, 0, 0, 1], server.addr.port()));
    forge(&raw, own, own, b"from yourself");
    let line = server.lines.next(WAIT).expect("the forged datagram arrives");
    assert!(line.starts_with(&format!("127.0.0.1:{}", server.addr.port())), "{line}");
    assert!(line.contains("refused"), "{line}");
    // Had it answered itself, its own reply would arrive next.
    assert_eq!(server.lines.next(Duration::from_millis(300)), None);
    let s = server.stop();
    assert_eq!((s.received, s.replied, s.refused, s.loops_broken), (1, 0, 1, 0));
}

#[test]
fn a_sink_that_never_answers_is_never_taken_for_a_loop() {
    let sink = start(Config {
        reply: Reply::None,
        ..on("127.0.0.1:0")
    });
    let peer = UdpSocket::bind("127.0.0.1:0").unwrap();
    // The same bytes 2 × LOOP_REPEATS times, 50 at a time, each 50 seen before the next.
    for _ in 0..2 * LOOP_REPEATS / 50 {
        for _ in 0..50 {
            peer.send_to(b"same", sink.addr).unwrap();
        }
        for _ in 0..50 {
            let line = sink.lines.next(WAIT).expect("every datagram is printed");
            assert!(!line.contains("refused"), "{line}");
        }
    }
    let s = sink.stop();
    assert_eq!(
        (s.received, s.refused, s.loops_broken, s.replied),
        (u64::from(2 * LOOP_REPEATS), 0, 0, 0)
    );
}

/// The bench's load tool's pattern: a 16-byte header (a run magic, a sequence number) and
/// filler, from one socket; ping-pong, then 64 in flight. Every one answered.
#[test]
fn numbered_ping_pong_and_windowed_floods_are_answered_in_full() {
    let server = start(Config {
        output: OutputOptions {
            quiet: true,
            ..OutputOptions::default()
        },
        ..on("127.0.0.1:0")
    });
    let client = testkit::local_socket(WAIT).unwrap();
    client.connect(server.addr).unwrap();
    let magic = 0x5544_505f_4c4f_4144u64.to_le_bytes();
    let datagram = |seq: u64, size: usize| {
        let mut d = magic.to_vec();
        d.extend_from_slice(&seq.to_le_bytes());
        d.resize(size, b'x');
        d
    };
    let mut buf = [0u8; 2048];
    let mut seq = 0;
    for size in [64, 1400] {
        // Ping-pong: the next one goes when the echo is back.
        for _ in 0..2000 {
            seq += 1;
            let d = datagram(seq, size);
            client.send(&d).unwrap();
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(&buf[..n], &d[..]);
        }
        // Flood: 64 in flight, refilled as echoes return.
        let first = seq + 1;
        for _ in 0..64 {
            seq += 1;
            client.send(&datagram(seq, size)).unwrap();
        }
        for _ in 0..5000 {
            let n = client.recv(&mut buf).unwrap();
            assert_eq!(n, size);
            seq += 1;
            client.send(&datagram(seq, size)).unwrap();
        }
        for _ in 0..64 {
            client.recv(&mut buf).unwrap();
        }
        assert_eq!(seq - first + 1, 5064);
    }
    let s = server.stop();
    assert_eq!((s.received, s.replied, s.refused, s.loops_broken), (seq, seq, 0, 0));
}

/// A device polled with the same command: 100 a second is a client, not a loop.
#[test]
fn the_same_command_a_hundred_times_a_second_is_answered_every_time() {
    let server = start(rules(&["READ temp=>23.5"]));
    let client = testkit::local_socket(WAIT).unwrap();
    let mut next = Instant::now();
    for _ in 0..300 {
        client.send_to(b"READ temp", server.addr).unwrap();
        assert_eq!(testkit::recv(&client).unwrap().0, b"23.5");
        next += Duration::from_millis(10);
        std::thread::sleep(next.saturating_duration_since(Instant::now())); // pacing: 100 a second
    }
    let s = server.stop();
    assert_eq!((s.replied, s.refused, s.loops_broken), (300, 0, 0));
}

/// The same bytes as fast as a peer can send them, each answered before the next: the
/// guard takes that for a loop (it cannot tell them apart), `--no-loop-guard` answers all.
#[test]
fn no_loop_guard_answers_a_peer_repeating_itself_fast() {
    let peer = testkit::local_socket(WAIT).unwrap();
    let mut buf = [0u8; 64];
    // Sends until the first unanswered repeat (or 2 × LOOP_REPEATS): (answers, summary).
    let mut ping_pong = |config: Config| {
        let server = start(Config {
            output: OutputOptions {
                quiet: true,
                ..OutputOptions::default()
            },
            ..config
        });
        let mut answers = 0;
        for _ in 0..2 * LOOP_REPEATS {
            peer.send_to(b"READ temp", server.addr).unwrap();
            let Ok((n, _)) = peer.recv_from(&mut buf) else { break };
            assert_eq!(&buf[..n], b"READ temp");
            answers += 1;
        }
        (answers, server.stop())
    };
    // Guarded, a refused repeat is simply not answered: a short deadline finds it.
    peer.set_read_timeout(Some(Duration::from_millis(300))).unwrap();
    let (answers, s) = ping_pong(on("127.0.0.1:0"));
    assert!(
        (LOOP_REPEATS - 1..2 * LOOP_REPEATS).contains(&answers),
        "{answers} answers"
    );
    assert_eq!((s.received, s.refused, s.loops_broken), (u64::from(answers) + 1, 1, 1));
    peer.set_read_timeout(Some(WAIT)).unwrap();
    let (answers, s) = ping_pong(Config {
        no_loop_guard: true,
        ..on("127.0.0.1:0")
    });
    assert_eq!(
        (answers, s.received, s.refused),
        (2 * LOOP_REPEATS, u64::from(2 * LOOP_REPEATS), 0)
    );
}
