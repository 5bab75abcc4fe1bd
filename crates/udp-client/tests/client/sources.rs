//! Replies from anywhere (`--any-source`, `--only-from`) and discovery in rounds
//! (`--broadcast --repeat`): what the client hears, and what the device saw.

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use testkit::{Process, WAIT, run_to_end};

use crate::{BIN, Peer};

/// A device that answers from another socket than the one it listens on (many do: a reply
/// socket of their own), as `answer + request`. Returns the address it listens on, the one
/// it answers from, and what it saw.
fn answers_from_another_port(answer: &'static [u8]) -> (SocketAddr, SocketAddr, Peer) {
    let replier = UdpSocket::bind("127.0.0.1:0").unwrap();
    let from = replier.local_addr().unwrap();
    let peer = Peer::new(|_, _| Vec::new());
    // The peer's thread reports each request; this thread answers it from `replier`.
    let listen = peer.addr;
    let (tx, seen) = std::sync::mpsc::channel();
    let requests = peer.seen;
    std::thread::spawn(move || {
        while let Ok((data, src)) = requests.recv_timeout(2 * WAIT) {
            let mut reply = answer.to_vec();
            reply.extend_from_slice(&data);
            let _ = replier.send_to(&reply, src);
            if tx.send((data, src)).is_err() {
                return;
            }
        }
    });
    (listen, from, Peer { addr: listen, seen })
}

#[test]
fn a_connected_client_misses_a_reply_from_another_port_and_says_to_try_any_source() {
    let (listen, _, device) = answers_from_another_port(b"re ");
    let ran = run_to_end(BIN, &["--timeout", "300ms", &listen.to_string(), "hi"]);
    assert_eq!(device.next().0, b"hi", "the request reached the device");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    let last = ran.stderr.lines().last().unwrap();
    assert!(
        last.contains("a device that answers from another port is not heard by a connected client: try --any-source"),
        "{last}"
    );
}

#[test]
fn any_source_hears_the_reply_and_shows_its_sender() {
    let (listen, from, device) = answers_from_another_port(b"re ");
    let ran = run_to_end(BIN, &["--any-source", "--timeout", "2s", &listen.to_string(), "hi"]);
    assert_eq!(device.next().0, b"hi");
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert!(
        ran.stdout.starts_with(&format!("{from}  5 B  re hi  rtt ")),
        "{}",
        ran.stdout
    );
    assert!(
        ran.stderr.contains("not connected: replies from any address are heard"),
        "{}",
        ran.stderr
    );
    // Unconnected, the OS chose no source address: the hint has nothing to add.
    let silent = Peer::silent();
    let ran = run_to_end(
        BIN,
        &["--any-source", "--timeout", "200ms", &silent.addr.to_string(), "x"],
    );
    assert_eq!(ran.code, Some(1));
    assert!(!ran.stderr.contains("try --any-source"), "{}", ran.stderr);
}

#[test]
fn only_from_ignores_other_senders_and_counts_them() {
    let (listen, from, device) = answers_from_another_port(b"re ");
    // Only the port it listens on counts: the reply from the other one is ignored.
    let ran = run_to_end(
        BIN,
        &[
            "--any-source",
            "--only-from",
            &listen.to_string(),
            "--timeout",
            "300ms",
            "-v",
            &listen.to_string(),
            "hi",
        ],
    );
    assert_eq!(device.next().0, b"hi");
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    assert!(
        ran.stderr
            .contains(&format!("ignored 5 B from {from} (not --only-from {listen})")),
        "{}",
        ran.stderr
    );
    // The address alone (any port) lets it in.
    let ran = run_to_end(
        BIN,
        &[
            "--any-source",
            "--only-from",
            "127.0.0.1",
            &listen.to_string(),
            "--repeat",
            "2",
            "--interval",
            "20ms",
            "ab",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(
        ran.stdout.lines().filter(|l| l.starts_with(&from.to_string())).count(),
        2,
        "{}",
        ran.stdout
    );
    assert_eq!(device.all(Duration::from_millis(100)).len(), 2);
    // --only-from without --any-source is clap's usage error.
    let ran = run_to_end(BIN, &["--only-from", "127.0.0.1", &listen.to_string(), "hi"]);
    assert_eq!(ran.code, Some(2));
}

#[test]
fn interactive_any_source_sends_each_line_and_hears_every_sender() {
    let (listen, from, device) = answers_from_another_port(b"re ");
    let mut client =
        Process::spawn_with_stdin(BIN, &["--any-source", "--timeout", "300ms", &listen.to_string()]).unwrap();
    writeln!(client.stdin.as_mut().unwrap(), "one").unwrap();
    assert_eq!(client.stdout.next(WAIT).unwrap(), format!("{from}  6 B  re one"));
    drop(client.stdin.take());
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert_eq!(device.next().0, b"one");
}

#[test]
fn any_source_is_refused_where_it_would_do_nothing() {
    for args in [
        &["--any-source", "--count", "3", "9"][..],
        &["--any-source", "--broadcast", "127.255.255.255:9", "who"],
    ] {
        let ran = run_to_end(BIN, args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stderr.lines().count(), 1, "{args:?}: {}", ran.stderr);
    }
}

/// A probe every --interval, each round's replies listed and counted; the device saw
/// exactly `--repeat` probes.
#[test]
fn broadcast_repeat_sends_a_probe_a_round_and_lists_each_rounds_replies() {
    let device = Peer::on(UdpSocket::bind("0.0.0.0:0").unwrap(), |_, _| vec![b"sensor".to_vec()]);
    let to = format!("127.255.255.255:{}", device.addr.port());
    let ran = run_to_end(
        BIN,
        &[
            "--broadcast",
            "--repeat",
            "3",
            "--interval",
            "100ms",
            "--timeout",
            "300ms",
            &to,
            "who",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(device.all(Duration::from_millis(100)), [b"who", b"who", b"who"]);
    let rounds: Vec<&str> = ran.stdout.lines().filter(|l| l.starts_with("round ")).collect();
    assert_eq!(
        rounds,
        [
            "round 1 of 3: 1 reply from 1 responder",
            "round 2 of 3: 1 reply from 1 responder",
            "round 3 of 3: 1 reply from 1 responder"
        ],
        "{}",
        ran.stdout
    );
    assert!(
        ran.stderr.contains("udp-client: 3 probes, 3 replies from 1 responder"),
        "{}",
        ran.stderr
    );
    let ran = run_to_end(
        BIN,
        &[
            "--json",
            "--broadcast",
            "--repeat",
            "2",
            "--interval",
            "50ms",
            "--timeout",
            "200ms",
            &to,
            "who",
        ],
    );
    let events: Vec<serde_json::Value> = ran.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let rounds: Vec<_> = events
        .iter()
        .filter(|e| e["event"] == "round")
        .map(|e| (e["round"].as_u64(), e["replies"].as_u64()))
        .collect();
    assert_eq!(rounds, [(Some(1), Some(1)), (Some(2), Some(1))]);
    assert_eq!(events.last().unwrap()["probes"], 2);
}

#[test]
fn broadcast_repeat_is_bounded_and_never_a_flood() {
    let device = Peer::on(UdpSocket::bind("0.0.0.0:0").unwrap(), |_, _| Vec::new());
    let to = format!("127.255.255.255:{}", device.addr.port());
    let ran = run_to_end(BIN, &["--broadcast", "--repeat", "5", "--interval", "1ms", &to, "who"]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("the minimum is 10ms"), "{}", ran.stderr);
    assert!(device.all(Duration::from_millis(100)).is_empty(), "nothing was sent");
    // Nobody answering any round: exit 1, after every probe went out.
    let ran = run_to_end(
        BIN,
        &[
            "--broadcast",
            "--repeat",
            "2",
            "--interval",
            "20ms",
            "--timeout",
            "100ms",
            &to,
            "who",
        ],
    );
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(device.all(Duration::from_millis(100)).len(), 2);
    assert!(
        ran.stderr.contains("2 probes, 0 replies from 0 responders"),
        "{}",
        ran.stderr
    );
}
