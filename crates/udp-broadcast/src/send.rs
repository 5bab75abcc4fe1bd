//! `udp-broadcast send`: socket, SO_BROADCAST, then sendto every interval. No bind: like
//! any client, the sender lets the OS pick its port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::Duration;

use common::output::{Datagram, Output, OutputOptions};
use common::shutdown::Shutdown;
use common::{Error, Result};
use serde_json::json;
use socket2::{Domain, Protocol, Socket, Type};

use crate::feed::{self, Feed, FeedKind};
use crate::interface;

/// Where `send` sends by default: the loopback network's broadcast address, so the demo
/// never leaves this machine.
pub const DEFAULT_TO: SocketAddr = SocketAddr::V4(SocketAddrV4::new(
    Ipv4Addr::new(127, 255, 255, 255),
    crate::DEFAULT_PORT,
));
/// Time between messages when `--interval` is not given.
pub const DEFAULT_INTERVAL: Duration = Duration::from_secs(1);
/// The shortest `--interval`: 100 messages a second. Zero would flood a whole network.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

/// What each message says after its header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Body {
    /// The same text every time (MESSAGE).
    Text(String),
    /// A built-in live feed (`--feed`).
    Feed(FeedKind),
}

/// Everything `send` needs.
#[derive(Debug, Clone)]
pub struct SendConfig {
    /// Destination: a broadcast address, a multicast group, or any address.
    pub to: SocketAddr,
    /// Time between messages; at least [`MIN_INTERVAL`].
    pub interval: Duration,
    /// Stop after this many messages.
    pub count: Option<u64>,
    /// What to send.
    pub body: Body,
    /// Multicast: the interface to send from (IPv4 address, or IPv6 name or index).
    pub interface: Option<String>,
    /// Multicast: hops the datagrams may travel (0: this host only).
    pub ttl: Option<u32>,
    /// How sent messages are printed.
    pub output: OutputOptions,
}

/// What a sender did.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendSummary {
    /// Messages sent.
    pub sent: u64,
    /// This run's session id.
    pub session: String,
    /// Where they went.
    pub to: SocketAddr,
}

impl SendSummary {
    /// The summary JSON fields.
    pub fn to_json(&self) -> serde_json::Value {
        json!({"sent": self.sent, "session": self.session, "to": self.to.to_string()})
    }

    /// The summary line for stderr.
    pub fn to_text(&self) -> String {
        format!(
            "udp-broadcast: sent {} messages to {} (session {})",
            self.sent, self.to, self.session
        )
    }
}

/// Sends a message every `interval` until `count` or a stop request.
///
/// # Errors
/// [`Error::Usage`] for an interval under the minimum, an IPv6 destination that is not
/// multicast, or IPv6 multicast without `--interface`; [`Error::Runtime`] when the OS
/// refuses the socket or a send.
pub fn send(config: &SendConfig, shutdown: &Shutdown, out: &Output) -> Result<SendSummary> {
    check(config)?;
    let to = config.to;

    // Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`.
    let socket = Socket::new(Domain::for_address(to), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io("cannot create a UDP socket", &e))?;
    // Step 2, setsockopt(): Python's `sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1)`, or the
    // multicast options. Without SO_BROADCAST, sendto a broadcast address fails with EACCES:
    // the OS wants a program to say it means to reach every host on a network.
    prepare(&socket, config)?;
    let socket = UdpSocket::from(socket);

    let session = session_id();
    let mut feed = match &config.body {
        Body::Feed(kind) => Some(Feed::new(*kind, u64::from_str_radix(&session, 16).unwrap_or(1))),
        Body::Text(_) => None,
    };
    log::info!(
        "sending to {to} every {} (session {session}); Ctrl-C stops",
        common::duration::display(config.interval)
    );

    // Step 3, sendto() every interval: Python's `sock.sendto(data, ('<broadcast>', 7788))`.
    let mut sent = 0u64;
    while config.count.is_none_or(|n| sent < n) && !out.is_closed() {
        let body = match (&mut feed, &config.body) {
            (Some(feed), _) => feed.next_body(),
            (None, Body::Text(text)) => text.clone(),
            (None, Body::Feed(_)) => String::new(),
        };
        let message = feed::format(sent + 1, &session, &body);
        socket.send_to(message.as_bytes(), to).map_err(|e| send_error(to, &e))?;
        sent += 1;
        let shown = Datagram {
            seq: Some(sent),
            ..Datagram::new(to, message.as_bytes())
        };
        out.sent_datagram(&shown).map_err(Error::stdout)?;
        let last = config.count == Some(sent);
        if last || shutdown.sleep(config.interval) {
            break;
        }
    }

    // Step 4, close(): Python's `sock.close()`; dropping the socket closes it.
    drop(socket);
    Ok(SendSummary { sent, session, to })
}

fn check(config: &SendConfig) -> Result<()> {
    if config.interval < MIN_INTERVAL {
        return Err(Error::Usage(format!(
            "--interval {} is too short: the minimum is {} (a broadcast reaches every host; faster would flood the network)",
            common::duration::display(config.interval),
            common::duration::display(MIN_INTERVAL)
        )));
    }
    if let IpAddr::V6(ip) = config.to.ip() {
        if !ip.is_multicast() {
            return Err(Error::Usage(format!(
                "cannot broadcast to {}: IPv6 has no broadcast; send to a multicast group instead, e.g. [ff02::1]:{} (all nodes on the link) with --interface",
                config.to,
                config.to.port()
            )));
        }
        if config.interface.is_none() {
            return Err(Error::Usage(format!(
                "IPv6 multicast to {} needs --interface NAME: Linux loopback carries no IPv6 multicast",
                config.to
            )));
        }
    }
    Ok(())
}

fn prepare(socket: &Socket, config: &SendConfig) -> Result<()> {
    let set = |what: &str, r: std::io::Result<()>| r.map_err(|e| Error::io(format!("cannot set {what}"), &e));
    match config.to.ip() {
        IpAddr::V4(ip) if ip.is_multicast() => {
            // Local by default: out the loopback interface with TTL 0, so nothing leaves
            // this host. An explicit --interface sends on the network, TTL 1 (this link).
            let (iface, ttl) = match &config.interface {
                Some(name) => (interface::ipv4(name)?, config.ttl.unwrap_or(1)),
                None => (std::net::Ipv4Addr::LOCALHOST, config.ttl.unwrap_or(0)),
            };
            set("IP_MULTICAST_IF", socket.set_multicast_if_v4(&iface))?;
            set("IP_MULTICAST_TTL", socket.set_multicast_ttl_v4(ttl))?;
            set("IP_MULTICAST_LOOP", socket.set_multicast_loop_v4(true))?;
        }
        IpAddr::V4(_) => set("SO_BROADCAST", socket.set_broadcast(true))?,
        IpAddr::V6(_) => {
            let index = interface::ipv6_index(config.interface.as_deref().unwrap_or_default())?;
            set("IPV6_MULTICAST_IF", socket.set_multicast_if_v6(index))?;
            set(
                "IPV6_MULTICAST_HOPS",
                socket.set_multicast_hops_v6(config.ttl.unwrap_or(1)),
            )?;
            set("IPV6_MULTICAST_LOOP", socket.set_multicast_loop_v6(true))?;
        }
    }
    Ok(())
}

fn send_error(to: SocketAddr, err: &std::io::Error) -> Error {
    let hint = match err.kind() {
        std::io::ErrorKind::PermissionDenied => {
            " (sending to a broadcast address needs SO_BROADCAST on the socket: Python's sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1))"
        }
        std::io::ErrorKind::NetworkUnreachable => {
            " (no route: is the network interface up, and is this its broadcast address?)"
        }
        _ => "",
    };
    Error::Runtime(format!("cannot send to {to}: {}{hint}", common::error::describe(err)))
}

/// A random-enough id for this run: the clock's nanoseconds mixed with the process id.
fn session_id() -> String {
    format!("{:08x}", common::rng::fresh_seed() as u32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(to: &str) -> SendConfig {
        SendConfig {
            to: to.parse().unwrap(),
            interval: DEFAULT_INTERVAL,
            count: Some(1),
            body: Body::Text("x".into()),
            interface: None,
            ttl: None,
            output: OutputOptions::default(),
        }
    }

    #[test]
    fn refuses_a_flood_and_ipv6_broadcast() {
        let fast = SendConfig {
            interval: Duration::ZERO,
            ..config("127.255.255.255:7788")
        };
        assert!(check(&fast).unwrap_err().to_string().contains("the minimum is 10ms"));
        let err = check(&config("[::1]:7788")).unwrap_err();
        assert!(
            err.to_string().contains("IPv6 has no broadcast") && err.to_string().contains("ff02::1"),
            "{err}"
        );
        let err = check(&config("[ff02::1]:7788")).unwrap_err();
        assert!(err.to_string().contains("needs --interface"), "{err}");
        assert!(check(&config("239.1.2.3:7788")).is_ok());
    }

    #[test]
    fn session_ids_are_eight_hex_digits_and_differ() {
        let a = session_id();
        assert_eq!(a.len(), 8);
        assert!(a.chars().all(|c| c.is_ascii_hexdigit()));
        let ids: std::collections::HashSet<String> = (0..100).map(|_| session_id()).collect();
        assert!(ids.len() > 90);
    }
}
