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
use std::time::{Duration, Instant};

use common::duration::display;
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
    /// The probe.
    pub message: Vec<u8>,
    /// How many probes (`--repeat N`): devices that boot later, or lose a probe, are found
    /// by the next one. 1 without `--repeat`.
    pub probes: u64,
    /// Time between probes (`--interval`, at least `MIN_INTERVAL`, 10 ms).
    pub interval: Duration,
}

/// The shortest time between probes, as `udp-broadcast send` has it: a broadcast reaches
/// every host on the network, so a faster loop would flood it.
pub const MIN_INTERVAL: Duration = Duration::from_millis(10);

impl Discover {
    /// One probe, as `--broadcast` without `--repeat` sends.
    pub fn once(message: &[u8]) -> Self {
        Discover {
            message: message.to_vec(),
            probes: 1,
            interval: crate::DEFAULT_INTERVAL,
        }
    }

    /// The probe fits one datagram, and repeated probes are not a flood.
    pub(crate) fn check(&self, target: SocketAddr) -> Result<()> {
        crate::errors::check_size(self.message.len(), target)?;
        if self.probes > 1 && self.interval < MIN_INTERVAL {
            return Err(Error::Usage(format!(
                "--interval {} is too short for --broadcast: the minimum is {} (a broadcast reaches every host; faster would flood the network)",
                display(self.interval),
                display(MIN_INTERVAL)
            )));
        }
        Ok(())
    }
}

/// Sends the probe to many, `probes` times, and lists every reply: those of one round
/// arrive until the next probe is due, those of the last within `--timeout`.
///
/// # Errors
/// [`Error::Runtime`] when the send fails.
pub(crate) fn run(session: &mut Session<'_>, mode: &Discover) -> Result<Summary> {
    // Replies come from many; an ICMP error from one of them says nothing about the rest.
    session.on_refused = OnRefused::Ignore;
    let target = session.target();
    let timeout = session.config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let (mut replies, mut responders, mut sent) = (0u64, HashSet::new(), 0u64);
    let mut due = Instant::now();
    for round in 1..=mode.probes {
        if session.pause(due.saturating_duration_since(Instant::now())) || session.stopped() {
            break;
        }
        session.send(&mode.message)?;
        sent += 1;
        session.out.sent(target, mode.message.len()).map_err(Error::stdout)?;
        if session.config.no_reply {
            log::info!(
                "sent {} B to {target}; not waiting for replies (--no-reply)",
                mode.message.len()
            );
            due = later(due, mode.interval);
            continue;
        }
        if round == 1 {
            log::info!("sent {} B to {target}; listing every reply", mode.message.len());
        }
        due = later(due, mode.interval);
        let until = if round == mode.probes {
            later(Instant::now(), timeout)
        } else {
            due
        };
        let heard = listen(session, until, &mut responders)?;
        replies += heard.replies;
        if mode.probes > 1 {
            heard.report(session, round, mode.probes)?;
        }
    }
    Ok(Summary::Discovery(DiscoverySummary {
        probes: sent,
        replies,
        responders: responders.len() as u64,
        stopped: session.shutdown.is_triggered(),
        expect_replies: !session.config.no_reply,
    }))
}

/// What one round heard.
struct Round {
    replies: u64,
    responders: u64,
}

/// Prints every reply until `until`; what this round heard. `all` gathers the responders of
/// every round.
fn listen(session: &mut Session<'_>, until: Instant, all: &mut HashSet<SocketAddr>) -> Result<Round> {
    let (mut replies, mut responders) = (0u64, HashSet::new());
    while let Some(arrival) = session.recv(until)? {
        replies += 1;
        responders.insert(arrival.peer);
        all.insert(arrival.peer);
        session.show_reply(arrival, None)?;
    }
    Ok(Round {
        replies,
        responders: responders.len() as u64,
    })
}

/// A round's JSON line (`"event":"round"`).
#[derive(Serialize)]
struct RoundJson {
    event: &'static str,
    round: u64,
    of: u64,
    replies: u64,
    responders: u64,
}

impl Round {
    /// `round 2 of 3: 2 replies from 2 responders` (with `--json`, a `round` event), even
    /// with `-q`, like the summary.
    fn report(&self, session: &Session<'_>, round: u64, of: u64) -> Result<()> {
        let text = format!(
            "round {round} of {of}: {} from {}",
            replies(self.replies),
            plural(self.responders, "responder")
        );
        let json = fields(&RoundJson {
            event: "round",
            round,
            of,
            replies: self.replies,
            responders: self.responders,
        });
        session.out.report(&text, json).map_err(Error::stdout)
    }
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
    /// Probes sent (in JSON only when more than one).
    #[serde(skip_serializing_if = "is_one")]
    pub probes: u64,
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

/// `1 reply`, `2 replies`.
fn replies(n: u64) -> String {
    if n == 1 {
        "1 reply".into()
    } else {
        format!("{n} replies")
    }
}

fn is_one(n: &u64) -> bool {
    *n == 1
}

impl DiscoverySummary {
    /// `udp-client: 3 replies from 2 responders` (after several probes, `3 probes, 5
    /// replies from 2 responders`), and the JSON fields.
    pub(crate) fn report(&self) -> (String, serde_json::Value) {
        let json = fields(self);
        if !self.expect_replies {
            return (
                format!(
                    "udp-client: sent {}, replies not awaited (--no-reply)",
                    plural(self.probes, "probe")
                ),
                json,
            );
        }
        let said = replies(self.replies);
        let probes = if self.probes == 1 {
            String::new()
        } else {
            format!("{}, ", plural(self.probes, "probe"))
        };
        (
            format!(
                "udp-client: {probes}{said} from {}",
                plural(self.responders, "responder")
            ),
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
