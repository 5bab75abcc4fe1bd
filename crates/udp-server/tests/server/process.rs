use std::io::{BufRead, BufReader};
use std::net::{SocketAddr, UdpSocket};
use std::process::Stdio;
use std::sync::mpsc;
use std::thread;
use std::time::{Duration, Instant};

use testkit::{Command, Process, output};

use crate::WAIT;

pub(crate) const BIN: &str = env!("CARGO_BIN_EXE_udp-server");

fn server(args: &[&str]) -> (Process, SocketAddr) {
    Process::server(BIN, args)
}

pub(crate) fn echo(addr: SocketAddr, payload: &[u8]) -> Vec<u8> {
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(payload, addr).unwrap();
    testkit::recv(&peer).unwrap().0
}

#[test]
fn the_first_line_names_the_real_port_and_sigterm_prints_a_summary() {
    let (mut server, addr) = server(&[]);
    assert_eq!(addr.ip().to_string(), "127.0.0.1");
    assert_ne!(addr.port(), 0);
    assert_eq!(echo(addr, b"hello"), b"hello");
    assert!(server.stdout.next(WAIT).unwrap().ends_with("  5 B  hello"));
    let asked = Instant::now();
    server.signal("TERM").unwrap();
    let status = server.wait(WAIT).expect("exits");
    assert!(
        asked.elapsed() < Duration::from_millis(250),
        "stopped in {:?}",
        asked.elapsed()
    );
    assert_eq!(status.code(), Some(0));
    let summary = server.stderr.find(WAIT, |l| l.contains("received")).unwrap();
    assert_eq!(
        summary,
        "udp-server: received 1 datagram (5 B) from 1 peer, replied 1, truncated 0"
    );
}

#[test]
fn ctrl_c_stops_cleanly_too() {
    let (mut server, _) = server(&[]);
    server.signal("INT").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(
        server
            .stderr
            .find(WAIT, |l| l.contains("received 0 datagrams"))
            .is_some()
    );
}

#[test]
fn json_mode_starts_with_listening_and_ends_with_the_summary() {
    let (mut server, addr) = server(&["--json"]);
    assert_eq!(echo(addr, b"hi"), b"hi");
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let lines = server.stdout.rest(WAIT);
    let events: Vec<serde_json::Value> = lines.iter().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert_eq!(events.len(), 2, "{lines:?}");
    assert_eq!(events[0]["event"], "recv");
    assert_eq!(
        events[1],
        serde_json::json!({"event": "summary", "received": 1, "bytes": 2, "replied": 1, "peers": 1, "truncated": 0, "refused": 0, "rate_limited": 0, "kernel_drops": 0})
    );
}

#[test]
fn count_ends_the_process_with_exit_0() {
    let (mut server, addr) = server(&["--count", "1", "--quiet"]);
    assert_eq!(echo(addr, b"only one"), b"only one");
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert!(server.stdout.rest(WAIT).is_empty(), "-q prints no datagram lines");
}

#[test]
fn buffer_size_1024_cuts_a_3000_byte_datagram_and_says_so() {
    let (_server, addr) = server(&["--buffer-size", "1024"]);
    let echoed = echo(addr, &[b'x'; 3000]);
    assert_eq!(echoed.len(), 1024);
    assert!(_server.stdout.next(WAIT).unwrap().contains("1024 B (truncated)"));
}

#[test]
fn bad_usage_is_one_line_and_exit_2() {
    for (args, needle) in [
        (&["--bind", "nonsense"][..], "'nonsense'"),
        (&["--bind", "127.0.0.1:70000"], "'127.0.0.1:70000'"),
        (&["--encoding", "latin9"], "unknown encoding 'latin9'"),
        (&["--buffer-size", "0"], "--buffer-size"),
        (&["--buffer-size", "70000"], "--buffer-size"),
        (&["--reply", "zz", "--encoding", "hex"], "bad hex 'zz'"),
        (&["--count", "-1"], "'-1'"),
        (&["--no-such-flag"], "--no-such-flag"),
    ] {
        let out = output(Command::new(BIN).args(args));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{args:?}: one line, got {stderr}");
        assert!(
            stderr.starts_with("udp-server: ") && stderr.contains(needle),
            "{args:?}: {stderr}"
        );
        assert!(out.stdout.is_empty());
    }
}

#[test]
fn a_port_in_use_is_exit_1_with_a_hint() {
    let taken = UdpSocket::bind("127.0.0.1:0").unwrap();
    let addr = taken.local_addr().unwrap().to_string();
    let out = output(Command::new(BIN).args(["--bind", &addr]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1));
    let last = stderr.lines().last().unwrap();
    assert_eq!(
        last,
        format!(
            "udp-server: cannot bind {addr}: address already in use (is another server running? try another port, e.g. --bind 127.0.0.1:0 for any free one)"
        )
    );
}

/// As `udp-server | head -1`: starts the server, reads its first line and closes the pipe.
/// Returns that line, and the server (its stderr, its exit within a deadline; killed if the
/// test ends first).
fn like_head_1() -> (String, Process) {
    let mut child = std::process::Command::new(BIN)
        .args(["--bind", "127.0.0.1:0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let server = Process::adopt(child);
    let (tx, rx) = mpsc::channel();
    thread::spawn(move || {
        let mut reader = BufReader::new(stdout);
        let mut line = String::new();
        let _ = reader.read_line(&mut line);
        // Close the read end of the pipe before handing the line over, so that everything
        // the test does afterwards meets a closed stdout.
        drop(reader);
        let _ = tx.send(line);
    });
    let first = rx.recv_timeout(WAIT).unwrap();
    (first.trim_end().to_string(), server)
}

#[test]
fn a_closed_stdout_ends_the_server_quietly() {
    let (first, mut server) = like_head_1();
    let addr = testkit::listening_addr(&first).unwrap();
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(b"nobody reads this line", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"nobody reads this line");
    let status = server.wait(WAIT).expect("the server stops by itself");
    assert_eq!(status.code(), Some(0));
    let errors = server.stderr.rest(WAIT);
    assert!(
        !errors.iter().any(|l| l.contains("panicked") || l.contains("error")),
        "{errors:?}"
    );
}

#[test]
fn help_shows_an_example_per_mode_and_version_works() {
    testkit::assert_help_and_version(
        BIN,
        "udp-server",
        env!("CARGO_PKG_VERSION"),
        &[
            "udp-server --bind 0.0.0.0:8888",
            "--reply none",
            "--buffer-size 1024",
            "--encoding gbk",
        ],
    );
}

#[test]
fn timestamps_prefix_each_line_with_local_time() {
    let (_server, addr) = server(&["--timestamp"]);
    assert_eq!(echo(addr, b"when?"), b"when?");
    let line = _server.stdout.next(WAIT).unwrap();
    let (clock, rest) = line.split_once("  ").unwrap();
    let digits: Vec<&str> = clock.split([':', '.']).collect();
    assert_eq!(
        digits.iter().map(|d| d.len()).collect::<Vec<_>>(),
        [2, 2, 2, 3],
        "{line}"
    );
    assert!(digits.iter().all(|d| d.chars().all(|c| c.is_ascii_digit())), "{line}");
    assert!(rest.ends_with("  5 B  when?"), "{line}");
}

#[test]
fn rust_log_overrides_the_verbosity_flags() {
    // Info logs by default; RUST_LOG=warn silences them even though no -q was given.
    let (mut chatty, addr) = server(&["-v"]);
    assert_eq!(echo(addr, b"x"), b"x");
    chatty.signal("TERM").unwrap();
    chatty.wait(WAIT);
    let logs = chatty.stderr.rest(WAIT);
    assert!(
        logs.iter()
            .any(|l| l.starts_with("udp-server: only programs on this machine")),
        "{logs:?}"
    );
    let mut silenced = Process::adopt(
        std::process::Command::new(BIN)
            .args(["--bind", "127.0.0.1:0", "--count", "0"])
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
    );
    assert_eq!(silenced.wait(WAIT).and_then(|s| s.code()), Some(0));
    let logs = silenced.stderr.rest(WAIT);
    assert_eq!(
        logs,
        ["udp-server: received 0 datagrams (0 B) from 0 peers, replied 0, truncated 0"],
        "only the summary"
    );
}

#[test]
fn kernel_drops_count_exactly_what_never_arrived() {
    // A small receive queue, and a server paused (SIGSTOP) while 1000 datagrams arrive:
    // the queue keeps a few, the kernel drops the rest, and the summary must account for
    // every one of them.
    let (mut server, addr) = server(&["--recv-buffer", "4096", "--quiet", "--json"]);
    server.signal("STOP").unwrap();
    let peer = testkit::local_socket(Duration::from_millis(200)).unwrap();
    for i in 0..1000u32 {
        peer.send_to(format!("datagram {i:04} {}", "x".repeat(80)).as_bytes(), addr)
            .unwrap();
    }
    server.signal("CONT").unwrap();
    // A marker, resent until its echo comes back: then the queue has been read to the end.
    let mut markers = 0;
    let deadline = Instant::now() + WAIT;
    'wait: while Instant::now() < deadline {
        peer.send_to(b"marker", addr).unwrap();
        markers += 1;
        while let Ok((data, _)) = testkit::recv(&peer) {
            if data == b"marker" {
                break 'wait;
            }
        }
    }
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary: serde_json::Value = serde_json::from_str(&server.stdout.rest(WAIT).pop().unwrap()).unwrap();
    let (received, drops) = (
        summary["received"].as_u64().unwrap(),
        summary["kernel_drops"].as_u64().unwrap(),
    );
    assert!(drops > 0, "{summary}");
    assert_eq!(received + drops, 1000 + markers, "{summary}");
}

#[test]
fn faults_are_counted_and_repeat_for_the_same_seed() {
    let run = || {
        let (mut server, addr) = server(&[
            "--drop",
            "0.3",
            "--duplicate",
            "0.2",
            "--seed",
            "7",
            "--json",
            "--count",
            "100",
        ]);
        let peer = testkit::local_socket(Duration::from_millis(300)).unwrap();
        for i in 0..100u32 {
            peer.send_to(format!("{i}").as_bytes(), addr).unwrap();
        }
        let mut echoes = Vec::new();
        while let Ok((data, _)) = testkit::recv(&peer) {
            echoes.push(String::from_utf8(data).unwrap());
        }
        assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
        let summary: serde_json::Value = serde_json::from_str(&server.stdout.rest(WAIT).pop().unwrap()).unwrap();
        (echoes, summary)
    };
    let (echoes, summary) = run();
    let (dropped, duplicated) = (
        summary["dropped"].as_u64().unwrap(),
        summary["duplicated"].as_u64().unwrap(),
    );
    assert!(dropped > 0 && duplicated > 0, "{summary}");
    assert_eq!(echoes.len() as u64, 100 - dropped + duplicated, "{summary}");
    assert_eq!(summary["replied"].as_u64().unwrap(), 100 - dropped + duplicated);
    assert_eq!(run(), (echoes, summary), "the same seed, the same faults");
}

#[test]
fn a_closed_stdout_ends_an_idle_server_too() {
    // No traffic at all: the server must not wait for a datagram to find out that nobody
    // reads its output any more.
    let (first, mut server) = like_head_1();
    assert!(first.starts_with("listening on "), "{first}");
    let status = server.wait(WAIT).expect("the server stops by itself");
    assert_eq!(status.code(), Some(0));
}

#[test]
fn show_header_prints_the_udp_header_after_each_datagram() {
    let (mut running, addr) = server(&["--show-header"]);
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(b"hello", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"hello");
    let line = running.stdout.next(WAIT).unwrap();
    let from = peer.local_addr().unwrap();
    let sum = common::header::checksum(from, addr, b"hello").unwrap();
    assert_eq!(
        line,
        format!(
            "{from}  5 B  hello  | udp src {} dst {} len 13 sum {sum:#06x} proto 17",
            from.port(),
            addr.port()
        )
    );
    running.signal("TERM").unwrap();
    assert_eq!(running.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn reachable_from_the_network_it_warns_and_limits_replies_by_default() {
    let mut running = Process::spawn(BIN, &["--bind", "0.0.0.0:0"]).unwrap();
    running.listening(WAIT).unwrap();
    let warning = running
        .stderr
        .find(WAIT, |l| l.contains("other machines can reach"))
        .expect("a start-up warning");
    assert!(warning.contains("limited to 100/s per source"), "{warning}");
    running.signal("TERM").unwrap();
    assert_eq!(running.wait(WAIT).and_then(|s| s.code()), Some(0));

    let open = Process::spawn(BIN, &["--bind", "0.0.0.0:0", "--rate-limit", "off"]).unwrap();
    open.listening(WAIT).unwrap();
    let warning = open
        .stderr
        .find(WAIT, |l| l.contains("other machines can reach"))
        .unwrap();
    assert!(warning.contains("NOT rate-limited"), "{warning}");
}

/// `--timestamp` is local time in the zone the OS says (jiff reads `TZ`): the offset is
/// the zone's, and the hour minus the offset is the UTC hour now.
#[test]
fn timestamps_follow_the_time_zone_tz_names() {
    for (zone, offset, minutes) in [
        ("Asia/Shanghai", "+08:00", 480),
        ("Asia/Kolkata", "+05:30", 330),
        ("UTC", "+00:00", 0),
    ] {
        let mut server = Process::spawn_env(
            BIN,
            &["--bind", "127.0.0.1:0", "--json", "--timestamp", "--count", "1"],
            &[("TZ", zone)],
        )
        .unwrap();
        let addr = server.listening(WAIT).unwrap();
        assert_eq!(echo(addr, b"when?"), b"when?");
        let event: serde_json::Value = serde_json::from_str(&server.stdout.next(WAIT).unwrap()).unwrap();
        let time = event["time"].as_str().unwrap().to_string();
        assert!(time.ends_with(offset), "{zone}: {time}");
        let utc_now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .unwrap()
            .as_secs()
            / 60
            % 1440;
        let local: u64 = time[11..13].parse::<u64>().unwrap() * 60 + time[14..16].parse::<u64>().unwrap();
        let utc_then = (local + 1440 - minutes) % 1440;
        let apart = (utc_now + 1440 - utc_then) % 1440;
        assert!(
            apart <= 1,
            "{zone}: {time} is not UTC {}:{:02} + {offset}",
            utc_now / 60,
            utc_now % 60
        );
        assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    }
}

/// A mistake is one line that keeps clap's tip, or says what was probably meant; exit 2.
#[test]
fn usage_mistakes_are_one_line_with_a_hint() {
    for (args, hint) in [
        (&["--bnid", "9000"][..], "a similar argument exists: '--bind'"),
        (&["9000"], "did you mean --bind 9000?"),
    ] {
        let out = output(Command::new(BIN).args(args));
        assert_eq!(out.status.code(), Some(2), "{args:?}");
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(stderr.starts_with("udp-server: ") && stderr.contains(hint), "{stderr}");
    }
}

/// `--checksum crc16-modbus`: each arrival's check bytes are verified and shown; a fixed
/// reply carries its own; an echo is the request unchanged, good CRC or bad.
#[test]
fn check_bytes_are_verified_on_arrival_and_appended_to_a_fixed_reply() {
    let good = [0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd];
    let bad = [0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00];
    let (mut json, addr) = server(&["--checksum", "crc16-modbus", "-e", "hex", "--json"]);
    assert_eq!(echo(addr, &good), good);
    assert_eq!(echo(addr, &bad), bad, "an echo is the request unchanged");
    let oks: Vec<serde_json::Value> = (0..2)
        .map(|_| serde_json::from_str(&json.stdout.next(WAIT).unwrap()).unwrap())
        .collect();
    assert_eq!(
        (oks[0]["checksum_ok"].as_bool(), oks[1]["checksum_ok"].as_bool()),
        (Some(true), Some(false))
    );
    json.signal("TERM").unwrap();
    assert_eq!(json.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary: serde_json::Value = serde_json::from_str(&json.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(summary["checksum_bad"].as_u64(), Some(1));

    let (_text, addr) = server(&["--checksum", "crc16-modbus", "-e", "hex"]);
    assert_eq!(echo(addr, &bad), bad);
    assert!(_text.stdout.next(WAIT).unwrap().ends_with("[checksum BAD: want c5cd]"));

    // A fixed reply (hex) gets its CRC appended: 01 03 02 00 17 + CRC, 7 bytes, within the
    // 8-byte request.
    let (_fixed, addr) = server(&["--checksum", "crc16-modbus", "-e", "hex", "--reply", "01 03 02 00 17"]);
    let reply = echo(addr, &good);
    assert_eq!(reply.len(), 7);
    assert_eq!(reply[..5], [0x01, 0x03, 0x02, 0x00, 0x17]);
    assert_eq!(
        common::checksum::Checksum::Crc16Modbus.check(&reply),
        common::checksum::Check::Ok
    );
}

/// `--escapes` for the fixed reply: `OK\r\n` is the bytes 4f 4b 0d 0a.
#[test]
fn a_fixed_reply_may_carry_escapes() {
    let (_server, addr) = server(&["--escapes", "--reply", "OK\\r\\n"]);
    assert_eq!(echo(addr, b"AT\r\n"), b"OK\r\n");
}

/// `--save`: every datagram's bytes appended in arrival order; an unwritable path fails at
/// start, before anything is received.
#[test]
fn save_appends_every_datagram_and_a_bad_path_fails_at_start() {
    let path = std::env::temp_dir().join(format!("udp-server-save-{}.bin", std::process::id()));
    let _ = std::fs::remove_file(&path);
    let (mut server, addr) = server(&["--save", path.to_str().unwrap(), "--reply", "none"]);
    let peer = testkit::local_socket(WAIT).unwrap();
    for part in [&b"one "[..], b"two ", b"three"] {
        peer.send_to(part, addr).unwrap();
    }
    server.stdout.find(WAIT, |l| l.ends_with("three")).unwrap();
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert_eq!(std::fs::read(&path).unwrap(), b"one two three");
    std::fs::remove_file(&path).unwrap();
    let ran = testkit::run_to_end(BIN, &["--bind", "127.0.0.1:0", "--save", "/nonexistent-dir/x"]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stdout.is_empty(), "it never started listening: {}", ran.stdout);
    assert!(
        ran.stderr.contains("cannot write --save /nonexistent-dir/x"),
        "{}",
        ran.stderr
    );
}
