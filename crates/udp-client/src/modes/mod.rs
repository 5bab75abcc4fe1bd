//! The modes, one file each. A mode is a settings struct (only what that mode uses), a
//! variant of [`Mode`], and a `run` that borrows the [`Session`]: deleting a mode is
//! deleting its file and its variant (the compiler then names the two match arms below
//! and its `Summary` variant).

pub(crate) mod discover;
pub(crate) mod file;
pub(crate) mod interactive;
pub(crate) mod one_shot;
pub(crate) mod ping;
pub(crate) mod repeat;
pub(crate) mod replay;
pub(crate) mod script;

use std::io::BufRead;
use std::net::SocketAddr;

use common::Result;

use crate::session::Session;
use crate::summary::Summary;

pub use discover::Discover;
pub use file::FileSend;
pub use one_shot::OneShot;
pub use ping::{Flood, Ping, Requests};
pub use repeat::Repeat;
pub use replay::{Filter, Pace, Recorded, Replay, Source};
pub use script::Script;

/// What the client does once its socket is connected, decided once from the command line.
#[derive(Debug, Clone, PartialEq)]
pub enum Mode {
    /// Send one datagram, wait for one reply (MESSAGE given).
    OneShot(OneShot),
    /// Each input line is one datagram; everything the target sends is printed (no MESSAGE).
    Interactive,
    /// Sequence-numbered datagrams every `--interval` (`--count N`).
    Ping(Ping),
    /// `--count N --interval 0`: a window of datagrams in flight, refilled as echoes return.
    Flood(Flood),
    /// The exact MESSAGE N times (`--repeat N`).
    Repeat(Repeat),
    /// A file in consecutive datagrams (`--file PATH`).
    File(FileSend),
    /// One datagram to many, every reply listed (`--broadcast`); again every `--interval`
    /// with `--repeat N`.
    Discover(Discover),
    /// The UDP payloads of a capture, sent again (`--replay FILE.pcap`).
    Replay(Replay),
    /// A test of a device, step by step (`--script FILE`).
    Script(Script),
}

impl Mode {
    /// One datagram, no resend.
    pub fn one_shot(message: &[u8]) -> Self {
        Mode::OneShot(OneShot {
            message: message.to_vec(),
            retries: 0,
        })
    }

    /// `count` pings every `interval`; an interval of zero floods, with the default window.
    pub fn ping(count: u64, interval: std::time::Duration) -> Self {
        let requests = Requests {
            message: None,
            count,
            report_every: None,
        };
        if interval.is_zero() {
            Mode::Flood(Flood {
                requests,
                window: usize::from(crate::DEFAULT_WINDOW),
            })
        } else {
            Mode::Ping(Ping {
                requests,
                interval,
                graph: false,
            })
        }
    }

    /// What must hold before a socket is made: every datagram fits the UDP limit, a file
    /// can be opened.
    pub(crate) fn check(&self, target: SocketAddr) -> Result<()> {
        match self {
            Mode::OneShot(m) => crate::errors::check_size(m.message.len(), target),
            Mode::Repeat(m) => crate::errors::check_size(m.message.len(), target),
            Mode::Discover(m) => m.check(target),
            Mode::Ping(m) => m.requests.check(target),
            Mode::Flood(m) => m.requests.check(target),
            Mode::File(m) => m.check(target),
            Mode::Replay(m) => m.check(target),
            Mode::Script(m) => m.check(target),
            Mode::Interactive => Ok(()),
        }
    }

    /// Runs the mode on the session.
    pub(crate) fn run(&self, session: &mut Session<'_>, input: Box<dyn BufRead + Send>) -> Result<Summary> {
        match self {
            Mode::OneShot(m) => one_shot::run(session, m),
            Mode::Interactive => interactive::run(session, input),
            Mode::Ping(m) => ping::pinger::run(session, m).map(Summary::Ping),
            Mode::Flood(m) => ping::flood::run(session, m).map(Summary::Ping),
            Mode::Repeat(m) => repeat::run(session, m),
            Mode::File(m) => file::run(session, m).map(Summary::File),
            Mode::Discover(m) => discover::run(session, m),
            Mode::Replay(m) => replay::run(session, m),
            Mode::Script(m) => script::run(session, m),
        }
    }
}
