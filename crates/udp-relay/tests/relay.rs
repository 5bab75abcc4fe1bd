//! The relay between real sockets, in-process (its `run` on a thread) and as a process,
//! asserting on what crossed the wire: bytes, addresses, counts.

use std::collections::HashSet;
use std::net::{SocketAddr, UdpSocket};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::thread;
use std::time::{Duration, Instant};

use common::faults::FaultConfig;
use common::output::OutputOptions;
use testkit::{InProcess, WAIT};
use udp_relay::{Config, FlowFaults, Summary};

// The crate root is this file: its modules sit in tests/relay/ so cargo does not take them
// for test binaries of their own.
#[cfg(target_os = "linux")]
#[path = "relay/offload.rs"]
mod offload;
#[path = "relay/pcap.rs"]
mod pcap;

/// Every datagram a test server received, with its sender.
type Seen = Arc<Mutex<Vec<(SocketAddr, Vec<u8>)>>>;

/// An echo server on a thread: every datagram back to its sender; it remembers who sent.
struct Echo {
    addr: SocketAddr,
    seen: Seen,
    received: Arc<AtomicU64>,
}

fn echo() -> Echo {
    let socket = testkit::local_socket(Duration::from_millis(50)).unwrap();
    let addr = socket.local_addr().unwrap();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let received = Arc::new(AtomicU64::new(0));
    let (s, r) = (seen.clone(), received.clone());
    // It ends with the test process; a bounded run keeps it from outliving a slow test.
    thread::spawn(move || {
        let mut buf = [0u8; 65_536];
        let end = Instant::now() + Duration::from_secs(60);
        while Instant::now() < end {
            if let Ok((n, peer)) = socket.recv_from(&mut buf) {
                r.fetch_add(1, Ordering::SeqCst);
                s.lock().unwrap().push((peer, buf[..n].to_vec()));
                let _ = socket.send_to(&buf[..n], peer);
            }
        }
    });
    Echo { addr, seen, received }
}

fn relay(config: Config) -> InProcess<Summary> {
    relay_with(config, OutputOptions::default())
}

fn relay_with(config: Config, output: OutputOptions) -> InProcess<Summary> {
    let config = Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        output,
        ..config
    };
    InProcess::start(output, move |stop, out| udp_relay::run(&config, stop, out))
}

fn to(server: &Echo) -> Config {
    Config {
        to: server.addr,
        ..Config::default()
    }
}

/// Sends `data` and waits (with a deadline) for what comes back.
fn ask(client: &UdpSocket, relay: SocketAddr, data: &[u8]) -> Option<(Vec<u8>, SocketAddr)> {
    client.send_to(data, relay).unwrap();
    testkit::recv(client).ok()
}

fn quick_socket() -> UdpSocket {
    testkit::local_socket(Duration::from_millis(300)).unwrap()
}

#[test]
fn a_datagram_goes_up_and_its_reply_comes_back_from_the_relay() {
    let server = echo();
    let r = relay(to(&server));
    let client = testkit::local_socket(WAIT).unwrap();
    assert_eq!(ask(&client, r.addr, b"hello"), Some((b"hello".to_vec(), r.addr)));
    let (upstream, data) = server.seen.lock().unwrap()[0].clone();
    assert_eq!(data, b"hello");
    assert_ne!(
        upstream,
        client.local_addr().unwrap(),
        "the server sees the relay's socket"
    );
    let s = r.stop();
    assert_eq!((s.up.forwarded, s.down.forwarded, s.clients), (1, 1, 1));
    assert_eq!((s.up.bytes_in, s.up.bytes_out), (5, 5));
}

#[test]
fn sixty_four_clients_at_once_each_get_their_own_replies() {
    let server = echo();
    let r = relay(to(&server));
    let clients: Vec<UdpSocket> = (0..64).map(|_| testkit::local_socket(WAIT).unwrap()).collect();
    for round in 0..3 {
        for (i, c) in clients.iter().enumerate() {
            c.send_to(format!("client {i} round {round}").as_bytes(), r.addr)
                .unwrap();
        }
        for (i, c) in clients.iter().enumerate() {
            let (data, from) = testkit::recv(c).unwrap();
            assert_eq!(data, format!("client {i} round {round}").as_bytes());
            assert_eq!(from, r.addr);
        }
    }
    let upstreams: HashSet<SocketAddr> = server.seen.lock().unwrap().iter().map(|(p, _)| *p).collect();
    assert_eq!(upstreams.len(), 64, "one upstream socket per client");
    let s = r.stop();
    assert_eq!(
        (s.clients, s.peak_clients, s.up.forwarded, s.down.forwarded),
        (64, 64, 192, 192)
    );
}

/// Three clients send interleaved bursts (a, b, c, a, b, c…) faster than the relay reads:
/// one read takes datagrams of several clients at once (recvmmsg), and each must still go up
/// on its own client's socket, in that client's order, and each reply reach its own client.
#[test]
fn interleaved_bursts_keep_each_clients_socket_and_order() {
    let server = echo();
    let r = relay(to(&server));
    let clients: Vec<UdpSocket> = (0..3).map(|_| testkit::local_socket(WAIT).unwrap()).collect();
    for c in &clients {
        assert!(ask(c, r.addr, b"hello").is_some(), "mapped before the burst");
    }
    let text = |i: usize, n: usize| format!("client {i} datagram {n}").into_bytes();
    for n in 0..50 {
        for (i, c) in clients.iter().enumerate() {
            c.send_to(&text(i, n), r.addr).unwrap();
        }
    }
    for (i, c) in clients.iter().enumerate() {
        for n in 0..50 {
            assert_eq!(testkit::recv(c).unwrap(), (text(i, n), r.addr));
        }
    }
    let seen = server.seen.lock().unwrap().clone();
    let mut upstreams = HashSet::new();
    for i in 0..3 {
        let theirs: Vec<&(SocketAddr, Vec<u8>)> = seen
            .iter()
            .filter(|(_, d)| d.starts_with(format!("client {i} ").as_bytes()))
            .collect();
        let data: Vec<Vec<u8>> = theirs.iter().map(|(_, d)| d.clone()).collect();
        assert_eq!(
            data,
            (0..50).map(|n| text(i, n)).collect::<Vec<_>>(),
            "client {i}'s order"
        );
        assert!(theirs.iter().all(|(p, _)| *p == theirs[0].0), "client {i}: one socket");
        upstreams.insert(theirs[0].0);
    }
    assert_eq!(upstreams.len(), 3, "a socket per client");
    let s = r.stop();
    assert_eq!((s.up.forwarded, s.down.forwarded, s.up.unsent), (153, 153, 0));
}

#[test]
fn an_idle_client_gets_a_new_upstream_socket() {
    let server = echo();
    let r = relay(Config {
        idle: Duration::from_millis(200),
        ..to(&server)
    });
    let client = testkit::local_socket(WAIT).unwrap();
    assert!(ask(&client, r.addr, b"first").is_some());
    let first = server.seen.lock().unwrap()[0].0;
    // Quiet for longer than --idle, then asked again: the old mapping is gone, and the
    // server sees another source port. Repeated (within the deadline) on a slow machine.
    let deadline = Instant::now() + WAIT;
    let mut second = first;
    while second == first && Instant::now() < deadline {
        thread::sleep(Duration::from_millis(500));
        assert!(ask(&client, r.addr, b"again").is_some());
        second = server.seen.lock().unwrap().last().unwrap().0;
    }
    assert_ne!(second, first, "a new upstream socket after --idle");
    let s = r.stop();
    assert!(s.expired >= 1 && s.clients >= 2, "{s:?}");
}

#[test]
fn past_max_clients_new_clients_are_refused_and_counted() {
    let server = echo();
    let r = relay(Config {
        max_clients: 3,
        ..to(&server)
    });
    // The first three are answered (a full deadline); the last two must not be (a short one).
    let clients: Vec<UdpSocket> = (0..5)
        .map(|i| {
            if i < 3 {
                testkit::local_socket(WAIT).unwrap()
            } else {
                quick_socket()
            }
        })
        .collect();
    let answered: Vec<bool> = clients.iter().map(|c| ask(c, r.addr, b"hi").is_some()).collect();
    assert_eq!(answered, [true, true, true, false, false]);
    let s = r.stop();
    assert_eq!((s.clients, s.full, server.received.load(Ordering::SeqCst)), (3, 2, 3));
}

/// A flood from 200 source ports (and a barrier client) through a relay that keeps 50: the
/// table, and so memory, stays at 50 clients; every other datagram is refused and counted.
#[test]
fn a_flood_from_200_ports_stays_within_max_clients() {
    let server = echo();
    let r = relay_with(
        Config {
            max_clients: 50,
            ..to(&server)
        },
        OutputOptions {
            quiet: true,
            ..Default::default()
        },
    );
    let senders: Vec<UdpSocket> = (0..200).map(|_| quick_socket()).collect();
    let barrier = testkit::local_socket(WAIT).unwrap();
    // The barrier is the first client, so it is mapped; its reply means every datagram
    // sent before it was handled (the socket's queue is first in, first out). Between
    // barriers at most 40 datagrams wait, fewer than the kernel's queue holds.
    let mut barriers = 0;
    for round in 0..5 {
        for chunk in senders.chunks(40) {
            assert!(ask(&barrier, r.addr, b"barrier").is_some());
            barriers += 1;
            for s in chunk {
                s.send_to(format!("flood {round}").as_bytes(), r.addr).unwrap();
            }
        }
    }
    assert!(ask(&barrier, r.addr, b"barrier").is_some());
    barriers += 1;
    let s = r.stop();
    // The barrier and the first 49 senders are mapped; the other 151 are refused, each round.
    assert_eq!((s.clients, s.peak_clients), (50, 50), "{s:?}");
    assert_eq!(s.full, 151 * 5, "{s:?}");
    assert_eq!(s.up.forwarded, barriers + 49 * 5);
    assert_eq!(server.received.load(Ordering::SeqCst), s.up.forwarded);
}

/// Sends `n` numbered requests one at a time (each waits for its own reply or a deadline;
/// a reply to an earlier one is skipped), so the same seed meets the same traffic in the
/// same order.
fn numbered(relay: SocketAddr, n: u32) -> Vec<u32> {
    let client = testkit::local_socket(Duration::from_millis(500)).unwrap();
    (0..n)
        .filter(|i| {
            let request = format!("req {i}");
            client.send_to(request.as_bytes(), relay).unwrap();
            std::iter::from_fn(|| testkit::recv(&client).ok()).any(|(reply, _)| reply == request.as_bytes())
        })
        .collect()
}

#[test]
fn seeded_faults_repeat_and_their_counts_match_both_ends() {
    let lossy = |seed| FlowFaults {
        faults: FaultConfig {
            drop: 0.2,
            seed,
            ..Default::default()
        },
        corrupt: 0.0,
        truncate: None,
    };
    let mut runs = Vec::new();
    for _ in 0..2 {
        let server = echo();
        let r = relay(Config {
            up: lossy(7),
            down: lossy(8),
            ..to(&server)
        });
        let answered = numbered(r.addr, 40);
        let s = r.stop();
        // What the server counted is what went up; what the client got is what came down.
        assert_eq!(server.received.load(Ordering::SeqCst), s.up.forwarded);
        assert_eq!(answered.len() as u64, s.down.forwarded);
        assert_eq!(s.up.received, 40);
        assert_eq!(40 - answered.len() as u64, s.up.dropped + s.down.dropped);
        assert!(s.up.dropped > 0 && s.down.dropped > 0, "{s:?}");
        runs.push((answered, s.up, s.down));
    }
    assert_eq!(runs[0], runs[1], "the same seed and traffic, the same faults");
}

#[test]
fn truncate_cuts_and_corrupt_flips_one_byte_per_direction() {
    let server = echo();
    let r = relay(Config {
        up: FlowFaults {
            truncate: Some(4),
            ..Default::default()
        },
        down: FlowFaults {
            corrupt: 1.0,
            ..Default::default()
        },
        ..to(&server)
    });
    let client = testkit::local_socket(WAIT).unwrap();
    let (back, _) = ask(&client, r.addr, b"abcdefgh").unwrap();
    assert_eq!(server.seen.lock().unwrap()[0].1, b"abcd", "cut going up");
    let flipped: Vec<usize> = (0..4).filter(|&i| back[i] != b"abcd"[i]).collect();
    assert_eq!(flipped.len(), 1, "one byte flipped coming down: {back:?}");
    assert_eq!(back[flipped[0]], b"abcd"[flipped[0]] ^ 0xff);
    let s = r.stop();
    assert_eq!((s.up.truncated, s.down.corrupted, s.up.corrupted), (1, 1, 0));
    assert!(s.up.bytes_out <= s.up.bytes_in && s.down.bytes_out <= s.down.bytes_in);
}

#[test]
fn clients_outside_allow_are_not_relayed() {
    let server = echo();
    let r = relay(Config {
        allow: vec!["10.0.0.0/8".parse().unwrap()],
        ..to(&server)
    });
    assert_eq!(ask(&quick_socket(), r.addr, b"let me in"), None);
    let s = r.stop();
    assert_eq!(
        (s.not_allowed, s.clients, server.received.load(Ordering::SeqCst)),
        (1, 0, 0)
    );
}

#[test]
fn a_relay_pointed_at_itself_is_refused_after_bind_too() {
    // On 0.0.0.0 with port 0 the port is known only after bind; a free port stands for it.
    let port = testkit::free_port().port();
    let config = Config {
        bind: format!("0.0.0.0:{port}").parse().unwrap(),
        to: format!("127.0.0.1:{port}").parse().unwrap(),
        ..Config::default()
    };
    let (out, _lines) = testkit::capture(OutputOptions::default());
    let err = udp_relay::run(&config, &common::shutdown::Shutdown::new(), &out).unwrap_err();
    assert_eq!(err.exit_code(), 2, "{err}");
    assert!(err.to_string().contains("own address"), "{err}");
}

/// Two relays pointed at each other pass one datagram round and round, each hop a new
/// client with the same bytes; they notice within 1,000 datagrams, and stop.
#[test]
fn two_relays_in_a_ring_stop_the_loop() {
    let quiet = OutputOptions {
        quiet: true,
        ..Default::default()
    };
    let a_addr = testkit::free_port();
    // B prints a line per datagram: the loop has stopped when no line comes for a while.
    let b = relay(Config {
        to: a_addr,
        ..Config::default()
    });
    let a_config = Config {
        bind: a_addr,
        to: b.addr,
        output: quiet,
        ..Config::default()
    };
    let a = InProcess::start(quiet, move |stop, out| udp_relay::run(&a_config, stop, out));
    assert_eq!(a.addr, a_addr);
    testkit::local_socket(WAIT)
        .unwrap()
        .send_to(b"round and round", a.addr)
        .unwrap();
    let deadline = Instant::now() + WAIT;
    let mut lines = 0;
    while Instant::now() < deadline && b.lines.next(Duration::from_millis(500)).is_some() {
        lines += 1;
    }
    assert!(Instant::now() < deadline, "still looping after {lines} lines");
    let (a, b) = (a.stop(), b.stop());
    assert!(a.looped + b.looped >= 1, "a: {a:?}\nb: {b:?}");
    let hops = a.up.forwarded + b.up.forwarded;
    assert!((2..=1000).contains(&hops), "a: {a:?}\nb: {b:?}");
}

/// The upstream socket takes the server's address family: IPv4 clients reach an IPv6
/// server (and the reply comes back from the relay's IPv4 address).
#[test]
fn ipv4_clients_reach_an_ipv6_server() {
    let Ok(server) = UdpSocket::bind("[::1]:0") else {
        eprintln!("SKIPPED ipv4_clients_reach_an_ipv6_server: this machine has no ::1");
        return;
    };
    server.set_read_timeout(Some(WAIT)).unwrap();
    let r = relay(Config {
        to: server.local_addr().unwrap(),
        ..Config::default()
    });
    let client = testkit::local_socket(WAIT).unwrap();
    client.send_to(b"v4 to v6", r.addr).unwrap();
    let (data, upstream) = testkit::recv(&server).unwrap();
    assert_eq!((data.as_slice(), upstream.is_ipv6()), (&b"v4 to v6"[..], true));
    server.send_to(&data, upstream).unwrap();
    assert_eq!(testkit::recv(&client).unwrap(), (b"v4 to v6".to_vec(), r.addr));
    assert_eq!(r.stop().down.forwarded, 1);
}

#[test]
fn a_stop_ends_the_relay_within_250_ms() {
    let server = echo();
    let r = relay(to(&server));
    let shutdown = r.shutdown();
    let asked = Instant::now();
    shutdown.trigger();
    let _ = r.stop();
    assert!(asked.elapsed() < Duration::from_millis(250), "{:?}", asked.elapsed());
}

/// The binary as a user runs it.
mod process {
    use super::*;
    use testkit::Process;

    const BIN: &str = env!("CARGO_BIN_EXE_udp-relay");

    fn start(server: SocketAddr, args: &[&str]) -> (Process, SocketAddr) {
        let to = server.to_string();
        let mut all = vec!["--bind", "127.0.0.1:0", "--to", &to];
        all.extend_from_slice(args);
        let p = Process::spawn(BIN, &all).unwrap();
        let addr = p.listening(WAIT).expect("a listening line first");
        (p, addr)
    }

    #[test]
    fn help_and_version() {
        testkit::assert_help_and_version(
            BIN,
            "udp-relay",
            env!("CARGO_PKG_VERSION"),
            &[
                "--up-drop 0.3",
                "--allow 192.168.1.0/24",
                "Lose each datagram going up (client to server)",
                "Cut every datagram going down (server to client)",
            ],
        );
    }

    #[test]
    fn lines_show_both_directions_and_sigint_prints_the_summary() {
        let server = echo();
        let (mut p, addr) = start(server.addr, &[]);
        let client = testkit::local_socket(WAIT).unwrap();
        assert!(ask(&client, addr, b"hello").is_some());
        let me = client.local_addr().unwrap();
        let up = p.stdout.next(WAIT).unwrap();
        let down = p.stdout.next(WAIT).unwrap();
        assert!(
            up.ends_with(&format!("  > {me} -> {}  5 B  hello", server.addr)),
            "{up}"
        );
        assert!(
            down.ends_with(&format!("  < {me} <- {}  5 B  hello", server.addr)),
            "{down}"
        );
        p.signal("INT").unwrap();
        assert_eq!(p.wait(WAIT).and_then(|s| s.code()), Some(0));
        let summary = p.stderr.find(WAIT, |l| l.contains("up (clients to server)")).unwrap();
        assert!(summary.contains("received 1 (5 B), forwarded 1 (5 B)"), "{summary}");
    }

    #[test]
    fn json_events_carry_the_direction_and_saves_keep_each_direction() {
        let dir = std::env::temp_dir().join(format!("udp-relay-save-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        let (up, down) = (dir.join("up.bin"), dir.join("down.bin"));
        let (up_s, down_s) = (up.to_string_lossy().into_owned(), down.to_string_lossy().into_owned());
        let server = echo();
        let (mut p, addr) = start(
            server.addr,
            &[
                "--json",
                "--down-truncate",
                "2",
                "--save-up",
                &up_s,
                "--save-down",
                &down_s,
            ],
        );
        let client = testkit::local_socket(WAIT).unwrap();
        assert_eq!(ask(&client, addr, b"abc").map(|r| r.0), Some(b"ab".to_vec()));
        let event = |line: String| serde_json::from_str::<serde_json::Value>(&line).unwrap();
        let first = event(p.stdout.next(WAIT).unwrap());
        let second = event(p.stdout.next(WAIT).unwrap());
        assert_eq!(
            (
                first["event"].as_str(),
                first["direction"].as_str(),
                first["len"].as_u64()
            ),
            (Some("relay"), Some("up"), Some(3))
        );
        assert_eq!(
            (
                second["direction"].as_str(),
                second["hex"].as_str(),
                second["note"].as_str()
            ),
            (Some("down"), Some("6162"), Some("truncated"))
        );
        p.signal("TERM").unwrap();
        assert_eq!(p.wait(WAIT).and_then(|s| s.code()), Some(0));
        let summary = event(p.stdout.find(WAIT, |l| l.contains("summary")).unwrap());
        assert_eq!(
            (
                summary["up"]["forwarded"].as_u64(),
                summary["down"]["truncated"].as_u64()
            ),
            (Some(1), Some(1))
        );
        assert_eq!(
            (summary["saved_up"].as_u64(), summary["saved_down"].as_u64()),
            (Some(3), Some(2))
        );
        assert_eq!(
            (std::fs::read(&up).unwrap(), std::fs::read(&down).unwrap()),
            (b"abc".to_vec(), b"ab".to_vec())
        );
        std::fs::remove_dir_all(&dir).unwrap();
    }

    /// GBK shown as text, the local time first with --timestamp, --checksum verifying what
    /// leaves; then a byte flipped on the way up is BAD (and the echo carries it back).
    #[test]
    fn gbk_timestamps_and_checksums_on_the_lines() {
        let server = echo();
        let client = testkit::local_socket(WAIT).unwrap();
        // "你好" in GBK, then its sum8 check byte.
        let gbk = [0xc4, 0xe3, 0xba, 0xc3];
        let datagram = [&gbk[..], &[gbk.iter().fold(0u8, |a, b| a.wrapping_add(*b))]].concat();
        let (mut p, addr) = start(server.addr, &["-e", "gbk", "--timestamp", "--checksum", "sum8"]);
        assert!(ask(&client, addr, &datagram).is_some());
        let up = p.stdout.next(WAIT).unwrap();
        let (clock, rest) = up.split_once("  ").unwrap();
        assert_eq!(clock.len(), "08:15:07.123".len(), "{up}");
        assert!(
            rest.starts_with("> ") && rest.contains("  5 B  你好") && rest.ends_with("[checksum ok]"),
            "{up}"
        );
        p.signal("INT").unwrap();
        assert_eq!(p.wait(WAIT).and_then(|s| s.code()), Some(0));
        assert!(p.stderr.find(WAIT, |l| l.contains("checksum bad 0")).is_some());

        let (mut p, addr) = start(
            server.addr,
            &["--checksum", "sum8", "--up-corrupt", "1", "--up-truncate", "4"],
        );
        assert!(ask(&client, addr, &datagram).is_some());
        let up = p.stdout.next(WAIT).unwrap();
        assert!(
            up.contains("  4 B  ") && up.contains("[truncated, corrupted]  [checksum BAD"),
            "{up}"
        );
        let down = p.stdout.next(WAIT).unwrap();
        assert!(down.contains("  4 B  ") && down.contains("[checksum BAD"), "{down}");
        p.signal("INT").unwrap();
        assert_eq!(p.wait(WAIT).and_then(|s| s.code()), Some(0));
        assert!(p.stderr.find(WAIT, |l| l.contains("checksum bad 2")).is_some());
    }

    #[test]
    fn usage_errors_are_one_line_and_exit_2() {
        for args in [
            &["--to", "255.255.255.255:9"][..],
            &["--to", "8888", "--allow", "nope"],
            &[],
        ] {
            let ran = testkit::run_to_end(BIN, args);
            assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
            assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
            assert!(ran.stderr.starts_with("udp-relay: "), "{}", ran.stderr);
        }
    }

    /// A flood from 200 source ports, many rounds: the relay's memory stays where a
    /// handful of datagrams left it, since at most --max-clients are mapped.
    #[cfg(target_os = "linux")]
    #[test]
    fn a_flood_from_200_ports_stays_bounded_in_memory() {
        let rss = |pid: u32| -> u64 {
            let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
            let line = status.lines().find(|l| l.starts_with("VmRSS:")).unwrap().to_string();
            line.split_whitespace().nth(1).unwrap().parse().unwrap()
        };
        let server = echo();
        let (p, addr) = start(server.addr, &["-q", "--max-clients", "50", "--idle", "1s"]);
        let senders: Vec<UdpSocket> = (0..200).map(|_| quick_socket()).collect();
        let flood = |rounds: usize| {
            for i in 0..rounds {
                for s in &senders {
                    let _ = s.send_to(format!("datagram {i} of a flood").as_bytes(), addr);
                }
            }
        };
        flood(2);
        assert!(ask(&senders[0], addr, b"settled").is_some());
        let before = rss(p.pid());
        flood(100);
        assert!(ask(&senders[0], addr, b"settled").is_some());
        let after = rss(p.pid());
        assert!(after < before + 2048, "RSS grew from {before} kB to {after} kB");
    }
}
