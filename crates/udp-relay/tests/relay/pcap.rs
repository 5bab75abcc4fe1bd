//! `--pcap FILE`: both sides of the relay in one capture (client to relay, relay to server,
//! and back), read back by `common::pcap::read_udp` and by tshark.

use testkit::{WAIT, tshark};
use udp_relay::Config;

use crate::{ask, echo, relay, to};

/// Two requests through the relay: each one four records in the order they crossed the
/// wire (client → relay, upstream socket → server, server → upstream socket, relay →
/// client), with the real addresses and ports of each side, every checksum good.
#[test]
fn both_sides_of_the_relay_are_in_the_pcap_file() {
    let server = echo();
    let path = tshark::temp("udp-relay", "both");
    let r = relay(Config {
        pcap: Some(path.clone()),
        ..to(&server)
    });
    let client = testkit::local_socket(WAIT).unwrap();
    let payloads: [&[u8]; 2] = [b"hello", &[0x00, 0xff, 0x10]];
    for payload in payloads {
        assert_eq!(ask(&client, r.addr, payload), Some((payload.to_vec(), r.addr)));
    }
    let summary = r.stop();
    assert_eq!((summary.up.forwarded, summary.down.forwarded), (2, 2));
    let upstream = server.seen.lock().unwrap()[0].0;
    let me = client.local_addr().unwrap();
    let expected: Vec<_> = payloads
        .iter()
        .flat_map(|p| {
            [
                (me, r.addr, p.to_vec()),
                (upstream, server.addr, p.to_vec()),
                (server.addr, upstream, p.to_vec()),
                (r.addr, me, p.to_vec()),
            ]
        })
        .collect();
    tshark::assert_capture(&path, &expected);
    std::fs::remove_file(&path).ok();
}

/// A datagram the relay refuses (its source is outside --allow) is recorded as it
/// arrived, and nothing goes up.
#[test]
fn a_refused_datagram_is_recorded_and_not_forwarded() {
    let server = echo();
    let path = tshark::temp("udp-relay", "refused");
    let r = relay(Config {
        pcap: Some(path.clone()),
        allow: vec!["10.0.0.0/8".parse().unwrap()],
        ..to(&server)
    });
    let client = testkit::local_socket(std::time::Duration::from_millis(200)).unwrap();
    assert_eq!(ask(&client, r.addr, b"not you"), None);
    let summary = r.stop();
    assert_eq!((summary.not_allowed, summary.up.forwarded), (1, 0));
    let me = client.local_addr().unwrap();
    tshark::assert_capture(&path, &[(me, r.addr, b"not you".to_vec())]);
    std::fs::remove_file(&path).ok();
}
