//! Typed text — escapes (`\r \n \xNN`), hex with any separators, check-byte names — never
//! panics: it becomes bytes or one usage error.
#![no_main]

use common::checksum::Checksum;
use common::codec::{Encoding, parse_hex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = parse_hex(text);
        for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
            let _ = enc.encode_typed(text, true);
        }
        if let Ok(c) = text.parse::<Checksum>() {
            assert!(c.check(&c.append(data.to_vec())).is_ok());
        }
        for c in [Checksum::Sum8, Checksum::Xor8, Checksum::Crc16Modbus, Checksum::Crc16Ccitt, Checksum::Crc32] {
            let _ = c.check(data);
        }
    }
});
