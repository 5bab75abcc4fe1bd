//! `listen --board`: the latest value per key, the chapter's point that a lost update is
//! soon replaced by a newer one. A feed message's key is the first word of its body; a
//! datagram in another format (a sensor's `T=23.0;H=41`) is keyed by its sender, so the
//! board shows each device's latest payload.
//!
//! Everything on the board came from a peer, and anyone who can reach the port is a peer:
//! keys and values are rendered escaped (as every datagram line is), so no byte they sent
//! reaches the terminal as a control code (no window title, no clipboard write through
//! OSC 52, no cleared screen, no fake line).

use std::collections::BTreeMap;
use std::net::SocketAddr;

use common::output::{Output, OutputOptions, plural};

use crate::feed::Counts;

/// How `--board` shows the latest value per key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Board {
    /// Redrawn in place (a terminal).
    Redraw,
    /// One line per update (a pipe or a file).
    Lines,
}

/// Keys the board shows; more would let any sender grow the listener's memory at will.
pub const MAX_BOARD_KEYS: usize = 256;

/// Bytes of a value the board keeps (the rest is cut, marked `…`): a row stays one
/// readable line, and 256 rows of 65 507-byte datagrams cannot cost 16 MB.
pub const MAX_BOARD_VALUE: usize = 120;

/// What a row is keyed by: a feed key (its escaped rendering), or a foreign sender.
/// Feed keys sort first, then senders by address.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord)]
enum Key {
    Name(String),
    Sender(SocketAddr),
}

/// The latest value of one key, and where it came from.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Row {
    /// Rendered and escaped: safe to print.
    value: String,
    /// The feed message's number; none for a foreign datagram.
    seq: Option<u64>,
    from: SocketAddr,
    /// When it was last updated, in updates since the start: line mode prints the newest.
    at: u64,
}

/// The board's rows, and how to show them.
pub(crate) struct Rows {
    style: Board,
    /// How keys (`--encoding`) and values (`--show`, else `--encoding`) are shown.
    output: OutputOptions,
    rows: BTreeMap<Key, Row>,
    updates: u64,
}

impl Rows {
    pub(crate) fn new(style: Board, output: OutputOptions) -> Self {
        Rows {
            style,
            output,
            rows: BTreeMap::new(),
            updates: 0,
        }
    }

    /// A feed message's key and value.
    pub(crate) fn feed(&mut self, key: &[u8], value: &[u8], seq: u64, from: SocketAddr) {
        let key = Key::Name(self.output.encoding.render(key));
        self.post(key, value, Some(seq), from);
    }

    /// A datagram in another format: the latest payload of its sender.
    pub(crate) fn foreign(&mut self, payload: &[u8], from: SocketAddr) {
        self.post(Key::Sender(from), payload, None, from);
    }

    fn post(&mut self, key: Key, value: &[u8], seq: Option<u64>, from: SocketAddr) {
        if self.rows.len() >= MAX_BOARD_KEYS && !self.rows.contains_key(&key) {
            return;
        }
        self.updates += 1;
        let row = Row {
            value: self.render(value),
            seq,
            from,
            at: self.updates,
        };
        self.rows.insert(key, row);
    }

    /// At most [`MAX_BOARD_VALUE`] bytes, escaped; a UTF-8 character is not cut in half.
    fn render(&self, value: &[u8]) -> String {
        if value.len() <= MAX_BOARD_VALUE {
            return self.output.render(value);
        }
        let head = &value[..MAX_BOARD_VALUE];
        let head = match std::str::from_utf8(head) {
            Err(e) if e.error_len().is_none() => &head[..e.valid_up_to()],
            _ => head,
        };
        format!("{}…", self.output.render(head))
    }

    /// Prints the board: the newest row (line mode), or the whole board from the top left.
    pub(crate) fn show(&self, out: &Output, counts: &Counts) -> std::io::Result<()> {
        match self.style {
            Board::Lines => match self.rows.iter().max_by_key(|(_, row)| row.at) {
                Some((key, row)) => out.text(&line(key, row)),
                None => Ok(()),
            },
            Board::Redraw => {
                // Clear the screen and draw from the top left (ANSI escape codes): the only
                // control codes printed, and they are ours.
                let mut screen = String::from("\x1b[H\x1b[2J");
                screen += &format!(
                    "{} from {}; {} lost, {} reordered, {}\n\n",
                    plural(counts.received, "message"),
                    plural(counts.senders, "sender"),
                    counts.lost,
                    counts.reordered,
                    plural(counts.duplicates, "duplicate")
                );
                for (key, row) in &self.rows {
                    screen += &line(key, row);
                    screen.push('\n');
                }
                out.text(screen.trim_end())
            }
        }
    }
}

/// One row: `AAPL       189.23 +0.12                 seq=17 from 127.0.0.1:5000` for a
/// feed key, `127.0.0.1:5000        T=23.0;H=41` for a foreign sender.
fn line(key: &Key, row: &Row) -> String {
    match key {
        Key::Name(name) => {
            let seq = row.seq.map_or(String::new(), |n| format!("seq={n} "));
            format!("{name:<10} {:<28} {seq}from {}", row.value, row.from)
        }
        Key::Sender(from) => format!("{from:<21} {}", row.value),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use common::codec::Encoding;
    use common::output::Show;

    fn typed(encoding: Encoding) -> OutputOptions {
        OutputOptions {
            encoding,
            ..OutputOptions::default()
        }
    }

    fn from() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    #[test]
    fn long_values_are_cut_without_splitting_a_character() {
        let mut rows = Rows::new(Board::Lines, typed(Encoding::Utf8));
        let long = "é".repeat(100);
        rows.foreign(long.as_bytes(), from());
        let value = &rows.rows[&Key::Sender(from())].value;
        assert_eq!(value, &format!("{}…", "é".repeat(MAX_BOARD_VALUE / 2)));
        let mut hex = Rows::new(Board::Lines, typed(Encoding::Hex));
        hex.foreign(&[0xaa; 200], from());
        let value = &hex.rows[&Key::Sender(from())].value;
        assert_eq!(value.len(), MAX_BOARD_VALUE * 3 - 1 + '…'.len_utf8());
    }

    #[test]
    fn keys_and_values_are_escaped() {
        let mut rows = Rows::new(Board::Lines, typed(Encoding::Utf8));
        rows.feed(b"K\x1b]0;x\x07", b"v\r\n\x00", 1, from());
        let (key, row) = rows.rows.iter().next().unwrap();
        assert_eq!(
            line(key, row),
            format!("K\\x1b]0;x\\x07 {:<28} seq=1 from 127.0.0.1:5000", "v\\r\\n\\x00")
        );
    }

    /// `--show hex` shows the values as bytes; keys stay text.
    #[test]
    fn show_hex_shows_values_as_bytes() {
        let output = OutputOptions {
            show: Some(Show::Hex),
            ..OutputOptions::default()
        };
        let mut rows = Rows::new(Board::Lines, output);
        rows.feed(b"T", b"23.5", 1, from());
        let (key, row) = rows.rows.iter().next().unwrap();
        assert_eq!(
            line(key, row),
            format!("{:<10} {:<28} seq=1 from 127.0.0.1:5000", "T", "32 33 2e 35")
        );
    }
}
