//! `udp-broadcast`: one sender, every listener — the chapter's "ideal protocol for
//! distributing information" (stock quotes, flight boards), where a lost update is soon
//! replaced by a newer one.
//!
//! ```sh
//! cargo run -p udp-broadcast -- listen                 # terminal 1 (and 2, and 3: all hear it)
//! cargo run -p udp-broadcast -- send --feed quotes     # terminal 4: quotes to 127.255.255.255:7788
//! cargo run -p udp-broadcast -- listen --board         # the latest quote per symbol, redrawn
//! ```
//!
//! Caveats:
//! - Sending to a broadcast address needs SO_BROADCAST; without it the OS refuses with
//!   EACCES ("permission denied"). It guards against flooding a network by mistake.
//! - `127.255.255.255` reaches only this machine. `--to 255.255.255.255:7788` or a subnet's
//!   broadcast address (e.g. `192.168.1.255`) reaches the LAN; routers never forward either.
//! - Several listeners on one host share the port through SO_REUSEADDR (and SO_REUSEPORT):
//!   each gets every broadcast, but a unicast datagram to the shared port reaches only one.
//! - IPv6 has no broadcast: use a multicast group (`ff02::1`, all nodes on the link).

// No unsafe code: nix and jiff make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod board;
pub mod feed;
mod interface;
pub mod listen;
pub mod send;

pub use listen::{ListenConfig, ListenSummary, listen};
pub use send::{Body, SendConfig, SendSummary, send};

/// The port the feed uses unless told otherwise.
pub const DEFAULT_PORT: u16 = 7788;
