//! `--show hex|text|both` on every program: typing stays `-e`, the line shows the payload
//! as `--show` says (by default as `-e` says). Each test asserts the line printed for
//! bytes that crossed the wire.

use std::net::SocketAddr;

use testkit::{Process, WAIT, bin, run_to_end};

/// A program bound to 127.0.0.1:0, once it says where it listens.
fn started(program: &str, args: &[&str]) -> (Process, SocketAddr) {
    Process::server(&bin(program), args)
}

/// The server shows what arrived as `--show` says; `-e hex --show text` types hex and reads text.
#[test]
fn the_server_shows_each_datagram_as_show_says() {
    for (args, shown) in [
        (&["--show", "hex"][..], "41 54 0d 0a"),
        (&["--show", "both"], "AT\\r\\n  [hex 41 54 0d 0a]"),
        (&["--show", "text", "-e", "hex"], "AT\\r\\n"),
        (&["-e", "hex"], "41 54 0d 0a"),
    ] {
        let (server, addr) = started("udp-server", args);
        let peer = testkit::local_socket(WAIT).unwrap();
        peer.send_to(b"AT\r\n", addr).unwrap();
        assert_eq!(testkit::recv(&peer).unwrap().0, b"AT\r\n");
        let line = server.stdout.next(WAIT).unwrap();
        assert_eq!(
            line,
            format!("{}  4 B  {shown}", peer.local_addr().unwrap()),
            "{args:?}"
        );
    }
}

/// `udp-client 127.0.0.1:P AT --show hex`: typed as text, the reply shown as hex; `both`
/// shows text and hex. JSON keeps its "text" and "hex" fields, whatever --show says.
#[test]
fn the_client_types_text_and_shows_the_reply_as_hex() {
    let (_server, addr) = started("udp-server", &["-q"]);
    let to = addr.to_string();
    for (show, shown) in [("hex", "41 54"), ("both", "AT  [hex 41 54]"), ("text", "AT")] {
        let ran = run_to_end(&bin("udp-client"), &[&to, "AT", "--show", show]);
        assert_eq!(ran.code, Some(0), "{}", ran.stderr);
        let line = ran.stdout.lines().next().unwrap_or_default().to_string();
        assert!(line.starts_with(&format!("{to}  2 B  {shown}  rtt ")), "{show}: {line}");
    }
    let ran = run_to_end(&bin("udp-client"), &[&to, "AT", "--show", "hex", "--json"]);
    let reply: serde_json::Value = serde_json::from_str(ran.stdout.lines().nth(1).unwrap()).unwrap();
    assert_eq!(
        (reply["text"].as_str(), reply["hex"].as_str()),
        (Some("AT"), Some("4154"))
    );
    let ran = run_to_end(&bin("udp-client"), &[&to, "AT", "--show", "octal"]);
    assert_eq!(ran.code, Some(2));
    assert!(ran.stderr.contains("use hex, text or both"), "{}", ran.stderr);
}

/// The listener shows a sensor's bytes as hex, and the sender its own message.
#[test]
fn udp_broadcast_listen_and_send_show_as_show_says() {
    let args = ["listen", "--bind", "127.0.0.1:0", "--count", "1", "--show", "hex"];
    let listener = Process::spawn(&bin("udp-broadcast"), &args).unwrap();
    let addr = listener.listening(WAIT).unwrap();
    let to = addr.to_string();
    let ran = run_to_end(
        &bin("udp-broadcast"),
        &["send", "--to", &to, "-n", "1", "--raw", "--show", "both", "T=23"],
    );
    assert_eq!(ran.code, Some(0), "{}", ran.stderr);
    assert_eq!(
        ran.stdout.lines().next(),
        Some(format!("{to}  4 B  T=23  [hex 54 3d 32 33]").as_str())
    );
    let heard = listener.stdout.next(WAIT).unwrap();
    assert!(heard.ends_with("  4 B  54 3d 32 33"), "{heard}");
}

/// The relay's lines show each crossing as `--show` says.
#[test]
fn the_relay_shows_each_crossing_as_show_says() {
    let (_server, server) = started("udp-server", &["-q"]);
    let (relay, addr) = started("udp-relay", &["--to", &server.to_string(), "--show", "hex"]);
    let peer = testkit::local_socket(WAIT).unwrap();
    peer.send_to(b"OK", addr).unwrap();
    assert_eq!(testkit::recv(&peer).unwrap().0, b"OK");
    for way in ["->", "<-"] {
        let line = relay.stdout.find(WAIT, |l| l.contains(way)).unwrap();
        assert!(line.ends_with("  2 B  4f 4b"), "{line}");
    }
}
