//! `--pcap FILE`: every datagram received and every reply sent, read back by tshark
//! (Wireshark's own dissectors, checksums checked) and by `common::pcap::read_udp`.

use std::net::{SocketAddr, UdpSocket};

use testkit::{Process, tshark};

use crate::WAIT;
use crate::process::BIN;

/// Runs a server with `args` and `--count` = the number of `payloads`, sends each from a
/// socket bound to `client` to `to_ip` at the server's port and waits for its echo, then lets the
/// server stop; returns the client's address and the server's port.
fn echo_each(args: &[&str], client: &str, to_ip: &str, payloads: &[&[u8]]) -> (SocketAddr, SocketAddr) {
    let count = payloads.len().to_string();
    let mut all = vec!["--count", &count];
    all.extend_from_slice(args);
    let mut server = Process::spawn(BIN, &all).unwrap();
    let addr = server.listening(WAIT).expect("a listening line first");
    let to = SocketAddr::new(to_ip.parse().unwrap(), addr.port());
    let client = UdpSocket::bind(client).unwrap();
    client.set_read_timeout(Some(WAIT)).unwrap();
    for payload in payloads {
        client.send_to(payload, to).unwrap();
        let (echo, from) = testkit::recv(&client).unwrap();
        assert_eq!((echo.as_slice(), from), (*payload, to));
    }
    let status = server.wait(WAIT).expect("the server stops after --count");
    let stderr = server.stderr.rest(WAIT);
    assert_eq!(status.code(), Some(0), "{stderr:?}");
    let n = payloads.len() * 2;
    assert!(
        stderr.iter().any(|l| l.contains(&format!("wrote {n} datagrams to "))),
        "{stderr:?}"
    );
    (client.local_addr().unwrap(), to)
}

/// Each request, then its echo (from the address the client wrote to).
fn requests_and_echoes(
    client: SocketAddr,
    server: SocketAddr,
    payloads: &[&[u8]],
) -> Vec<(SocketAddr, SocketAddr, Vec<u8>)> {
    payloads
        .iter()
        .flat_map(|p| [(client, server, p.to_vec()), (server, client, p.to_vec())])
        .collect()
}

const PAYLOADS: [&[u8]; 3] = [b"hello", b"", &[0x01, 0x03, 0x00, 0x00, 0xff, 0x0a]];

/// The plain loop: three requests (one empty, one binary) and their three echoes, six
/// records in order with the real addresses and ports, every checksum good in tshark.
#[test]
fn requests_and_replies_are_in_the_pcap_file() {
    echoed_and_captured("echo", &[]);
}

/// A server on 127.0.0.1 with `extra` flags echoes [`PAYLOADS`]; its pcap file holds each
/// request and each echo, in order.
fn echoed_and_captured(name: &str, extra: &[&str]) {
    let path = tshark::temp("udp-server", name);
    let file = path.to_string_lossy();
    let mut args = vec!["--bind", "127.0.0.1:0", "--pcap", &file];
    args.extend_from_slice(extra);
    let (client, server) = echo_each(&args, "127.0.0.1:0", "127.0.0.1", &PAYLOADS);
    tshark::assert_capture(&path, &requests_and_echoes(client, server, &PAYLOADS));
    std::fs::remove_file(&path).ok();
}

/// On 0.0.0.0 the records name the address the client wrote to (packet info), not
/// 0.0.0.0; over IPv6 the records are IPv6.
#[test]
fn the_records_name_the_real_addresses_on_any_address_and_over_ipv6() {
    for (name, bind, client, to) in [
        ("any", "0.0.0.0:0", "127.0.0.1:0", "127.0.0.1"),
        ("v6", "[::1]:0", "[::1]:0", "::1"),
    ] {
        let path = tshark::temp("udp-server", name);
        let file = path.to_string_lossy();
        let (client, server) = echo_each(&["--bind", bind, "--pcap", &file], client, to, &PAYLOADS[..2]);
        tshark::assert_capture(&path, &requests_and_echoes(client, server, &PAYLOADS[..2]));
        std::fs::remove_file(&path).ok();
    }
}

/// `--batch` (recvmmsg/sendmmsg): the replies are recorded once sendmmsg has sent them.
#[cfg(target_os = "linux")]
#[test]
fn batched_requests_and_replies_are_in_the_pcap_file() {
    echoed_and_captured("batch", &["--batch", "8"]);
}

/// Requests that are not answered (`--reply none`) are recorded, and no reply is.
#[test]
fn a_request_not_answered_is_recorded_alone() {
    let path = tshark::temp("udp-server", "none");
    let (mut server, addr) = Process::server(
        BIN,
        &[
            "--reply",
            "none",
            "--count",
            "2",
            "--quiet",
            "--pcap",
            &path.to_string_lossy(),
        ],
    );
    let client = testkit::local_socket(WAIT).unwrap();
    client.send_to(b"one", addr).unwrap();
    client.send_to(b"two", addr).unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let me = client.local_addr().unwrap();
    tshark::assert_capture(&path, &[(me, addr, b"one".to_vec()), (me, addr, b"two".to_vec())]);
    std::fs::remove_file(&path).ok();
}

/// A file that cannot be created is a runtime error before `listening`, naming the file.
#[test]
fn a_pcap_file_that_cannot_be_written_fails_at_start() {
    // A directory inside a plain file cannot exist, on any OS.
    let file = tshark::temp("udp-server", "not-a-dir");
    std::fs::write(&file, b"").unwrap();
    let path = file.join("x.pcap");
    let ran = testkit::run_to_end(BIN, &["--bind", "127.0.0.1:0", "--pcap", &path.to_string_lossy()]);
    std::fs::remove_file(&file).ok();
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stdout.is_empty(), "{}", ran.stdout);
    let said = format!("cannot write the pcap file {}", path.display());
    assert!(ran.stderr.contains(&said), "{}", ran.stderr);
}
