//! `--rule`: a device simulator, talked to by the chapter's own Python client.

use testkit::{Process, WAIT, run_to_end};

use crate::process::{BIN, echo};

fn server(args: &[&str]) -> (Process, std::net::SocketAddr) {
    Process::server(BIN, args)
}

/// A rule reply longer than its request is cut to the request's length unless
/// `--max-reply-ratio` raises it; the start-up log says which exact rules will be cut.
#[test]
fn a_rule_reply_is_cut_to_the_ratio_and_the_log_says_so() {
    let (plain, addr) = server(&["--rule", "T?=>TEMP=23.5"]);
    assert_eq!(echo(addr, b"T?"), b"TE");
    let warning = plain.stderr.find(WAIT, |l| l.contains("rule 'T?=>TEMP=23.5'")).unwrap();
    assert!(
        warning.contains("replies 9 bytes to a 2-byte request: cut to 2"),
        "{warning}"
    );
    let (_raised, addr) = server(&["--rule", "T?=>TEMP=23.5", "--max-reply-ratio", "4"]);
    assert_eq!(echo(addr, b"T?"), b"TEMP=23.");
    let (_whole, addr) = server(&["--rule", "T?=>TEMP=23.5", "--max-reply-ratio", "5"]);
    assert_eq!(echo(addr, b"T?"), b"TEMP=23.5");
}

/// A Modbus slave in hex: the request (with its CRC) gets a canned response, CRC appended.
#[test]
fn a_simulated_modbus_slave_answers_in_hex_with_its_crc() {
    let (_slave, addr) = server(&[
        "-e",
        "hex",
        "--checksum",
        "crc16-modbus",
        "--rule",
        "01 03 00 00 00 01 84 0a=>01 03 02 00 17",
    ]);
    let request = [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0a];
    let reply = echo(addr, &request);
    assert_eq!(reply[..5], [0x01, 0x03, 0x02, 0x00, 0x17]);
    assert_eq!(reply.len(), 7);
    assert_eq!(
        common::checksum::Checksum::Crc16Modbus.check(&reply),
        common::checksum::Check::Ok
    );
}

#[test]
fn no_match_with_reply_none_is_silent() {
    let (_quiet, addr) = server(&["--rule", "PING=>PONG", "--reply", "none"]);
    assert_eq!(echo(addr, b"PING"), b"PONG");
    let peer = testkit::local_socket(std::time::Duration::from_millis(300)).unwrap();
    peer.send_to(b"other", addr).unwrap();
    assert!(testkit::recv(&peer).is_err(), "no reply to what no rule matches");
}

#[test]
fn a_bad_rule_or_rules_file_is_a_one_line_usage_error_naming_it() {
    let ran = run_to_end(BIN, &["--rule", "/(unbalanced/=>x"]);
    assert_eq!(ran.code, Some(2));
    assert_eq!(ran.stderr.lines().count(), 1, "{}", ran.stderr);
    assert!(ran.stderr.contains("bad rule '/(unbalanced/=>x'"), "{}", ran.stderr);
    let path = std::env::temp_dir().join(format!("udp-bad-{}.rules", std::process::id()));
    std::fs::write(&path, "# ok so far\nPING=>PONG\nno arrow here\n").unwrap();
    let ran = run_to_end(BIN, &["--rules", path.to_str().unwrap()]);
    std::fs::remove_file(&path).unwrap();
    assert_eq!(ran.code, Some(2));
    assert!(
        ran.stderr
            .contains(&format!("{} line 3: bad rule 'no arrow here'", path.display())),
        "{}",
        ran.stderr
    );
}
