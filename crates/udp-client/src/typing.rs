//! How typed text becomes a datagram: the encoding, escapes, line ends and check bytes.

use common::Result;
use common::checksum::Checksum;
use common::codec::Encoding;

/// How typed text becomes a datagram, as NetAssist and device protocols want it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Typing {
    /// `\r \n \t \0 \\ \xNN` become those bytes (`--escapes`).
    pub escapes: bool,
    /// Every message ends with `\r\n` (`-C/--crlf`, as `nc -C`): AT commands want it.
    pub crlf: bool,
    /// Check bytes appended to what is sent and verified on what arrives (`--checksum`).
    pub checksum: Option<Checksum>,
}

impl Typing {
    /// The datagram for typed bytes: encoded (UTF-8 goes out byte for byte unless escapes
    /// are on), then `\r\n`, then the check bytes.
    ///
    /// # Errors
    /// [`common::Error::Usage`] for a bad escape, bad hex, or a character the encoding lacks.
    pub fn frame(&self, encoding: Encoding, typed: &[u8]) -> Result<Vec<u8>> {
        let mut bytes = match (encoding, self.escapes) {
            (Encoding::Utf8, false) => typed.to_vec(),
            _ => encoding.encode_typed(&String::from_utf8_lossy(typed), self.escapes)?,
        };
        if self.crlf {
            bytes.extend_from_slice(b"\r\n");
        }
        Ok(match self.checksum {
            Some(c) => c.append(bytes),
            None => bytes,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Any typed text goes through every framing without a panic.
        #[test]
        fn random_typed_text_never_panics(typed in "[a-zA-Z0-9\\\\xrn 时]{0,20}") {
            for (escapes, crlf) in [(false, false), (true, true)] {
                let typing = Typing { escapes, crlf, checksum: Some(Checksum::Crc16Modbus) };
                for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
                    let _ = typing.frame(enc, typed.as_bytes());
                }
            }
        }
    }
}
