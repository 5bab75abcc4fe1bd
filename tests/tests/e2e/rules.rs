//! `udp-server --rule`, a device simulator, talked to by the chapter's own Python client and
//! loaded with the rules files the repository ships (both live outside the server's crate,
//! so these tests live here).

use common::checksum::Checksum;
use testkit::{Command, Process, WAIT, bin, output};

fn server(args: &[&str]) -> (Process, std::net::SocketAddr) {
    Process::server(&bin("udp-server"), args)
}

/// The repository's root, where `scripts/` is.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn echo(addr: std::net::SocketAddr, payload: &[u8]) -> Vec<u8> {
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(payload, addr).unwrap();
    testkit::recv(&peer).unwrap().0
}

/// The chapter's client (`scripts/peers/chapter_client.py HOST PORT MESSAGE`): what it
/// printed as the reply.
fn python_client(addr: std::net::SocketAddr, message: &str) -> String {
    let script = root().join("scripts/peers/chapter_client.py");
    let out = output(
        Command::new("python3")
            .arg(script)
            .args(["127.0.0.1", &addr.port().to_string(), message]),
    );
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    String::from_utf8_lossy(&out.stdout).trim_end().to_string()
}

#[test]
fn a_simulated_sensor_answers_the_chapters_python_client() {
    let (mut sensor, addr) = server(&[
        "--rule",
        "PING=>PONG",
        "--rule",
        "/^READ (\\w+)$/=>$1=23.5",
        "--max-reply-ratio",
        "4",
        "--json",
    ]);
    assert_eq!(python_client(addr, "PING"), "PONG");
    assert_eq!(python_client(addr, "READ TEMP"), "TEMP=23.5");
    assert_eq!(python_client(addr, "hello"), "hello", "no rule matches: the echo");
    let events: Vec<serde_json::Value> = (0..3)
        .map(|_| serde_json::from_str(&sensor.stdout.next(WAIT).unwrap()).unwrap())
        .collect();
    assert_eq!(events[0]["rule"], "PING=>PONG");
    assert_eq!(events[1]["rule"], "/^READ (\\w+)$/=>$1=23.5");
    assert!(events[2].get("rule").is_none());
    sensor.signal("TERM").unwrap();
    assert_eq!(sensor.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary: serde_json::Value = serde_json::from_str(&sensor.stdout.rest(WAIT).pop().unwrap()).unwrap();
    assert_eq!(summary["rules"]["PING=>PONG"], 1);
    assert_eq!(summary["rules"]["/^READ (\\w+)$/=>$1=23.5"], 1);
}

/// The shipped rules files load and answer: the sensor and the Modbus slave of the README.
#[test]
fn the_shipped_rules_files_answer() {
    let dir = root().join("scripts/rules");
    let sensor = dir.join("sensor.rules");
    let (_sensor, addr) = server(&["--rules", sensor.to_str().unwrap(), "--max-reply-ratio", "4"]);
    assert_eq!(echo(addr, b"PING"), b"PONG");
    assert_eq!(echo(addr, b"READ TEMP"), b"TEMP=23.5");
    let modbus = dir.join("modbus.rules");
    let (_slave, addr) = server(&[
        "-e",
        "hex",
        "--checksum",
        "crc16-modbus",
        "--rules",
        modbus.to_str().unwrap(),
    ]);
    // The rules are written without the CRC; the request carries it (84 0a).
    let reply = echo(addr, &[0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0a]);
    assert_eq!(reply[..5], [0x01, 0x03, 0x02, 0x00, 0x17]);
    let write = Checksum::Crc16Modbus.append(vec![0x01, 0x06, 0x00, 0x01, 0x00, 0x03]);
    assert_eq!(echo(addr, &write), write, "a write is echoed, CRC and all");
    let other = Checksum::Crc16Modbus.append(vec![0x01, 0x03, 0x00, 0x09, 0x00, 0x01]);
    assert_eq!(
        echo(addr, &other),
        Checksum::Crc16Modbus.append(vec![0x01, 0x83, 0x02]),
        "exception 02: illegal data address"
    );
    // A bad CRC: no answer, as from a real slave.
    let peer = testkit::local_socket(std::time::Duration::from_millis(300)).unwrap();
    peer.send_to(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0xf5], addr)
        .unwrap();
    assert!(testkit::recv(&peer).is_err(), "a bad frame is not answered");
}
