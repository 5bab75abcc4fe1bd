//! `--replay FILE.pcap`: the UDP payloads of a capture (tcpdump, Wireshark, or another
//! program's `--pcap`) sent again to TARGET, at the pace they were recorded or every
//! `--interval`: "send again exactly what the device sent yesterday". Only the payloads
//! are sent, from this socket: the recorded addresses and ports are what the filters
//! choose by, not what is sent from (that would need a raw socket and root).

use std::net::{IpAddr, SocketAddr};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use common::pcap::Captured;
use common::{Error, Result};

use crate::session::{Session, later};
use crate::summary::Summary;

/// Which datagrams of the capture are sent again.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Filter {
    /// Only those sent to this port (`--filter-port`): the server's port, in a capture of a
    /// conversation, picks the requests and leaves out the replies.
    pub port: Option<u16>,
    /// Only those from this sender (`--filter-src`): an address, or an address and port.
    pub src: Option<Source>,
}

/// A sender to match: any port of an address, or one address and port.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Source {
    /// `--filter-src 192.168.1.50`
    Host(IpAddr),
    /// `--filter-src 192.168.1.50:5000`
    Socket(SocketAddr),
}

impl std::str::FromStr for Source {
    type Err = String;

    fn from_str(text: &str) -> std::result::Result<Self, String> {
        text.parse()
            .map(Source::Socket)
            .or_else(|_| text.parse().map(Source::Host))
            .map_err(|_| "not an address: use IP or IP:PORT, e.g. 192.168.1.50 or 192.168.1.50:5000".to_string())
    }
}

impl Source {
    /// Whether a datagram from `src` is from this sender. An IPv6 socket (and a capture of
    /// one) shows IPv4 senders as ::ffff:a.b.c.d: both sides are compared unmapped.
    pub fn matches(&self, src: SocketAddr) -> bool {
        let src = SocketAddr::new(src.ip().to_canonical(), src.port());
        match *self {
            Source::Host(ip) => src.ip() == ip.to_canonical(),
            Source::Socket(addr) => src == SocketAddr::new(addr.ip().to_canonical(), addr.port()),
        }
    }
}

impl std::fmt::Display for Source {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Source::Host(ip) => ip.fmt(f),
            Source::Socket(addr) => addr.fmt(f),
        }
    }
}

impl Filter {
    /// Whether `datagram` is one to send.
    pub fn matches(&self, datagram: &Captured) -> bool {
        let from = self.src.is_none_or(|src| src.matches(datagram.src));
        from && self.port.is_none_or(|port| datagram.dst.port() == port)
    }
}

/// When each datagram goes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Pace {
    /// With the gaps the capture recorded between them (`--pace recorded`, the default).
    Recorded,
    /// One every interval (`--interval DUR`).
    Interval(Duration),
}

/// One datagram to send again: its payload, and when it was recorded after the first.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recorded {
    /// How long after the first chosen datagram it was captured.
    pub after: Duration,
    /// The payload.
    pub data: Vec<u8>,
}

/// The replay's settings, with the datagrams already read from the capture.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Replay {
    /// The capture file.
    pub path: PathBuf,
    /// The datagrams chosen, in file order.
    pub datagrams: Vec<Recorded>,
    /// When each goes.
    pub pace: Pace,
}

impl Replay {
    /// Reads the UDP datagrams of the pcap or pcapng file at `path` that `filter` matches.
    ///
    /// # Errors
    /// [`Error::Usage`] when the file cannot be read, is not a capture, or holds no UDP
    /// datagram the filter matches (each says which).
    pub fn load(path: &Path, filter: Filter, pace: Pace) -> Result<Self> {
        let all = common::pcap::read_udp(path).map_err(|e| Error::Usage(e.to_string()))?;
        let total = all.len();
        let chosen: Vec<Captured> = all.into_iter().filter(|d| filter.matches(d)).collect();
        let Some(first) = chosen.first().map(|d| d.time) else {
            let what = if total == 0 {
                "no UDP datagram".to_string()
            } else {
                format!("{total} UDP datagrams, none matching --filter-port/--filter-src")
            };
            return Err(Error::Usage(format!(
                "--replay {}: the capture holds {what}; nothing to send (tshark -r FILE lists what it holds)",
                path.display()
            )));
        };
        let cut = chosen.iter().filter(|d| d.len > d.data.len()).count();
        if cut > 0 {
            log::warn!(
                "{cut} of the datagrams were cut when captured (snapshot length): the bytes the capture holds are sent"
            );
        }
        let datagrams = chosen
            .into_iter()
            .map(|d| Recorded {
                after: d.time.saturating_sub(first),
                data: d.data,
            })
            .collect();
        Ok(Replay {
            path: path.to_path_buf(),
            datagrams,
            pace,
        })
    }

    /// Every datagram fits one UDP datagram to `target`.
    pub(crate) fn check(&self, target: SocketAddr) -> Result<()> {
        self.datagrams
            .iter()
            .try_for_each(|d| crate::errors::check_size(d.data.len(), target))
    }

    /// When the `i`-th datagram goes, for a replay that started at `start`.
    fn due(&self, start: Instant, i: usize) -> Instant {
        match self.pace {
            Pace::Recorded => later(start, self.datagrams[i].after),
            Pace::Interval(interval) => {
                let times = u32::try_from(i).unwrap_or(u32::MAX);
                later(start, interval.checked_mul(times).unwrap_or(Duration::MAX))
            }
        }
    }
}

/// Sends each datagram when it is due, printing every reply meanwhile; after the last,
/// waits up to `--timeout` for replies still on their way (unless `--no-reply`). The
/// summary is `--repeat`'s: sent, received, lost.
pub(crate) fn run(session: &mut Session<'_>, mode: &Replay) -> Result<Summary> {
    let target = session.target();
    log::info!(
        "replaying {} from {} to {target} ({})",
        common::output::plural(mode.datagrams.len() as u64, "datagram"),
        mode.path.display(),
        match mode.pace {
            Pace::Recorded => "at the recorded pace".to_string(),
            Pace::Interval(i) => format!("one every {i:?}"),
        }
    );
    let start = Instant::now();
    let sends = mode
        .datagrams
        .iter()
        .enumerate()
        .map(|(i, d)| (mode.due(start, i), &d.data[..]));
    super::repeat::paced(session, sends)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn captured(src: &str, dst: &str) -> Captured {
        Captured {
            time: Duration::ZERO,
            src: src.parse().unwrap(),
            dst: dst.parse().unwrap(),
            data: b"x".to_vec(),
            len: 1,
        }
    }

    #[test]
    fn the_filters_choose_by_destination_port_and_by_sender() {
        let request = captured("192.168.1.50:5000", "10.0.0.1:8888");
        let reply = captured("10.0.0.1:8888", "192.168.1.50:5000");
        let to_8888 = Filter {
            port: Some(8888),
            src: None,
        };
        assert!(to_8888.matches(&request));
        assert!(!to_8888.matches(&reply), "a reply is from port 8888, not to it");
        let host: Source = "192.168.1.50".parse().unwrap();
        let socket: Source = "192.168.1.50:5001".parse().unwrap();
        let from = |src| Filter {
            port: None,
            src: Some(src),
        };
        assert!(from(host).matches(&request));
        assert!(!from(host).matches(&reply));
        assert!(!from(socket).matches(&request), "another port of the same host");
        // An IPv6 socket's capture names an IPv4 sender in its mapped form.
        assert!(from(host).matches(&captured("[::ffff:192.168.1.50]:5000", "[::]:8888")));
        assert!("not an address".parse::<Source>().is_err());
        assert!(Filter::default().matches(&reply));
    }

    #[test]
    fn the_interval_pace_never_overflows() {
        let replay = Replay {
            path: PathBuf::new(),
            datagrams: vec![],
            pace: Pace::Interval(Duration::from_secs(365 * 24 * 3600)),
        };
        let start = Instant::now();
        assert_eq!(replay.due(start, 0), start);
        assert!(replay.due(start, 1_000_000) > start);
    }
}
