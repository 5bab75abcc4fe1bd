//! `udp-broadcast listen`: socket, SO_REUSEADDR, bind, (join a group), recvfrom in a loop.
//! The listener never sends anything.

use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr, UdpSocket};

use common::faults::{FaultConfig, FaultCounts};
use common::header::UdpHeader;
use common::output::{Datagram, Output, OutputOptions, plural};
use common::pcap;
use common::receive::{self, Handler, Incoming, ReceiveOptions};
use common::save::Save;
use common::shutdown::Shutdown;
use common::{Error, Result};
use serde::Serialize;

use crate::board::Rows;
use crate::feed::{self, Counts, NotFeed, Tracker};
use crate::{DEFAULT_PORT, interface};

pub use crate::board::{Board, MAX_BOARD_KEYS};

/// Everything `listen` needs.
#[derive(Debug, Clone, Default)]
pub struct ListenConfig {
    /// The address to bind; by default `0.0.0.0:7788` (`[::]:7788` for an IPv6 group).
    pub bind: Option<SocketAddr>,
    /// A multicast group to join.
    pub group: Option<IpAddr>,
    /// The interface to join the group on (IPv4 address, or IPv6 name or index).
    pub interface: Option<String>,
    /// Stop after this many datagrams.
    pub count: Option<u64>,
    /// Show a board instead of one line per datagram (text output only).
    pub board: Option<Board>,
    /// How datagrams are printed.
    pub output: OutputOptions,
    /// Loss, duplication, delay and reordering to inject (`--drop` …).
    pub faults: FaultConfig,
    /// SO_RCVBUF in bytes (`--recv-buffer`); the OS default when `None`.
    pub recv_buffer: Option<usize>,
    /// Print each datagram's UDP header (`--show-header`).
    pub show_header: bool,
    /// Verify the check bytes at the end of each message (`--checksum`).
    pub checksum: Option<common::checksum::Checksum>,
    /// Append every message's bytes to this file (`--save`).
    pub save: Option<std::path::PathBuf>,
    /// Write every datagram received to this pcap file, for Wireshark (`--pcap`).
    pub pcap: Option<std::path::PathBuf>,
    /// The largest datagram kept whole (`--buffer-size`); 65 535 when `None`. A longer
    /// one is cut, as Python's `recvfrom(8)` cuts it.
    pub buffer_size: Option<usize>,
    /// Receive with GRO (`--offload`, Linux): several datagrams of one sender per receive,
    /// each handed over on its own (see `common::offload`).
    pub offload: bool,
}

/// What a listener heard. Its JSON (the `summary` event) is this struct serialized: the
/// counts, then each optional count only when it applies.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ListenSummary {
    /// The bound address (in the `listening` line, not the summary).
    #[serde(skip)]
    pub local: SocketAddr,
    /// What the sequence numbers told, per sender and in all.
    #[serde(flatten)]
    pub counts: Counts,
    /// What the injected faults did, when any were asked for.
    #[serde(flatten, serialize_with = "injected")]
    pub faults: Option<FaultCounts>,
    /// Datagrams the kernel dropped because the receive queue was full (Linux).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_drops: Option<u64>,
    /// Messages whose check bytes were wrong (`--checksum`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub checksum_bad: Option<u64>,
    /// Bytes appended to the `--save` file.
    #[serde(rename = "saved_bytes", skip_serializing_if = "Option::is_none")]
    pub saved: Option<u64>,
}

/// The injected faults' counts in the summary. The listener's own `reordered` (what the
/// sequence numbers showed) keeps its name; what the fault injection reordered is apart.
#[derive(Serialize)]
struct Injected {
    dropped: u64,
    duplicated: u64,
    delayed: u64,
    injected_reordered: u64,
}

fn injected<S: serde::Serializer>(faults: &Option<FaultCounts>, to: S) -> std::result::Result<S::Ok, S::Error> {
    faults
        .map(|f| Injected {
            dropped: f.dropped,
            duplicated: f.duplicated,
            delayed: f.delayed,
            injected_reordered: f.reordered,
        })
        .serialize(to)
}

impl ListenSummary {
    /// The summary JSON fields.
    pub fn to_json(&self) -> serde_json::Value {
        // Cannot fail: every field is a number, and the map's keys are strings.
        serde_json::to_value(self).unwrap_or_default()
    }

    /// The summary line for stderr.
    pub fn to_text(&self) -> String {
        let c = &self.counts;
        let mut text = format!(
            "udp-broadcast: received {} from {}: {} lost, {}, {} reordered, {}, {} malformed",
            plural(c.received, "message"),
            plural(c.senders, "sender"),
            c.lost,
            plural(c.duplicates, "duplicate"),
            c.reordered,
            plural(c.restarts, "restart"),
            c.malformed
        );
        if c.foreign > 0 {
            text += &format!(
                ", {} not in the seq= feed format (shown, not checked for loss)",
                c.foreign
            );
        }
        if c.untracked > 0 {
            text += &format!(", {} untracked (too many senders)", c.untracked);
        }
        if let Some(bad) = self.checksum_bad {
            text += &format!(", checksum bad {bad}");
        }
        if let Some(saved) = self.saved {
            text += &format!(", saved {saved} B");
        }
        if let Some(f) = self.faults {
            text += &f.to_text();
        }
        text + &common::kernel::to_text(self.kernel_drops)
    }
}

/// Binds (sharing the port with other listeners), joins the group if any, and prints
/// every message with what its sequence number says about loss and order.
///
/// # Errors
/// [`Error::Usage`] for a group that is not multicast or an IPv6 group without
/// `--interface`; [`Error::Runtime`] when the bind or the join fails.
pub fn listen(config: &ListenConfig, shutdown: &Shutdown, out: &Output) -> Result<ListenSummary> {
    // A --save or --pcap file that cannot be written, or an interface that does not exist,
    // fails now, before anything is bound.
    let files = Files::open(config)?;
    let membership = Membership::asked(config)?;
    let options = ReceiveOptions {
        bind: bind_address(config)?,
        buffer_size: config.buffer_size.unwrap_or(common::DEFAULT_BUFFER_SIZE),
        recv_buffer: config.recv_buffer,
        // Several listeners on this host share the port; every one receives each broadcast.
        reuse: true,
        // The checksum's pseudo-header needs the destination: a broadcast or group address.
        destination: config.show_header || config.pcap.is_some(),
        count: config.count,
        faults: config.faults,
        gro: config.offload,
    };

    // Step 1, socket(): Python's `socket.socket(socket.AF_INET, socket.SOCK_DGRAM)`, with
    // SO_REUSEADDR (and SO_REUSEPORT on macOS and the BSDs) set before binding.
    let socket = receive::socket(&options)?;

    // Step 2, bind(): Python's `sock.bind(('', 7788))`. A broadcast reaches sockets bound to
    // 0.0.0.0 (or the broadcast address), never one bound to a single unicast address.
    let mut receiver = receive::bind(socket, &options)?;
    if let Some(membership) = &membership {
        join(receiver.socket(), membership)?;
    }
    let local = receiver.local();
    say_what_is_heard(local, membership.as_ref());
    out.listening(local).map_err(Error::stdout)?;

    // Step 3, recvfrom() in a loop: Python's `data, addr = sock.recvfrom(65535)`.
    let mut heard = Heard::new(config, out, local, files);
    receiver.each(shutdown, out, &mut heard)?;

    // Step 4, close(): Python's `sock.close()`; dropping the socket closes it (and leaves
    // the group).
    let closed = receiver.close();
    let saved = heard.files.finish()?;
    Ok(ListenSummary {
        local,
        counts: heard.tracker.counts(),
        faults: closed.faults,
        kernel_drops: closed.kernel_drops,
        checksum_bad: config.checksum.map(|_| heard.checksum_bad),
        saved,
    })
}

/// What the listener has heard: the per-sender tracking, and the board.
struct Heard<'a> {
    out: &'a Output,
    tracker: Tracker,
    board: Option<Rows>,
    /// With `--show-header`: the listening address, whose port is the destination port.
    header_for: Option<SocketAddr>,
    checksum: Option<common::checksum::Checksum>,
    checksum_bad: u64,
    files: Files,
    local: SocketAddr,
}

/// Where what arrives is also written: `--save` (the bytes) and `--pcap` (each datagram,
/// as it arrived, before the simulated network, with its addresses).
struct Files {
    save: Option<Save>,
    pcap: Option<pcap::Writer>,
}

impl Files {
    fn open(config: &ListenConfig) -> Result<Self> {
        Ok(Files {
            save: config.save.as_deref().map(Save::open).transpose()?,
            pcap: config.pcap.as_deref().map(pcap::Writer::create).transpose()?,
        })
    }

    /// Says what was written; the bytes saved, for the summary.
    fn finish(self) -> Result<Option<u64>> {
        if let Some(pcap) = &self.pcap {
            log::info!("{}", pcap.finish());
        }
        let saved = self.save.as_ref().map(Save::bytes);
        if let Some(save) = self.save {
            log::info!("{}", save.finish()?);
        }
        Ok(saved)
    }
}

impl<'a> Heard<'a> {
    fn new(config: &ListenConfig, out: &'a Output, local: SocketAddr, files: Files) -> Self {
        let board = config.board.filter(|_| !config.output.json);
        Heard {
            checksum: config.checksum,
            checksum_bad: 0,
            files,
            local,
            out,
            tracker: Tracker::default(),
            board: board.map(|style| Rows::new(style, config.output)),
            header_for: config.show_header.then_some(local),
        }
    }

    /// Tracks one datagram: a feed message for loss and order, anything else for its
    /// sender; posts it on the board. Its sequence number, and a note for its line.
    fn track(&mut self, d: &Incoming<'_>) -> (Option<u64>, Option<String>) {
        match feed::parse(d.data) {
            Ok(message) => {
                let verdict = self.tracker.observe(d.peer, &message);
                if let (Some(board), Some((key, value))) = (&mut self.board, message.key_value()) {
                    board.feed(key, value, message.seq, d.peer);
                }
                (Some(message.seq), verdict.note())
            }
            Err(why) => {
                let verdict = self.tracker.not_feed(d.peer, why);
                match (&mut self.board, why) {
                    (Some(board), NotFeed::Foreign) => board.foreign(d.data, d.peer),
                    (_, NotFeed::Foreign) => {}
                    _ => log::debug!("{}: a broken feed message ({why:?})", d.peer),
                }
                (None, verdict.note())
            }
        }
    }
}

impl Handler for Heard<'_> {
    /// What crossed the wire goes to the pcap file as it arrived: an injected loss or
    /// delay happens after the wire, inside this program.
    fn arrived(&mut self, d: &Incoming<'_>) {
        if let Some(pcap) = &mut self.files.pcap {
            // To the broadcast or group address when the OS says so (packet info).
            pcap.received(d, self.local);
        }
    }

    /// Parses, tracks and shows one datagram; `d.note` names a fault that touched it.
    fn deliver(&mut self, _: &UdpSocket, d: Incoming<'_>) -> Result<()> {
        let (seq, verdict) = self.track(&d);
        let note = match (verdict, d.note) {
            (Some(v), Some(f)) => Some(format!("{v}; injected: {f}")),
            (Some(v), None) => Some(v),
            (None, Some(f)) => Some(format!("injected: {f}")),
            (None, None) => None,
        };
        let header = self
            .header_for
            .and_then(|local| UdpHeader::received(d.peer, d.to, local, d.data));
        let check = self.checksum.map(|c| c.check(d.data));
        self.checksum_bad += u64::from(check.as_ref().is_some_and(|c| !c.is_ok()));
        if let Some(save) = &mut self.files.save {
            save.write(d.data)?;
        }
        let shown = Datagram {
            seq,
            header,
            note: note.as_deref(),
            check: check.as_ref(),
            ..Datagram::new(d.peer, d.data)
        };
        match &self.board {
            None => self.out.received(&shown),
            Some(board) => show_board(self.out, board, &self.tracker.counts()),
        }
        .map_err(Error::stdout)
    }
}

/// The latest value per key: the chapter's point that a lost update is soon replaced by a
/// newer one. The rows, and how they are escaped and drawn, are in `board.rs`.
fn show_board(out: &Output, board: &Rows, counts: &Counts) -> std::io::Result<()> {
    board.show(out, counts)
}

/// The start-up log: the port, the group joined (if any), and a warning for a socket that
/// can hear no broadcast.
fn say_what_is_heard(local: SocketAddr, membership: Option<&Membership>) {
    match membership {
        Some(membership) => log::info!(
            "joined multicast group {membership}; listening on port {}, other listeners may share it",
            local.port()
        ),
        None => log::info!(
            "listening for broadcasts on port {}; other listeners may share it",
            local.port()
        ),
    }
    warn_if_deaf(local);
}

/// A socket bound to one unicast address (`--bind 127.0.0.1:7788`) receives no broadcast
/// and no multicast, only datagrams sent to that address: a common mistake, said at once.
fn warn_if_deaf(local: SocketAddr) {
    let hears_many = match local.ip() {
        IpAddr::V4(ip) => ip.is_unspecified() || ip.is_broadcast() || ip.is_multicast() || ip.octets()[3] == 255,
        IpAddr::V6(ip) => ip.is_unspecified() || ip.is_multicast(),
    };
    if !hears_many {
        let any = if local.is_ipv4() { "0.0.0.0" } else { "[::]" };
        log::warn!(
            "bound to {}: a socket bound to one unicast address hears no broadcasts or multicast; use --bind {any}:{} to hear them",
            local.ip(),
            local.port()
        );
    }
}

fn bind_address(config: &ListenConfig) -> Result<SocketAddr> {
    if let Some(group) = config.group {
        if !group.is_multicast() {
            return Err(Error::Usage(format!(
                "--group {group} is not a multicast address (224.0.0.0/4 or ff00::/8)"
            )));
        }
    }
    Ok(config.bind.unwrap_or(match config.group {
        Some(IpAddr::V6(_)) => SocketAddr::new(IpAddr::V6(Ipv6Addr::UNSPECIFIED), DEFAULT_PORT),
        _ => SocketAddr::new(IpAddr::V4(Ipv4Addr::UNSPECIFIED), DEFAULT_PORT),
    }))
}

/// A multicast group and the interface to join it on, checked before anything is bound.
enum Membership {
    V4 { group: Ipv4Addr, interface: Ipv4Addr },
    V6 { group: Ipv6Addr, name: String, index: u32 },
}

impl Membership {
    /// The group `--group` asks for, with its interface; none without `--group`.
    fn asked(config: &ListenConfig) -> Result<Option<Self>> {
        config
            .group
            .map(|group| Membership::new(group, config.interface.as_deref()))
            .transpose()
    }

    /// Local by default: an IPv4 group is joined on the loopback interface unless
    /// `--interface` names another, so joining sends no IGMP report onto a real network.
    fn new(group: IpAddr, iface: Option<&str>) -> Result<Self> {
        match group {
            IpAddr::V4(group) => Ok(Membership::V4 {
                group,
                interface: iface.map_or(Ok(Ipv4Addr::LOCALHOST), interface::ipv4)?,
            }),
            IpAddr::V6(group) => {
                let name = iface.ok_or_else(|| {
                    Error::Usage(format!(
                        "joining {group} needs --interface NAME: Linux loopback carries no IPv6 multicast"
                    ))
                })?;
                let index = interface::ipv6_index(name)?;
                Ok(Membership::V6 {
                    group,
                    name: name.to_string(),
                    index,
                })
            }
        }
    }
}

/// Joins the group: Python's `sock.setsockopt(IPPROTO_IP, IP_ADD_MEMBERSHIP, mreq)`.
fn join(socket: &UdpSocket, membership: &Membership) -> Result<()> {
    let (result, group) = match membership {
        Membership::V4 { group, interface } => (socket.join_multicast_v4(group, interface), IpAddr::V4(*group)),
        Membership::V6 { group, index, .. } => (socket.join_multicast_v6(group, *index), IpAddr::V6(*group)),
    };
    result.map_err(|e| Error::io(format!("cannot join multicast group {group}"), &e))
}

/// `239.1.2.3 on interface 127.0.0.1 (loopback: …)`, `ff02::1234 on interface eth0 (index 3)`.
impl std::fmt::Display for Membership {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Membership::V4 { group, interface } if interface.is_loopback() => write!(
                f,
                "{group} on interface {interface} (loopback: only senders on this machine reach it)"
            ),
            Membership::V4 { group, interface } => write!(f, "{group} on interface {interface}"),
            Membership::V6 { group, name, index } => write!(f, "{group} on interface {name} (index {index})"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn counts() -> Counts {
        Counts {
            received: 10,
            senders: 2,
            lost: 3,
            duplicates: 4,
            reordered: 5,
            restarts: 6,
            malformed: 7,
            untracked: 8,
            foreign: 0,
        }
    }

    /// The summary's JSON, byte for byte, as scripts read it: every optional count absent,
    /// then every one present (faults, kernel drops, checksum, save).
    #[test]
    fn the_summary_json_is_pinned_byte_for_byte() {
        let bare = ListenSummary {
            local: "0.0.0.0:7788".parse().unwrap(),
            counts: counts(),
            faults: None,
            kernel_drops: None,
            checksum_bad: None,
            saved: None,
        };
        assert_eq!(
            bare.to_json().to_string(),
            r#"{"duplicates":4,"lost":3,"malformed":7,"received":10,"reordered":5,"restarts":6,"senders":2,"untracked":8}"#
        );
        let full = ListenSummary {
            faults: Some(FaultCounts {
                dropped: 11,
                duplicated: 12,
                delayed: 13,
                reordered: 14,
                queue_full: 0,
                pending: 0,
            }),
            kernel_drops: Some(15),
            checksum_bad: Some(16),
            saved: Some(17),
            ..bare
        };
        assert_eq!(
            full.to_json().to_string(),
            r#"{"checksum_bad":16,"delayed":13,"dropped":11,"duplicated":12,"duplicates":4,"injected_reordered":14,"kernel_drops":15,"lost":3,"malformed":7,"received":10,"reordered":5,"restarts":6,"saved_bytes":17,"senders":2,"untracked":8}"#
        );
    }
}
