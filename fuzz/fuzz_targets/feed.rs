//! The feed parser and the per-sender tracker must never panic, whatever arrives: a
//! listener is reachable by anyone who can send it a datagram.
#![no_main]

use libfuzzer_sys::fuzz_target;
use udp_broadcast::feed::{Tracker, parse};

fuzz_target!(|data: &[u8]| {
    // Each NUL-separated piece is one datagram from one of two senders.
    let mut tracker = Tracker::default();
    let senders = ["127.0.0.1:1".parse().unwrap(), "127.0.0.1:2".parse().unwrap()];
    for (i, datagram) in data.split(|&b| b == 0).enumerate() {
        match parse(datagram) {
            Ok(message) => {
                let _ = message.key_value();
                let _ = tracker.observe(senders[i % 2], &message).note();
            }
            Err(why) => {
                let _ = tracker.not_feed(senders[i % 2], why).note();
            }
        }
    }
    let c = tracker.counts();
    assert!(c.malformed + c.foreign <= c.received && c.senders <= 2);
});
