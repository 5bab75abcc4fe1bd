//! Check bytes, as NetAssist and device protocols use them: appended to what is sent, and
//! verified at the end of what arrives.
//!
//! UDP has its own checksum (see `header`), but it covers one hop and is checked by the
//! kernel, which drops a bad datagram silently. Devices add their own at the end of the
//! payload: Modbus RTU a CRC-16, many serial-over-UDP protocols a byte sum or XOR. The CRCs
//! come from the `crc` crate's catalogue, so each is exactly the standard one.

use std::str::FromStr;

use crc::{CRC_16_IBM_3740, CRC_16_MODBUS, CRC_32_ISO_HDLC, Crc};

use crate::{Error, Result};

/// A check-byte algorithm (`--checksum`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Checksum {
    /// The sum of all bytes, mod 256: one byte.
    Sum8,
    /// The XOR of all bytes: one byte.
    Xor8,
    /// CRC-16/MODBUS, sent low byte first (Modbus RTU).
    Crc16Modbus,
    /// CRC-16/CCITT-FALSE (poly 0x1021, init 0xffff), high byte first.
    Crc16Ccitt,
    /// CRC-32/ISO-HDLC (zip, Ethernet), high byte first.
    Crc32,
}

impl FromStr for Checksum {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "sum8" => Ok(Checksum::Sum8),
            "xor8" => Ok(Checksum::Xor8),
            "crc16-modbus" | "modbus" => Ok(Checksum::Crc16Modbus),
            "crc16-ccitt" | "ccitt" => Ok(Checksum::Crc16Ccitt),
            "crc32" => Ok(Checksum::Crc32),
            _ => Err(Error::Usage(format!(
                "unknown checksum '{text}': use sum8, xor8, crc16-modbus, crc16-ccitt or crc32"
            ))),
        }
    }
}

/// What the trailing check bytes of a datagram said.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Check {
    /// They match the rest of the datagram.
    Ok,
    /// They do not; `want` is what they should have been.
    Bad {
        /// The check bytes the data calls for, in wire order.
        want: Vec<u8>,
    },
}

impl Check {
    /// `[checksum ok]` / `[checksum BAD: want c5cd]`, for a text line.
    pub fn to_text(&self) -> String {
        match self {
            Check::Ok => "checksum ok".into(),
            Check::Bad { want } => format!("checksum BAD: want {}", crate::codec::to_hex(want).replace(' ', "")),
        }
    }

    /// Whether the check bytes matched.
    pub fn is_ok(&self) -> bool {
        matches!(self, Check::Ok)
    }
}

impl Checksum {
    /// How many check bytes it adds.
    pub fn size(self) -> usize {
        match self {
            Checksum::Sum8 | Checksum::Xor8 => 1,
            Checksum::Crc16Modbus | Checksum::Crc16Ccitt => 2,
            Checksum::Crc32 => 4,
        }
    }

    /// The check bytes for `data`, in the order they go on the wire.
    ///
    /// # Examples
    /// ```
    /// use common::checksum::Checksum;
    /// // A Modbus RTU request: read 10 holding registers from slave 1.
    /// assert_eq!(Checksum::Crc16Modbus.of(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0a]), [0xc5, 0xcd]);
    /// ```
    pub fn of(self, data: &[u8]) -> Vec<u8> {
        match self {
            Checksum::Sum8 => vec![data.iter().fold(0u8, |a, &b| a.wrapping_add(b))],
            Checksum::Xor8 => vec![data.iter().fold(0u8, |a, &b| a ^ b)],
            Checksum::Crc16Modbus => Crc::<u16>::new(&CRC_16_MODBUS).checksum(data).to_le_bytes().to_vec(),
            Checksum::Crc16Ccitt => Crc::<u16>::new(&CRC_16_IBM_3740).checksum(data).to_be_bytes().to_vec(),
            Checksum::Crc32 => Crc::<u32>::new(&CRC_32_ISO_HDLC).checksum(data).to_be_bytes().to_vec(),
        }
    }

    /// `data` with its check bytes appended: what is sent.
    pub fn append(self, mut data: Vec<u8>) -> Vec<u8> {
        let check = self.of(&data);
        data.extend(check);
        data
    }

    /// Verifies the check bytes at the end of `datagram`; a datagram shorter than the check
    /// bytes is bad, with what an empty payload would call for.
    pub fn check(self, datagram: &[u8]) -> Check {
        let Some(split) = datagram.len().checked_sub(self.size()) else {
            return Check::Bad { want: self.of(&[]) };
        };
        let (data, got) = datagram.split_at(split);
        let want = self.of(data);
        if got == want.as_slice() {
            Check::Ok
        } else {
            Check::Bad { want }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Reference values computed independently (FACTS.md): CRC-16/MODBUS 0x4b37,
    /// CRC-16/CCITT-FALSE 0x29b1, CRC-32/ISO-HDLC 0xcbf43926 over ASCII "123456789".
    #[test]
    fn each_algorithm_gives_its_check_value_over_123456789() {
        let data = b"123456789";
        assert_eq!(Checksum::Crc16Modbus.of(data), [0x37, 0x4b], "low byte first");
        assert_eq!(Checksum::Crc16Ccitt.of(data), [0x29, 0xb1]);
        assert_eq!(Checksum::Crc32.of(data), [0xcb, 0xf4, 0x39, 0x26]);
        assert_eq!(Checksum::Sum8.of(data), [(0x31..=0x39u32).sum::<u32>() as u8]);
        assert_eq!(Checksum::Xor8.of(data), [(0x31..=0x39u8).fold(0, |a, b| a ^ b)]);
    }

    #[test]
    fn the_modbus_request_goes_out_with_c5_cd_and_checks_ok() {
        let sent = Checksum::Crc16Modbus.append(vec![0x01, 0x03, 0x00, 0x00, 0x00, 0x0a]);
        assert_eq!(sent, [0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd]);
        assert_eq!(Checksum::Crc16Modbus.check(&sent), Check::Ok);
        let mut bad = sent.clone();
        bad[7] = 0x00;
        let check = Checksum::Crc16Modbus.check(&bad);
        assert_eq!(check, Check::Bad { want: vec![0xc5, 0xcd] });
        assert_eq!(check.to_text(), "checksum BAD: want c5cd");
        assert!(!Checksum::Crc32.check(&[1, 2]).is_ok(), "shorter than the check bytes");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]
        /// Whatever the data and the name, nothing panics; appended bytes always check ok.
        #[test]
        fn appended_check_bytes_always_verify(data in proptest::collection::vec(proptest::num::u8::ANY, 0..300), name in "[a-z0-9-]{0,14}") {
            for c in [Checksum::Sum8, Checksum::Xor8, Checksum::Crc16Modbus, Checksum::Crc16Ccitt, Checksum::Crc32] {
                proptest::prop_assert!(c.check(&c.append(data.clone())).is_ok());
                let _ = c.check(&data);
            }
            let _ = name.parse::<Checksum>();
        }
    }
}
