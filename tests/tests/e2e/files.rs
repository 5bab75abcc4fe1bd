//! A file across UDP: `udp-client --file` to `udp-server --save`. Intact on loopback; through
//! `--drop`, short by exactly the chunks the server dropped (the chapter's unreliability, in
//! a file).

use testkit::{Process, WAIT, bin, run_to_end};

/// 1 MiB of bytes that look random (seeded, the same every run).
fn random_file(name: &str) -> (std::path::PathBuf, Vec<u8>) {
    let mut rng = common::rng::Rng::new(1);
    let data: Vec<u8> = (0..1 << 20).map(|_| rng.next_u64() as u8).collect();
    let path = std::env::temp_dir().join(format!("udp-file-{name}-{}.bin", std::process::id()));
    std::fs::write(&path, &data).unwrap();
    (path, data)
}

/// Starts `udp-server --reply none --save OUT ARGS…`, sends `file` with `udp-client --file`,
/// stops the server and returns what it saved and its summary.
fn send_and_save(file: &std::path::Path, args: &[&str]) -> (Vec<u8>, serde_json::Value) {
    let out = file.with_extension("saved");
    let _ = std::fs::remove_file(&out);
    // 713 chunks and a marker: the server stops by itself once it has read all it will get.
    // A roomy receive queue: the test runs beside others that load the machine.
    let mut all = vec![
        "--bind",
        "127.0.0.1:0",
        "--reply",
        "none",
        "-q",
        "--json",
        "--count",
        "714",
    ];
    all.extend_from_slice(&["--recv-buffer", "1000000", "--save", out.to_str().unwrap()]);
    all.extend_from_slice(args);
    let mut server = Process::spawn(&bin("udp-server"), &all).unwrap();
    let addr = server.listening(WAIT).unwrap().to_string();
    let client = run_to_end(
        &bin("udp-client"),
        &[&addr, "--file", file.to_str().unwrap(), "--no-reply"],
    );
    assert_eq!(client.code, Some(0), "{}", client.stderr);
    assert!(
        client.stderr.contains("sent 1048576 B in 713 chunks"),
        "{}",
        client.stderr
    );
    // The 714th datagram, after every chunk (the server's queue is first in, first out).
    let marker = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    marker
        .send_to(b"", addr.parse::<std::net::SocketAddr>().unwrap())
        .unwrap();
    if server.wait(WAIT).is_none() {
        // Something was lost in the kernel's queue, so the count is never reached: stop it,
        // and its summary says what was dropped.
        server.signal("TERM").unwrap();
    }
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary: serde_json::Value = serde_json::from_str(&server.stdout.rest(WAIT).pop().unwrap()).unwrap();
    let saved = std::fs::read(&out).unwrap();
    std::fs::remove_file(&out).unwrap();
    (saved, summary)
}

#[test]
fn a_file_crosses_loopback_intact() {
    let (path, data) = random_file("intact");
    let (saved, summary) = send_and_save(&path, &[]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(summary["kernel_drops"].as_u64(), Some(0), "{summary}");
    assert_eq!(saved.len(), data.len());
    assert!(saved == data, "the saved file differs from the one sent");
}

/// With `--drop 0.01`, the saved file is the sent one with exactly the dropped chunks
/// missing: walking the 1472-byte chunks in order, each is either next in the saved file or
/// absent, and the absent ones are as many as the server says it dropped.
#[test]
fn a_file_through_drop_arrives_short_by_exactly_the_dropped_chunks() {
    let (path, data) = random_file("drop");
    let (saved, summary) = send_and_save(&path, &["--drop", "0.01", "--seed", "4"]);
    std::fs::remove_file(&path).unwrap();
    let dropped = summary["dropped"].as_u64().unwrap();
    assert!(dropped > 0, "{summary}");
    let (mut at, mut missing) = (0, 0u64);
    for chunk in data.chunks(1472) {
        if saved[at..].starts_with(chunk) {
            at += chunk.len();
        } else {
            missing += 1;
        }
    }
    assert_eq!((at, missing), (saved.len(), dropped), "{summary}");
    assert!(saved.len() < data.len());
}

#[test]
fn a_missing_file_is_a_one_line_usage_error() {
    let ran = run_to_end(
        &bin("udp-client"),
        &["9", "--file", "/nonexistent-dir/fw.bin", "--no-reply"],
    );
    assert_eq!(ran.code, Some(2));
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(
        ran.stderr
            .contains("cannot read --file /nonexistent-dir/fw.bin: no such file or directory"),
        "{}",
        ran.stderr
    );
}
