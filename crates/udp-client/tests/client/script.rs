//! `--script FILE`: what each step put on the wire, its result line, the summary and the
//! exit code. The device is a peer socket answering as each test says.

use std::io::Write;
use std::path::PathBuf;
use std::time::Duration;

use serde_json::Value;
use testkit::{Process, WAIT, run_to_end};

use crate::{BIN, Peer};

/// A script file of its own for each test, removed when dropped.
struct ScriptFile(PathBuf);

impl ScriptFile {
    fn new(name: &str, text: &str) -> Self {
        let path = std::env::temp_dir().join(format!("udp-client-{}-{name}.script", std::process::id()));
        std::fs::write(&path, text).unwrap();
        ScriptFile(path)
    }

    fn path(&self) -> &str {
        self.0.to_str().unwrap()
    }
}

impl Drop for ScriptFile {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

/// A small AT device: `AT\r\n` → `OK\r\n`, `READ n` → `VAL n`, anything else `ERROR`.
fn at_device() -> Peer {
    Peer::new(|_, data| {
        vec![match data {
            b"AT\r\n" => b"OK\r\n".to_vec(),
            _ if data.starts_with(b"READ ") => [b"VAL ", &data[5..]].concat(),
            _ => b"ERROR".to_vec(),
        }]
    })
}

fn step_lines(stdout: &str) -> Vec<&str> {
    stdout.lines().filter(|l| l.starts_with("step ")).collect()
}

#[test]
fn a_script_sends_what_it_says_and_checks_every_reply() {
    let device = at_device();
    let script = ScriptFile::new(
        "pass",
        "# a session\nsend AT\\r\\n\nexpect OK\\r\\n within 1s\nrepeat 2 {\n  send READ {seq}\n  expect /^VAL \\d+$/\n}\ndelay 10ms\n",
    );
    let ran = run_to_end(BIN, &["--escapes", "--script", script.path(), &device.addr.to_string()]);
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(
        device.all(Duration::from_millis(100)),
        [&b"AT\r\n"[..], b"READ 2", b"READ 3"]
    );
    assert_eq!(
        step_lines(&ran.stdout),
        [
            "step 1  line 2  send AT\\r\\n  ok",
            "step 2  line 3  expect OK\\r\\n  ok",
            "step 3  line 5  send READ 2  ok",
            "step 4  line 6  expect /^VAL \\d+$/  ok",
            "step 5  line 5  send READ 3  ok",
            "step 6  line 6  expect /^VAL \\d+$/  ok",
            "step 7  line 8  delay 10ms  ok",
        ],
        "{}",
        ran.stdout
    );
    // Each reply is printed as it arrives, with its sender.
    let replies = ran
        .stdout
        .lines()
        .filter(|l| l.starts_with(&device.addr.to_string()))
        .count();
    assert_eq!(replies, 3, "{}", ran.stdout);
    assert!(
        ran.stderr.contains("udp-client: steps 7, passed 7, failed 0\n"),
        "{}",
        ran.stderr
    );
}

#[test]
fn a_wrong_or_missing_reply_fails_its_step_and_the_run() {
    let device = at_device();
    let script = ScriptFile::new(
        "fail",
        "send AT\\r\\n\nexpect OK\\r\\n\nsend AT+RST\\r\\n\nexpect OK\\r\\n\nexpect MORE within 100ms\n",
    );
    let ran = run_to_end(BIN, &["--escapes", "--script", script.path(), &device.addr.to_string()]);
    assert_eq!(ran.code, Some(1), "{}", ran.stderr);
    assert_eq!(device.all(Duration::from_millis(100)).len(), 2);
    let steps = step_lines(&ran.stdout);
    assert_eq!(
        steps[3],
        "step 4  line 4  expect OK\\r\\n  FAILED: got \"ERROR\", want OK\\r\\n"
    );
    assert_eq!(steps[4], "step 5  line 5  expect MORE  FAILED: no reply within 100ms");
    assert!(
        ran.stderr.contains("udp-client: steps 5, passed 3, failed 2\n"),
        "{}",
        ran.stderr
    );
    assert!(
        ran.stderr.contains(&format!(
            "udp-client: {}: 2 of 5 steps failed, the first at line 4 (expect OK\\r\\n)",
            script.path()
        )),
        "{}",
        ran.stderr
    );
}

/// A reply that comes after its expect gave up is kept no longer than the next send: it
/// cannot make the next step fail too.
#[test]
fn a_late_reply_is_counted_unexpected_not_taken_by_the_next_expect() {
    let device = Peer::new(|n, data| {
        if n == 0 {
            std::thread::sleep(Duration::from_millis(300));
        }
        vec![[b"re ", data].concat()]
    });
    let script = ScriptFile::new(
        "late",
        "send one\nexpect re one within 100ms\ndelay 500ms\nsend two\nexpect re two\n",
    );
    let ran = run_to_end(BIN, &["--script", script.path(), &device.addr.to_string()]);
    assert_eq!(device.all(Duration::from_millis(100)), [&b"one"[..], b"two"]);
    let steps = step_lines(&ran.stdout);
    assert_eq!(steps[1], "step 2  line 2  expect re one  FAILED: no reply within 100ms");
    assert_eq!(steps[4], "step 5  line 5  expect re two  ok");
    assert!(
        ran.stderr
            .contains("udp-client: steps 5, passed 4, failed 1, 1 reply unexpected"),
        "{}",
        ran.stderr
    );
    assert_eq!(ran.code, Some(1));
}

#[test]
fn with_json_every_step_is_an_event() {
    let device = at_device();
    let script = ScriptFile::new(
        "json",
        "send READ {seq}\nexpect VAL {seq}\ndelay 5ms\nexpect VAL 9 within 50ms\n",
    );
    let ran = run_to_end(BIN, &["--json", "--script", script.path(), &device.addr.to_string()]);
    assert_eq!(ran.code, Some(1));
    let events: Vec<Value> = ran.stdout.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    let steps: Vec<&Value> = events.iter().filter(|e| e["event"] == "step").collect();
    assert_eq!(steps.len(), 4);
    assert_eq!(
        (
            steps[0]["kind"].as_str(),
            steps[0]["text"].as_str(),
            steps[0]["len"].as_u64()
        ),
        (Some("send"), Some("READ 1"), Some(6))
    );
    assert_eq!(
        (steps[1]["pattern"].as_str(), steps[1]["ok"].as_bool()),
        (Some("VAL 1"), Some(true))
    );
    assert_eq!(
        (steps[2]["kind"].as_str(), steps[2]["ms"].as_f64()),
        (Some("delay"), Some(5.0))
    );
    assert_eq!(
        (
            steps[3]["line"].as_u64(),
            steps[3]["ok"].as_bool(),
            steps[3]["why"].as_str()
        ),
        (Some(4), Some(false), Some("no reply within 50ms"))
    );
    let summary = events.last().unwrap();
    assert_eq!(
        (
            summary["steps"].as_u64(),
            summary["passed"].as_u64(),
            summary["failed"].as_u64()
        ),
        (Some(4), Some(3), Some(1))
    );
}

#[test]
fn a_bad_line_is_a_usage_error_naming_file_and_line_before_anything_is_sent() {
    let device = at_device();
    let target = device.addr.to_string();
    let script = ScriptFile::new("bad", "send AT\nexpect OK\nsned AT\n");
    let ran = run_to_end(BIN, &["--script", script.path(), &target]);
    assert_eq!(ran.code, Some(2));
    assert_eq!(
        ran.stderr.trim_end(),
        format!(
            "udp-client: {}:3: unknown step 'sned': a line is send TEXT, expect PATTERN [within DUR], delay DUR, repeat N {{, }} or a # comment",
            script.path()
        )
    );
    let good = ScriptFile::new("good", "send AT\n");
    for (args, said) in [
        (
            vec!["--script", "/nonexistent/x.script", &target],
            "cannot read --script /nonexistent/x.script",
        ),
        (vec!["--script", good.path(), &target, "hi"], "leave out MESSAGE"),
        (vec!["--script", good.path(), "--no-reply", &target], "--no-reply"),
        (vec!["--script", good.path(), "--count", "2", &target], "--count"),
        (
            vec!["--script", good.path(), "--expect", "OK", &target],
            "--expect does nothing with --script",
        ),
    ] {
        let ran = run_to_end(BIN, &args);
        assert_eq!(ran.code, Some(2), "{args:?}: {}", ran.stderr);
        assert!(ran.stderr.contains(said), "{args:?}: {}", ran.stderr);
    }
    assert!(device.all(Duration::from_millis(100)).is_empty(), "nothing was sent");
}

#[test]
fn a_script_on_stdin_runs_the_same() {
    let device = at_device();
    let mut client = Process::spawn_with_stdin(BIN, &["--script", "-", "-C", &device.addr.to_string()]).unwrap();
    {
        let mut stdin = client.stdin.take().unwrap();
        stdin.write_all(b"send AT\nexpect /^OK/\n").unwrap();
    }
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    assert_eq!(device.next().0, b"AT\r\n", "-C ends each send with CR LF");
    let summary = client
        .stderr
        .find(WAIT, |l| l.starts_with("udp-client: steps"))
        .unwrap();
    assert_eq!(summary, "udp-client: steps 2, passed 2, failed 0");
}

/// Ctrl-C (here SIGTERM) in the middle: the steps run so far, and exit 0 since none failed.
#[test]
fn a_stopped_script_reports_what_it_ran() {
    let device = at_device();
    let script = ScriptFile::new("stop", "send AT\ndelay 1h\nsend never\n");
    let mut client = Process::spawn(BIN, &["--script", script.path(), &device.addr.to_string()]).unwrap();
    client
        .stdout
        .find(WAIT, |l| l.starts_with("step 1 "))
        .expect("the first step");
    client.signal("TERM").unwrap();
    assert_eq!(client.wait(WAIT).and_then(|s| s.code()), Some(0));
    let summary = client
        .stderr
        .find(WAIT, |l| l.starts_with("udp-client: steps"))
        .unwrap();
    assert_eq!(
        summary,
        "udp-client: steps 1 of 3 (stopped), passed 1, failed 0, 1 reply unexpected"
    );
    assert_eq!(device.all(Duration::from_millis(100)), [b"AT"]);
}
