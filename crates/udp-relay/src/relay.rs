//! The relay's state between datagrams and the calls `run` is made of: one wait over every
//! socket (mio: epoll, kqueue or IOCP), then each datagram received into one buffer, passed
//! through its direction's simulated network and sent on from that same buffer.

use std::collections::HashSet;
use std::io;
use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::time::Instant;

use common::faults::Delivery;
use common::output::Output;
use common::save::Save;
use common::shutdown::{POLL_INTERVAL, is_earlier_send_error, is_wake_up};
use common::{Error, Result};
use mio::net::UdpSocket;
use mio::{Events, Interest, Poll, Token};

use crate::clients::{Clients, LISTENER};
use crate::flow::{Fate, Network};
use crate::guard::{self, LoopGuard};
use crate::show::{self, Crossing, Direction};
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
/// request waiting; what is left is read right after, in turn with the rest.
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

/// Everything the relay keeps while it runs.
pub(crate) struct Relay<'c> {
    config: &'c Config,
    out: &'c Output,
    poll: Poll,
    events: Events,
    listener: UdpSocket,
    local: SocketAddr,
    clients: Clients,
    up: Network,
    down: Network,
    loops: LoopGuard,
    /// The one buffer every datagram passes through, and the current datagram's length.
    buf: Vec<u8>,
    len: usize,
    /// Sockets left with datagrams when their budget ran out.
    pending: Vec<Ready>,
    /// The socket being read, and how many datagrams it gave in this wait.
    current: Option<Ready>,
    handled: usize,
    due: Vec<Delivery>,
    started: Instant,
    summary: Summary,
    warned: HashSet<SocketAddr>,
    save_up: Option<Save>,
    save_down: Option<Save>,
    told_unreachable: bool,
}

impl<'c> Relay<'c> {
    pub(crate) fn new(config: &'c Config, out: &'c Output, mut listener: UdpSocket) -> Result<Self> {
        // --save files that cannot be written fail now, before anything is relayed.
        let save_up = config.save_up.as_deref().map(Save::open).transpose()?;
        let save_down = config.save_down.as_deref().map(Save::open).transpose()?;
        let poll = Poll::new().map_err(|e| Error::io("cannot create a poll instance", &e))?;
        poll.registry()
            .register(&mut listener, LISTENER, Interest::READABLE)
            .map_err(|e| Error::io("cannot watch the socket", &e))?;
        let local = listener
            .local_addr()
            .map_err(|e| Error::io("cannot read the bound address", &e))?;
        room_for_sockets(config.max_clients);
        Ok(Relay {
            config,
            out,
            poll,
            events: Events::with_capacity(256),
            listener,
            local,
            clients: Clients::new(config.idle),
            up: Network::new(config.up),
            down: Network::new(config.down),
            loops: LoopGuard::default(),
            // Room for the largest UDP payload, so nothing a client sends is ever cut on the way in.
            buf: vec![0; common::DEFAULT_BUFFER_SIZE],
            len: 0,
            pending: Vec::new(),
            current: None,
            handled: 0,
            due: Vec::new(),
            started: Instant::now(),
            summary: Summary {
                local: Some(local),
                ..Summary::default()
            },
            warned: HashSet::new(),
            save_up,
            save_down,
            told_unreachable: false,
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

    /// Whether `ready`'s budget for this wait is spent; if so it is read again right after.
    fn spent(&mut self, ready: Ready) -> bool {
        if self.current != Some(ready) {
            self.current = Some(ready);
            self.handled = 0;
        }
        self.handled += 1;
        let spent = self.handled > BUDGET;
        if spent {
            self.pending.push(ready);
        }
        spent
    }

    /// The next datagram a client sent, if any waits: `recvfrom()`. Datagrams the relay must
    /// not forward (outside `--allow`, from a port that could loop) are counted and skipped.
    pub(crate) fn recv_from_client(&mut self) -> Result<Option<SocketAddr>> {
        loop {
            if self.spent(Ready::Client) {
                return Ok(None);
            }
            let (len, client) = match self.listener.recv_from(&mut self.buf) {
                Ok(received) => received,
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(None),
                // An ICMP error about an earlier send (Windows reports it here): not ours to stop for.
                Err(e) if is_wake_up(&e) || is_earlier_send_error(&e) => continue,
                Err(e) => return Err(Error::io(format!("receiving on {} failed", self.local), &e)),
            };
            self.len = len;
            if self.admit(client) {
                return Ok(Some(client));
            }
        }
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

    /// The client's upstream socket, made on first sight (`None`: refused, and counted).
    pub(crate) fn upstream_for(&mut self, client: SocketAddr) -> Result<Option<usize>> {
        let now = Instant::now();
        if let Some(slot) = self.clients.find(client, now) {
            return Ok(Some(slot));
        }
        if self.clients.len() >= self.config.max_clients {
            self.summary.full += 1;
            let why = format!("{} clients are mapped already (--max-clients)", self.config.max_clients);
            self.warn_once(client, &why);
            return Ok(None);
        }
        // Only clients that would be mapped count towards a loop: refused ones get nowhere.
        if self.loops.is_loop(&self.buf[..self.len], now) {
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

    /// sendto() the server, through the up direction's network.
    pub(crate) fn send_up(&mut self, slot: usize) -> Result<()> {
        let Some(client) = self.clients.get(slot).map(|m| m.client) else {
            return Ok(());
        };
        let fate = self.up.enter(&mut self.buf[..self.len], client, Instant::now());
        self.follow(Direction::Up, client, Some(slot), fate)
    }

    /// The next reply the server sent to `slot`'s socket, if any waits: `recvfrom()`.
    pub(crate) fn recv_from_server(&mut self, slot: usize) -> Result<bool> {
        loop {
            if self.spent(Ready::Upstream(slot)) {
                return Ok(false);
            }
            let Some(mapping) = self.clients.get(slot) else {
                return Ok(false);
            };
            match mapping.socket.recv(&mut self.buf) {
                Ok(len) => {
                    self.len = len;
                    self.clients.touch(slot, Instant::now());
                    return Ok(true);
                }
                Err(e) if e.kind() == io::ErrorKind::WouldBlock => return Ok(false),
                Err(e) if is_wake_up(&e) => {}
                // The upstream socket is connected, so the server's ICMP "port unreachable"
                // comes back here: nobody listens at --to (yet). Said once; the relay goes on.
                Err(e) if is_earlier_send_error(&e) => self.tell_unreachable(&e),
                Err(e) => return Err(Error::io(format!("receiving from {} failed", self.config.to), &e)),
            }
        }
    }

    fn tell_unreachable(&mut self, e: &io::Error) {
        if !self.told_unreachable {
            self.told_unreachable = true;
            log::warn!(
                "no one is listening at {} ({}); is the server running?",
                self.config.to,
                common::error::describe(e)
            );
        }
    }

    /// sendto() the client, from the bound socket, through the down direction's network.
    pub(crate) fn send_down(&mut self, slot: usize) -> Result<()> {
        let Some(client) = self.clients.get(slot).map(|m| m.client) else {
            return Ok(());
        };
        let fate = self.down.enter(&mut self.buf[..self.len], client, Instant::now());
        self.follow(Direction::Down, client, None, fate)
    }

    /// Sends now what the network let through at once, or says it was lost.
    fn follow(&mut self, direction: Direction, client: SocketAddr, slot: Option<usize>, fate: Fate) -> Result<()> {
        match fate {
            Fate::Now { len, note } => {
                let data = std::mem::take(&mut self.buf);
                let result = self.send(direction, client, slot, &data[..len], note);
                self.buf = data;
                result
            }
            Fate::Held { dropped: true } => {
                let data = std::mem::take(&mut self.buf);
                let result = self.print(direction, client, &data[..self.len], Some("dropped"));
                self.buf = data;
                result
            }
            Fate::Held { dropped: false } => Ok(()),
        }
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
                self.send(direction, d.peer, None, &d.data, note)?;
            }
        }
        self.due = due;
        Ok(())
    }

    /// One datagram out: up on the client's socket (its `slot`, when known: no lookup per
    /// datagram), down from the bound socket.
    fn send(
        &mut self,
        direction: Direction,
        client: SocketAddr,
        slot: Option<usize>,
        data: &[u8],
        note: Option<&str>,
    ) -> Result<()> {
        let sent = match direction {
            Direction::Up => match slot.or_else(|| self.clients.find(client, Instant::now())) {
                // A client that expired while its datagram was held back has no socket left.
                Some(slot) => self.clients.get(slot).map(|m| m.socket.send(data)),
                None => None,
            },
            Direction::Down => Some(self.listener.send_to(data, client)),
        };
        let ok = match sent {
            Some(Ok(_)) => true,
            Some(Err(e)) if is_earlier_send_error(&e) => {
                self.tell_unreachable(&e);
                false
            }
            // A datagram that cannot go out (a full send buffer) is lost, as UDP may lose any.
            Some(Err(e)) => {
                log::debug!(
                    "{direction:?} datagram for {client} not sent: {}",
                    common::error::describe(&e)
                );
                false
            }
            None => false,
        };
        match direction {
            Direction::Up => self.up.sent(data.len(), ok),
            Direction::Down => self.down.sent(data.len(), ok),
        }
        if ok {
            let save = match direction {
                Direction::Up => &mut self.save_up,
                Direction::Down => &mut self.save_down,
            };
            if let Some(save) = save {
                save.write(data)?;
            }
        }
        self.print(direction, client, data, if ok { note } else { Some("not sent") })
    }

    fn print(&mut self, direction: Direction, client: SocketAddr, data: &[u8], note: Option<&str>) -> Result<()> {
        let check = self.config.checksum.map(|c| c.check(data));
        if check.as_ref().is_some_and(|c| !c.is_ok()) {
            *self.summary.checksum_bad.get_or_insert(0) += 1;
        }
        let crossing = Crossing {
            direction,
            client,
            server: self.config.to,
            data,
            note,
            check: check.as_ref(),
        };
        show::crossing(self.out, self.config.output, self.started, &crossing).map_err(Error::stdout)
    }

    /// Closes the upstream sockets of clients idle for `--idle`.
    pub(crate) fn expire_idle(&mut self) {
        self.summary.expired += self.clients.expire(Instant::now(), self.poll.registry());
    }

    /// The summary, once the `--save` files are written out.
    pub(crate) fn finish(self) -> Result<Summary> {
        let mut saved = [None, None];
        for (i, save) in [self.save_up, self.save_down].into_iter().enumerate() {
            if let Some(save) = save {
                saved[i] = Some(save.bytes());
                log::info!("{}", save.finish()?);
            }
        }
        Ok(Summary {
            up: self.up.flow(),
            down: self.down.flow(),
            saved_up: saved[0],
            saved_down: saved[1],
            checksum_bad: self.config.checksum.map(|_| self.summary.checksum_bad.unwrap_or(0)),
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
