//! What every UDP program in this workspace shares, and nothing more.
//!
//! The programs (`udp-server`, `udp-client`, `udp-broadcast`) keep the chapter's steps
//! — socket, bind, sendto/recvfrom, close — in their own `run` functions. This crate
//! holds the plumbing around those steps, so that each program reads like the chapter:
//!
//! - [`addr`]: `IP:PORT`, `[IPv6]:PORT`, `HOST:PORT` or a bare `PORT`;
//! - [`duration`]: `500ms`, `2s`, `1m`;
//! - [`codec`]: payload bytes to and from `utf8`, `gbk` and `hex`;
//! - [`dest`]: which address a datagram was sent to (IP_PKTINFO), for safety and headers;
//! - [`output`]: one line (or one JSON object) per datagram on stdout;
//! - [`logging`], [`cli`], [`error`]: diagnostics on stderr, one-line errors, exit codes;
//! - [`shutdown`]: Ctrl-C and SIGTERM as a flag the receive loops check;
//! - [`header`]: the 8-byte UDP header and its RFC 768 checksum (`--show-header`);
//! - [`faults`]: loss, duplication, delay and reordering injected on the receiving side;
//! - [`stats`]: round-trip time percentiles;
//! - [`testkit`]: helpers the workspace's tests share (deadlines on every wait).

// Example code gets copied: no unwrap, expect or panic outside tests (see STYLE.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

pub mod addr;
pub mod cli;
pub mod codec;
pub mod dest;
pub mod duration;
pub mod error;
pub mod faults;
pub mod header;
pub mod kernel;
pub mod logging;
pub mod output;
pub mod shutdown;
pub mod stats;
pub mod testkit;
mod time;

pub use error::{Error, Result};

/// The largest UDP payload over IPv4: 65 535 (IP total length) − 20 (IP header) − 8 (UDP header).
/// Sending one byte more fails with EMSGSIZE.
pub const MAX_UDP_PAYLOAD_V4: usize = 65_507;

/// The largest UDP payload over IPv6: 65 535 (payload length) − 8 (UDP header); the 40-byte
/// IPv6 header is not counted in the payload length.
pub const MAX_UDP_PAYLOAD_V6: usize = 65_527;

/// The largest payload a datagram to `addr` can carry.
pub fn max_payload(addr: &std::net::SocketAddr) -> usize {
    if addr.is_ipv4() {
        MAX_UDP_PAYLOAD_V4
    } else {
        MAX_UDP_PAYLOAD_V6
    }
}
