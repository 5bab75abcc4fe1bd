//! Safe by default: who may send through the relay, where it may forward, and the loops it
//! must not feed. A relay forwards whatever reaches it, so on a reachable address it is an
//! open relay (anyone can make it send to the server), and a relay pointed at itself, or two
//! relays pointed at each other, pass one datagram round forever.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;
use std::time::{Duration, Instant};

use common::{Error, Result};

use crate::Config;

/// One `--allow` network: clients inside it are relayed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Allow(pub ipnet::IpNet);

impl FromStr for Allow {
    type Err = Error;

    /// `10.0.0.0/8`, `fd00::/8`, or one address (`192.168.1.20`, a /32 or /128).
    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        if let Ok(net) = text.parse::<ipnet::IpNet>() {
            return Ok(Allow(net.trunc()));
        }
        match text.parse::<IpAddr>() {
            Ok(ip) => Ok(Allow(ip.into())),
            Err(_) => Err(Error::Usage(format!(
                "bad --allow '{text}': use a network such as 192.168.1.0/24 or one address such as 192.168.1.20"
            ))),
        }
    }
}

impl Allow {
    /// Whether `ip` is inside (an IPv4 client seen on an IPv6 socket, `::ffff:a.b.c.d`, as itself).
    pub fn contains(&self, ip: IpAddr) -> bool {
        self.0.contains(&canonical(ip))
    }
}

fn canonical(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V6(v6) => v6.to_ipv4_mapped().map_or(ip, IpAddr::V4),
        v4 => v4,
    }
}

/// The longest `--delay`: beyond it a datagram is as good as lost, and time arithmetic
/// with huge durations would overflow.
pub const MAX_DELAY: Duration = Duration::from_secs(86_400);

/// Whether `to` is a broadcast or multicast address (`--to-broadcast` is needed for those).
pub(crate) fn is_broadcast_or_multicast(to: SocketAddr) -> bool {
    match to.ip() {
        IpAddr::V4(v4) => v4.is_broadcast() || v4.is_multicast(),
        IpAddr::V6(v6) => v6.is_multicast(),
    }
}

/// The configurations that could only do harm, refused before anything is bound.
///
/// # Errors
/// [`Error::Usage`] saying what to change.
pub(crate) fn check(config: &Config) -> Result<()> {
    if is_own_address(config.to, config.bind) {
        return Err(Error::Usage(format!(
            "--to {} is this relay's own address: it would relay every datagram to itself forever; point --to at the server",
            config.to
        )));
    }
    if is_broadcast_or_multicast(config.to) && !config.to_broadcast {
        return Err(Error::Usage(format!(
            "--to {} is a broadcast or multicast address: every datagram would reach every host there; add --to-broadcast if that is what you want",
            config.to
        )));
    }
    if config.to.port() == 0 {
        return Err(Error::Usage(
            "--to needs a port other than 0 (the server's port)".into(),
        ));
    }
    let duplicates = config.up.faults.duplicate > 0.0 || config.down.faults.duplicate > 0.0;
    if duplicates && !config.bind.ip().is_loopback() && config.allow.is_empty() {
        return Err(Error::Usage(
            "--duplicate sends more bytes than arrive; off loopback it needs --allow CIDR, so nobody else can aim the copies at a forged address".into(),
        ));
    }
    for (name, flow) in [("up", &config.up), ("down", &config.down)] {
        if flow.faults.delay.is_some_and(|(_, hi)| hi > MAX_DELAY) {
            return Err(Error::Usage(format!(
                "the {name} --delay is over a day: use at most 24h (a network that holds a datagram longer has lost it)"
            )));
        }
    }
    if config.max_clients == 0 {
        return Err(Error::Usage("--max-clients must be at least 1".into()));
    }
    Ok(())
}

/// After bind, with the real port (`--bind 0.0.0.0:0` is only known now): `--to` must not be
/// the relay itself.
///
/// # Errors
/// [`Error::Usage`] saying what to change.
pub(crate) fn check_bound(to: SocketAddr, local: SocketAddr) -> Result<()> {
    if is_own_address(to, local) {
        return Err(Error::Usage(format!(
            "--to {to} is this relay's own address ({local}): it would relay every datagram to itself forever; point --to at the server"
        )));
    }
    Ok(())
}

/// Whether `to` is where the relay itself listens.
fn is_own_address(to: SocketAddr, bind: SocketAddr) -> bool {
    if to.port() != bind.port() || bind.port() == 0 {
        return false;
    }
    let (to_ip, bind_ip) = (canonical(to.ip()), canonical(bind.ip()));
    to_ip == bind_ip || (bind_ip.is_unspecified() && (to_ip.is_loopback() || to_ip.is_unspecified()))
}

/// Why a datagram from `client` must not be relayed, if it must not: the server's rules.
/// Source port 0 is no real sender; a port below 1024 is a service (echo 7, chargen 19), and
/// relaying the server's replies to it could start a loop; and the relay's own address.
pub(crate) fn refusal(client: SocketAddr, local: SocketAddr) -> Option<&'static str> {
    if client.port() == 0 {
        return Some("source port 0 is not a real sender");
    }
    if client.port() < 1024 {
        return Some("a well-known source port (a service such as echo or chargen could loop with the server)");
    }
    if is_own_address(client, local) {
        return Some("it comes from the relay's own address");
    }
    None
}

/// How many new clients in a row, each sending the first datagram the previous new client
/// sent, and each within [`CHAIN_GAP`] of it (long enough for a hop on a busy machine), make a loop. Relays in a ring (or a relay that
/// reaches itself by another address) make a new client of each hop with the same bytes;
/// people rarely start 400 clients in a row that all say exactly the same thing (a flood
/// from 200 ports of one load tool does not trip it). Two relays in a ring stop within about
/// 2 × 400 datagrams.
pub const LOOP_CHAIN: u32 = 400;

/// The longest gap between two hops of a chain.
pub const CHAIN_GAP: Duration = Duration::from_millis(500);

/// Notices a loop through other relays: a chain of new clients with the same first bytes.
#[derive(Debug, Default)]
pub(crate) struct LoopGuard {
    last: Option<(u64, Instant)>,
    chain: u32,
    warned: bool,
}

impl LoopGuard {
    /// Whether a new client's first datagram continues a loop (it is then not relayed).
    pub(crate) fn is_loop(&mut self, data: &[u8], now: Instant) -> bool {
        let hash = fnv1a(data);
        let continues = self
            .last
            .is_some_and(|(h, at)| h == hash && now.saturating_duration_since(at) <= CHAIN_GAP);
        self.chain = if continues { self.chain.saturating_add(1) } else { 0 };
        self.last = Some((hash, now));
        let looped = self.chain >= LOOP_CHAIN;
        if looped && !self.warned {
            self.warned = true;
            log::warn!(
                "{LOOP_CHAIN} new clients in a row sent the same {} bytes: a loop (this relay reached through another address, or relays in a ring); not relaying them",
                data.len()
            );
        }
        looped
    }
}

/// FNV-1a: a cheap hash of a datagram, enough to tell "the same bytes again".
fn fnv1a(data: &[u8]) -> u64 {
    data.iter().fold(0xcbf2_9ce4_8422_2325, |h, &b| {
        (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3)
    })
}

/// Start-up logs: who can reach the relay, where it forwards, what it does on the way.
pub(crate) fn announce(config: &Config, local: SocketAddr) {
    if local.ip().is_loopback() {
        log::info!(
            "only programs on this machine can send through {local}; for other machines use --bind 0.0.0.0:{} (with --allow)",
            local.port()
        );
    } else if config.allow.is_empty() {
        log::warn!(
            "an open relay: anyone who can reach {local} can send through it to {}; restrict it with --allow CIDR (mind your firewall)",
            config.to
        );
    } else {
        let nets: Vec<String> = config.allow.iter().map(|a| a.0.to_string()).collect();
        log::warn!(
            "other machines can reach {local}; relaying only clients in {}",
            nets.join(", ")
        );
    }
    log::info!(
        "relaying to {} (one upstream socket per client, at most {}, closed after {} idle)",
        config.to,
        config.max_clients,
        common::duration::display(config.idle)
    );
    for (name, flow) in [("up", &config.up), ("down", &config.down)] {
        if flow.is_active() {
            log::info!(
                "injecting faults {name}: {} (the same seed repeats the same faults)",
                flow.describe()
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn allow_takes_networks_and_single_addresses() {
        let net: Allow = "10.1.2.3/8".parse().unwrap();
        assert!(net.contains("10.200.0.1".parse().unwrap()));
        assert!(!net.contains("11.0.0.1".parse().unwrap()));
        assert!(net.contains("::ffff:10.0.0.9".parse().unwrap()), "v4-mapped is v4");
        let one: Allow = "192.168.1.20".parse().unwrap();
        assert!(one.contains("192.168.1.20".parse().unwrap()));
        assert!(!one.contains("192.168.1.21".parse().unwrap()));
        for bad in ["", "10.0.0.0/33", "x", "10.0.0.0/", "::/129"] {
            assert_eq!(bad.parse::<Allow>().unwrap_err().exit_code(), 2, "{bad}");
        }
    }

    #[test]
    fn own_addresses_in_every_form_are_refused() {
        let local: SocketAddr = "127.0.0.1:9000".parse().unwrap();
        for client in ["127.0.0.1:0", "127.0.0.1:19", "127.0.0.1:9000"] {
            assert!(refusal(client.parse().unwrap(), local).is_some(), "{client}");
        }
        assert_eq!(refusal("127.0.0.1:50000".parse().unwrap(), local), None);
        let any: SocketAddr = "[::]:9000".parse().unwrap();
        for to in [
            "[::1]:9000",
            "127.0.0.1:9000",
            "[::ffff:127.0.0.1]:9000",
            "0.0.0.0:9000",
        ] {
            assert!(is_own_address(to.parse().unwrap(), any), "{to}");
        }
        assert!(!is_own_address("127.0.0.1:9001".parse().unwrap(), any));
    }

    #[test]
    fn a_chain_of_identical_new_clients_is_a_loop_and_different_ones_are_not() {
        let mut guard = LoopGuard::default();
        let now = Instant::now();
        for i in 0..1000u32 {
            assert!(!guard.is_loop(format!("client {i}").as_bytes(), now));
        }
        let hops = (0..1000).take_while(|_| !guard.is_loop(b"ping", now)).count();
        assert_eq!(hops as u32, LOOP_CHAIN, "stopped at the {LOOP_CHAIN}th hop");
        let later = now + CHAIN_GAP * 2;
        assert!(!LoopGuard::default().is_loop(b"ping", later));
    }
}
