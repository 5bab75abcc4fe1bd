//! What every UDP program in this workspace shares, and nothing more.
//!
//! The programs (`udp-server`, `udp-client`, `udp-broadcast`) keep the chapter's steps
//! — socket, bind, sendto/recvfrom, close — in their own `run` functions. This crate
//! holds the plumbing around those steps, so that each program reads like the chapter:
//!
//! - `addr`: `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT` or a bare `PORT`;
//! - `duration`: `500ms`, `2s`, `1m`;
//! - `codec`: payload bytes to and from `utf8`, `gbk` and `hex`, with typed escapes;
//! - `checksum`: check bytes (sum8, xor8, CRC-16/MODBUS, CRC-16/CCITT, CRC-32);
//! - `save`: what arrives, appended to a file (`--save`);
//! - `output`: one line (or one JSON object) per datagram on stdout;
//! - `header`: the 8-byte UDP header and its RFC 768 checksum (`--show-header`), plain
//!   arithmetic, so that `output::Datagram` has the same fields in every build;
//! - `logging`, `cli`, `error`: diagnostics on stderr, one-line errors, exit codes;
//! - `shutdown`: Ctrl-C and SIGTERM as a flag the loops check;
//! - `rng`: one seeded random number generator (faults, demo feeds, session ids).
//!
//! Behind the `receive` feature (the server and the listener turn it on; a client does not):
//! - `receive`: the receive path step by step (socket, bind, recvfrom in a loop, close);
//! - `dest`: which address a datagram was sent to (IP_PKTINFO), for safety and headers;
//! - `faults`: loss, duplication, delay and reordering injected on the receiving side;
//! - `kernel`: datagrams the kernel dropped (Linux).
//!
//! Behind the `offload` feature (the receive path, and a client's bulk sends):
//! - `offload`: GSO and GRO, many datagrams per system call (Linux), with the fallback.
//!
//! Behind the `loopguard` feature (the server turns it on):
//! - `loopguard`: echo loops (CVE-2024-2169) found and broken: our own addresses in every
//!   form, and peers that keep sending back what they sent.
//!
//! Behind the `pcap` feature (turned on by a program that has `--pcap` or `--replay`):
//! - `pcap`: every datagram sent and received, written as a pcap file Wireshark reads, and
//!   the UDP datagrams of a capture read back.
//!
//! Behind the `pattern` feature (the server's rules, the client's `--expect`):
//! - `pattern`: a payload matched against `exact`, `PREFIX*` or `/REGEX/`.

// No unsafe code but one Windows call (receive::no_reports_of_earlier_sends): nix and jiff
// make the system calls std lacks.
#![deny(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod addr;
pub mod checksum;
pub mod cli;
pub mod codec;
pub mod duration;
pub mod error;
pub mod header;
pub mod logging;
pub mod output;
pub mod rng;
pub mod save;
pub mod shutdown;
mod time;

#[cfg(feature = "receive")]
pub mod dest;
#[cfg(feature = "receive")]
pub mod faults;
#[cfg(feature = "receive")]
pub mod kernel;
#[cfg(feature = "offload")]
pub mod offload;
#[cfg(feature = "pattern")]
pub mod pattern;
#[cfg(feature = "pcap")]
pub mod pcap;
#[cfg(feature = "receive")]
pub mod receive;

#[cfg(feature = "loopguard")]
pub mod loopguard;

pub use error::{Error, Result};

/// The largest UDP payload over IPv4: 65 535 (IP total length) − 20 (IP header) − 8 (UDP header).
/// Sending one byte more fails with EMSGSIZE.
pub const MAX_UDP_PAYLOAD_V4: usize = 65_507;

/// The largest UDP payload over IPv6: 65 535 (payload length) − 8 (UDP header); the 40-byte
/// IPv6 header is not counted in the payload length.
pub const MAX_UDP_PAYLOAD_V6: usize = 65_527;

/// A receive buffer larger than any UDP payload, so nothing is ever cut; the one default
/// every program uses (65 535 also fits the `u16` of `udp-server --buffer-size`). The
/// chapter's `recvfrom(1024)` is the same call with a smaller buffer.
pub const DEFAULT_BUFFER_SIZE: usize = 65_535;
const _: () = assert!(
    DEFAULT_BUFFER_SIZE <= u16::MAX as usize,
    "udp-server --buffer-size is a u16"
);

/// The largest payload a datagram to `addr` can carry.
pub fn max_payload(addr: &std::net::SocketAddr) -> usize {
    if addr.is_ipv4() {
        MAX_UDP_PAYLOAD_V4
    } else {
        MAX_UDP_PAYLOAD_V6
    }
}
