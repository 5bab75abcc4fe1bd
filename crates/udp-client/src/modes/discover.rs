//! `--broadcast`: one datagram to a broadcast address or multicast group, and every reply
//! within `--timeout`, each with its sender: device discovery, the chapter's "one to many"
//! in request/response form. The socket is not connected, since replies come from every
//! responder.
//!
//! Local by default: a multicast group is sent out the loopback interface with TTL 0, so
//! nothing leaves this machine; a broadcast goes where its address says (127.255.255.255 is
//! this machine, a subnet's broadcast address the LAN).

use std::collections::HashSet;
use std::net::{IpAddr, Ipv4Addr, SocketAddr, UdpSocket};
use std::time::Instant;

use common::output::plural;
use common::{Error, Result};
use serde::Serialize;
use socket2::Socket;

use crate::DEFAULT_TIMEOUT;
use crate::session::{OnRefused, Session, later};
use crate::summary::{Summary, fields};

/// The discovery's settings.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Discover {
    /// The probe, sent once.
    pub message: Vec<u8>,
}

/// Sends the probe once to many and lists every reply.
///
/// # Errors
/// [`Error::Runtime`] when the send fails.
pub(crate) fn run(session: &mut Session<'_>, mode: &Discover) -> Result<Summary> {
    // Replies come from many; an ICMP error from one of them says nothing about the rest.
    session.on_refused = OnRefused::Ignore;
    let target = session.target();
    session.send(&mode.message)?;
    session.out.sent(target, mode.message.len()).map_err(Error::stdout)?;
    if session.config.no_reply {
        log::info!(
            "sent {} B to {target}; not waiting for replies (--no-reply)",
            mode.message.len()
        );
        return Ok(Summary::Discovery(DiscoverySummary {
            replies: 0,
            responders: 0,
            stopped: false,
            expect_replies: false,
        }));
    }
    log::info!("sent {} B to {target}; listing every reply", mode.message.len());
    let (mut replies, mut responders) = (0u64, HashSet::new());
    let deadline = later(Instant::now(), session.config.timeout.unwrap_or(DEFAULT_TIMEOUT));
    while let Some(arrival) = session.recv(deadline)? {
        replies += 1;
        responders.insert(arrival.peer);
        session.show_reply(arrival, None)?;
    }
    Ok(Summary::Discovery(DiscoverySummary {
        replies,
        responders: responders.len() as u64,
        stopped: session.shutdown.is_triggered(),
        expect_replies: true,
    }))
}

/// The socket made ready for many: SO_BROADCAST for a broadcast address (without it the OS
/// refuses with EACCES); for an IPv4 multicast group, the loopback interface and TTL 0.
/// Not connected: replies come from every responder.
pub(crate) fn to_many(socket: Socket, target: SocketAddr) -> Result<(UdpSocket, SocketAddr)> {
    match target.ip() {
        IpAddr::V4(group) if group.is_multicast() => socket
            .set_multicast_if_v4(&Ipv4Addr::LOCALHOST)
            .and_then(|()| socket.set_multicast_ttl_v4(0))
            .map_err(|e| Error::io("cannot send multicast out the loopback interface", &e)),
        IpAddr::V4(_) => socket
            .set_broadcast(true)
            .map_err(|e| Error::io("cannot set SO_BROADCAST", &e)),
        IpAddr::V6(_) => Err(Error::Usage(format!(
            "--broadcast {target}: IPv6 has no broadcast, and IPv6 multicast discovery needs an interface (use udp-broadcast send --to ff02::1 --interface NAME)"
        ))),
    }?;
    let socket = UdpSocket::from(socket);
    let local = socket
        .local_addr()
        .map_err(|e| Error::io("cannot read the local address", &e))?;
    Ok((socket, local))
}

/// What a discovery found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct DiscoverySummary {
    /// Replies received.
    pub replies: u64,
    /// Distinct addresses they came from.
    pub responders: u64,
    /// Whether the run was stopped by Ctrl-C or SIGTERM.
    #[serde(skip)]
    pub stopped: bool,
    /// Whether replies were awaited (not with `--no-reply`).
    #[serde(skip)]
    pub expect_replies: bool,
}

impl DiscoverySummary {
    /// `udp-client: 3 replies from 2 responders`, and the JSON fields.
    pub(crate) fn report(&self) -> (String, serde_json::Value) {
        let json = fields(self);
        if !self.expect_replies {
            return (
                "udp-client: sent 1 probe, replies not awaited (--no-reply)".into(),
                json,
            );
        }
        let said = if self.replies == 1 {
            "1 reply".to_string()
        } else {
            format!("{} replies", self.replies)
        };
        (
            format!("udp-client: {said} from {}", plural(self.responders, "responder")),
            json,
        )
    }
}

/// Whether `target` reaches many hosts: the limited broadcast, a multicast group, or an
/// address ending in .255 (the broadcast address of a /24, the commonest LAN).
pub(crate) fn is_to_many(target: SocketAddr) -> bool {
    match target.ip() {
        IpAddr::V4(ip) => ip.is_broadcast() || ip.is_multicast() || ip.octets()[3] == 255,
        IpAddr::V6(ip) => ip.is_multicast(),
    }
}
