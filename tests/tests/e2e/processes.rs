use testkit::{Command, Process, output};

use crate::WAIT;

use testkit::{bin, run_to_end};

#[test]
fn the_readme_pair_server_and_client_hello() {
    let (mut server, addr) = Process::server(&bin("udp-server"), &[]);
    let out = output(Command::new(bin("udp-client")).args([&addr.to_string(), "hello"]));
    assert_eq!(out.status.code(), Some(0));
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(reply.starts_with(&format!("{addr}  5 B  hello  rtt ")), "{reply}");
    assert!(server.stdout.next(WAIT).unwrap().ends_with("  5 B  hello"));
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
}

/// `udp-client … 2>&1 | cat`: stdout is buffered, stderr is not, yet a warning about a
/// duplicate comes after the reply it is about, and the summary after every reply.
#[test]
fn with_stdout_and_stderr_on_one_pipe_every_line_comes_in_order() {
    let (_server, addr) = Process::server(&bin("udp-server"), &["--duplicate", "1", "--seed", "3", "-q"]);
    let script = format!("'{}' {addr} --count 5 --interval 20ms 2>&1", bin("udp-client"));
    let out = output(Command::new("sh").args(["-c", &script]));
    assert_eq!(out.status.code(), Some(0));
    let text = String::from_utf8_lossy(&out.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let at = |pred: &dyn Fn(&str) -> bool| lines.iter().position(|l| pred(l));
    let summary = at(&|l| l.starts_with("--- ")).expect("a summary");
    for seq in 1..=5 {
        let reply = at(&|l| l.contains(&format!("  seq={seq} ping  rtt "))).expect("a reply");
        let warning = at(&|l| l.contains(&format!("duplicate reply for seq={seq}"))).expect("a warning");
        assert!(reply < warning && warning < summary, "seq={seq}:\n{text}");
    }
}

/// A flood that loses much more than loopback ever does says why that may be: here the
/// server's explicit `--rate-limit` holds this machine's replies back.
#[test]
fn a_flood_held_back_by_a_rate_limit_says_the_server_may_be_rate_limiting() {
    let (_server, addr) = Process::server(&bin("udp-server"), &["--rate-limit", "50/s", "-q"]);
    let target = addr.to_string();
    let ran = run_to_end(
        &bin("udp-client"),
        &[&target, "--count", "300", "--interval", "0", "--timeout", "100ms"],
    );
    assert_eq!(ran.code, Some(0));
    assert!(
        ran.stderr.contains("the server may be rate-limiting its replies"),
        "{}",
        ran.stderr
    );
}

/// As processes: a ping through `udp-server --delay 10ms..30ms` reports a jitter above 0
/// and within the 20 ms the delays allow, and a histogram counting every reply.
#[test]
fn jitter_through_a_delaying_server_is_within_the_delays() {
    let (_server, addr) = Process::server(&bin("udp-server"), &["-q", "--delay", "10ms..30ms", "--seed", "3"]);
    let addr = addr.to_string();
    let ran = run_to_end(
        &bin("udp-client"),
        &[&addr, "--count", "30", "--interval", "15ms", "--json"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let summary: serde_json::Value = serde_json::from_str(ran.stdout.lines().last().unwrap()).unwrap();
    let jitter = summary["jitter_ms"].as_f64().unwrap();
    assert!(jitter > 0.0 && jitter <= 20.0, "{summary}");
    let counted: u64 = summary["histogram"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["count"].as_u64().unwrap())
        .sum();
    assert_eq!(Some(counted), summary["received"].as_u64());
    // Stderr is a pipe here: no progress line, no graph, only the logs and the summary.
    assert!(
        !ran.stderr.contains("datagrams sent") && !ran.stderr.contains('\r'),
        "{}",
        ran.stderr
    );
}

#[test]
fn ping_through_the_real_server_by_name() {
    let (mut server, addr) = Process::server(&bin("udp-server"), &["--quiet", "--json"]);
    let target = format!("localhost:{}", addr.port());
    let out = output(Command::new(bin("udp-client")).args([&target, "-n", "10", "-i", "5ms", "--json"]));
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (summary["sent"].as_u64(), summary["received"].as_u64()),
        (Some(10), Some(10))
    );
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let last: serde_json::Value = serde_json::from_str(&server.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(
        (
            last["event"].as_str(),
            last["received"].as_u64(),
            last["replied"].as_u64()
        ),
        (Some("summary"), Some(10), Some(10))
    );
}

/// The peak resident memory of a process, in KiB (Linux: VmHWM in /proc/PID/status).
fn peak_memory_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).unwrap();
    line.split_whitespace().nth(1).unwrap().parse().unwrap()
}

#[test]
fn a_flood_and_64_peers_at_once_each_peer_gets_only_its_own_replies() {
    use std::time::Duration;

    const PEERS: usize = 64;
    const PER_PEER: usize = 50;
    const FLOOD: u64 = 100_000;
    let (mut server, addr) = Process::server(&bin("udp-server"), &["--quiet", "--json"]);

    // 64 peers, each sending numbered datagrams and checking every reply is its own.
    let peers: Vec<_> = (0..PEERS).map(|k| spawn_peer(k, PER_PEER, addr)).collect();
    // Meanwhile 100 000 datagrams from udp-client, as fast as it can send them.
    let flood = output(
        Command::new(bin("udp-client"))
            .args([&addr.to_string(), "--count", &FLOOD.to_string(), "--interval", "0"])
            .args(["--no-reply", "--json", "--quiet"]),
    );
    assert_eq!(flood.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&flood.stdout);
    let flood_summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(flood_summary["sent"].as_u64(), Some(FLOOD));
    let answered: usize = peers.into_iter().map(|p| p.join().unwrap()).sum();

    let markers = drain_marker(addr);

    let peak = peak_memory_kib(server.pid());
    assert!(peak < 8 * 1024, "the server peaked at {peak} KiB");
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(
        server
            .stderr
            .rest(Duration::from_millis(100))
            .iter()
            .all(|l| !l.contains("panicked")),
        "no panic"
    );
    let summary: serde_json::Value = serde_json::from_str(&server.stdout.rest(WAIT).pop().unwrap()).unwrap();
    let sent = FLOOD + (PEERS * PER_PEER) as u64 + markers;
    let received = summary["received"].as_u64().unwrap();
    let dropped = summary["kernel_drops"].as_u64().unwrap();
    assert_eq!(received + dropped, sent, "{summary}");
    // Peers whose every datagram the kernel dropped are not seen; nobody else is invented.
    let seen = summary["peers"].as_u64().unwrap();
    assert!(answered > 0 && seen <= PEERS as u64 + 2, "{summary}");
    assert_eq!(summary["replied"].as_u64(), Some(received), "one reply per datagram");
    eprintln!(
        "flood: {sent} sent, {received} received, {dropped} dropped by the kernel, {answered} peer replies, peak {peak} KiB"
    );
}

/// A peer that sends `count` numbered datagrams to `addr` and counts the replies, checking
/// each is its own; it stops after 500 ms without one (some may drop in a flood).
fn spawn_peer(k: usize, count: usize, addr: std::net::SocketAddr) -> std::thread::JoinHandle<usize> {
    std::thread::spawn(move || {
        let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
        socket
            .set_read_timeout(Some(std::time::Duration::from_millis(500)))
            .unwrap();
        for i in 0..count {
            socket.send_to(format!("peer {k} #{i}").as_bytes(), addr).unwrap();
        }
        let mine = format!("peer {k} #");
        let mut replies = 0;
        let mut buf = [0u8; 64];
        while replies < count {
            let Ok((len, from)) = socket.recv_from(&mut buf) else {
                break;
            };
            assert_eq!(from, addr);
            let text = String::from_utf8_lossy(&buf[..len]).into_owned();
            assert!(text.starts_with(&mine), "peer {k} got someone else's reply: {text}");
            replies += 1;
        }
        replies
    })
}

/// A marker, sent until it comes back (at most 25 times): the server's queue is FIFO, so
/// once it is echoed everything sent before it has been received or dropped. Returns how
/// many markers were sent.
fn drain_marker(addr: std::net::SocketAddr) -> u64 {
    let marker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    marker
        .set_read_timeout(Some(std::time::Duration::from_millis(200)))
        .unwrap();
    let mut markers = 0u64;
    let mut buf = [0u8; 16];
    while markers < 25 {
        marker.send_to(b"marker", addr).unwrap();
        markers += 1;
        if marker
            .recv_from(&mut buf)
            .is_ok_and(|(len, _)| &buf[..len] == b"marker")
        {
            break;
        }
    }
    markers
}

/// GBK bytes (what NetAssist on a Chinese Windows sends) shown as UTF-8 are a row of `\xNN`:
/// the server, the client and the listener each say once that `--encoding gbk` would show
/// them as text, and never for UTF-8, or when already shown as GBK.
#[test]
fn gbk_shown_as_utf8_gets_one_hint_from_each_program() {
    const HINT: &str = "looks like GBK (Chinese Windows): try --encoding gbk";
    let gbk = "ce c2 b6 c8 32 33 2e 35"; // 温度23.5 in GBK
    let (mut server, addr) = Process::server(&bin("udp-server"), &[]);
    for _ in 0..2 {
        let client = run_to_end(&bin("udp-client"), &[&addr.to_string(), "-e", "hex", gbk]);
        assert_eq!(client.code, Some(0), "{}", client.stderr);
        // The client shows its reply in hex: no hint there.
        assert!(!client.stderr.contains(HINT), "{}", client.stderr);
    }
    let client = run_to_end(&bin("udp-client"), &[&addr.to_string(), "plain text"]);
    assert!(!client.stderr.contains(HINT), "{}", client.stderr);
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let said = server.stderr.rest(WAIT);
    assert_eq!(said.iter().filter(|l| l.contains(HINT)).count(), 1, "{said:?}");

    // The client, shown its reply as UTF-8, says it too; with -e gbk it shows 温度23.5.
    let (_echo, addr) = Process::server(&bin("udp-server"), &["-e", "hex", "-q"]);
    let ran = run_to_end(
        &bin("udp-client"),
        &[&addr.to_string(), "--escapes", "\\xce\\xc2\\xb6\\xc823.5"],
    );
    assert_eq!(ran.stderr.matches(HINT).count(), 1, "{}", ran.stderr);
    let ran = run_to_end(&bin("udp-client"), &[&addr.to_string(), "-e", "gbk", "温度23.5"]);
    assert!(ran.stdout.contains("温度23.5"), "{}", ran.stdout);
    assert!(!ran.stderr.contains(HINT), "{}", ran.stderr);

    // The listener, sent the same bytes twice by a sensor that is not ours.
    let mut listener = Process::spawn(
        &bin("udp-broadcast"),
        &["listen", "--bind", "127.0.0.1:0", "--count", "2"],
    )
    .unwrap();
    let heard = listener.listening(WAIT).expect("the listener's listening line");
    let sensor = testkit::local_socket(WAIT).unwrap();
    for _ in 0..2 {
        sensor.send_to(b"\xce\xc2\xb6\xc823.5", heard).unwrap();
    }
    assert_eq!(listener.wait(WAIT).and_then(|s| s.code()), Some(0));
    let said = listener.stderr.rest(WAIT);
    assert_eq!(said.iter().filter(|l| l.contains(HINT)).count(), 1, "{said:?}");
}
