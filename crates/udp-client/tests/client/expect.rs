//! `--expect PATTERN`: every reply judged with the server's matcher, the verdict on its line
//! and in the exit code. The device is a peer socket that answers what each test says.

use std::time::Duration;

use serde_json::Value;
use testkit::run_to_end;

use crate::{BIN, Peer};

fn answering(reply: &'static [u8]) -> Peer {
    Peer::new(move |_, _| vec![reply.to_vec()])
}

#[test]
fn a_one_shot_reply_is_marked_and_only_a_match_exits_0() {
    let device = answering(b"TEMP=23.5");
    let target = device.addr.to_string();
    for (pattern, mark, code) in [
        ("TEMP=23.5", "[expect ok]", 0),
        ("TEMP=*", "[expect ok]", 0),
        ("/^TEMP=\\d+\\.\\d$/", "[expect ok]", 0),
        ("HUM=*", "[expect FAILED: got \"TEMP=23.5\", want HUM=*]", 1),
    ] {
        let ran = run_to_end(BIN, &["--expect", pattern, &target, "READ TEMP"]);
        assert_eq!(device.next().0, b"READ TEMP");
        assert_eq!(ran.code, Some(code), "{pattern}: {}", ran.stderr);
        let line = ran.stdout.lines().next().unwrap_or_default();
        assert!(line.starts_with(&format!("{target}  9 B  TEMP=23.5  rtt ")), "{line}");
        assert!(line.ends_with(mark), "{pattern}: {line}");
        if code == 1 {
            let last = ran.stderr.lines().last().unwrap();
            assert_eq!(
                last,
                format!("udp-client: the reply from {target} does not match --expect: got \"TEMP=23.5\", want HUM=*")
            );
        }
    }
    let ran = run_to_end(BIN, &["--json", "--expect", "HUM=*", &target, "READ TEMP"]);
    let reply: Value = serde_json::from_str(ran.stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        (reply["event"].as_str(), reply["expect_ok"].as_bool()),
        (Some("reply"), Some(false))
    );
    assert_eq!(reply["expect_failed"], "got \"TEMP=23.5\", want HUM=*");
}

/// With --checksum the pattern is written without the check bytes, and a wrong CRC fails
/// the reply however its data reads.
#[test]
fn a_hex_expect_reads_the_reply_without_its_crc_and_a_bad_crc_fails() {
    let good = common::checksum::Checksum::Crc16Modbus.append(vec![0x01, 0x03, 0x02, 0x00, 0x17]);
    let mut bad = good.clone();
    bad[5] ^= 0x01;
    for (reply, code, mark) in [
        (good, 0, "[checksum ok]  [expect ok]"),
        (
            bad,
            1,
            "[expect FAILED: its check bytes are wrong (checksum BAD: want f84a)]",
        ),
    ] {
        let device = Peer::new(move |_, _| vec![reply.clone()]);
        let ran = run_to_end(
            BIN,
            &[
                "-e",
                "hex",
                "--checksum",
                "crc16-modbus",
                "--expect",
                "01 03 02 00 17",
                &device.addr.to_string(),
                "01 03 00 00 00 01",
            ],
        );
        assert_eq!(device.next().0, [0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0a]);
        assert_eq!(ran.code, Some(code), "{}", ran.stderr);
        assert!(ran.stdout.trim_end().ends_with(mark), "{}", ran.stdout);
    }
}

#[test]
fn a_repeat_counts_matched_and_failed_and_exits_0_only_if_all_matched() {
    // The second reply is wrong.
    let device = Peer::new(|n, _| vec![if n == 1 { b"ERROR".to_vec() } else { b"OK".to_vec() }]);
    let target = device.addr.to_string();
    let ran = run_to_end(
        BIN,
        &["--expect", "OK", "--repeat", "3", "--interval", "20ms", &target, "AT"],
    );
    assert_eq!(device.all(Duration::from_millis(100)), [b"AT", b"AT", b"AT"]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    let marks: Vec<bool> = ran.stdout.lines().map(|l| l.ends_with("[expect ok]")).collect();
    assert_eq!(marks, [true, false, true], "{}", ran.stdout);
    assert!(
        ran.stderr
            .contains("udp-client: sent 3 datagrams, received 3, lost 0; expect: 2 matched, 1 failed"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr
            .contains("not every reply was what --expect asks for: 2 matched, 1 failed, 0 lost"),
        "{}",
        ran.stderr
    );
    let ran = run_to_end(
        BIN,
        &[
            "--json",
            "--expect",
            "/^(OK|ERROR)$/",
            "--repeat",
            "3",
            "--interval",
            "20ms",
            &target,
            "AT",
        ],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    let summary: Value = serde_json::from_str(ran.stdout.lines().last().unwrap()).unwrap();
    assert_eq!(
        (summary["matched"].as_u64(), summary["failed"].as_u64()),
        (Some(3), Some(0))
    );
}

/// Every awaited reply must arrive: two of three lost fail the run even though the one
/// that came matched.
#[test]
fn a_repeat_with_expect_fails_when_a_reply_is_lost() {
    let device = Peer::new(|n, _| if n == 0 { vec![b"OK".to_vec()] } else { Vec::new() });
    let ran = run_to_end(
        BIN,
        &[
            "--expect",
            "OK",
            "--repeat",
            "3",
            "--interval",
            "20ms",
            "--timeout",
            "200ms",
            &device.addr.to_string(),
            "AT",
        ],
    );
    assert_eq!(device.all(Duration::from_millis(100)).len(), 3);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert!(ran.stderr.contains("1 matched, 0 failed, 2 lost"), "{}", ran.stderr);
}

#[test]
fn a_bad_pattern_or_a_mode_without_replies_to_judge_is_a_usage_error() {
    let device = Peer::silent();
    let target = device.addr.to_string();
    for (args, said) in [
        (
            vec!["--expect", "/(/", &target, "hi"],
            "udp-client: --expect: bad pattern '/(/'",
        ),
        (
            vec!["--expect", "", &target, "hi"],
            "udp-client: --expect: bad pattern ''",
        ),
        (vec!["-e", "hex", "--expect", "0g", &target, "01"], "bad hex"),
        (
            vec!["--expect", "OK", "--count", "2", &target],
            "--expect does nothing with a ping",
        ),
        (
            vec!["--expect", "OK", &target],
            "--expect does nothing with interactive mode",
        ),
    ] {
        let ran = run_to_end(BIN, &args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert_eq!(ran.stderr.lines().count(), 1, "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(said), "{args:?}: {}", ran.stderr);
    }
    assert!(device.all(Duration::from_millis(100)).is_empty(), "nothing was sent");
}
