//! What the client says when something fails: one line naming what failed and what to try.

use std::io;
use std::net::SocketAddr;

use common::Error;

/// The one exit rule for "no reply", in every mode: a run that waited for replies and got
/// none, without being stopped, failed (exit 1) — UDP does not say whether anything
/// arrived, so silence is the only answer there is. `waited` says how long or how often;
/// `try_flags` only flags that would change the outcome in that mode.
pub(crate) fn no_reply(target: SocketAddr, waited: &str, try_flags: &str) -> Error {
    Error::Runtime(format!(
        "no reply from {target}{waited}: the datagram or its reply may be lost, or the peer never answers (try {try_flags})"
    ))
}

/// What may help a one-shot that got no reply: a longer wait, resending, not waiting.
pub(crate) const TRY_ONE_SHOT: &str = "--timeout 5s, --retries 3, or --no-reply";
/// What may help any other mode (`--retries` resends a one-shot only).
pub(crate) const TRY_LONGER: &str = "--timeout 5s or --no-reply";

/// `try_flags`, and for a connected socket what it cannot hear: connect() makes the OS drop
/// every datagram not from the target's address and port, so a device that answers from
/// another port (many do: a reply socket of their own) looks exactly like silence.
pub(crate) fn what_to_try(try_flags: &str, connected: bool) -> String {
    if connected {
        format!(
            "{try_flags}; a device that answers from another port is not heard by a connected client: try --any-source"
        )
    } else {
        try_flags.to_string()
    }
}

/// ` to its 1 request` / ` to any of 3 requests`.
pub(crate) fn to_any_of(n: u64, noun: &str) -> String {
    if n == 1 {
        format!(" to its 1 {noun}")
    } else {
        format!(" to any of {n} {noun}s")
    }
}

/// ICMP "port unreachable" came back: the datagram reached the host, but no socket there.
pub(crate) fn nobody_listening(target: SocketAddr) -> Error {
    let start = if target.ip().is_loopback() {
        format!("cargo run -p udp-server -- --bind {target}")
    } else {
        format!(
            "udp-server --bind {} on that machine",
            SocketAddr::new([0, 0, 0, 0].into(), target.port())
        )
    };
    Error::Runtime(format!(
        "no one is listening at {target} (the OS reported 'port unreachable'); start a server there ({start}) or check the port"
    ))
}

/// What a failed send means for the user.
pub(crate) fn send_error(err: &io::Error, len: usize, target: SocketAddr) -> Error {
    if common::error::is_port_unreachable(err) {
        nobody_listening(target)
    } else if common::error::is_message_too_long(err) {
        Error::Usage(format!(
            "cannot send {len} bytes to {target}: message too long for one datagram"
        ))
    } else {
        Error::io(format!("cannot send to {target}"), err)
    }
}

/// The addresses must make sense: a real destination port, never many hosts without
/// `--broadcast` (`to_many`), and a local address a socket can send from.
pub(crate) fn check_addresses(config: &crate::Config, to_many: bool) -> common::Result<()> {
    let target = config.target;
    if target.port() == 0 {
        return Err(Error::Usage(format!(
            "cannot send to {target}: port 0 is not a destination"
        )));
    }
    if !to_many && crate::modes::discover::is_to_many(target) {
        return Err(Error::Usage(format!(
            "{target} reaches many hosts: add --broadcast to send to every one of them and list the replies (a broadcast needs SO_BROADCAST, which --broadcast sets; without it the OS refuses with EACCES, 'permission denied', so that nobody floods a network by mistake)"
        )));
    }
    match config.bind {
        // A group or a broadcast address names many hosts: no datagram can come from it.
        Some(local) if local.ip().is_multicast() || local.ip() == std::net::Ipv4Addr::BROADCAST => {
            Err(Error::Usage(format!(
                "--bind {local}: a client sends from one of this machine's own addresses, not a multicast or broadcast address; bind 0.0.0.0:{} or 127.0.0.1:{} (to hear a group, use udp-broadcast listen --group)",
                local.port(),
                local.port()
            )))
        }
        _ => Ok(()),
    }
}

/// A datagram must fit the protocol limit; refuse before the OS does, with the numbers.
pub(crate) fn check_size(len: usize, target: SocketAddr) -> common::Result<()> {
    let max = common::max_payload(&target);
    if len > max {
        let family = if target.is_ipv4() { "IPv4" } else { "IPv6" };
        return Err(Error::Usage(format!(
            "message is {len} bytes, but a UDP datagram over {family} carries at most {max}; split it or send less"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Windows reports "nobody listening" as WSAECONNRESET (10054) or WSAENETRESET (10052),
    /// Linux and macOS as ECONNREFUSED: every mode says the same one line for all of them.
    #[test]
    fn a_reset_from_windows_means_nobody_is_listening_too() {
        let target: SocketAddr = "127.0.0.1:9".parse().unwrap();
        for err in [
            io::Error::from(io::ErrorKind::ConnectionRefused),
            io::Error::from(io::ErrorKind::ConnectionReset),
            io::Error::from_raw_os_error(10054),
            io::Error::from_raw_os_error(10052),
        ] {
            let said = send_error(&err, 5, target);
            assert_eq!(said, nobody_listening(target), "{err:?}");
            assert_eq!(said.exit_code(), 1);
        }
    }
}
