//! tshark, for the tests that check a written pcap file against Wireshark's own dissectors.

use std::path::Path;

use crate::{Process, WAIT};

/// Whether tshark is installed. Absent, it says so loudly on stderr, and fails the test
/// under CI (`CI=true`), where `.ci/run` installs it.
///
/// # Panics
/// When `CI=true` and tshark is not installed.
pub fn available() -> bool {
    let found = std::process::Command::new("tshark")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    if !found {
        assert!(
            std::env::var("CI").as_deref() != Ok("true"),
            "tshark is not installed, and CI=true needs it (apt-get install tshark)"
        );
        eprintln!("SKIPPED: the tshark checks of this test: tshark is not installed (apt-get install tshark)");
    }
    found
}

/// tshark's stdout lines for `args`, with a deadline.
///
/// # Panics
/// When tshark does not start, exit 0 within the deadline.
pub fn run(args: &[&str]) -> Vec<String> {
    let mut tshark = Process::spawn("tshark", args).expect("tshark starts");
    let status = tshark.wait(WAIT * 4).expect("tshark ends within its deadline");
    let lines = tshark.stdout.rest(WAIT);
    let errors = tshark.stderr.rest(WAIT);
    assert!(status.success(), "tshark {args:?}: {status}, stderr {errors:?}");
    lines
}

/// One line per packet, tab-separated: source address (IPv4 or IPv6), source port,
/// destination port, UDP length, checksum status (1 = good, 0 = bad, 2 = unverified, 3 = none), captured
/// length, length, payload in hex; checksums checked. Every port's payload is decoded as
/// plain data (see [`expert`]), so a port Wireshark knows cannot change the columns.
pub fn fields(path: &Path) -> Vec<String> {
    let mut args = as_data(path);
    args.extend(
        [
            "-T",
            "fields",
            "-E",
            "occurrence=f",
            "-e",
            "ip.src",
            "-e",
            "ipv6.src",
            "-e",
            "udp.srcport",
            "-e",
            "udp.dstport",
            "-e",
            "udp.length",
            "-e",
            "udp.checksum.status",
            "-e",
            "frame.cap_len",
            "-e",
            "frame.len",
            "-e",
            "udp.payload",
        ]
        .map(String::from),
    );
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// `-r FILE`, checksums checked, and every port in the file decoded as plain data:
/// Wireshark would otherwise guess a protocol from the port (it takes 7788 for TAPA, and
/// an ephemeral port may be 47808, BACnet) and call a datagram of ours a malformed one of
/// that protocol.
fn as_data(path: &Path) -> Vec<String> {
    let mut ports: Vec<u16> = common::pcap::read_udp(path)
        .expect("the capture reads back")
        .iter()
        .flat_map(|c| [c.src.port(), c.dst.port()])
        .collect();
    ports.sort_unstable();
    ports.dedup();
    let mut args = vec![
        "-r".to_string(),
        path.to_string_lossy().into_owned(),
        "-o".into(),
        "udp.check_checksum:TRUE".into(),
    ];
    for port in ports {
        args.extend(["-d".to_string(), format!("udp.port=={port},data")]);
    }
    args
}

/// Every packet tshark has an expert note about (a bad checksum, a malformed packet),
/// every port's payload decoded as plain data.
///
/// # Panics
/// When the file cannot be read back, or tshark fails.
pub fn expert(path: &Path) -> Vec<String> {
    let mut args = as_data(path);
    args.extend(["-Y".to_string(), "_ws.expert".into()]);
    run(&args.iter().map(String::as_str).collect::<Vec<_>>())
}

/// The line [`fields`] prints for a whole datagram of `payload` from `src` to `dst`, its
/// checksum good.
pub fn line(src: std::net::SocketAddr, dst: std::net::SocketAddr, payload: &[u8]) -> String {
    let (v4, v6, ip_header) = match src.ip() {
        std::net::IpAddr::V4(ip) => (ip.to_string(), String::new(), 20),
        std::net::IpAddr::V6(ip) => (String::new(), ip.to_string(), 40),
    };
    let udp = payload.len() + 8;
    let total = udp + ip_header;
    let hex: String = payload.iter().map(|b| format!("{b:02x}")).collect();
    format!(
        "{v4}\t{v6}\t{}\t{}\t{udp}\t1\t{total}\t{total}\t{hex}",
        src.port(),
        dst.port()
    )
}

/// Checks a capture both ways: `common::pcap::read_udp` finds exactly `expected` (sender,
/// receiver, payload, whole), in order, and tshark (when installed) shows the same
/// senders, ports and payloads with every UDP checksum good and no expert note.
///
/// # Panics
/// When the file does not read back as `expected`.
pub fn assert_capture(path: &Path, expected: &[(std::net::SocketAddr, std::net::SocketAddr, Vec<u8>)]) {
    let back = common::pcap::read_udp(path).expect("the capture reads back");
    let seen: Vec<_> = back.iter().map(|c| (c.src, c.dst, c.data.clone())).collect();
    assert_eq!(seen, expected, "what read_udp finds in {}", path.display());
    assert!(back.iter().all(|c| c.len == c.data.len()), "a record is cut: {back:?}");
    if available() {
        let lines: Vec<String> = expected.iter().map(|(src, dst, data)| line(*src, *dst, data)).collect();
        assert_eq!(fields(path), lines, "what tshark shows in {}", path.display());
        assert_eq!(expert(path), Vec::<String>::new(), "tshark's expert notes");
    }
}

/// A capture file's path in the temporary directory, unique to this test process and name.
pub fn temp(program: &str, name: &str) -> std::path::PathBuf {
    std::env::temp_dir().join(format!("{program}-{}-{name}.pcap", std::process::id()))
}
