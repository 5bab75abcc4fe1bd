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

use common::output::{Output, plural};
use common::save::Save;
use common::shutdown::Shutdown;
use common::{Error, Result};
use socket2::Socket;

use crate::{Config, DEFAULT_TIMEOUT, RECV_BUFFER, Summary, recv_until, show_reply};

/// Sends MESSAGE once to many and lists every reply.
///
/// # Errors
/// [`Error::Runtime`] when the socket options or the send fail.
pub(crate) fn run(
    socket: Socket,
    config: &Config,
    shutdown: &Shutdown,
    out: &Output,
    save: &mut Option<Save>,
) -> Result<Summary> {
    let target = config.target;
    to_many(&socket, target)?;
    let socket = UdpSocket::from(socket);
    let message = config.message.as_deref().unwrap_or(b"");
    socket
        .send_to(message, target)
        .map_err(|e| Error::io(format!("cannot send to {target}"), &e))?;
    out.sent(target, message.len()).map_err(Error::stdout)?;
    log::info!("sent {} B to {target}; listing every reply", message.len());
    let (mut replies, mut responders) = (0u64, HashSet::new());
    let deadline = Instant::now() + config.timeout.unwrap_or(DEFAULT_TIMEOUT);
    let mut buf = vec![0u8; RECV_BUFFER];
    loop {
        match recv_until(&socket, &mut buf, deadline, shutdown) {
            Ok(Some((len, peer))) => {
                replies += 1;
                responders.insert(peer);
                show_reply(out, config, save, peer, &buf[..len], None)?;
            }
            Ok(None) => break,
            Err(e) if common::error::is_port_unreachable(&e) => {}
            Err(e) => return Err(Error::io("receiving replies failed", &e)),
        }
    }
    Ok(Summary::Discovery {
        replies,
        responders: responders.len() as u64,
        stopped: shutdown.is_triggered(),
    })
}

/// SO_BROADCAST for a broadcast address (without it the OS refuses with EACCES); for an
/// IPv4 multicast group, the loopback interface and TTL 0.
fn to_many(socket: &Socket, target: SocketAddr) -> Result<()> {
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
    }
}

/// `3 replies from 2 responders`.
pub(crate) fn text(replies: u64, responders: u64) -> String {
    let replies = if replies == 1 {
        "1 reply".to_string()
    } else {
        format!("{replies} replies")
    };
    format!("udp-client: {replies} from {}", plural(responders, "responder"))
}

/// Whether `target` reaches many hosts: the limited broadcast, a multicast group, or an
/// address ending in .255 (the broadcast address of a /24, the commonest LAN).
pub(crate) fn is_to_many(target: SocketAddr) -> bool {
    match target.ip() {
        IpAddr::V4(ip) => ip.is_broadcast() || ip.is_multicast() || ip.octets()[3] == 255,
        IpAddr::V6(ip) => ip.is_multicast(),
    }
}
