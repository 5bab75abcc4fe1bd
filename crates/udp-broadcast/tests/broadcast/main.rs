//! udp-broadcast's tests: the real binary and the library, on loopback only
//! (127.255.255.255 broadcasts; multicast out `lo` with TTL 0).

mod listener;
#[cfg(target_os = "linux")]
mod offload;
mod pcap;
mod sender;

use std::net::SocketAddr;

use testkit::Process;

use testkit::WAIT;

const BIN: &str = env!("CARGO_BIN_EXE_udp-broadcast");

/// `udp-broadcast listen ARGS…`, once it says where it listens.
fn listener(args: &[&str]) -> (Process, SocketAddr) {
    let mut all = vec!["listen"];
    all.extend_from_slice(args);
    let process = Process::spawn(BIN, &all).unwrap();
    let addr = process.listening(WAIT).expect("a listening line");
    (process, addr)
}

/// Runs `udp-broadcast send ARGS…` to the end; its exit code and stderr.
fn send(args: &[&str]) -> (Option<i32>, String) {
    let mut all = vec!["send"];
    all.extend_from_slice(args);
    run(&all)
}

/// Runs `udp-broadcast ARGS…` to the end, within [`WAIT`] (killed past it, failing the
/// test); its exit code and stderr.
fn run(args: &[&str]) -> (Option<i32>, String) {
    let mut process = Process::spawn(BIN, args).unwrap();
    let status = process.wait(WAIT).expect("udp-broadcast ends within WAIT");
    (status.code(), process.stderr.rest(WAIT).join("\n"))
}

/// A port on 127.0.0.1 that the test holds and nobody hears: where a test points a
/// sender that must fail before it sends, so that even a regression reaches nobody (never
/// the default port 7788, where a learner's listener may be running).
fn nobody() -> String {
    testkit::closed_port().port().to_string()
}
