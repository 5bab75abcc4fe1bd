//! What changes from one send to the next: `{seq}` and `{time}` in a script's text.
//!
//! In text (`-e utf8`, `-e gbk`) `{seq}` is the send's number in decimal (1, 2, …) and
//! `{time}` the Unix time in milliseconds (`1718000000123`): a number that sorts, needs no
//! time zone and is what most device logs carry. With `-e hex` they are bytes, written as
//! hex: `{seq}` two bytes, big-endian (`00 01`, wrapping after `ff ff`, like a Modbus TCP
//! transaction id), `{time}` the same milliseconds as eight bytes, big-endian. Any other
//! `{…}` is text as it stands (a regex's `{2}`, a JSON body).

use common::codec::Encoding;

/// A piece of a step's text.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Seq,
    Time,
}

/// A step's text with its macros found once, when the script is read.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Template {
    pieces: Vec<Piece>,
}

/// What the macros stand for at one step.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Values {
    /// This send's number (from 1); in an expect, the last send's (0 before any).
    pub(crate) seq: u64,
    /// Unix time in milliseconds, at this send (in an expect, the last send's).
    pub(crate) time_ms: u64,
}

impl Values {
    /// What a step is checked with when the script is read: a macro always expands to
    /// text of the same shape, so a step that frames with these frames with any.
    pub(crate) const SAMPLE: Values = Values {
        seq: 1,
        time_ms: 1_700_000_000_000,
    };

    /// The values for a send made now, the `seq`-th.
    pub(crate) fn now(seq: u64) -> Values {
        let time_ms = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
        Values { seq, time_ms }
    }
}

impl Template {
    /// Finds `{seq}` and `{time}` in `text`.
    pub(crate) fn parse(text: &str) -> Template {
        let mut pieces = Vec::new();
        let mut rest = text;
        let mut plain = String::new();
        while let Some(open) = rest.find('{') {
            plain.push_str(&rest[..open]);
            let after = &rest[open..];
            let (piece, len) = if after.starts_with("{seq}") {
                (Some(Piece::Seq), "{seq}".len())
            } else if after.starts_with("{time}") {
                (Some(Piece::Time), "{time}".len())
            } else {
                (None, 1)
            };
            match piece {
                Some(piece) => {
                    if !plain.is_empty() {
                        pieces.push(Piece::Text(std::mem::take(&mut plain)));
                    }
                    pieces.push(piece);
                }
                None => plain.push('{'),
            }
            rest = &after[len..];
        }
        plain.push_str(rest);
        if !plain.is_empty() {
            pieces.push(Piece::Text(plain));
        }
        Template { pieces }
    }

    /// Whether anything in it changes per step.
    pub(crate) fn has_macros(&self) -> bool {
        self.pieces.iter().any(|p| !matches!(p, Piece::Text(_)))
    }

    /// The text with the macros replaced, as `encoding` reads typed text.
    pub(crate) fn expand(&self, values: Values, encoding: Encoding) -> String {
        let hex = encoding == Encoding::Hex;
        let mut out = String::new();
        for piece in &self.pieces {
            match piece {
                Piece::Text(text) => out.push_str(text),
                Piece::Seq if hex => out.push_str(&hex_bytes(&(values.seq as u16).to_be_bytes())),
                Piece::Seq => out.push_str(&values.seq.to_string()),
                Piece::Time if hex => out.push_str(&hex_bytes(&values.time_ms.to_be_bytes())),
                Piece::Time => out.push_str(&values.time_ms.to_string()),
            }
        }
        out
    }
}

/// `00 01` for two bytes: the hex text a regex over hex sees, and whole pairs wherever it
/// stands (`01{seq}` reads as `0100 01`, three bytes).
fn hex_bytes(bytes: &[u8]) -> String {
    common::codec::to_hex(bytes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn seq_and_time_expand_as_decimal_text_or_as_hex_bytes() {
        let t = Template::parse("id={seq} at {time} {x} {2}");
        assert!(t.has_macros());
        let v = Values {
            seq: 258,
            time_ms: 1_718_000_000_123,
        };
        assert_eq!(t.expand(v, Encoding::Utf8), "id=258 at 1718000000123 {x} {2}");
        let hex = Template::parse("00 {seq} 01 {time}");
        assert_eq!(
            hex.expand(v, Encoding::Hex),
            format!(
                "00 01 02 01 {}",
                common::codec::to_hex(&1_718_000_000_123u64.to_be_bytes())
            )
        );
        assert_eq!(
            common::codec::parse_hex(&Template::parse("01{seq}").expand(v, Encoding::Hex)).unwrap(),
            [0x01, 0x01, 0x02]
        );
        // Past 65535 the two bytes wrap, as a 16-bit transaction id does.
        let wrapped = Values { seq: 65_537, ..v };
        assert_eq!(Template::parse("{seq}").expand(wrapped, Encoding::Hex), "00 01");
        assert!(!Template::parse("plain {seqx} {time").has_macros());
        assert_eq!(Template::parse("{time").expand(v, Encoding::Utf8), "{time");
    }
}
