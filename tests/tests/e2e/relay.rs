//! `udp-relay` between programs no one here wrote (the chapter's Python client and server,
//! `nc -u`) and the workspace's own, as real processes; the fault counts of all three ends
//! agree.

use std::net::SocketAddr;
use std::process::Command;

use serde_json::Value;
use testkit::{Process, WAIT, bin, example};

/// The repository's root, where `scripts/peers/` is.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

/// A relay process on 127.0.0.1:0 to `to`, and the address it listens on.
fn relay(to: SocketAddr, args: &[&str]) -> (Process, SocketAddr) {
    let to = to.to_string();
    let mut all = vec!["--to", to.as_str()];
    all.extend_from_slice(args);
    Process::server(&bin("udp-relay"), &all)
}

/// The chapter's Python client, sending `message` to `addr`; what it printed.
fn chapter_client(addr: SocketAddr, message: &str) -> String {
    let python = Command::new("python3")
        .arg(root().join("scripts/peers/chapter_client.py"))
        .args(["127.0.0.1", &addr.port().to_string(), message])
        .output()
        .expect("python3 runs (the chapter's own client, which gives up after 5 s)");
    assert_eq!(python.status.code(), Some(0), "{python:?}");
    String::from_utf8_lossy(&python.stdout).into_owned()
}

/// Stops a process with SIGTERM and returns its `--json` summary (its last stdout line).
fn summary(mut p: Process) -> Value {
    p.signal("TERM").unwrap();
    let line = p
        .stdout
        .find(WAIT, |l| l.contains("\"summary\""))
        .expect("a JSON summary");
    assert_eq!(p.wait(WAIT).and_then(|s| s.code()), Some(0));
    serde_json::from_str(&line).unwrap()
}

#[test]
fn the_chapters_python_client_reaches_udp_server_through_the_relay() {
    let (server, server_addr) = Process::server(&bin("udp-server"), &["--json"]);
    let (relay, addr) = relay(server_addr, &["--json"]);
    assert_eq!(
        chapter_client(addr, "你好 through the relay"),
        "你好 through the relay\n"
    );
    let relay = summary(relay);
    assert_eq!(
        (relay["up"]["forwarded"].as_u64(), relay["down"]["forwarded"].as_u64()),
        (Some(1), Some(1))
    );
    let server = summary(server);
    assert_eq!(
        (server["received"].as_u64(), server["peers"].as_u64()),
        (Some(1), Some(1))
    );
}

#[test]
fn the_chapters_python_client_reaches_the_chapters_python_server_through_the_relay() {
    let mut server = Process::spawn(
        "python3",
        &[
            &root().join("scripts/peers/chapter_server.py").to_string_lossy(),
            "0",
            "1",
        ],
    )
    .unwrap();
    let server_addr = server
        .listening(WAIT)
        .expect("the chapter's server says where it listens");
    let (relay, addr) = relay(server_addr, &["--json"]);
    assert_eq!(chapter_client(addr, "hello, chapter"), "hello, chapter\n");
    // The chapter's server prints its peer: the relay's upstream socket, not the client.
    let seen = server.stdout.next(WAIT).unwrap();
    assert!(
        seen.starts_with("127.0.0.1:") && seen.ends_with(" hello, chapter"),
        "{seen}"
    );
    assert_eq!(server.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert_eq!(summary(relay)["clients"].as_u64(), Some(1));
}

#[test]
fn nc_talks_through_the_relay() {
    if Command::new("nc").arg("-h").output().is_err() {
        eprintln!("SKIPPED nc_talks_through_the_relay: nc is not installed (apt-get install netcat-openbsd)");
        return;
    }
    let (server, server_addr) = Process::server(&bin("udp-server"), &["--json"]);
    let (relay, addr) = relay(server_addr, &["--json"]);
    let mut nc = Process::spawn_with_stdin("nc", &["-u", "-w1", "127.0.0.1", &addr.port().to_string()]).unwrap();
    {
        use std::io::Write;
        let mut stdin = nc.stdin.take().unwrap();
        stdin.write_all(b"from nc\n").unwrap();
    }
    assert_eq!(nc.stdout.next(WAIT).as_deref(), Some("from nc"));
    let _ = nc.wait(WAIT);
    assert_eq!(summary(relay)["down"]["forwarded"].as_u64(), Some(1));
    assert_eq!(summary(server)["received"].as_u64(), Some(1));
}

/// A ping through a relay that loses 20% each way, seeded: what the client lost is what
/// the relay dropped, the server received what the relay sent up, and the client what it
/// sent down; a second run with the same seed gives the same counts.
#[test]
fn seeded_faults_per_direction_match_what_client_and_server_count() {
    let run = || {
        let (server, server_addr) = Process::server(&bin("udp-server"), &["--json", "-q"]);
        let (relay, addr) = relay(
            server_addr,
            &["--json", "-q", "--up-drop", "0.2", "--down-drop", "0.2", "--seed", "11"],
        );
        let client = Command::new(bin("udp-client"))
            .args([
                &addr.to_string(),
                "--count",
                "40",
                "--interval",
                "20ms",
                "--timeout",
                "1s",
                "--json",
                "-q",
            ])
            .output()
            .unwrap();
        let stdout = String::from_utf8_lossy(&client.stdout);
        let client: Value = serde_json::from_str(stdout.lines().last().unwrap()).unwrap();
        let (relay, server) = (summary(relay), summary(server));
        let n = |v: &Value, path: &[&str]| path.iter().fold(v, |v, k| &v[*k]).as_u64().unwrap();
        assert_eq!(n(&client, &["sent"]), n(&relay, &["up", "received"]));
        assert_eq!(n(&server, &["received"]), n(&relay, &["up", "forwarded"]));
        assert_eq!(n(&client, &["received"]), n(&relay, &["down", "forwarded"]));
        assert_eq!(
            n(&client, &["lost"]),
            n(&relay, &["up", "dropped"]) + n(&relay, &["down", "dropped"])
        );
        assert!(
            n(&relay, &["up", "dropped"]) > 0 && n(&relay, &["down", "dropped"]) > 0,
            "{relay}"
        );
        (relay["up"].clone(), relay["down"].clone(), n(&client, &["received"]))
    };
    assert_eq!(run(), run(), "the same seed, the same faults");
}

#[test]
fn chapter_relay_carries_the_chapters_python_client_to_udp_server() {
    let (server, server_addr) = Process::server(&bin("udp-server"), &["--json"]);
    let port = testkit::free_port().port().to_string();
    let mut relay = Process::spawn(&example("chapter_relay"), &[&port, &server_addr.port().to_string()]).unwrap();
    let addr = relay.listening(WAIT).expect("the example says where it listens");
    assert_eq!(chapter_client(addr, "one"), "one\n");
    assert_eq!(chapter_client(addr, "two"), "two\n");
    relay.signal("KILL").unwrap();
    let _ = relay.wait(WAIT);
    // Two clients (two runs of the Python), so two upstream sockets at the server.
    assert_eq!(summary(server)["peers"].as_u64(), Some(2));
}

/// In-process: every byte the relay flips on the way up is caught by the server's CRC.
#[test]
fn every_corrupted_datagram_fails_the_servers_checksum() {
    use common::checksum::Checksum;
    use common::output::OutputOptions;
    use testkit::InProcess;
    let crc: Checksum = "crc16-modbus".parse().unwrap();
    let quiet = OutputOptions {
        quiet: true,
        ..Default::default()
    };
    let server_config = udp_server::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        reply: udp_server::Reply::Echo,
        checksum: Some(crc),
        output: quiet,
        ..Default::default()
    };
    let server = InProcess::start(quiet, move |stop, out| udp_server::run(&server_config, stop, out));
    let relay_config = udp_relay::Config {
        bind: "127.0.0.1:0".parse().unwrap(),
        to: server.addr,
        up: udp_relay::FlowFaults {
            corrupt: 0.3,
            faults: common::faults::FaultConfig {
                seed: 5,
                ..Default::default()
            },
            truncate: None,
        },
        output: quiet,
        ..Default::default()
    };
    let relay = InProcess::start(quiet, move |stop, out| udp_relay::run(&relay_config, stop, out));
    let client = testkit::local_socket(WAIT).unwrap();
    for i in 0..50u8 {
        client.send_to(&crc.append(vec![1, 3, 0, i, 0, 2]), relay.addr).unwrap();
        // Each echo comes back before the next request: the same order every run.
        testkit::recv(&client).unwrap();
    }
    let (relay, server) = (relay.stop(), server.stop());
    assert_eq!(server.received, 50);
    assert!(relay.up.corrupted > 5, "{relay:?}");
    assert_eq!(server.checksum_bad, Some(relay.up.corrupted));
}
