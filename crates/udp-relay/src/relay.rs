//! The relay's state between datagrams and the calls `run` is made of: one wait over every
//! socket (mio: epoll, kqueue or IOCP), then the datagrams a socket holds received into one
//! batch, each passed through its direction's simulated network, and sent on from that same
//! batch, together.

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::ops::Range;
use std::time::Instant;

use common::faults::Delivery;
use common::output::Output;
use common::shutdown::{POLL_INTERVAL, is_earlier_send_error, is_wake_up};
use common::{Error, Result};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::batch::{Batch, Out};
use crate::clients::{Clients, LISTENER};
use crate::flow::{Fate, Network};
use crate::guard::{self, LoopGuard};
use crate::record::{Record, Sent};
use crate::show::Direction;
use crate::{Config, Summary};

/// A socket with datagrams waiting.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub(crate) enum Ready {
    /// The listening socket: clients have sent.
    Client,
    /// A client's upstream socket: the server has replied.
    Upstream(usize),
}

/// The most datagrams read from one socket per wait, so that a flood on one socket cannot
/// starve the others (clients flooding cannot hold back the server's replies) or keep a stop
/// request waiting; what is left is read right after, in turn with the rest. It is also the
/// largest batch one system call moves.
const BUDGET: usize = 64;

/// Sources remembered for "warned once".
const MAX_WARNED: usize = 1024;

/// Step 2, bind(): the address clients send to.
///
/// # Errors
/// [`Error::Runtime`] naming the address, with a hint, when it cannot be bound.
pub(crate) fn bind(addr: SocketAddr) -> Result<UdpSocket> {
    let socket = StdSocket::bind(addr).map_err(|e| common::error::bind_error(addr, &e))?;
    socket
        .set_nonblocking(true)
        .map_err(|e| Error::io("cannot make the socket non-blocking", &e))?;
    Ok(UdpSocket::from_std(socket))
}

/// A datagram the networks let through, waiting in the batch to be sent with the others.
struct Queued {
    out: Out,
    client: SocketAddr,
    /// Up on this client's socket; `None`: down, from the bound socket.
    slot: Option<usize>,
    note: Option<&'static str>,
}

impl AsRef<Out> for Queued {
    fn as_ref(&self) -> &Out {
        &self.out
    }
}

/// Everything the relay keeps while it runs.
pub(crate) struct Relay<'c> {
    config: &'c Config,
    poll: Poll,
    events: Events,
    listener: UdpSocket,
    local: SocketAddr,
    clients: Clients,
    up: Network,
    down: Network,
    loops: LoopGuard,
    /// The datagrams of the socket being read: every datagram passes through it.
    batch: Batch,
    /// When the batch arrived: one clock read per batch, not per datagram.
    now: Instant,
    /// What goes out once the batch is through the networks, and what the OS said to each.
    queued: Vec<Queued>,
    results: Vec<io::Result<()>>,
    /// Sockets left with datagrams when their budget ran out.
    pending: Vec<Ready>,
    /// The socket being read, and how many datagrams it gave in this wait.
    current: Option<Ready>,
    handled: usize,
    due: Vec<Delivery>,
    summary: Summary,
    warned: HashSet<SocketAddr>,
    record: Record<'c>,
}

impl<'c> Relay<'c> {
    pub(crate) fn new(config: &'c Config, out: &'c Output, mut listener: UdpSocket) -> Result<Self> {
        let record = Record::open(config, out)?;
        let poll = Poll::new().map_err(|e| Error::io("cannot create a poll instance", &e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::io("cannot watch the socket", &e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the bound address", &e))?;
        room_for_sockets(config.max_clients);
        let mut batch = Batch::new(BUDGET);
        if !config.no_offload {
            batch.probe_gso();
        }
        Ok(Relay {
            config,
            poll,
            events: Events::with_capacity(256),
            listener,
            local,
            clients: Clients::new(config.idle),
            up: Network::new(config.up),
            down: Network::new(config.down),
            loops: LoopGuard::default(),
            batch,
            now: Instant::now(),
            queued: Vec::with_capacity(BUDGET),
            results: Vec::with_capacity(BUDGET),
            pending: Vec::new(),
            current: None,
            handled: 0,
            due: Vec::new(),
            summary: Summary {
                local: Some(local),
                ..Summary::default()
            },
            warned: HashSet::new(),
            record,
        })
    }

    pub(crate) fn local(&self) -> SocketAddr {
        self.local
    }

    /// Waits until a socket has datagrams or a held datagram falls due (at most
    /// [`POLL_INTERVAL`]); the sockets to read.
    pub(crate) fn wait(&mut self) -> Result<Vec<Ready>> {
        let mut ready = std::mem::take(&mut self.pending);
        let now = Instant::now();
        let due = [self.up.next_due(), self.down.next_due()].into_iter().flatten().min();
        let timeout = match due {
            _ if !ready.is_empty() => std::time::Duration::ZERO,
            Some(due) => due.saturating_duration_since(now).min(POLL_INTERVAL),
            None => POLL_INTERVAL,
        };
        match self.poll.poll(&mut self.events, Some(timeout)) {
            Ok(()) => {}
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(Error::io("waiting for datagrams failed", &e)),
        }
        ready.extend(self.events.iter().map(|event| match event.token() {
            LISTENER => Ready::Client,
            Token(n) => Ready::Upstream(n - 1),
        }));
        // A socket left over and ready again is read once: the list never outgrows the
        // number of sockets, however long a flood lasts.
        ready.sort_unstable();
        ready.dedup();
        self.current = None;
        Ok(ready)
    }

    /// How many more datagrams `ready` may give in this wait; none: its budget is spent, and
    /// it is read again right after the others.
    fn room(&mut self, ready: Ready) -> usize {
        if self.current != Some(ready) {
            self.current = Some(ready);
            self.handled = 0;
        }
        let room = BUDGET.saturating_sub(self.handled);
        if room == 0 {
            self.pending.push(ready);
        }
        room
    }

    /// The next datagrams clients sent, if any wait: `recvfrom()`, as many per call as the OS
    /// moves (see [`crate::batch`]); how many.
    pub(crate) fn recv_from_clients(&mut self) -> Result<Option<usize>> {
        loop {
            let want = self.room(Ready::Client);
            if want == 0 {
                return Ok(None);
            }
            match self.batch.recv(&self.listener, want) {
                Ok(received) => {
                    self.handled += received;
                    self.now = Instant::now();
                    for i in 0..received {
                        let (data, client) = self.batch.get(i);
                        self.record.arrived(client, self.local, data);
                    }
                    return Ok(Some(received));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                // An ICMP error about an earlier send (Windows reports it here): not ours to stop for.
                Err(e) if is_wake_up(&e) || is_earlier_send_error(&e) => self.handled += 1,
                Err(e) => return Err(Error::io(format!("receiving on {} failed", self.local), &e)),
            }
        }
    }

    /// The sender of datagram `i` of the batch, if it may send through the relay. Datagrams
    /// the relay must not forward (outside `--allow`, from a port that could loop) are
    /// counted and skipped.
    pub(crate) fn admitted(&mut self, i: usize) -> Option<SocketAddr> {
        let client = self.batch.get(i).1;
        self.admit(client).then_some(client)
    }

    /// Whether `client` may send through the relay; counts and warns (once) if not.
    fn admit(&mut self, client: SocketAddr) -> bool {
        let why = if !self.config.allow.is_empty() && !self.config.allow.iter().any(|a| a.contains(client.ip())) {
            self.summary.not_allowed += 1;
            "it is outside --allow"
        } else if let Some(why) = guard::refusal(client, self.local) {
            self.summary.refused += 1;
            why
        } else if client.ip().is_loopback() && self.clients.is_own_port(client.port()) {
            self.summary.looped += 1;
            "it comes from one of the relay's own upstream sockets (the relay reaches itself)"
        } else {
            return true;
        };
        self.warn_once(client, why);
        false
    }

    fn warn_once(&mut self, client: SocketAddr, why: &str) {
        if self.warned.len() < MAX_WARNED && self.warned.insert(client) {
            log::warn!("not relaying {client}: {why}");
        }
    }

    /// The client's upstream socket, made on first sight (`None`: refused, and counted);
    /// `i` is the client's datagram in the batch.
    pub(crate) fn upstream_for(&mut self, client: SocketAddr, i: usize) -> Result<Option<usize>> {
        if let Some(slot) = self.clients.find(client, self.now) {
            return Ok(Some(slot));
        }
        if self.clients.len() >= self.config.max_clients {
            self.summary.full += 1;
            let why = format!("{} clients are mapped already (--max-clients)", self.config.max_clients);
            self.warn_once(client, &why);
            return Ok(None);
        }
        // Only clients that would be mapped count towards a loop: refused ones get nowhere.
        if self.loops.is_loop(self.batch.get(i).0, self.now) {
            self.summary.looped += 1;
            return Ok(None);
        }
        let (to, broadcast) = (self.config.to, self.config.to_broadcast);
        match self.clients.add(client, to, broadcast, self.poll.registry()) {
            Ok(slot) => {
                self.summary.clients += 1;
                self.summary.peak_clients = self.summary.peak_clients.max(self.clients.len() as u64);
                log::debug!("new client {client}: upstream socket {slot}");
                Ok(Some(slot))
            }
            // Out of sockets (the open-file limit) is a full table too, not a reason to stop.
            Err(e) => {
                self.summary.full += 1;
                self.warn_once(client, &e.to_string());
                Ok(None)
            }
        }
    }

    /// sendto() the server, through the up direction's network: datagram `i` of the batch.
    pub(crate) fn send_up(&mut self, i: usize, slot: usize) -> Result<()> {
        let Some(client) = self.clients.get(slot).map(|m| m.client) else {
            return Ok(());
        };
        let fate = self.up.enter(self.batch.get_mut(i), client, self.now);
        let out = Out {
            index: i,
            len: 0,
            to: None,
        };
        self.follow(
            Direction::Up,
            Queued {
                out,
                client,
                slot: Some(slot),
                note: None,
            },
            fate,
        )
    }

    /// The next replies the server sent to `slot`'s socket, if any wait: `recvfrom()`, as
    /// many per call as the OS moves; how many.
    pub(crate) fn recv_from_server(&mut self, slot: usize) -> Result<Option<usize>> {
        loop {
            let want = self.room(Ready::Upstream(slot));
            if want == 0 {
                return Ok(None);
            }
            let Some(mapping) = self.clients.get(slot) else {
                return Ok(None);
            };
            match self.batch.recv(&mapping.socket, want) {
                Ok(received) => {
                    self.handled += received;
                    self.now = Instant::now();
                    for i in 0..received {
                        self.record.arrived(self.config.to, mapping.local, self.batch.get(i).0);
                    }
                    self.clients.touch(slot, self.now);
                    return Ok(Some(received));
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                Err(e) if is_wake_up(&e) => self.handled += 1,
                // The upstream socket is connected, so the server's ICMP "port unreachable"
                // comes back here: nobody listens at --to (yet). Said once; the relay goes on.
                Err(e) if is_earlier_send_error(&e) => {
                    self.handled += 1;
                    self.record.tell_unreachable(&e);
                }
                Err(e) => return Err(Error::io(format!("receiving from {} failed", self.config.to), &e)),
            }
        }
    }

    /// sendto() the client, from the bound socket, through the down direction's network:
    /// reply `i` of the batch.
    pub(crate) fn send_down(&mut self, i: usize, slot: usize) -> Result<()> {
        let Some(client) = self.clients.get(slot).map(|m| m.client) else {
            return Ok(());
        };
        let fate = self.down.enter(self.batch.get_mut(i), client, self.now);
        let out = Out {
            index: i,
            len: 0,
            to: Some(client),
        };
        self.follow(
            Direction::Down,
            Queued {
                out,
                client,
                slot: None,
                note: None,
            },
            fate,
        )
    }

    /// Queues what the network let through at once, or says it was lost (after what was
    /// queued before it, so the lines keep the datagrams' order).
    fn follow(&mut self, direction: Direction, mut queued: Queued, fate: Fate) -> Result<()> {
        match fate {
            Fate::Now { len, note } => {
                queued.out.len = len;
                queued.note = note;
                self.queued.push(queued);
                Ok(())
            }
            Fate::Held { dropped: true } => {
                self.send_queued()?;
                let data = self.batch.get(queued.out.index).0;
                self.record.print(direction, queued.client, data, Some("dropped"))
            }
            Fate::Held { dropped: false } => Ok(()),
        }
    }

    /// Sends what the batch queued: each run for one socket in as few calls as the OS allows.
    pub(crate) fn send_queued(&mut self) -> Result<()> {
        let mut start = 0;
        while start < self.queued.len() {
            let slot = self.queued[start].slot;
            let end = self.queued[start..]
                .iter()
                .position(|q| q.slot != slot)
                .map_or(self.queued.len(), |n| start + n);
            self.send_run(start..end)?;
            start = end;
        }
        self.queued.clear();
        Ok(())
    }

    /// One run of queued datagrams for one socket: up on a client's socket, or down from
    /// the bound one; then each one counted, recorded and shown, in order.
    fn send_run(&mut self, run: Range<usize>) -> Result<()> {
        let queued = &self.queued[run];
        let (direction, socket, from) = match queued[0].slot {
            // The socket it leaves from, for --pcap.
            Some(slot) => match self.clients.get(slot) {
                Some(m) => (Direction::Up, Some(&m.socket), m.local),
                None => (Direction::Up, None, self.local),
            },
            None => (Direction::Down, Some(&self.listener), self.local),
        };
        match socket {
            Some(socket) => self.batch.send(socket, queued, &mut self.results),
            None => self.results.clear(),
        }
        let (net, to) = match direction {
            Direction::Up => (&mut self.up, Some(self.config.to)),
            Direction::Down => (&mut self.down, None),
        };
        let mut results = self.results.drain(..);
        for q in queued {
            let sent = Sent {
                direction,
                client: q.client,
                ends: (from, to.unwrap_or(q.client)),
                data: self.batch.get(q.out.index).0.get(..q.out.len).unwrap_or_default(),
                note: q.note,
                result: results.next(),
            };
            self.record.sent(net, sent)?;
        }
        Ok(())
    }

    /// What the simulated networks release now goes out, in the order they release it.
    pub(crate) fn release_due(&mut self) -> Result<()> {
        let now = Instant::now();
        let mut due = std::mem::take(&mut self.due);
        for direction in [Direction::Up, Direction::Down] {
            match direction {
                Direction::Up => self.up.take_due(now, &mut due),
                Direction::Down => self.down.take_due(now, &mut due),
            }
            for d in due.drain(..) {
                // A datagram cut by --truncate travels through the faults with the mark
                // the receivers use for a cut datagram.
                let note = d.note.or(d.truncated.then_some("truncated"));
                self.send_held(direction, d.peer, &d.data, note)?;
            }
        }
        self.due = due;
        Ok(())
    }

    /// One held datagram out: up on its client's socket, down from the bound socket.
    fn send_held(
        &mut self,
        direction: Direction,
        client: SocketAddr,
        data: &[u8],
        note: Option<&'static str>,
    ) -> Result<()> {
        let (result, ends, net) = match direction {
            // A client that expired while its datagram was held back has no socket left.
            Direction::Up => match self
                .clients
                .find(client, Instant::now())
                .and_then(|s| self.clients.get(s))
            {
                Some(m) => (
                    Some(m.socket.send(data).map(|_| ())),
                    (m.local, self.config.to),
                    &mut self.up,
                ),
                None => (None, (self.local, client), &mut self.up),
            },
            Direction::Down => {
                let sent = self.listener.send_to(data, client).map(|_| ());
                (Some(sent), (self.local, client), &mut self.down)
            }
        };
        let sent = Sent {
            direction,
            client,
            ends,
            data,
            note,
            result,
        };
        self.record.sent(net, sent)
    }

    /// Closes the upstream sockets of clients idle for `--idle`.
    pub(crate) fn expire_idle(&mut self) {
        self.summary.expired += self.clients.expire(Instant::now(), self.poll.registry());
    }

    /// The summary, once the `--save` files are written out.
    pub(crate) fn finish(self) -> Result<Summary> {
        let checksum_bad = self.config.checksum.map(|_| self.record.checksum_bad);
        let [saved_up, saved_down] = self.record.finish()?;
        Ok(Summary {
            up: self.up.flow(),
            down: self.down.flow(),
            saved_up,
            saved_down,
            checksum_bad,
            ..self.summary
        })
    }
}

/// Each client costs one socket, and so one open file: the soft limit (often 1024) is raised
/// towards the hard one, so `--max-clients` fits. Where it cannot be, a client past the
/// limit is refused and counted like one past `--max-clients`.
#[cfg(unix)]
fn room_for_sockets(max_clients: usize) {
    use nix::sys::resource::{Resource, getrlimit, setrlimit};
    // rlim_t is u64 on Linux and macOS, i64 on FreeBSD.
    let Ok(wanted) = nix::libc::rlim_t::try_from(max_clients.saturating_add(64)) else {
        return;
    };
    if let Ok((soft, hard)) = getrlimit(Resource::RLIMIT_NOFILE) {
        if soft < wanted {
            let new = wanted.min(hard);
            if setrlimit(Resource::RLIMIT_NOFILE, new, hard).is_err() || new < wanted {
                log::warn!("open files are limited to {new}: fewer than --max-clients {max_clients} clients fit");
            }
        }
    }
}

#[cfg(not(unix))]
fn room_for_sockets(_: usize) {}
