//! `udp-relay`: a bad network between two real programs. To its clients the relay is the
//! chapter's server (socket, **bind**, recvfrom, sendto); to the server behind it, it is the
//! chapter's client (socket, sendto, recvfrom), once per client, so each reply finds its way
//! back. On the way it can lose, duplicate, delay, reorder, corrupt and cut datagrams, per
//! direction, the same way every time for a seed.
//!
//! ```sh
//! cargo run -p udp-server -- --bind 127.0.0.1:8888                        # terminal 1
//! cargo run -p udp-relay -- --bind 127.0.0.1:9000 --to 127.0.0.1:8888 --drop 0.2 --seed 7
//! cargo run -p udp-client -- 127.0.0.1:9000 --count 10                    # terminal 3
//! ```
//!
//! Caveats a learner meets soon:
//! - The relay binds `127.0.0.1` unless told otherwise. On another address anyone who can
//!   reach it can send through it (an open relay): `--allow CIDR` says who may.
//! - UDP has no connections, so the relay cannot know when a client is done: a client's
//!   upstream socket is closed after `--idle` without traffic, and a client that comes back
//!   later gets a new one (and so a new source port at the server).
//! - The server sees the relay's address, not the client's, as every NAT shows it.

// No unsafe code: mio and nix make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod batch;
pub mod cli;
mod clients;
pub mod flow;
#[cfg(target_os = "linux")]
mod gso;
mod guard;
mod record;
mod relay;
mod show;

use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4};
use std::path::PathBuf;
use std::time::Duration;

use common::output::{Output, OutputOptions};
use common::shutdown::Shutdown;
use common::{Error, Result};

pub use flow::{Flow, FlowFaults, Summary};
pub use guard::Allow;
use relay::{Ready, Relay};

/// Where the relay listens when no `--bind` is given: this machine only.
pub const DEFAULT_BIND: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 9000));

/// Clients (and so upstream sockets) kept at once when `--max-clients` is not given.
pub const DEFAULT_MAX_CLIENTS: usize = 4096;

/// How long a client's upstream socket lives without traffic when `--idle` is not given.
pub const DEFAULT_IDLE: Duration = Duration::from_secs(60);

/// Everything `run` needs; `main` builds it from the command line ([`cli::config`]).
#[derive(Debug, Clone)]
pub struct Config {
    /// The address clients send to (`--bind`).
    pub bind: SocketAddr,
    /// The server every datagram is relayed to (`--to`).
    pub to: SocketAddr,
    /// What happens on the way from clients to the server (`--up-…`, or both-way flags).
    pub up: FlowFaults,
    /// What happens on the way back (`--down-…`, or both-way flags).
    pub down: FlowFaults,
    /// A client's upstream socket closes after this long without traffic (`--idle`).
    pub idle: Duration,
    /// At most this many clients at once; new ones past it are refused (`--max-clients`).
    pub max_clients: usize,
    /// Only clients in these networks are relayed (`--allow`); empty: anyone who can reach it.
    pub allow: Vec<Allow>,
    /// Forward to a broadcast or multicast `--to` (`--to-broadcast`).
    pub to_broadcast: bool,
    /// Verify the check bytes at the end of each datagram (`--checksum`).
    pub checksum: Option<common::checksum::Checksum>,
    /// Append what goes up (`--save-up`) and what comes down (`--save-down`).
    pub save_up: Option<PathBuf>,
    /// See `save_up`.
    pub save_down: Option<PathBuf>,
    /// Write every datagram received and sent, on both sides, to this pcap file (`--pcap`).
    pub pcap: Option<PathBuf>,
    /// `--no-offload`: one send call per datagram, never a GSO run.
    pub no_offload: bool,
    /// How datagrams are printed.
    pub output: OutputOptions,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            bind: DEFAULT_BIND,
            to: SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8888)),
            up: FlowFaults::default(),
            down: FlowFaults::default(),
            idle: DEFAULT_IDLE,
            max_clients: DEFAULT_MAX_CLIENTS,
            allow: Vec::new(),
            to_broadcast: false,
            checksum: None,
            save_up: None,
            save_down: None,
            pcap: None,
            no_offload: false,
            output: OutputOptions::default(),
        }
    }
}

/// Binds, then relays datagrams both ways until `shutdown` is triggered or stdout is
/// closed. Prints `listening on ADDR` first.
///
/// # Errors
/// [`Error::Usage`] for a configuration that is unsafe (a relay to itself, a broadcast
/// `--to` without `--to-broadcast`); [`Error::Runtime`] when the address cannot be bound or
/// a socket fails.
///
/// # Examples
/// ```
/// use common::output::OutputOptions;
///
/// let server = testkit::local_socket(testkit::WAIT).unwrap();
/// let config = udp_relay::Config { bind: "127.0.0.1:0".parse().unwrap(), to: server.local_addr().unwrap(), ..Default::default() };
/// let relay = testkit::InProcess::start(OutputOptions::default(), move |stop, out| udp_relay::run(&config, stop, out));
///
/// let client = testkit::local_socket(testkit::WAIT).unwrap();
/// client.send_to(b"hello", relay.addr).unwrap();
/// let (data, upstream) = testkit::recv(&server).unwrap();
/// server.send_to(&data, upstream).unwrap();
/// assert_eq!(testkit::recv(&client).unwrap(), (b"hello".to_vec(), relay.addr));
/// assert_eq!(relay.stop().down.forwarded, 1);
/// ```
pub fn run(config: &Config, shutdown: &Shutdown, out: &Output) -> Result<Summary> {
    guard::check(config)?;
    // Step 1, socket(), and step 2, bind(): to its clients the relay is a server, so it
    // binds the address they send to. Python: `sock = socket.socket(AF_INET, SOCK_DGRAM)`,
    // `sock.bind(('127.0.0.1', 9000))`.
    let listener = relay::bind(config.bind)?;
    let mut relay = Relay::new(config, out, listener)?;
    guard::check_bound(config.to, relay.local())?;
    guard::announce(config, relay.local());
    out.listening(relay.local()).map_err(Error::stdout)?;

    while !shutdown.is_triggered() && !out.is_closed() {
        // Wait until a client or a server has sent something, or a delayed datagram falls
        // due; never longer than the shutdown poll, so Ctrl-C is seen within 250 ms.
        for ready in relay.wait()? {
            match ready {
                // Step 3, recvfrom() clients: `data, client = sock.recvfrom(65535)`, for all
                // the datagrams waiting, as many per system call as the OS allows.
                Ready::Client => {
                    while let Some(received) = relay.recv_from_clients()? {
                        for i in 0..received {
                            let Some(client) = relay.admitted(i) else {
                                continue;
                            };
                            // Step 4, that client's own upstream socket, made on first
                            // sight: from here the relay is a client (socket, then sendto;
                            // no bind, the OS picks the port), so the server's replies come
                            // back to it.
                            let Some(slot) = relay.upstream_for(client, i)? else {
                                continue;
                            };
                            // sendto() the server: `up.sendto(data, server)`, queued...
                            relay.send_up(i, slot)?;
                        }
                        // ...and sent together, in order.
                        relay.send_queued()?;
                    }
                }
                // Step 5, recvfrom() the server's replies on a client's upstream socket, and
                // sendto() that client from the bound socket: `sock.sendto(reply, client)`.
                Ready::Upstream(slot) => {
                    while let Some(received) = relay.recv_from_server(slot)? {
                        for i in 0..received {
                            relay.send_down(i, slot)?;
                        }
                        relay.send_queued()?;
                    }
                }
            }
        }
        // What the simulated network held back (delay, reorder) goes out when due.
        relay.release_due()?;
        relay.expire_idle();
    }
    // Step 6, close(): every socket closes when dropped; first the summary.
    relay.finish()
}
