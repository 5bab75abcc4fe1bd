//! The kernel's offloads (Linux), over loopback: a GSO burst sent by the test to a server
//! with GRO on (`--offload`) is cut back into its datagrams, each echoed, printed, counted
//! and cut to `--buffer-size` on its own; `--batch` replies leave as one GSO run unless
//! `--no-offload`.

use std::net::UdpSocket;

use common::offload::Offloads;
use testkit::offload::{gro_socket, recv_gro, send_gso};
use udp_server::{Config, Summary};

use crate::WAIT;

fn start(config: Config) -> testkit::InProcess<Summary> {
    testkit::InProcess::start(config.output, move |stop, out| udp_server::run(&config, stop, out))
}

fn server(batch: Option<usize>, count: u64, offloads: Offloads) -> testkit::InProcess<Summary> {
    start(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        buffer_size: 100,
        count: Some(count),
        batch,
        offloads,
        ..Default::default()
    })
}

/// Two bursts: 5 × 50 B, then 3 × 150 B closed by 20 B (longer than `--buffer-size 100`).
fn bursts() -> [Vec<Vec<u8>>; 2] {
    let small = (0..5u8).map(|i| vec![b'a' + i; 50]).collect();
    let long = (0..3u8).map(|i| vec![b'p' + i; 150]).chain([vec![b'z'; 20]]).collect();
    [small, long]
}

fn send_bursts(client: &UdpSocket, to: std::net::SocketAddr) -> Vec<Vec<u8>> {
    let bursts = bursts();
    for burst in &bursts {
        let run: Vec<&[u8]> = burst.iter().map(Vec::as_slice).collect();
        send_gso(client, to, &run).unwrap();
    }
    bursts.concat()
}

#[test]
fn a_gro_buffer_is_echoed_printed_and_counted_per_datagram_each_cut_alone() {
    for batch in [None, Some(4), Some(64)] {
        let server = server(batch, 9, Offloads::from_flags(true, false));
        let client = testkit::local_socket(WAIT).unwrap();
        let sent = send_bursts(&client, server.addr);
        for datagram in &sent {
            let (echo, from) = testkit::recv(&client).unwrap();
            assert_eq!(
                (echo.as_slice(), from),
                (&datagram[..datagram.len().min(100)], server.addr)
            );
        }
        let lines: Vec<String> = (0..9).map(|_| server.lines.next(WAIT).unwrap()).collect();
        let cut = lines.iter().filter(|l| l.contains("  100 B (truncated)  ")).count();
        let whole = lines
            .iter()
            .filter(|l| l.contains("  50 B  ") || l.contains("  20 B  zzz"))
            .count();
        assert_eq!((cut, whole), (3, 6), "--batch {batch:?}: {lines:#?}");
        let s = server.finish().unwrap();
        assert_eq!(
            (s.received, s.replied, s.truncated, s.bytes, s.peers, s.unread),
            (9, 9, 3, 5 * 50 + 3 * 100 + 20, 1, 0),
            "--batch {batch:?}"
        );
    }
}

/// `--count 7` stops inside the second buffer: its last two datagrams are counted unread,
/// as they would be had they stayed in the queue.
#[test]
fn datagrams_of_a_gro_buffer_past_the_count_are_counted_unread() {
    for batch in [None, Some(64)] {
        let server = server(batch, 7, Offloads::from_flags(true, false));
        let client = testkit::local_socket(WAIT).unwrap();
        send_bursts(&client, server.addr);
        let s = server.finish().unwrap();
        assert_eq!((s.received, s.replied, s.unread), (7, 7, 2), "--batch {batch:?}");
    }
}

/// Echoes of one burst to a GRO client: glued (one GSO send) by default with `--batch`,
/// one datagram per receive with `--no-offload`. The server may wake before the whole
/// burst is queued, so each case sends up to 20 bursts: by default one glued echo is
/// enough, with `--no-offload` none may be glued.
#[test]
fn batch_replies_leave_in_one_gso_run_unless_no_offload() {
    for (offloads, glued) in [(Offloads::default(), true), (Offloads::from_flags(false, true), false)] {
        let server = server(Some(64), 20 * 10, offloads);
        let client = gro_socket();
        let burst: Vec<Vec<u8>> = (0..10u8).map(|i| vec![b'0' + i; 60]).collect();
        let run: Vec<&[u8]> = burst.iter().map(Vec::as_slice).collect();
        let mut seen_glued = false;
        for _ in 0..20 {
            send_gso(&client, server.addr, &run).unwrap();
            let mut echoed = Vec::new();
            while echoed.len() < burst.concat().len() {
                let (bytes, segment) = recv_gro(&client).unwrap();
                seen_glued |= segment.is_some();
                echoed.extend(bytes);
            }
            assert_eq!(echoed, burst.concat(), "every echo, in order");
            if seen_glued == glued {
                break;
            }
        }
        assert_eq!(seen_glued, glued, "{offloads:?}");
        server.stop();
    }
}

#[test]
fn offload_and_no_offload_together_are_a_usage_error() {
    let ran = testkit::run_to_end(
        crate::process::BIN,
        &["--bind", "127.0.0.1:0", "--offload", "--no-offload"],
    );
    assert_eq!(ran.code, Some(2), "{}", ran.stderr);
    assert!(ran.stderr.contains("--no-offload"), "{}", ran.stderr);
}

/// A receive slot that last held a datagram without a GRO note must still read the note of
/// the buffer that lands in it next (nix leaves the kernel's shortened control length in
/// place between recvmmsg calls): single datagrams and bursts, each waited for in turn.
#[test]
fn single_datagrams_between_gro_buffers_leave_the_next_buffer_whole() {
    let server = server(Some(64), 3 * 6, Offloads::from_flags(true, false));
    let client = testkit::local_socket(WAIT).unwrap();
    let burst: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'k' + i; 30]).collect();
    let run: Vec<&[u8]> = burst.iter().map(Vec::as_slice).collect();
    for _ in 0..3 {
        client.send_to(b"alone", server.addr).unwrap();
        assert_eq!(testkit::recv(&client).unwrap().0, b"alone");
        send_gso(&client, server.addr, &run).unwrap();
        for datagram in &burst {
            assert_eq!(&testkit::recv(&client).unwrap().0, datagram);
        }
    }
    let s = server.finish().unwrap();
    assert_eq!((s.received, s.replied, s.bytes), (18, 18, 3 * (5 + 5 * 30)));
}

/// The simulated network works on each datagram of a GRO buffer: with `--duplicate 1` every
/// datagram of a burst is delivered (and echoed) twice, and counted once as received.
#[test]
fn faults_apply_to_each_datagram_of_a_gro_buffer() {
    let server = start(Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        count: Some(5),
        offloads: Offloads::from_flags(true, false),
        faults: common::faults::FaultConfig {
            duplicate: 1.0,
            ..Default::default()
        },
        ..Default::default()
    });
    let client = testkit::local_socket(WAIT).unwrap();
    let burst: Vec<Vec<u8>> = (0..5u8).map(|i| vec![b'f' + i; 40]).collect();
    let run: Vec<&[u8]> = burst.iter().map(Vec::as_slice).collect();
    send_gso(&client, server.addr, &run).unwrap();
    let mut echoes: Vec<Vec<u8>> = (0..10).map(|_| testkit::recv(&client).unwrap().0).collect();
    echoes.sort();
    let mut expected: Vec<Vec<u8>> = burst.iter().flat_map(|d| [d.clone(), d.clone()]).collect();
    expected.sort();
    assert_eq!(echoes, expected);
    let s = server.finish().unwrap();
    assert_eq!((s.received, s.replied, s.faults.unwrap().duplicated), (5, 10, 5));
}
