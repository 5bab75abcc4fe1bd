use std::path::PathBuf;
use std::process::Command;

use common::testkit::Process;

use crate::WAIT;

/// A program built next to this test binary (`cargo test --workspace` builds every binary).
fn bin(name: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let dir: PathBuf = exe.parent().and_then(|deps| deps.parent()).unwrap().to_path_buf();
    let path = dir.join(name);
    assert!(
        path.exists(),
        "{} is missing: run `cargo test --workspace`, which builds it",
        path.display()
    );
    path.to_string_lossy().into_owned()
}

#[test]
fn the_readme_pair_server_and_client_hello() {
    let mut server = Process::spawn(&bin("udp-server"), &["--bind", "127.0.0.1:0"]).unwrap();
    let addr = server.listening(WAIT).unwrap();
    let out = Command::new(bin("udp-client"))
        .args([&addr.to_string(), "hello"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let reply = String::from_utf8_lossy(&out.stdout);
    assert!(reply.starts_with(&format!("{addr}  5 B  hello  rtt ")), "{reply}");
    assert!(server.stdout.next(WAIT).unwrap().ends_with("  5 B  hello"));
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
}

#[test]
fn ping_through_the_real_server_by_name() {
    let mut server = Process::spawn(&bin("udp-server"), &["--bind", "127.0.0.1:0", "--quiet", "--json"]).unwrap();
    let addr = server.listening(WAIT).unwrap();
    let target = format!("localhost:{}", addr.port());
    let out = Command::new(bin("udp-client"))
        .args([&target, "-n", "10", "-i", "5ms", "--json"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(0));
    let stdout = String::from_utf8_lossy(&out.stdout);
    let summary: serde_json::Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (summary["sent"].as_u64(), summary["received"].as_u64()),
        (Some(10), Some(10))
    );
    server.signal("TERM").unwrap();
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    let last: serde_json::Value = serde_json::from_str(&server.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(
        (
            last["event"].as_str(),
            last["received"].as_u64(),
            last["replied"].as_u64()
        ),
        (Some("summary"), Some(10), Some(10))
    );
}
