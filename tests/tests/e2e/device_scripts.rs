//! The example tests the repository ships (`scripts/*.script`) run by `udp-client --script`
//! against `udp-server --rules` with the rules files beside them, as `scripts/demo.sh`
//! runs them: every step passes, and the server saw every request the script sent.

use testkit::{Process, WAIT, bin, run_to_end};

/// The repository's root, where `scripts/` is.
fn root() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn path(relative: &str) -> String {
    root().join(relative).to_string_lossy().into_owned()
}

/// Runs `script` with `client` flags against a server started with `server` flags; the
/// client's stdout and stderr, and the server's summary line.
fn run(server: &[&str], script: &str, client: &[&str]) -> (Option<i32>, String, String, String) {
    let (mut device, addr) = Process::server(&bin("udp-server"), server);
    let script = path(script);
    let mut args = vec!["--script", &script];
    args.extend_from_slice(client);
    let target = addr.to_string();
    args.push(&target);
    let ran = run_to_end(&bin("udp-client"), &args);
    device.signal("TERM").unwrap();
    assert_eq!(device.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary = device
        .stderr
        .find(WAIT, |l| l.starts_with("udp-server: received"))
        .unwrap();
    (ran.code, ran.stdout, ran.stderr, summary)
}

#[test]
fn the_at_session_passes_against_the_at_rules() {
    let rules = path("scripts/rules/at.rules");
    let (code, stdout, stderr, server) = run(
        &["--escapes", "--max-reply-ratio", "8", "--rules", &rules, "-q"],
        "scripts/at-session.script",
        &["--escapes"],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("udp-client: steps 23, passed 23, failed 0\n"),
        "{stderr}"
    );
    assert!(
        stdout.contains("send reading 10  ok"),
        "{{seq}} is the send's number: {stdout}"
    );
    // 4 commands, then 3 × (AT+CIPSEND and the reading): each answered by a rule.
    assert!(server.starts_with("udp-server: received 10 datagrams"), "{server}");
    assert!(server.contains("replied 10"), "{server}");
}

/// The poll sends each request with its CRC (`--checksum crc16-modbus`) and expects the
/// reply written without one; the slave checks and appends CRCs too.
#[test]
fn the_modbus_poll_passes_against_the_modbus_rules() {
    let rules = path("scripts/rules/modbus.rules");
    let (code, stdout, stderr, server) = run(
        &["-e", "hex", "--checksum", "crc16-modbus", "--rules", &rules, "-q"],
        "scripts/modbus-poll.script",
        &["-e", "hex", "--checksum", "crc16-modbus"],
    );
    assert_eq!(code, Some(0), "{stdout}\n{stderr}");
    assert!(
        stderr.contains("udp-client: steps 11, passed 11, failed 0\n"),
        "{stderr}"
    );
    assert_eq!(stdout.matches("[checksum ok]").count(), 4, "{stdout}");
    assert!(server.starts_with("udp-server: received 4 datagrams"), "{server}");
    assert!(server.contains("checksum bad 0"), "{server}");
}
