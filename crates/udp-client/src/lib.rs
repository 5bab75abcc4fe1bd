//! `udp-client`: the chapter's UDP client in three steps — create a socket, send and
//! receive, close. It never binds a port: the OS picks one, and the client shows which.
//!
//! ```sh
//! cargo run -p udp-server                      # terminal 1
//! cargo run -p udp-client -- hello             # terminal 2: one datagram, prints the echo
//! cargo run -p udp-client                      # interactive: each line you type is a datagram
//! cargo run -p udp-client -- --count 10        # ping: RTT per reply, loss, a summary
//! ```
//!
//! Caveats:
//! - UDP does not tell the sender whether anyone received a datagram. The client uses
//!   `connect()` (which sends nothing for UDP) so that the kernel reports an ICMP "port
//!   unreachable" as an error, and says "no one is listening" at once instead of waiting.
//! - A connected socket also drops datagrams from any other address, so a reply from a
//!   multi-homed server that answers from another of its addresses, or a device that
//!   answers from another port, is never seen: `--any-source` leaves the socket unconnected.
//! - The mode is decided once, in `main`, as a [`Mode`]; each lives in `src/modes/`.

// No unsafe code: nix and jiff make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

mod errors;
pub mod expect;
mod modes;
mod progress;
mod session;
pub mod stats;
mod summary;
mod typing;

use std::io::{self, BufRead};
use std::net::{Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::path::PathBuf;
use std::time::Duration;

use common::output::{Output, OutputOptions};
use common::save::Save;
use common::shutdown::Shutdown;
use common::{Error, Result};
use socket2::{Domain, Protocol, Socket, Type};

pub use modes::script::MAX_STEPS;
pub use modes::{
    Discover, FileSend, Filter, Flood, Mode, OneShot, Pace, Ping, Recorded, Repeat, Replay, Requests, Script, Source,
};
pub use summary::{DiscoverySummary, FileSummary, PingSummary, RepeatSummary, ScriptSummary, Summary};
pub use typing::Typing;

/// Where the client sends when no TARGET is given: the default `udp-server`.
pub const DEFAULT_TARGET: SocketAddr = SocketAddr::V4(SocketAddrV4::new(Ipv4Addr::LOCALHOST, 8888));
/// How long to wait for a reply (one-shot, ping, after end of input).
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(2);
/// In a flood, a datagram not echoed within this long counts as lost (unless `--timeout`).
pub const DEFAULT_FLOOD_TIMEOUT: Duration = Duration::from_millis(200);
/// Time between pings.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// Datagrams in flight at once in a flood (`--interval 0`).
pub const DEFAULT_WINDOW: u16 = 64;
/// A datagram of one Ethernet frame: 1500 (MTU) − 20 (IPv4 header) − 8 (UDP header).
pub const DEFAULT_CHUNK: usize = 1472;

/// What every mode shares; `main` builds it from the command line, next to the [`Mode`].
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to send.
    pub target: SocketAddr,
    /// Bind this local address before sending (`--bind`): NetAssist's "local port", `nc -p`.
    pub bind: Option<SocketAddr>,
    /// How long to wait for a reply; `None` for the mode's default.
    pub timeout: Option<Duration>,
    /// Send without waiting for any reply.
    pub no_reply: bool,
    /// Send one datagram per call even where GSO could send a run (`--no-offload`).
    pub no_offload: bool,
    /// How typed text becomes datagrams, and which check bytes replies must carry.
    pub typing: Typing,
    /// How replies are printed.
    pub output: OutputOptions,
    /// Append every reply's bytes to this file (`--save`).
    pub save: Option<PathBuf>,
    /// Write every datagram sent and received to this pcap file (`--pcap`).
    pub pcap: Option<PathBuf>,
    /// What every reply must look like (`--expect`): one-shot and `--repeat`.
    pub expect: Option<expect::Expect>,
    /// Hear replies from any address, not only the target (`--any-source`): the socket is
    /// not connected. `None`: connected to the target (the default).
    pub any_source: Option<AnySource>,
}

/// `--any-source`: the socket is left unconnected, so a reply from any address and port is
/// heard (a device that answers from another port, an unsolicited push); `--only-from`
/// narrows that to one sender again, counting the others as ignored.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct AnySource {
    /// Only datagrams from this address (any port) or address and port count.
    pub only_from: Option<Source>,
}

impl Default for Config {
    fn default() -> Self {
        Config {
            target: DEFAULT_TARGET,
            bind: None,
            timeout: None,
            no_reply: false,
            no_offload: false,
            typing: Typing::default(),
            output: OutputOptions::default(),
            save: None,
            pcap: None,
            expect: None,
            any_source: None,
        }
    }
}

/// Sends to `config.target` as `mode` asks, printing what comes back; `input` feeds the
/// interactive mode. Every mode borrows one `Session`: the socket and what goes with it.
///
/// # Errors
/// [`Error::Usage`] for a payload over the UDP limit or a target port of 0;
/// [`Error::Runtime`] when nobody listens at the target (one-shot), no reply comes in time,
/// or the socket fails.
///
/// # Examples
/// ```
/// use common::{output::OutputOptions, shutdown::Shutdown};
///
/// // A peer that echoes one datagram, as the chapter's server does.
/// let peer = testkit::local_socket(testkit::WAIT).unwrap();
/// let config = udp_client::Config { target: peer.local_addr().unwrap(), ..Default::default() };
/// let mode = udp_client::Mode::one_shot(b"hello");
/// let client = std::thread::spawn(move || {
///     let (out, _lines) = testkit::capture(OutputOptions::default());
///     udp_client::run(&config, &mode, &Shutdown::new(), &out, Box::new(std::io::empty()))
/// });
/// let (data, from) = testkit::recv(&peer).unwrap();
/// peer.send_to(&data, from).unwrap();
/// assert_eq!(data, b"hello");
/// let summary = client.join().unwrap().unwrap();
/// assert_eq!(summary, udp_client::Summary::OneShot { reply: true, retries: 0, short_by: None });
/// ```
pub fn run(
    config: &Config,
    mode: &Mode,
    shutdown: &Shutdown,
    out: &Output,
    input: Box<dyn BufRead + Send>,
) -> Result<Summary> {
    let files = prepare(config, mode)?;
    let target = config.target;

    // Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`.
    // No bind(): like the chapter's client, we let the OS choose a free port (unless --bind).
    log::debug!(
        "step 1, socket(): a UDP socket for {}",
        if target.is_ipv4() { "IPv4" } else { "IPv6" }
    );
    let socket = Socket::new(Domain::for_address(target), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io("cannot create a UDP socket", &e))?;
    if let Some(local) = config.bind {
        socket
            .bind(&local.into())
            .map_err(|e| common::error::bind_error(local, &e))?;
    }

    // Discovery sends to many and hears from many: sendto() and recvfrom() with no connect;
    // so does --any-source, to hear a device that answers from another address or port.
    let (socket, local) = match mode {
        Mode::Discover(_) => modes::discover::to_many(socket, target)?,
        _ if config.any_source.is_some() => unconnected(socket, target, config.bind)?,
        _ => connect(socket, target, config.bind.is_some())?,
    };
    // Step 2, sendto() and recvfrom(): Python's `sock.sendto(data, addr)` and
    // `sock.recvfrom(1024)`. On a connected socket `send` is `sendto` to the connected peer.
    log::debug!("step 2, sendto() and recvfrom(): datagrams to and from {target}");
    let mut session = session::Session::new(socket, config, shutdown, out, files);
    let summary = mode.run(&mut session, input)?;

    // Step 3, close(): Python's `sock.close()`. In Rust the socket closes when dropped.
    session.close()?;
    log::debug!("step 3, close(): port {} is free again", local.port());
    Ok(summary)
}

/// What must hold before any socket is made: a real destination (never many hosts without
/// `--broadcast`), datagrams within the UDP limit, `--save` and `--pcap` files that can be
/// written.
fn prepare(config: &Config, mode: &Mode) -> Result<session::Files> {
    errors::check_addresses(config, matches!(mode, Mode::Discover(_)))?;
    mode.check(config.target)?;
    Ok(session::Files {
        save: config.save.as_deref().map(Save::open).transpose()?,
        pcap: config.pcap.as_deref().map(common::pcap::Writer::create).transpose()?,
    })
}

/// `--any-source`: no connect(), as in the chapter's client. Without `--bind` the socket is
/// bound to the wildcard address and port 0 here, which is what the first sendto() would do
/// anyway, so the port the OS chose can be shown now. The price: no ICMP "port unreachable"
/// reaches an unconnected socket, so "nobody is listening" becomes a silent timeout.
fn unconnected(socket: Socket, target: SocketAddr, bind: Option<SocketAddr>) -> Result<(UdpSocket, SocketAddr)> {
    if bind.is_none() {
        let any = SocketAddr::new(
            match target {
                SocketAddr::V4(_) => Ipv4Addr::UNSPECIFIED.into(),
                SocketAddr::V6(_) => std::net::Ipv6Addr::UNSPECIFIED.into(),
            },
            0,
        );
        socket
            .bind(&any.into())
            .map_err(|e| common::error::bind_error(any, &e))?;
    }
    let socket = UdpSocket::from(socket);
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("cannot read the local address", &e))?;
    log::info!("sending to {target} from {local}, not connected: replies from any address are heard (--any-source)");
    Ok((socket, local))
}

/// connect() is not in the chapter's client, and for UDP it sends nothing. It fixes the
/// peer, so the OS picks our port now (we can show it), drops datagrams from anyone else,
/// and reports an ICMP "port unreachable" on the next receive: the only way for a UDP
/// sender to learn promptly that nobody is listening.
fn connect(socket: Socket, target: SocketAddr, bound: bool) -> Result<(UdpSocket, SocketAddr)> {
    socket.connect(&target.into()).map_err(|e| match e.kind() {
        io::ErrorKind::PermissionDenied => Error::Usage(format!(
            "cannot send to {target}: it is a broadcast address; add --broadcast (without SO_BROADCAST the OS refuses with EACCES, 'permission denied')"
        )),
        _ => Error::io(format!("cannot send to {target}"), &e),
    })?;
    let socket = UdpSocket::from(socket);
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("cannot read the local address", &e))?;
    if bound {
        log::info!("sending to {target} from {local} (bound with --bind)");
    } else {
        log::info!("sending to {target} from {local} (a port the OS chose; a client need not bind one)");
    }
    Ok((socket, local))
}
