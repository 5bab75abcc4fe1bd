//! Echo loops: the 2024 "Loop DoS" (CVE-2024-2169), and how a server breaks them.
//!
//! The chapter's server answers every datagram: `data, addr = sock.recvfrom(1024)` then
//! `sock.sendto(data, addr)`. Point two such servers at each other with one forged datagram
//! (source: server A, sent to server B) and B answers A, A answers B, B answers A … forever,
//! as fast as the machines go: about 65,000 datagrams a second each on loopback. The same
//! happens between two servers with a fixed reply (`OK` answered with `OK`), between rules
//! that answer each other (`PING=>PONG` here, `PONG=>PING` there), and with a server that
//! answers itself (a datagram forged from its own address, in any of the forms that address
//! takes).
//!
//! Two guards, both cheap enough for every datagram:
//! - [`OwnAddresses`]: this server's own address in every form (`::ffff:127.0.0.1` is
//!   `127.0.0.1`; on `0.0.0.0` every address of every interface, read with getifaddrs), so a
//!   datagram "from ourselves" is never answered;
//! - [`LoopGuard`]: a peer that keeps sending datagrams it has sent before, back to back,
//!   more than [`LOOP_REPEATS`] times within [`WINDOW`], is in a loop with us (in a loop every
//!   datagram is the answer to an answer, and answers repeat). Its repeats go unanswered
//!   until it has been quiet for [`HOLD`]; anything new it sends is still answered.
//!
//! A client never repeats itself that fast: `udp-client` and load tools number their
//! datagrams (`seq=1 …`), a person types one line at a time, and a device polled every
//! second repeats once a second. What the guard cannot tell apart is in the docs' safety page.

use std::collections::HashMap;
use std::hash::BuildHasher;
use std::net::{IpAddr, SocketAddr};
use std::time::{Duration, Instant};

/// Repeats within [`WINDOW`] that make a loop: a loop on loopback reaches this in a few
/// milliseconds, a client polling the same command every 10 ms never does.
pub const LOOP_REPEATS: u32 = 200;

/// The window [`LOOP_REPEATS`] must fall into: slower repeats are a client, not a loop.
pub const WINDOW: Duration = Duration::from_secs(1);

/// How long a looping peer's repeats stay unanswered after the last one arrived.
pub const HOLD: Duration = Duration::from_secs(5);

/// Peers in a streak of repeats (or held) that are remembered at once; a flood of forged
/// sources cannot make the table grow past this (about 300 KB).
pub const MAX_TRACKED: usize = 4096;

/// A streak survives one new datagram per this many repeats ("nearly" all repeats).
const FRESH_SHARE: u32 = 4;

/// Slots of the table of recent datagrams: 16 bytes each (256 KB), so a loop stays seen
/// even with a thousand different datagrams in flight through it.
const SEEN_SLOTS: usize = 1 << 14;

/// The bytes at each end of a payload that go into its short key.
const ENDS: usize = 32;

/// One recent datagram: the hash of its peer, length and ends, and of its whole payload
/// (0 when it was not computed).
#[derive(Debug, Clone, Copy, Default)]
struct Slot {
    short: u64,
    full: u64,
}

/// The first and last [`ENDS`] bytes of `data` (all of it when shorter).
fn ends(data: &[u8]) -> (&[u8], &[u8]) {
    let head = &data[..data.len().min(ENDS)];
    let tail = &data[data.len().saturating_sub(ENDS)..];
    (head, tail)
}

/// What to do with one datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// Answer it: new, or not (yet) part of a loop.
    Answer,
    /// The repeat of a peer already found looping: no answer.
    Refuse,
    /// This datagram showed the loop: no answer, and say so once.
    Broken {
        /// Repeats seen in a row.
        repeats: u32,
        /// Over how long.
        over: Duration,
    },
}

/// Where a peer stands in a run of repeats.
#[derive(Debug, Clone, Copy)]
struct Streak {
    repeats: u32,
    /// New datagrams during the streak: a few are tolerated (the table of recent datagrams
    /// forgets one now and then), more than one in [`FRESH_SHARE`] ends the streak.
    fresh: u32,
    since: Instant,
    /// Set while the peer is held as looping: its repeats are refused until then.
    held_until: Option<Instant>,
}

/// Finds peers that send back what they sent before, as a loop does (see the module docs).
///
/// Per datagram: one short hash (the peer, the length, 64 bytes of payload), one slot read
/// and written; a whole-payload hash and a map lookup only for a likely repeat; no
/// allocation. The map holds only peers that are repeating right now.
pub struct LoopGuard {
    /// Keyed at random per run, so nobody outside can aim datagrams at one slot.
    hasher: foldhash::fast::RandomState,
    /// Recent datagrams, one per slot (direct-mapped), by their hashes.
    seen: Box<[Slot]>,
    /// Streaks: new entries go into `young`; when it is full, it becomes `old` and the
    /// previous `old` is dropped. A bound without scanning (O(1) amortised).
    young: HashMap<SocketAddr, Streak, foldhash::fast::RandomState>,
    old: HashMap<SocketAddr, Streak, foldhash::fast::RandomState>,
}

impl Default for LoopGuard {
    fn default() -> Self {
        Self::new()
    }
}

impl LoopGuard {
    /// An empty guard (its table is allocated once, here).
    pub fn new() -> Self {
        LoopGuard {
            hasher: foldhash::fast::RandomState::default(),
            seen: vec![Slot::default(); SEEN_SLOTS].into_boxed_slice(),
            young: HashMap::default(),
            old: HashMap::default(),
        }
    }

    /// Whether to answer `data` from `peer`.
    pub fn check(&mut self, peer: SocketAddr, data: &[u8]) -> Verdict {
        self.check_with(peer, data, Instant::now)
    }

    /// [`LoopGuard::check`] with the clock given (read only for repeats).
    pub fn check_with(&mut self, peer: SocketAddr, data: &[u8], now: impl FnOnce() -> Instant) -> Verdict {
        // Two steps keep a numbered flood cheap: a short key (the peer, the length and the
        // ends of the payload, where a counter usually sits) picks the slot and tells most
        // datagrams apart; only when it matches is the whole payload hashed to be sure.
        let short = self.hasher.hash_one((peer, data.len(), ends(data)));
        let slot = &mut self.seen[short as usize & (SEEN_SLOTS - 1)];
        let full = (slot.short == short).then(|| self.hasher.hash_one((peer, data)));
        // A slot whose payload was not hashed whole (`full` 0) cannot confirm a repeat yet:
        // a loop is then seen one bounce later.
        let repeat = full.is_some_and(|f| f == slot.full);
        *slot = Slot {
            short,
            full: full.unwrap_or(0),
        };
        if repeat {
            self.repeated(peer, now())
        } else {
            self.fresh(peer);
            Verdict::Answer
        }
    }

    /// Peers remembered now (at most [`MAX_TRACKED`]).
    pub fn tracked(&self) -> usize {
        self.young.len() + self.old.len()
    }

    /// Something new from `peer`: more than a few end its streak (a held peer stays held
    /// for its repeats).
    fn fresh(&mut self, peer: SocketAddr) {
        if self.young.is_empty() && self.old.is_empty() {
            return; // nobody is repeating: the common case costs no lookup
        }
        for map in [&mut self.young, &mut self.old] {
            if let Some(streak) = map.get_mut(&peer) {
                streak.fresh += 1;
                if streak.fresh * FRESH_SHARE > streak.repeats && streak.held_until.is_none() {
                    map.remove(&peer);
                }
            }
        }
    }

    /// A datagram `peer` has sent before.
    fn repeated(&mut self, peer: SocketAddr, now: Instant) -> Verdict {
        let streak = self.streak(peer, now);
        if let Some(until) = streak.held_until {
            if now < until {
                streak.held_until = Some(now + HOLD);
                return Verdict::Refuse;
            }
            // Quiet for the whole hold: the loop is over; start counting afresh.
            *streak = Streak::new(now);
        }
        if now.duration_since(streak.since) > WINDOW {
            *streak = Streak::new(now);
        }
        streak.repeats += 1;
        if streak.repeats < LOOP_REPEATS {
            return Verdict::Answer;
        }
        streak.held_until = Some(now + HOLD);
        Verdict::Broken {
            repeats: streak.repeats,
            over: now.duration_since(streak.since),
        }
    }

    /// `peer`'s streak, made if new (in `young`, which is turned over when full).
    fn streak(&mut self, peer: SocketAddr, now: Instant) -> &mut Streak {
        let found = self.old.remove(&peer);
        if !self.young.contains_key(&peer) && self.young.len() >= MAX_TRACKED / 2 {
            self.old = std::mem::take(&mut self.young);
        }
        self.young
            .entry(peer)
            .or_insert_with(|| found.unwrap_or(Streak::new(now)))
    }
}

impl Streak {
    fn new(now: Instant) -> Self {
        Streak {
            repeats: 0,
            fresh: 0,
            since: now,
            held_until: None,
        }
    }
}

/// How often the interface addresses may be read again when a datagram at our port comes
/// from an address not (yet) known: an address added since start-up (DHCP, a VPN) is seen
/// within this, and a flood costs at most one getifaddrs call per this.
const REFRESH: Duration = Duration::from_secs(1);

/// This server's own addresses, for "never answer yourself".
#[derive(Debug, Clone)]
pub struct OwnAddresses {
    local: SocketAddr,
    /// On `0.0.0.0`/`::`: every interface's address, v4-mapped ones folded to IPv4.
    interfaces: Vec<IpAddr>,
    read_at: Option<Instant>,
}

impl OwnAddresses {
    /// The addresses of a server bound to `local`; on `0.0.0.0`/`::` the interfaces are read.
    pub fn new(local: SocketAddr) -> Self {
        let mut own = Self::with_interfaces(local, Vec::new());
        if local.ip().is_unspecified() {
            own.read(Instant::now());
        }
        own
    }

    /// As [`OwnAddresses::new`], with the interface addresses given (for tests).
    pub fn with_interfaces(local: SocketAddr, interfaces: Vec<IpAddr>) -> Self {
        OwnAddresses {
            local,
            interfaces: interfaces.into_iter().map(|ip| ip.to_canonical()).collect(),
            read_at: None,
        }
    }

    /// Whether `peer` is this server itself, by the bound address or any form of it
    /// (see [`is_self`]), or on `0.0.0.0`/`::` by an interface address at our port.
    pub fn is_own(&mut self, peer: SocketAddr) -> bool {
        if is_self(peer, self.local) {
            return true;
        }
        if peer.port() != self.local.port() || !self.local.ip().is_unspecified() {
            return false;
        }
        let ip = peer.ip().to_canonical();
        if self.interfaces.contains(&ip) {
            return true;
        }
        let now = Instant::now();
        if self.read_at.is_some_and(|at| now.duration_since(at) < REFRESH) {
            return false;
        }
        self.read(now);
        self.interfaces.contains(&ip)
    }

    /// The interface addresses known now.
    pub fn interfaces(&self) -> &[IpAddr] {
        &self.interfaces
    }

    fn read(&mut self, now: Instant) {
        self.read_at = Some(now);
        if let Some(found) = interface_addresses() {
            self.interfaces = found;
        }
    }
}

/// Whether `peer` is the socket bound to `local`, whatever form the address takes: an IPv6
/// socket sees IPv4 peers as `::ffff:a.b.c.d`, and a socket on `0.0.0.0`/`::` sends from
/// every loopback address (`127.0.0.2` included).
pub fn is_self(peer: SocketAddr, local: SocketAddr) -> bool {
    let (ip, bound) = (peer.ip().to_canonical(), local.ip().to_canonical());
    peer.port() == local.port() && (ip == bound || (bound.is_unspecified() && ip.is_loopback()))
}

/// Every address of every interface (getifaddrs, through nix), v4-mapped ones folded to
/// IPv4; `None` when they cannot be read (then the old list stays).
#[cfg(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
))]
fn interface_addresses() -> Option<Vec<IpAddr>> {
    match nix::ifaddrs::getifaddrs() {
        Ok(list) => Some(
            list.filter_map(|i| i.address)
                .filter_map(|a| {
                    let v4 = a.as_sockaddr_in().map(|s| IpAddr::V4(s.ip()));
                    v4.or_else(|| a.as_sockaddr_in6().map(|s| IpAddr::V6(s.ip())))
                })
                .map(|ip| ip.to_canonical())
                .collect(),
        ),
        Err(e) => {
            log::debug!("cannot read this machine's addresses (getifaddrs): {e}");
            None
        }
    }
}

/// Elsewhere (Windows) the interfaces are not read: a datagram forged from one of them is
/// caught by [`LoopGuard`] after [`LOOP_REPEATS`] instead of at once.
#[cfg(not(any(
    target_os = "linux",
    target_os = "android",
    target_vendor = "apple",
    target_os = "freebsd"
)))]
fn interface_addresses() -> Option<Vec<IpAddr>> {
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    fn addr(s: &str) -> SocketAddr {
        s.parse().unwrap()
    }

    /// Feeds `data` from `peer` `n` times at `at`; the verdicts.
    fn feed(guard: &mut LoopGuard, peer: SocketAddr, data: &[u8], n: u32, at: Instant) -> Vec<Verdict> {
        (0..n).map(|_| guard.check_with(peer, data, || at)).collect()
    }

    #[test]
    fn a_peer_repeating_itself_fast_is_a_loop_after_the_budget() {
        let mut guard = LoopGuard::new();
        let (peer, t0) = (addr("127.0.0.1:40000"), Instant::now());
        // The first is new, the second is hashed whole to be sure; then LOOP_REPEATS - 1
        // repeats are answered, and the next breaks it.
        let verdicts = feed(&mut guard, peer, b"loop", LOOP_REPEATS + 1, t0);
        assert!(verdicts.iter().all(|v| *v == Verdict::Answer));
        assert_eq!(
            guard.check_with(peer, b"loop", || t0),
            Verdict::Broken {
                repeats: LOOP_REPEATS,
                over: Duration::ZERO
            }
        );
        assert_eq!(guard.check_with(peer, b"loop", || t0), Verdict::Refuse);
        // Something new from it is still answered; its repeats are not.
        assert_eq!(guard.check_with(peer, b"new", || t0), Verdict::Answer);
        assert_eq!(guard.check_with(peer, b"loop", || t0), Verdict::Refuse);
        // Another peer sending the same bytes is not held.
        assert_eq!(
            guard.check_with(addr("127.0.0.1:40001"), b"loop", || t0),
            Verdict::Answer
        );
    }

    #[test]
    fn many_datagrams_in_flight_still_repeat() {
        let mut guard = LoopGuard::new();
        let (peer, t0) = (addr("[::1]:40000"), Instant::now());
        let payloads: Vec<String> = (0..2000).map(|i| format!("in flight {i}")).collect();
        let mut broken = 0;
        for round in 0..3 {
            for p in &payloads {
                match guard.check_with(peer, p.as_bytes(), || t0) {
                    Verdict::Broken { .. } => broken += 1,
                    Verdict::Refuse => assert_eq!(round, 2),
                    Verdict::Answer => {}
                }
            }
        }
        assert_eq!(broken, 1, "2000 distinct datagrams bouncing: found once");
    }

    #[test]
    fn numbered_floods_and_slow_repeats_are_never_a_loop() {
        let mut guard = LoopGuard::new();
        let (peer, t0) = (addr("127.0.0.1:40000"), Instant::now());
        for seq in 0..100_000u32 {
            let d = format!("seq={seq} hello");
            assert_eq!(guard.check_with(peer, d.as_bytes(), || t0), Verdict::Answer);
        }
        // Long datagrams alike at both ends, numbered in the middle: told apart in full.
        for seq in 0..10 * LOOP_REPEATS {
            let mut d = vec![b'-'; 1400];
            d[700..704].copy_from_slice(&seq.to_le_bytes());
            assert_eq!(guard.check_with(peer, &d, || t0), Verdict::Answer);
        }
        // The same command every 10 ms for a minute: under LOOP_REPEATS per WINDOW.
        for i in 0..6000u64 {
            let at = t0 + Duration::from_millis(10 * i);
            assert_eq!(guard.check_with(peer, b"READ temp", || at), Verdict::Answer, "{i}");
        }
        // Repeats broken up by new datagrams (one in three here) start again from zero.
        for i in 0..10 * LOOP_REPEATS {
            let d = if i % 3 == 0 {
                format!("other {i}")
            } else {
                "same".into()
            };
            assert_eq!(guard.check_with(peer, d.as_bytes(), || t0), Verdict::Answer);
        }
        assert_eq!(guard.tracked(), 1);
    }

    #[test]
    fn a_held_peer_is_answered_again_after_a_quiet_hold() {
        let mut guard = LoopGuard::new();
        let (peer, t0) = (addr("127.0.0.1:40000"), Instant::now());
        feed(&mut guard, peer, b"x", LOOP_REPEATS + 2, t0);
        let later = t0 + HOLD / 2;
        assert_eq!(guard.check_with(peer, b"x", || later), Verdict::Refuse);
        let after = later + HOLD + Duration::from_millis(1);
        assert_eq!(guard.check_with(peer, b"x", || after), Verdict::Answer);
    }

    #[test]
    fn the_table_stays_bounded_under_forged_sources() {
        let mut guard = LoopGuard::new();
        let t0 = Instant::now();
        for port in 0..20_000u16 {
            let peer = SocketAddr::from(([127, 0, 0, 1], port));
            feed(&mut guard, peer, b"thrice", 3, t0);
        }
        assert!(guard.tracked() <= MAX_TRACKED, "{}", guard.tracked());
        assert!(guard.tracked() >= MAX_TRACKED / 2);
    }

    #[test]
    fn our_own_address_is_known_in_every_form() {
        let v4 = addr("127.0.0.1:8888");
        assert!(is_self(addr("127.0.0.1:8888"), v4));
        assert!(is_self(addr("[::ffff:127.0.0.1]:8888"), v4));
        assert!(!is_self(addr("127.0.0.2:8888"), v4), "another socket");
        assert!(!is_self(addr("127.0.0.1:8889"), v4));
        let any6 = addr("[::]:8888");
        for own in ["[::ffff:127.0.0.1]:8888", "[::1]:8888", "127.0.0.5:8888"] {
            assert!(is_self(addr(own), any6), "{own}");
        }
        assert!(!is_self(addr("[::ffff:10.0.0.1]:8888"), any6));
        assert!(is_self(
            addr("[::ffff:127.0.0.1]:8888"),
            addr("[::ffff:127.0.0.1]:8888")
        ));

        let ifaces = vec!["10.1.2.3".parse().unwrap(), "fd00::7".parse().unwrap()];
        let mut any = OwnAddresses::with_interfaces(addr("0.0.0.0:8888"), ifaces.clone());
        any.read_at = Some(Instant::now());
        assert!(any.is_own(addr("10.1.2.3:8888")));
        assert!(!any.is_own(addr("10.1.2.3:8889")));
        assert!(!any.is_own(addr("10.1.2.4:8888")));
        let mut any6 = OwnAddresses::with_interfaces(addr("[::]:8888"), ifaces);
        any6.read_at = Some(Instant::now());
        assert!(any6.is_own(addr("[::ffff:10.1.2.3]:8888")));
        assert!(any6.is_own(addr("[fd00::7]:8888")));
        // Bound to one address, another interface's address is another socket.
        let mut one = OwnAddresses::with_interfaces(addr("10.1.2.3:8888"), vec!["10.9.9.9".parse().unwrap()]);
        assert!(!one.is_own(addr("10.9.9.9:8888")));
    }

    #[cfg(target_os = "linux")]
    #[test]
    fn the_interfaces_are_read_and_include_loopback() {
        let own = OwnAddresses::new(addr("0.0.0.0:8888"));
        assert!(
            own.interfaces().contains(&IpAddr::from([127, 0, 0, 1])),
            "{:?}",
            own.interfaces()
        );
    }
}
