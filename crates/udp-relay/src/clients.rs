//! Which upstream socket belongs to which client. UDP has no connections, so a relay with
//! one upstream socket could not tell whose reply a datagram from the server is; one socket
//! per client address makes the server's replies come back on that client's socket, as a
//! NAT does. The relay bounds the table (`--max-clients`); it forgets idle clients (`--idle`).

use std::collections::{HashMap, HashSet};
use std::net::{SocketAddr, UdpSocket as StdSocket};
use std::time::{Duration, Instant};

use mio::net::UdpSocket;
use mio::{Interest, Registry, Token};

use common::{Error, Result};

/// The token of the listening socket; client `slot` has `Token(slot + 1)`.
pub(crate) const LISTENER: Token = Token(0);

/// One client and the socket that speaks for it to the server.
#[derive(Debug)]
pub(crate) struct Mapping {
    pub(crate) client: SocketAddr,
    pub(crate) socket: UdpSocket,
    /// The socket's own address (the port the OS picked), kept so `--pcap` need not ask
    /// the OS for it per datagram.
    pub(crate) local: SocketAddr,
    last_seen: Instant,
}

/// The clients mapped now.
#[derive(Debug)]
pub(crate) struct Clients {
    by_addr: HashMap<SocketAddr, usize>,
    slots: Vec<Option<Mapping>>,
    free: Vec<usize>,
    /// The local ports of the upstream sockets: a datagram from one of them to the listening
    /// socket means the relay is talking to itself.
    own_ports: HashSet<u16>,
    idle: Duration,
    last_sweep: Instant,
}

impl Clients {
    pub(crate) fn new(idle: Duration) -> Self {
        Clients {
            by_addr: HashMap::new(),
            slots: Vec::new(),
            free: Vec::new(),
            own_ports: HashSet::new(),
            idle,
            last_sweep: Instant::now(),
        }
    }

    /// The slot of a client mapped already, marked as seen now.
    pub(crate) fn find(&mut self, client: SocketAddr, now: Instant) -> Option<usize> {
        let slot = *self.by_addr.get(&client)?;
        if let Some(m) = &mut self.slots[slot] {
            m.last_seen = now;
        }
        Some(slot)
    }

    /// A new client's upstream socket: the chapter's client steps. socket() (std creates it
    /// bound to port 0: the OS picks the port, as the chapter's client lets it), then
    /// connect(), which fixes the server as the only peer, so the kernel drops datagrams
    /// from anyone else on this socket and `send` needs no address.
    pub(crate) fn add(
        &mut self,
        client: SocketAddr,
        to: SocketAddr,
        broadcast: bool,
        registry: &Registry,
    ) -> Result<usize> {
        let any: SocketAddr = if to.is_ipv4() {
            ([0, 0, 0, 0], 0).into()
        } else {
            ([0u16; 8], 0).into()
        };
        let std =
            StdSocket::bind(any).map_err(|e| Error::io(format!("cannot open an upstream socket for {client}"), &e))?;
        if broadcast {
            std.set_broadcast(true)
                .map_err(|e| Error::io("cannot set SO_BROADCAST", &e))?;
        }
        std.connect(to)
            .map_err(|e| Error::io(format!("cannot reach {to}"), &e))?;
        std.set_nonblocking(true)
            .map_err(|e| Error::io("cannot make a socket non-blocking", &e))?;
        let local = std
            .local_addr()
            .map_err(|e| Error::io("cannot read a local address", &e))?;
        let mut socket = UdpSocket::from_std(std);
        let slot = self.free.pop().unwrap_or(self.slots.len());
        registry
            .register(&mut socket, Token(slot + 1), Interest::READABLE)
            .map_err(|e| Error::io("cannot watch an upstream socket", &e))?;
        let mapping = Mapping {
            client,
            socket,
            local,
            last_seen: Instant::now(),
        };
        if slot == self.slots.len() {
            self.slots.push(Some(mapping));
        } else {
            self.slots[slot] = Some(mapping);
        }
        self.by_addr.insert(client, slot);
        self.own_ports.insert(local.port());
        Ok(slot)
    }

    pub(crate) fn get(&self, slot: usize) -> Option<&Mapping> {
        self.slots.get(slot)?.as_ref()
    }

    /// Marks a client as seen (a reply for it came down).
    pub(crate) fn touch(&mut self, slot: usize, now: Instant) {
        if let Some(Some(m)) = self.slots.get_mut(slot) {
            m.last_seen = now;
        }
    }

    pub(crate) fn is_own_port(&self, port: u16) -> bool {
        self.own_ports.contains(&port)
    }

    pub(crate) fn len(&self) -> usize {
        self.by_addr.len()
    }

    /// Closes the upstream sockets idle for `--idle`; at most once a second (or once per
    /// `--idle`, if shorter), so a busy relay does not scan its table per datagram. Returns
    /// how many closed.
    pub(crate) fn expire(&mut self, now: Instant, registry: &Registry) -> u64 {
        if now.saturating_duration_since(self.last_sweep) < self.idle.min(Duration::from_secs(1)) {
            return 0;
        }
        self.last_sweep = now;
        let mut closed = 0;
        for slot in 0..self.slots.len() {
            let idle = self.slots[slot]
                .as_ref()
                .is_some_and(|m| now.saturating_duration_since(m.last_seen) >= self.idle);
            if !idle {
                continue;
            }
            if let Some(mut m) = self.slots[slot].take() {
                let _ = registry.deregister(&mut m.socket);
                self.own_ports.remove(&m.local.port());
                self.by_addr.remove(&m.client);
                self.free.push(slot);
                log::debug!("{} idle for {:?}: its upstream socket is closed", m.client, self.idle);
                closed += 1;
            }
        }
        closed
    }
}
