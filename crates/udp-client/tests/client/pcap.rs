//! `--pcap FILE` in every mode: every datagram sent and received, read back by
//! `common::pcap::read_udp` and by tshark (Wireshark's dissectors, checksums checked).

use std::io::Write;
use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use common::pcap::read_udp;
use testkit::{Process, WAIT, tshark};

use crate::{BIN, Peer};

/// Runs the client with `args`, `--pcap FILE` and `stdin` against `peer` (an echo), to its
/// end; checks that it exits 0, that the file holds exactly the datagrams the peer saw
/// (from the client's address, in order) and the echoes it sent back (to that address), and
/// that tshark agrees. Returns the records, sender, receiver and payload each.
fn recorded(name: &str, peer: &Peer, args: &[&str], stdin: &[u8]) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    let path = tshark::temp("udp-client", name);
    let file = path.to_string_lossy();
    let mut all = vec!["--pcap", &file];
    all.extend_from_slice(args);
    let mut client = Process::spawn_with_stdin(BIN, &all).unwrap();
    let mut input = client.stdin.take().unwrap();
    let _ = input.write_all(stdin);
    drop(input);
    let status = client.wait(WAIT).expect("the client ends within WAIT");
    let stderr = client.stderr.rest(WAIT);
    assert_eq!(status.code(), Some(0), "{stderr:?}");
    let mut seen = Vec::new();
    while let Ok(datagram) = peer.seen.recv_timeout(Duration::from_millis(200)) {
        seen.push(datagram);
    }
    assert!(!seen.is_empty(), "the peer saw nothing");
    let from = seen[0].1;
    let records: Vec<_> = read_udp(&path)
        .unwrap()
        .into_iter()
        .map(|c| (c.src, c.dst, c.data))
        .collect();
    let sent: Vec<_> = records
        .iter()
        .filter(|r| r.0.port() == from.port())
        .map(|r| (r.1, r.2.clone()))
        .collect();
    let got: Vec<_> = records
        .iter()
        .filter(|r| r.1.port() == from.port())
        .map(|r| (r.0, r.2.clone()))
        .collect();
    let (mut echoes, mut expected): (Vec<_>, Vec<_>) = (got.clone(), Vec::new());
    for (data, _) in &seen {
        expected.push(data.clone());
    }
    assert_eq!(sent.iter().map(|s| s.1.clone()).collect::<Vec<_>>(), expected, "sent");
    assert_eq!(
        sent.len() + got.len(),
        records.len(),
        "every record is ours: {records:?}"
    );
    echoes.sort();
    let mut sorted: Vec<_> = expected.iter().map(|d| (peer.addr, d.clone())).collect();
    sorted.sort();
    assert_eq!(echoes, sorted, "each echo recorded, from the peer");
    let n = records.len();
    assert!(
        stderr.iter().any(|l| l.contains(&format!("wrote {n} datagram"))),
        "{stderr:?}"
    );
    tshark::assert_capture(&path, &records);
    std::fs::remove_file(&path).ok();
    records
}

/// One-shot: the request, then the reply, with the client's real address (connected, the
/// OS chose 127.0.0.1) and the peer's.
#[test]
fn a_one_shot_records_its_request_and_the_reply() {
    let peer = Peer::echo();
    let records = recorded("one-shot", &peer, &[&peer.addr.to_string(), "hello"], b"");
    let client = records[0].0;
    assert_eq!(client.ip().to_string(), "127.0.0.1");
    assert_eq!(
        records,
        [
            (client, peer.addr, b"hello".to_vec()),
            (peer.addr, client, b"hello".to_vec())
        ]
    );
}

/// Ping, flood, repeat, a file and the interactive mode: every datagram each sent and
/// every echo it received.
#[test]
fn every_mode_records_what_it_sent_and_received() {
    let dir = std::env::temp_dir().join(format!("udp-client-pcap-file-{}", std::process::id()));
    std::fs::write(&dir, vec![b'x'; 2500]).unwrap();
    let file = dir.to_string_lossy().into_owned();
    let runs: [(&str, Vec<&str>, &[u8], usize); 5] = [
        ("ping", vec!["--count", "3", "--interval", "20ms"], b"", 3),
        ("flood", vec!["--count", "20", "--interval", "0"], b"", 20),
        ("repeat", vec!["--repeat", "4", "--interval", "5ms"], b"", 4),
        ("file", vec!["--file", &file, "--chunk", "1000"], b"", 3),
        ("interactive", vec![], b"one\ntwo\n", 2),
    ];
    for (name, args, stdin, sent) in runs {
        let peer = Peer::echo();
        let target = peer.addr.to_string();
        let mut all = args.clone();
        all.push(&target);
        if name == "repeat" {
            all.push("again");
        }
        let records = recorded(name, &peer, &all, stdin);
        assert_eq!(records.len(), 2 * sent, "{name}: {records:?}");
    }
    std::fs::remove_file(&dir).ok();
}

/// `--broadcast` (unconnected): the probe to 127.255.255.255 and the reply from the one
/// responder. The client's side shows 0.0.0.0 and its port: an unconnected socket's
/// source address is chosen per datagram, and the OS does not tell it.
#[test]
fn a_discovery_records_the_probe_and_each_reply() {
    let peer = Peer::on(UdpSocket::bind("0.0.0.0:0").unwrap(), |_, data| vec![data.to_vec()]);
    let to = format!("127.255.255.255:{}", peer.addr.port());
    let path = tshark::temp("udp-client", "discover");
    let file = path.to_string_lossy();
    let mut client = Process::spawn(BIN, &["--pcap", &file, "--broadcast", "--timeout", "300ms", &to, "who"]).unwrap();
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    let (_, from) = peer.next();
    let back = read_udp(&path).unwrap();
    let seen: Vec<_> = back.iter().map(|c| (c.src.port(), c.dst, c.data.as_slice())).collect();
    let responder = SocketAddr::from(([127, 0, 0, 1], peer.addr.port()));
    assert_eq!(seen[0], (from.port(), to.parse().unwrap(), &b"who"[..]));
    assert_eq!(
        (back[1].src, back[1].dst.port(), back[1].data.as_slice()),
        (responder, from.port(), &b"who"[..])
    );
    assert_eq!(back.len(), 2);
    let records: Vec<_> = back.into_iter().map(|c| (c.src, c.dst, c.data)).collect();
    tshark::assert_capture(&path, &records);
    std::fs::remove_file(&path).ok();
}
