//! Echo loops (Loop DoS, CVE-2024-2169) between real `udp-server` processes: stopped within
//! 1 s and 1,000 datagrams, counted in the summary and logged once; and the clients a
//! learner uses (udp-client's floods and pings, the chapter's Python client) are answered
//! in full.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use socket2::{Domain, Protocol, Socket, Type};
use testkit::{Process, bin};

use crate::WAIT;

/// A raw socket to forge source addresses with; it needs CAP_NET_RAW (root), which CI has.
fn raw_socket() -> Option<Socket> {
    // Only root may forge a source: skipped (and said) elsewhere, never under CI.
    testkit::needs_root(
        "a raw socket to forge a source",
        Socket::new(Domain::IPV4, Type::RAW, Some(Protocol::from(255))),
    )
}

/// An IPv4 packet carrying `payload` from `from` to `to` (the kernel fills in the IP
/// header's ID, length and checksum; a UDP checksum of 0 means "none" over IPv4).
fn packet(from: SocketAddr, to: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let (SocketAddr::V4(f), SocketAddr::V4(t)) = (from, to) else {
        panic!("IPv4 only: {from} -> {to}");
    };
    let mut packet = vec![0x45, 0, 0, 0, 0, 0, 0x40, 0, 64, 17, 0, 0];
    packet.extend_from_slice(&f.ip().octets());
    packet.extend_from_slice(&t.ip().octets());
    packet.extend_from_slice(&from.port().to_be_bytes());
    packet.extend_from_slice(&to.port().to_be_bytes());
    packet.extend_from_slice(&(8 + payload.len() as u16).to_be_bytes());
    packet.extend_from_slice(&[0, 0]);
    packet.extend_from_slice(payload);
    packet
}

/// Stops a server (SIGTERM) and returns its JSON summary (the last stdout line).
fn summary(mut server: Process) -> serde_json::Value {
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0), "a clean stop");
    let last = server.stdout.rest(WAIT).pop().expect("a summary line");
    serde_json::from_str(&last).unwrap()
}

fn count(summary: &serde_json::Value, field: &str) -> u64 {
    summary[field].as_u64().unwrap_or(0)
}

#[test]
fn two_server_processes_bounced_by_one_forged_datagram_stop_and_say_so_once() {
    let Some(raw) = raw_socket() else { return };
    let args = ["--quiet", "--json"];
    let (a, addr_a) = Process::server(&bin("udp-server"), &args);
    let (b, addr_b) = Process::server(&bin("udp-server"), &args);
    let t0 = Instant::now();
    raw.send_to(&packet(addr_a, addr_b, b"bounce"), &addr_b.into()).unwrap();

    // B saw the forged datagram first, so B sees the repeats first and breaks the loop.
    let said = b
        .stderr
        .find(WAIT, |l| l.contains("echo loop"))
        .expect("B says it broke a loop");
    let took = t0.elapsed();
    assert!(took < Duration::from_secs(1), "{took:?}");
    assert!(
        said.contains(&addr_a.to_string()) && said.contains("CVE-2024-2169"),
        "{said}"
    );
    // Quiet afterwards: A has nothing more to answer (its stderr gets nothing about it).
    assert!(
        a.stderr
            .find(Duration::from_millis(300), |l| l.contains("loop"))
            .is_none()
    );
    let said_again = b.stderr.find(Duration::from_millis(300), |l| l.contains("loop"));
    assert_eq!(said_again, None, "logged once");

    let (sa, sb) = (summary(a), summary(b));
    eprintln!("stopped after {took:?}: A {sa}, B {sb}");
    assert!(
        count(&sa, "received") <= 1000 && count(&sb, "received") <= 1000,
        "{sa} {sb}"
    );
    assert_eq!((count(&sb, "loops_broken"), count(&sb, "refused")), (1, 1), "{sb}");
    assert_eq!(sa.get("loops_broken"), None, "only when there was one: {sa}");
    // Every datagram but the one that showed the loop was answered, and nothing came after.
    assert_eq!(count(&sa, "replied"), count(&sa, "received"));
    assert_eq!(count(&sb, "replied") + 1, count(&sb, "received"));
    assert_eq!(count(&sa, "received"), count(&sb, "replied"));
}

/// A network namespace of our own, removed on drop, with a non-loopback address on its
/// `lo` (nothing can leave it), so a server on 0.0.0.0 there has one to know (Linux).
#[cfg(target_os = "linux")]
struct Namespace(String);

#[cfg(target_os = "linux")]
impl Namespace {
    fn create(address: &str) -> Option<Self> {
        let name = format!("udploop{}", std::process::id());
        let ok = |args: &[&str]| {
            std::process::Command::new("ip")
                .args(args)
                .output()
                .is_ok_and(|o| o.status.success())
        };
        if !ok(&["netns", "add", &name]) {
            // Only root may make a namespace: skipped (and said) elsewhere, never under CI.
            let refused = std::io::Error::new(std::io::ErrorKind::PermissionDenied, "ip netns add failed");
            testkit::needs_root("a network namespace", Err::<(), _>(refused))?;
        }
        let ns = Namespace(name);
        let steps: [&[&str]; 2] = [
            &["-n", &ns.0, "link", "set", "lo", "up"],
            &["-n", &ns.0, "addr", "add", address, "dev", "lo"],
        ];
        for step in steps {
            assert!(ok(step), "ip {step:?} failed");
        }
        Some(ns)
    }
}

#[cfg(target_os = "linux")]
impl Drop for Namespace {
    fn drop(&mut self) {
        let _ = std::process::Command::new("ip")
            .args(["netns", "del", &self.0])
            .status();
    }
}

#[cfg(target_os = "linux")]
#[test]
fn a_server_on_0_0_0_0_knows_its_own_non_loopback_addresses() {
    let Some(ns) = Namespace::create("10.77.0.1/32") else {
        return;
    };
    let server = Process::spawn(
        "ip",
        &[
            "netns",
            "exec",
            &ns.0,
            &bin("udp-server"),
            "--bind",
            "0.0.0.0:0",
            "--json",
        ],
    )
    .unwrap();
    let port = server.listening(WAIT).expect("a listening line").port();
    // Forged inside the namespace (only there is 10.77.0.1 this machine's): from the
    // server's own interface address and port, to its loopback address.
    let from = SocketAddr::from(([10, 77, 0, 1], port));
    let to = SocketAddr::from(([127, 0, 0, 1], port));
    let bytes: Vec<String> = packet(from, to, b"from yourself")
        .iter()
        .map(|b| b.to_string())
        .collect();
    let forge = format!(
        "import socket; s = socket.socket(socket.AF_INET, socket.SOCK_RAW, socket.IPPROTO_RAW); s.sendto(bytes([{}]), ('127.0.0.1', 0))",
        bytes.join(",")
    );
    let mut python = Process::spawn("ip", &["netns", "exec", &ns.0, "python3", "-c", &forge]).unwrap();
    assert_eq!(
        python.wait(WAIT).and_then(|s| s.code()),
        Some(0),
        "the forged datagram is sent"
    );

    let line = server.stdout.next(WAIT).expect("the forged datagram arrives");
    let datagram: serde_json::Value = serde_json::from_str(&line).unwrap();
    assert_eq!(datagram["peer"], from.to_string(), "{line}");
    assert!(
        datagram["note"].as_str().is_some_and(|n| n.contains("refused")),
        "{line}"
    );
    let said = server.stderr.find(WAIT, |l| l.contains("not answering")).unwrap();
    assert!(said.contains("own address"), "{said}");
    // Had it answered itself, its reply would be the next datagram.
    assert_eq!(server.stdout.next(Duration::from_millis(300)), None);
    let s = summary(server);
    assert_eq!(
        (count(&s, "received"), count(&s, "replied"), count(&s, "refused")),
        (1, 0, 1),
        "{s}"
    );
}

/// Runs a client to its end within [`WAIT`]: its exit code and stdout lines.
fn client(program: &str, args: &[&str]) -> (Option<i32>, Vec<String>) {
    let mut p = Process::spawn(program, args).unwrap();
    let code = p.wait(WAIT).and_then(|s| s.code());
    (code, p.stdout.rest(Duration::from_millis(500)))
}

#[test]
fn floods_pings_and_the_chapter_client_are_answered_in_full() {
    let (server, addr) = Process::server(&bin("udp-server"), &["--quiet", "--json"]);
    let target = addr.to_string();
    let mut sent = 0;
    // udp-client: a flood of 5,000 (numbered, 64 in flight), then a ping.
    for (args, n) in [
        (&["--count", "5000", "--interval", "0"][..], 5000),
        (&["--count", "5", "--interval", "10ms"][..], 5),
    ] {
        let mut all = vec![target.as_str(), "--json", "--quiet"];
        all.extend_from_slice(args);
        let (code, lines) = client(&bin("udp-client"), &all);
        assert_eq!(code, Some(0), "{lines:?}");
        let s: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
        assert_eq!((count(&s, "sent"), count(&s, "received")), (n, n), "{s}");
        sent += n;
    }
    // The same message (no number) 50 times at 50 a second: NetAssist's loop send.
    let (code, lines) = client(
        &bin("udp-client"),
        &[
            &target,
            "--repeat",
            "50",
            "--interval",
            "20ms",
            "--json",
            "--quiet",
            "poll",
        ],
    );
    assert_eq!(code, Some(0), "{lines:?}");
    let s: serde_json::Value = serde_json::from_str(lines.last().unwrap()).unwrap();
    assert_eq!((count(&s, "sent"), count(&s, "received")), (50, 50), "{s}");
    sent += 50;
    // The chapter's Python client, 20 times (a new port each time, as the chapter's does).
    let script = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../scripts/peers/chapter_client.py");
    for i in 0..20 {
        let message = format!("hello {i}");
        let (code, lines) = client(
            "python3",
            &[
                script.to_str().unwrap(),
                "127.0.0.1",
                &addr.port().to_string(),
                &message,
            ],
        );
        assert_eq!((code, lines), (Some(0), vec![message]));
        sent += 1;
    }
    let s = summary(server);
    assert_eq!(
        (count(&s, "received"), count(&s, "replied"), count(&s, "refused")),
        (sent, sent, 0),
        "{s}"
    );
    assert_eq!(s.get("loops_broken"), None, "{s}");
}
