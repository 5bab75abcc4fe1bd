//! `udp-client --replay`: a capture of the chapter's Python client, made by `udp-server
//! --pcap`, sent again to a second server, which receives the same payloads in order.

use std::net::SocketAddr;
use std::process::Command;

use serde_json::Value;
use testkit::{Process, WAIT, bin, tshark};

/// The repository's root, where `scripts/peers/` is.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// The chapter's Python client sends `message` to `addr` and prints the echo.
fn chapter_client(addr: SocketAddr, message: &str) {
    let python = Command::new("python3")
        .arg(root().join("scripts/peers/chapter_client.py"))
        .args(["127.0.0.1", &addr.port().to_string(), message])
        .output()
        .expect("python3 runs (the chapter's own client, which gives up after 5 s)");
    assert_eq!(python.status.code(), Some(0), "{python:?}");
    assert_eq!(String::from_utf8_lossy(&python.stdout), format!("{message}\n"));
}

/// A `udp-server --json --count N` with `args`, and its address.
fn server(count: usize, args: &[&str]) -> (Process, SocketAddr) {
    let count = count.to_string();
    let mut all = vec!["--json", "--count", &count];
    all.extend_from_slice(args);
    Process::server(&bin("udp-server"), &all)
}

/// The payloads a `--json` server printed, once it stopped by its `--count`.
fn payloads(mut server: Process) -> Vec<String> {
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    server
        .stdout
        .rest(WAIT)
        .iter()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|e| e["event"] == "recv")
        .map(|e| e["text"].as_str().unwrap().to_string())
        .collect()
}

/// Three runs of the Python client (each from its own port) to a server that writes a
/// capture: six records (three requests, three echoes). `--replay` with `--filter-port`
/// of the first server's port sends the three requests, in order, to a second server at
/// the recorded pace, and shows the three echoes; the summary counts them.
#[test]
fn a_replay_of_the_python_clients_capture_sends_the_same_payloads_in_order() {
    let path = tshark::temp("replay", "python");
    let file = path.to_string_lossy().into_owned();
    let messages = ["hello", "你好 from Python", "third"];
    let (first, first_addr) = server(messages.len(), &["--pcap", &file]);
    for message in messages {
        chapter_client(first_addr, message);
    }
    assert_eq!(payloads(first), messages);
    assert_eq!(common::pcap::read_udp(&path).unwrap().len(), 6);

    let (second, second_addr) = server(messages.len(), &[]);
    let port = first_addr.port().to_string();
    let mut client = Process::spawn(
        &bin("udp-client"),
        &[
            "--json",
            "--replay",
            &file,
            "--filter-port",
            &port,
            &second_addr.to_string(),
        ],
    )
    .unwrap();
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert_eq!(payloads(second), messages);
    let lines: Vec<Value> = client
        .stdout
        .rest(WAIT)
        .iter()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let echoes: Vec<&str> = lines
        .iter()
        .filter(|e| e["event"] == "reply")
        .map(|e| e["text"].as_str().unwrap())
        .collect();
    assert_eq!(echoes, messages);
    let summary = lines.last().unwrap();
    assert_eq!(
        (
            summary["sent"].as_u64(),
            summary["received"].as_u64(),
            summary["lost"].as_u64()
        ),
        (Some(3), Some(3), Some(0)),
        "{summary}"
    );
    std::fs::remove_file(&path).ok();
}
