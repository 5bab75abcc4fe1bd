//! The server's injected faults, seen from the client: what one side did, the other counts.

use std::time::Duration;

use common::faults::FaultConfig;
use common::output::OutputOptions;
use common::shutdown::Shutdown;
use udp_client::{Mode, OneShot, PingSummary, Summary};

use crate::in_process::{Server, server};

/// A quiet server with `faults`, on a thread.
fn faulty_server(faults: FaultConfig) -> Server {
    let output = OutputOptions {
        quiet: true,
        ..Default::default()
    };
    server(udp_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        faults,
        output,
        ..Default::default()
    })
}

/// Runs the client in-process, quiet, and returns its summary.
fn run_quiet(config: udp_client::Config, mode: Mode) -> Summary {
    let config = udp_client::Config {
        output: OutputOptions {
            quiet: true,
            ..Default::default()
        },
        ..config
    };
    let (out, _lines) = testkit::capture(config.output);
    udp_client::run(&config, &mode, &Shutdown::new(), &out, Box::new(std::io::empty())).unwrap()
}

fn ping(target: std::net::SocketAddr, count: u64, interval: Duration) -> PingSummary {
    match run_quiet(
        udp_client::Config {
            target,
            ..Default::default()
        },
        Mode::ping(count, interval),
    ) {
        Summary::Ping(p) => p,
        other => panic!("a ping summary, not {other:?}"),
    }
}

#[test]
fn the_clients_lost_is_the_servers_dropped_and_the_seed_repeats_it() {
    let run = || {
        let server = faulty_server(FaultConfig {
            drop: 0.3,
            seed: 7,
            ..Default::default()
        });
        let client = ping(server.addr, 200, Duration::from_millis(5));
        let server = server.stop();
        (
            client.sent,
            client.lost,
            server.faults.unwrap().dropped,
            server.received,
        )
    };
    let (sent, lost, dropped, received) = run();
    assert_eq!((sent, received), (200, 200));
    assert!(dropped > 30, "about 30% of 200: {dropped}");
    assert_eq!(lost, dropped, "every dropped request is a lost ping");
    assert_eq!(
        run(),
        (sent, lost, dropped, received),
        "the same seed drops the same requests"
    );
}

#[test]
fn injected_duplicates_and_reordering_show_in_the_ping_summary() {
    let faults = FaultConfig {
        duplicate: 0.2,
        reorder: 0.2,
        seed: 3,
        ..Default::default()
    };
    let server = faulty_server(faults);
    let client = ping(server.addr, 100, Duration::from_millis(5));
    let server = server.stop().faults.unwrap();
    assert!(server.duplicated > 5 && server.reordered > 5, "{server:?}");
    assert_eq!((client.received, client.lost), (100, 0));
    assert_eq!(client.duplicates, server.duplicated);
    assert_eq!(client.reordered, server.reordered);
}

#[test]
fn a_delay_moves_the_round_trip_times_into_its_range() {
    let server = faulty_server(FaultConfig::default());
    let fast = ping(server.addr, 20, Duration::from_millis(10)).rtt.unwrap();
    server.stop();
    let delay = Some((Duration::from_millis(50), Duration::from_millis(150)));
    let server = faulty_server(FaultConfig {
        delay,
        seed: 1,
        ..Default::default()
    });
    let slow = ping(server.addr, 20, Duration::from_millis(10));
    assert_eq!(server.stop().faults.unwrap().delayed, 20);
    let slow_rtt = slow.rtt.unwrap();
    assert!(fast.p50 < 20.0, "{fast:?}");
    assert!(slow_rtt.min >= 50.0 && slow_rtt.max < 190.0, "{slow_rtt:?}");
    assert!((50.0..150.0).contains(&slow_rtt.p50), "{slow_rtt:?}");
    assert_eq!(slow.received, 20, "delayed, not lost");
}

#[test]
fn retries_get_every_message_through_half_the_datagrams_lost() {
    let server = faulty_server(FaultConfig {
        drop: 0.5,
        seed: 12,
        ..Default::default()
    });
    let mut retries = Vec::new();
    for i in 0..10 {
        let config = udp_client::Config {
            target: server.addr,
            // Long enough that a reply is never merely late on a busy machine: a late reply
            // would cause one resend too many and spoil the exact count below.
            timeout: Some(Duration::from_millis(300)),
            ..Default::default()
        };
        let mode = Mode::OneShot(OneShot {
            message: format!("message {i}").into_bytes(),
            retries: 8,
        });
        match run_quiet(config, mode) {
            Summary::OneShot {
                reply: true,
                retries: r,
                ..
            } => retries.push(r),
            other => panic!("message {i} did not get through: {other:?}"),
        }
    }
    let server = server.stop();
    let dropped = server.faults.unwrap().dropped;
    let sends: u64 = retries.iter().map(|&r| u64::from(r) + 1).sum();
    assert_eq!(server.received, sends, "every send reached the server's socket");
    assert_eq!(sends - dropped, 10, "exactly one send per message got through");
    assert!(dropped > 0, "{retries:?}");
}

/// `--delay 0ms..30ms` alone reorders replies (one delayed longer than the next comes
/// after it): the server counts what its delays reordered, and the client counts the same.
#[test]
fn reordering_by_delays_is_counted_alike_on_both_sides() {
    let server = faulty_server(FaultConfig {
        delay: Some((Duration::ZERO, Duration::from_millis(30))),
        seed: 9,
        ..Default::default()
    });
    let client = ping(server.addr, 100, Duration::from_millis(5));
    let server = server.stop();
    let injected = server.faults.unwrap();
    assert_eq!((client.sent, client.received, injected.delayed), (100, 100, 100));
    assert!(client.reordered > 5, "{client:?}");
    assert_eq!(client.reordered, injected.reordered, "{client:?} {injected:?}");
}

/// `--delay 10ms..30ms`: the round trips wobble by at most 20 ms, so the RFC 3550 jitter is
/// above 0 and at most 20 ms; the histogram counts every reply once.
#[test]
fn jitter_stays_within_what_the_delays_allow() {
    let server = faulty_server(FaultConfig {
        delay: Some((Duration::from_millis(10), Duration::from_millis(30))),
        seed: 5,
        ..Default::default()
    });
    let client = ping(server.addr, 40, Duration::from_millis(15));
    server.stop();
    let rtt = client.rtt.unwrap();
    assert!(rtt.jitter > 0.0 && rtt.jitter <= 20.0, "{rtt:?}");
    assert!(
        rtt.mdev > 0.0 && rtt.mdev <= 10.0,
        "a 20 ms spread has a deviation of at most 10 ms: {rtt:?}"
    );
    assert_eq!(client.histogram.iter().map(|b| b.count).sum::<u64>(), client.received);
    assert_eq!(client.received, 40);
}
