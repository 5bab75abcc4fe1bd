//! udp-server's tests: one binary, two modules. `in_process` calls `udp_server::run` on a
//! thread; `process` runs the real binary. Both assert on what crossed the wire.

mod hostile;
mod in_process;
mod loops;
#[cfg(target_os = "linux")]
mod offload;
mod pcap;
mod process;
mod rules;

use testkit::WAIT;
