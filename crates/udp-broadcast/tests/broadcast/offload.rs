//! `listen --offload` (GRO, Linux): a GSO burst of feed messages, glued by the kernel into
//! one buffer, is heard as its messages, each printed and tracked on its own.

use common::output::OutputOptions;
use udp_broadcast::{ListenConfig, ListenSummary};

use crate::WAIT;

#[test]
fn a_gro_buffer_of_feed_messages_is_heard_one_message_at_a_time() {
    let config = ListenConfig {
        bind: Some("127.0.0.1:0".parse().unwrap()),
        count: Some(8),
        offload: true,
        output: OutputOptions::default(),
        ..Default::default()
    };
    let listener: testkit::InProcess<ListenSummary> = testkit::InProcess::start(config.output, move |stop, out| {
        udp_broadcast::listen(&config, stop, out)
    });
    // seq=5 is missing: one lost, whatever the buffer it would have been in.
    let messages: Vec<Vec<u8>> = [1, 2, 3, 4, 6, 7, 8, 9]
        .map(|n| format!("seq={n} hello").into_bytes())
        .into();
    let run: Vec<&[u8]> = messages.iter().map(Vec::as_slice).collect();
    let sender = testkit::local_socket(WAIT).unwrap();
    testkit::offload::send_gso(&sender, listener.addr, &run).unwrap();
    for n in [1, 2, 3, 4, 6, 7, 8, 9] {
        let line = listener.lines.next(WAIT).unwrap();
        assert!(line.contains(&format!("11 B  seq={n} hello")), "{line}");
    }
    let summary = listener.finish().unwrap();
    assert_eq!(
        (summary.counts.received, summary.counts.lost, summary.counts.senders),
        (8, 1, 1)
    );
}
