//! udp-broadcast's tests: the real binary and the library, on loopback only
//! (127.255.255.255 broadcasts; multicast out `lo` with TTL 0).

mod listener;
mod sender;

use std::net::SocketAddr;

use common::testkit::{Command, Process, output};

use common::testkit::WAIT;

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
    let out = output(Command::new(BIN).arg("send").args(args));
    (out.status.code(), String::from_utf8_lossy(&out.stderr).into_owned())
}
