//! GSO (Linux) on the client's bulk sends, seen from the receiving socket: `--file` and
//! floods with `--no-reply` arrive as their datagrams, byte for byte and in order, at a
//! plain socket; a GRO socket shows they left in runs (glued), and one by one with
//! `--no-offload`.

use std::net::UdpSocket;

use testkit::offload::{gro_socket, recv_gro};
use testkit::run_to_end;

use crate::{BIN, WAIT};

/// Everything a GRO socket receives until `total` bytes came: the bytes, and how many
/// receives had several datagrams glued together.
fn receive_glued(socket: &UdpSocket, total: usize) -> (Vec<u8>, usize) {
    let (mut bytes, mut glued) = (Vec::new(), 0);
    while bytes.len() < total {
        let (got, segment) = recv_gro(socket).expect("the rest of what was sent");
        glued += usize::from(segment.is_some());
        bytes.extend(got);
    }
    (bytes, glued)
}

#[test]
fn a_file_without_replies_leaves_in_gso_runs_unless_no_offload() {
    let dir = std::env::temp_dir().join(format!("udp-client-gso-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("firmware.bin");
    // 40 chunks of 100 B and a last one of 37: bursts of 16, 16 and 9.
    let content: Vec<u8> = (0..4037u32).map(|i| (i % 251) as u8).collect();
    std::fs::write(&path, &content).unwrap();
    let file = path.to_str().unwrap();
    for (extra, glued) in [(None, true), (Some("--no-offload"), false)] {
        let rx = gro_socket();
        let target = rx.local_addr().unwrap().to_string();
        let mut args = vec![target.as_str(), "--file", file, "--chunk", "100", "--no-reply"];
        args.extend(extra);
        let ran = run_to_end(BIN, &args);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        assert!(ran.stderr.contains("sent 4037 B in 41 chunks"), "{}", ran.stderr);
        let (bytes, glued_receives) = receive_glued(&rx, content.len());
        assert_eq!(bytes, content, "{extra:?}");
        assert_eq!(glued_receives > 0, glued, "{extra:?}: {glued_receives} glued receives");
    }
    // The same file at a plain socket: 41 datagrams, each its own chunk.
    let plain = testkit::local_socket(WAIT).unwrap();
    let ran = run_to_end(
        BIN,
        &[
            &plain.local_addr().unwrap().to_string(),
            "--file",
            file,
            "--chunk",
            "100",
            "--no-reply",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    for chunk in content.chunks(100) {
        assert_eq!(testkit::recv(&plain).unwrap().0, chunk);
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

/// 100 datagrams: a receive queue holds them all (a few hundred would overflow the
/// default queue of a socket that reads only after the sender is done).
#[test]
fn a_no_reply_flood_arrives_as_its_datagrams_in_order_and_leaves_in_runs() {
    let plain = testkit::local_socket(WAIT).unwrap();
    let ran = run_to_end(
        BIN,
        &[
            &plain.local_addr().unwrap().to_string(),
            "-n",
            "100",
            "-i",
            "0",
            "--no-reply",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    for seq in 1..=100 {
        assert_eq!(testkit::recv(&plain).unwrap().0, format!("seq={seq} ping").into_bytes());
    }
    let expected: Vec<u8> = (1..=100)
        .flat_map(|seq| format!("seq={seq} ping").into_bytes())
        .collect();
    for (extra, glued) in [(None, true), (Some("--no-offload"), false)] {
        let rx = gro_socket();
        let target = rx.local_addr().unwrap().to_string();
        let mut args = vec![target.as_str(), "-n", "100", "-i", "0", "--no-reply"];
        args.extend(extra);
        assert_eq!(run_to_end(BIN, &args).code, Some(0));
        let (bytes, glued_receives) = receive_glued(&rx, expected.len());
        assert_eq!(bytes, expected, "{extra:?}");
        assert_eq!(glued_receives > 0, glued, "{extra:?}: {glued_receives} glued receives");
    }
}

#[test]
fn no_offload_where_nothing_is_offloaded_is_a_usage_error() {
    let target = testkit::closed_port().to_string();
    for args in [
        &[target.as_str(), "--no-offload", "hi"][..],
        &[&target, "-n", "3", "-i", "0", "--no-offload"],
    ] {
        let ran = run_to_end(BIN, args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains("--no-offload does nothing with"), "{}", ran.stderr);
        assert!(ran.stderr.contains("--no-reply"), "{}", ran.stderr);
    }
}

/// `--pcap` records each datagram of a GSO run as its own record, with its own bytes.
#[test]
fn a_gso_run_is_recorded_one_datagram_per_record() {
    let plain = testkit::local_socket(WAIT).unwrap();
    let path = testkit::tshark::temp("udp-client", "gso");
    let file = path.to_string_lossy().into_owned();
    let target = plain.local_addr().unwrap().to_string();
    let ran = run_to_end(BIN, &["--pcap", &file, &target, "-n", "50", "-i", "0", "--no-reply"]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let records = common::pcap::read_udp(&path).unwrap();
    let payloads: Vec<Vec<u8>> = records.into_iter().map(|r| r.data).collect();
    let expected: Vec<Vec<u8>> = (1..=50).map(|seq| format!("seq={seq} ping").into_bytes()).collect();
    assert_eq!(payloads, expected);
    std::fs::remove_file(&path).ok();
}
