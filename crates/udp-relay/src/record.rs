//! What the relay writes down about each datagram: its line (or JSON event), `--pcap`,
//! `--save-up`/`--save-down`, bad `--checksum`s. Kept apart from the sockets so a batch of
//! datagrams can be read from the relay's buffers while each one is written down.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use common::output::Output;
use common::pcap::{self, Packet};
use common::save::Save;
use common::shutdown::is_earlier_send_error;
use common::{Error, Result};

use crate::Config;
use crate::flow::Network;
use crate::show::{self, Crossing, Direction};

/// One datagram the relay tried to send.
pub(crate) struct Sent<'a> {
    pub(crate) direction: Direction,
    pub(crate) client: SocketAddr,
    /// The socket it left from and the address it went to, for `--pcap`.
    pub(crate) ends: (SocketAddr, SocketAddr),
    pub(crate) data: &'a [u8],
    pub(crate) note: Option<&'static str>,
    /// What the OS said; `None`: there was no socket to send it on (its client expired).
    pub(crate) result: Option<io::Result<()>>,
}

pub(crate) struct Record<'c> {
    config: &'c Config,
    out: &'c Output,
    started: Instant,
    save_up: Option<Save>,
    save_down: Option<Save>,
    /// `--pcap`: every datagram as it crossed the wire, on both sides.
    pcap: Option<pcap::Writer>,
    pub(crate) checksum_bad: u64,
    told_unreachable: bool,
}

impl<'c> Record<'c> {
    /// Opens the files: `--save` and `--pcap` files that cannot be written fail now, before
    /// anything is relayed.
    pub(crate) fn open(config: &'c Config, out: &'c Output) -> Result<Self> {
        Ok(Record {
            config,
            out,
            started: Instant::now(),
            save_up: config.save_up.as_deref().map(Save::open).transpose()?,
            save_down: config.save_down.as_deref().map(Save::open).transpose()?,
            pcap: config.pcap.as_deref().map(pcap::Writer::create).transpose()?,
            checksum_bad: 0,
            told_unreachable: false,
        })
    }

    /// A datagram as it arrived, also when it is then refused: what crossed the wire.
    pub(crate) fn arrived(&mut self, src: SocketAddr, dst: SocketAddr, data: &[u8]) {
        if let Some(pcap) = &mut self.pcap {
            pcap.record(&Packet::new(src, dst, data));
        }
    }

    /// A datagram went out (or could not): counted in its direction's `net`, recorded,
    /// saved and shown.
    pub(crate) fn sent(&mut self, net: &mut Network, s: Sent<'_>) -> Result<()> {
        let ok = match &s.result {
            Some(Ok(())) => true,
            Some(Err(e)) if is_earlier_send_error(e) => {
                self.tell_unreachable(e);
                false
            }
            // A datagram that cannot go out (a full send buffer) is lost, as UDP may lose any.
            Some(Err(e)) => {
                log::debug!(
                    "{:?} datagram for {} not sent: {}",
                    s.direction,
                    s.client,
                    common::error::describe(e)
                );
                false
            }
            None => false,
        };
        net.sent(s.data.len(), ok);
        if ok {
            if let Some(pcap) = &mut self.pcap {
                pcap.record(&Packet::new(s.ends.0, s.ends.1, s.data));
            }
            let save = match s.direction {
                Direction::Up => &mut self.save_up,
                Direction::Down => &mut self.save_down,
            };
            if let Some(save) = save {
                save.write(s.data)?;
            }
        }
        self.print(
            s.direction,
            s.client,
            s.data,
            if ok { s.note } else { Some("not sent") },
        )
    }

    /// The server's ICMP "port unreachable": nobody listens at --to (yet). Said once; the
    /// relay goes on.
    pub(crate) fn tell_unreachable(&mut self, e: &io::Error) {
        if !self.told_unreachable {
            self.told_unreachable = true;
            log::warn!(
                "no one is listening at {} ({}); is the server running?",
                self.config.to,
                common::error::describe(e)
            );
        }
    }

    /// The datagram's line (nothing with `-q`), its checksum verified.
    pub(crate) fn print(
        &mut self,
        direction: Direction,
        client: SocketAddr,
        data: &[u8],
        note: Option<&str>,
    ) -> Result<()> {
        let check = self.config.checksum.map(|c| c.check(data));
        if check.as_ref().is_some_and(|c| !c.is_ok()) {
            self.checksum_bad += 1;
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

    /// Writes out the pcap and `--save` files; the bytes saved up and down.
    pub(crate) fn finish(self) -> Result<[Option<u64>; 2]> {
        if let Some(pcap) = &self.pcap {
            log::info!("{}", pcap.finish());
        }
        let mut saved = [None, None];
        for (i, save) in [self.save_up, self.save_down].into_iter().enumerate() {
            if let Some(save) = save {
                saved[i] = Some(save.bytes());
                log::info!("{}", save.finish()?);
            }
        }
        Ok(saved)
    }
}
