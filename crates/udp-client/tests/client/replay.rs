//! `--replay FILE`: the payloads of a capture (pcap or pcapng) sent again to TARGET, chosen
//! by `--filter-port`/`--filter-src`, at the recorded pace or every `--interval`; a file
//! that cannot be replayed is a usage error (exit 2).

use std::fs::File;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant, SystemTime};

use common::pcap::{Packet, Writer};
use testkit::{Process, WAIT, tshark};

use crate::{BIN, Peer};

fn addr(text: &str) -> SocketAddr {
    text.parse().unwrap()
}

/// A capture of a device (192.168.1.50:5000) talking to a server (10.0.0.1:7000), another
/// sender (192.168.1.51:6000) in between, recorded half a second apart: requests `one`,
/// `two`, `three` to port 7000, the server's replies from it, `other` from the other sender.
fn conversation(name: &str) -> PathBuf {
    let path = tshark::temp("udp-client-replay", name);
    let mut pcap = Writer::create(&path).unwrap();
    let (device, server, other) = (
        addr("192.168.1.50:5000"),
        addr("10.0.0.1:7000"),
        addr("192.168.1.51:6000"),
    );
    let start = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
    let at = |ms: u64| start + Duration::from_millis(ms);
    let records: [(SocketAddr, SocketAddr, &[u8], u64); 6] = [
        (device, server, b"one", 0),
        (server, device, b"reply one", 10),
        (other, addr("10.0.0.1:7001"), b"other", 20),
        (device, server, b"two", 500),
        (server, device, b"reply two", 510),
        (device, server, b"three", 1000),
    ];
    for (src, dst, data, ms) in records {
        pcap.record(&Packet {
            time: at(ms),
            ..Packet::new(src, dst, data)
        });
    }
    path
}

/// Runs the client to its end with `args` (within WAIT); its exit code, stderr and how long
/// it took.
fn run(args: &[&str]) -> (Option<i32>, Vec<String>, Duration) {
    let started = Instant::now();
    let mut client = Process::spawn(BIN, args).unwrap();
    let status = client.wait(WAIT).expect("the client ends within WAIT");
    (status.code(), client.stderr.rest(WAIT), started.elapsed())
}

/// `--filter-port 7000` picks the three requests (not the replies from port 7000, not the
/// datagram to 7001); at the recorded pace they take the second they took, and the peer
/// gets them in order; with `--interval 10ms` the same three go out at once.
#[test]
fn the_requests_go_again_at_the_recorded_pace_or_an_interval() {
    let path = conversation("pace");
    let file = path.to_string_lossy();
    for (pace, took_at_least, took_less) in [
        (vec![], Duration::from_millis(1000), None),
        (
            vec!["--interval", "10ms"],
            Duration::from_millis(20),
            Some(Duration::from_millis(1000)),
        ),
    ] {
        let peer = Peer::echo();
        let target = peer.addr.to_string();
        let mut args = vec!["--replay", &file, "--filter-port", "7000"];
        args.extend(pace);
        args.push(&target);
        let (code, stderr, took) = run(&args);
        assert_eq!(code, Some(0), "{stderr:?}");
        let seen = peer.all(Duration::from_millis(100));
        assert_eq!(seen, [&b"one"[..], b"two", b"three"], "{args:?}");
        assert!(took >= took_at_least, "{args:?} took {took:?}");
        assert!(took_less.is_none_or(|less| took < less), "{args:?} took {took:?}");
        assert_eq!(
            stderr.last().map(String::as_str),
            Some("udp-client: sent 3 datagrams, received 3, lost 0")
        );
    }
    std::fs::remove_file(&path).ok();
}

/// `--filter-src IP` takes every datagram of that host; `IP:PORT` only that socket's.
#[test]
fn filter_src_picks_a_sender() {
    let path = conversation("src");
    let file = path.to_string_lossy();
    for (src, expected) in [
        ("10.0.0.1", vec![&b"reply one"[..], b"reply two"]),
        ("192.168.1.51:6000", vec![&b"other"[..]]),
    ] {
        let peer = Peer::echo();
        let target = peer.addr.to_string();
        let (code, stderr, _) = run(&["--replay", &file, "--filter-src", src, "--interval", "1ms", &target]);
        assert_eq!(code, Some(0), "{stderr:?}");
        assert_eq!(peer.all(Duration::from_millis(100)), expected, "--filter-src {src}");
    }
    std::fs::remove_file(&path).ok();
}

/// The same conversation as a pcapng file (what Wireshark saves by default).
#[test]
fn a_pcapng_capture_replays_too() {
    let pcap = conversation("for-ng");
    let ng = pcapng_of(&pcap);
    let peer = Peer::echo();
    let target = peer.addr.to_string();
    let file = ng.to_string_lossy();
    let (code, stderr, _) = run(&["--replay", &file, "--filter-port", "7000", "--interval", "1ms", &target]);
    assert_eq!(code, Some(0), "{stderr:?}");
    assert_eq!(peer.all(Duration::from_millis(100)), [&b"one"[..], b"two", b"three"]);
    std::fs::remove_file(&pcap).ok();
    std::fs::remove_file(&ng).ok();
}

/// The records of the pcap file at `path`, rewritten as pcapng (one RAW interface,
/// nanosecond ticks).
fn pcapng_of(path: &Path) -> PathBuf {
    use pcap_file::pcapng::PcapNgWriter;
    use pcap_file::pcapng::blocks::enhanced_packet::EnhancedPacketBlock;
    use pcap_file::pcapng::blocks::interface_description::{InterfaceDescriptionBlock, InterfaceDescriptionOption};
    let ng = path.with_extension("pcapng");
    let mut reader = pcap_file::pcap::PcapReader::new(File::open(path).unwrap()).unwrap();
    let mut writer = PcapNgWriter::new(File::create(&ng).unwrap()).unwrap();
    let mut idb = InterfaceDescriptionBlock::new(pcap_file::DataLink::RAW, 65_535);
    idb.options.push(InterfaceDescriptionOption::IfTsResol(9));
    writer.write_pcapng_block(idb).unwrap();
    while let Some(packet) = reader.next_packet() {
        let packet = packet.unwrap();
        let block = EnhancedPacketBlock {
            interface_id: 0,
            timestamp: packet.timestamp,
            original_len: packet.orig_len,
            data: packet.data.into_owned().into(),
            options: vec![],
        };
        writer.write_pcapng_block(block).unwrap();
    }
    ng
}

/// A missing file, a file that is not a capture, nothing matching the filters, a MESSAGE
/// beside --replay, a filter without --replay: each a one-line usage error, exit 2, and
/// nothing sent.
#[test]
fn a_capture_that_cannot_be_replayed_is_a_usage_error() {
    let path = conversation("usage");
    let file = path.to_string_lossy().into_owned();
    let text = tshark::temp("udp-client-replay", "text");
    std::fs::write(&text, "not a capture\n").unwrap();
    let text_file = text.to_string_lossy().into_owned();
    let missing = tshark::temp("udp-client-replay", "missing")
        .to_string_lossy()
        .into_owned();
    let peer = Peer::echo();
    let target = peer.addr.to_string();
    let cases: [(Vec<&str>, &str); 5] = [
        (vec!["--replay", &missing], "cannot read the capture"),
        (vec!["--replay", &text_file], "is it a pcap or pcapng file"),
        (
            vec!["--replay", &file, "--filter-port", "9"],
            "none matching --filter-port/--filter-src",
        ),
        (vec!["--replay", &file, &target, "hello"], "leave out MESSAGE"),
        (vec!["--filter-port", "7000", &target, "hello"], "--replay"),
    ];
    for (args, said) in cases {
        let mut all = args.clone();
        if all.len() == 2 {
            all.push(&target);
        }
        let (code, stderr, _) = run(&all);
        assert_eq!(code, Some(2), "{all:?}: {stderr:?}");
        assert!(stderr.iter().any(|l| l.contains(said)), "{all:?}: {stderr:?}");
    }
    assert_eq!(peer.all(Duration::from_millis(100)), Vec::<Vec<u8>>::new());
    std::fs::remove_file(&path).ok();
    std::fs::remove_file(&text).ok();
}
