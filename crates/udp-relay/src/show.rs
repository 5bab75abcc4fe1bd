//! What the relay prints: one line per datagram and direction, `>` for a client's datagram
//! going up to the server, `<` for a reply coming down to its client, the client's address
//! always first:
//!
//! ```text
//! 0.012  > 127.0.0.1:50412 -> 127.0.0.1:8888  5 B  hello
//! 0.013  < 127.0.0.1:50412 <- 127.0.0.1:8888  5 B  hello  [delayed]
//! ```
//!
//! With `--json`, `{"event":"relay","direction":"up",…}` per datagram.

use std::io;
use std::net::SocketAddr;
use std::time::Instant;

use common::checksum::Check;
use common::codec::{Encoding, to_hex};
use common::output::{Output, OutputOptions};
use serde_json::json;

/// Which way a datagram travels.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Direction {
    /// From a client to the server.
    Up,
    /// From the server to a client.
    Down,
}

impl Direction {
    fn name(self) -> &'static str {
        match self {
            Direction::Up => "up",
            Direction::Down => "down",
        }
    }
}

/// One datagram crossing the relay.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Crossing<'a> {
    pub(crate) direction: Direction,
    pub(crate) client: SocketAddr,
    pub(crate) server: SocketAddr,
    pub(crate) data: &'a [u8],
    /// What the network did to it: `dropped`, `delayed`, `corrupted`…
    pub(crate) note: Option<&'a str>,
    pub(crate) check: Option<&'a Check>,
}

/// Prints a crossing (nothing with `-q`).
pub(crate) fn crossing(out: &Output, options: OutputOptions, started: Instant, c: &Crossing<'_>) -> io::Result<()> {
    if options.quiet {
        return Ok(());
    }
    let elapsed = started.elapsed().as_secs_f64();
    if options.json {
        return out.report("", crossing_json(options.encoding, options.timestamp, elapsed, c));
    }
    let time = if options.timestamp {
        jiff::Zoned::now().strftime("%H:%M:%S%.3f").to_string()
    } else {
        format!("{elapsed:.3}")
    };
    let (arrow, way) = match c.direction {
        Direction::Up => ('>', "->"),
        Direction::Down => ('<', "<-"),
    };
    let note = c.note.map_or(String::new(), |n| format!("  [{n}]"));
    let check = c.check.map_or(String::new(), |k| format!("  [{}]", k.to_text()));
    out.text(&format!(
        "{time}  {arrow} {} {way} {}  {} B  {}{note}{check}",
        c.client,
        c.server,
        c.data.len(),
        // --show, else as -e says.
        options.render(c.data)
    ))
}

fn crossing_json(encoding: Encoding, timestamp: bool, elapsed: f64, c: &Crossing<'_>) -> serde_json::Value {
    let text = match encoding {
        Encoding::Hex => Encoding::Utf8.render(c.data),
        other => other.render(c.data),
    };
    let mut obj = json!({
        "event": "relay",
        "direction": c.direction.name(),
        "client": c.client.to_string(),
        "server": c.server.to_string(),
        "len": c.data.len(),
        "text": text,
        "hex": to_hex(c.data).replace(' ', ""),
        "t_ms": common::output::round3(elapsed * 1e3),
    });
    if let Some(note) = c.note {
        obj["note"] = note.into();
    }
    if let Some(check) = c.check {
        obj["checksum_ok"] = check.is_ok().into();
    }
    if timestamp {
        obj["time"] = jiff::Zoned::now()
            .strftime("%Y-%m-%dT%H:%M:%S%.6f%:z")
            .to_string()
            .into();
    }
    obj
}
