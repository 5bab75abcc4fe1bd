//! `udp-broadcast send`: socket, SO_BROADCAST, then sendto every interval. No bind: like
//! any client, the sender lets the OS pick its port.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, SocketAddrV4, UdpSocket};
use std::time::{Duration, Instant};

use common::output::{Datagram, Output, OutputOptions};
use common::shutdown::Shutdown;
use common::{Error, Result};
use serde::Serialize;
use socket2::{Domain, Protocol, Socket, Type};

use common::codec::Encoding;

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
    /// The same text every time (MESSAGE), typed in the output's `--encoding`: with `hex`,
    /// `aa 55 01 17` is those four bytes; with `gbk`, `温度` is `ce c2 b6 c8`.
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
    /// No `seq=N session=ID ` header: each datagram is the body alone, as a real sensor or
    /// device sends it (`--raw`). A listener then cannot count losses.
    pub raw: bool,
    /// How sent messages are printed, and how MESSAGE is typed (`--encoding`).
    pub output: OutputOptions,
}

/// What a sender did; its JSON (the `summary` event) is this struct serialized.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct SendSummary {
    /// Messages sent.
    pub sent: u64,
    /// This run's session id; none with `--raw` (no header carried it).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub session: Option<String>,
    /// Where they went (`"127.255.255.255:7788"`: serde writes an address as text in JSON).
    pub to: SocketAddr,
}

impl SendSummary {
    /// The summary JSON fields.
    pub fn to_json(&self) -> serde_json::Value {
        // Cannot fail: a number and two strings.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The summary line for stderr.
    pub fn to_text(&self) -> String {
        let how = match &self.session {
            Some(session) => format!("session {session}"),
            None => "raw: no seq=/session= header".to_string(),
        };
        format!(
            "udp-broadcast: sent {} to {} ({how})",
            common::output::plural(self.sent, "message"),
            self.to
        )
    }
}

/// Sends a message every `interval` until `count` or a stop request.
///
/// # Errors
/// [`Error::Usage`] for an interval under the minimum, an IPv6 destination that is not
/// multicast, IPv6 multicast without `--interface`, or a MESSAGE the encoding cannot
/// write (bad hex); [`Error::Runtime`] when the OS refuses the socket or a send.
pub fn send(config: &SendConfig, shutdown: &Shutdown, out: &Output) -> Result<SendSummary> {
    check(config)?;
    let to = config.to;
    // Typed bytes are checked before the socket exists: a usage error sends nothing.
    let mut messages = Messages::new(config)?;

    // Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`.
    let socket = Socket::new(Domain::for_address(to), Type::DGRAM, Some(Protocol::UDP))
        .map_err(|e| Error::io("cannot create a UDP socket", &e))?;
    // Step 2, setsockopt(): Python's `sock.setsockopt(SOL_SOCKET, SO_BROADCAST, 1)`, or the
    // multicast options. Without SO_BROADCAST, sendto a broadcast address fails with EACCES:
    // the OS wants a program to say it means to reach every host on a network.
    prepare(&socket, config)?;
    let socket = UdpSocket::from(socket);
    log::info!(
        "sending to {to} every {} ({}); Ctrl-C stops",
        common::duration::display(config.interval),
        messages.describe()
    );

    // Step 3, sendto() every interval: Python's `sock.sendto(data, ('<broadcast>', 7788))`.
    let mut sent = 0u64;
    while config.count.is_none_or(|n| sent < n) && !out.is_closed() {
        let message = messages.next(sent + 1);
        socket.send_to(&message, to).map_err(|e| send_error(to, &e))?;
        sent += 1;
        let shown = Datagram {
            seq: messages.session.is_some().then_some(sent),
            ..Datagram::new(to, &message)
        };
        out.sent_datagram(&shown).map_err(Error::stdout)?;
        let last = config.count == Some(sent);
        if last || pause(shutdown, config.interval) {
            break;
        }
    }

    // Step 4, close(): Python's `sock.close()`; dropping the socket closes it.
    drop(socket);
    let session = messages.session;
    Ok(SendSummary { sent, session, to })
}

/// What goes into each datagram: the feed header (unless `--raw`), then the body's bytes.
///
/// The header is ASCII text, `seq=N session=ID `, and the body follows it byte for byte,
/// whatever the encoding: `-e hex "aa 55 01 17"` sends `seq=1 session=4f3a9c2e ` and then
/// the four bytes aa 55 01 17. A listener reads the header and tracks the sequence; the
/// body may be anything. A device that expects only its own frame wants `--raw`.
struct Messages {
    /// This run's id, in every header; `None` with `--raw`.
    session: Option<String>,
    body: Source,
}

enum Source {
    /// MESSAGE's bytes, encoded once.
    Fixed(Vec<u8>),
    /// A built-in feed: a new ASCII line each time.
    Feed(Feed),
}

impl Messages {
    fn new(config: &SendConfig) -> Result<Self> {
        let session = session_id();
        let body = match &config.body {
            Body::Text(text) => Source::Fixed(config.output.encoding.encode(text)?),
            Body::Feed(kind) => Source::Feed(Feed::new(*kind, u64::from_str_radix(&session, 16).unwrap_or(1))),
        };
        if config.output.encoding == Encoding::Hex && !config.raw {
            log::info!(
                "each datagram is the text header seq=N session=ID, then your bytes; --raw sends your bytes alone"
            );
        }
        let session = (!config.raw).then_some(session);
        Ok(Messages { session, body })
    }

    /// The datagram for message number `seq`.
    fn next(&mut self, seq: u64) -> Vec<u8> {
        let feed_body;
        let body = match &mut self.body {
            Source::Fixed(bytes) => bytes.as_slice(),
            Source::Feed(feed) => {
                feed_body = feed.next_body();
                feed_body.as_bytes()
            }
        };
        match &self.session {
            Some(session) => feed::frame(seq, session, body),
            None => body.to_vec(),
        }
    }

    /// For the start-up log: the session, or that there is no header.
    fn describe(&self) -> String {
        match &self.session {
            Some(session) => format!("session {session}"),
            None => "raw: no seq=/session= header, listeners cannot count losses".to_string(),
        }
    }
}

/// Waits `interval`, less if a stop is asked for; whether one was. An interval too long
/// for the clock (`Instant + Duration` would overflow: `--interval 9223372036854775807s`)
/// waits until the stop.
fn pause(shutdown: &Shutdown, interval: Duration) -> bool {
    // `Shutdown::sleep` adds its duration to the clock: give it at most an hour at a time.
    const STEP: Duration = Duration::from_secs(3600);
    let end = Instant::now().checked_add(interval);
    loop {
        let left = end.map_or(STEP, |end| end.saturating_duration_since(Instant::now()));
        if left.is_zero() {
            return false;
        }
        if shutdown.sleep(left.min(STEP)) {
            return true;
        }
    }
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
            raw: false,
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
    fn a_pause_ends_on_time_or_at_the_stop_whatever_its_length() {
        let stop = Shutdown::new();
        let started = Instant::now();
        assert!(!pause(&stop, Duration::from_millis(30)));
        assert!(started.elapsed() >= Duration::from_millis(30));
        stop.trigger();
        assert!(pause(&stop, Duration::MAX));
    }

    /// The summary's JSON, byte for byte, as scripts read it.
    #[test]
    fn the_summary_json_is_pinned_byte_for_byte() {
        let summary = SendSummary {
            sent: 3,
            session: Some("abcd1234".into()),
            to: DEFAULT_TO,
        };
        assert_eq!(
            summary.to_json().to_string(),
            r#"{"sent":3,"session":"abcd1234","to":"127.255.255.255:7788"}"#
        );
        let v6 = SendSummary {
            to: "[ff02::1%3]:7788".parse().unwrap(),
            ..summary
        };
        assert_eq!(
            v6.to_json().to_string(),
            r#"{"sent":3,"session":"abcd1234","to":"[ff02::1%3]:7788"}"#
        );
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
