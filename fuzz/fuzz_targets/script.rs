//! Scripts (`udp-client --script`) never panic: any text is read as a script or refused
//! with one usage error naming the file (and the line at fault), whatever the encoding and
//! typing flags; a script that is read runs at most `MAX_STEPS` steps. The first byte picks
//! the flags, the rest is the script.
#![no_main]

use common::checksum::Checksum;
use common::codec::Encoding;
use libfuzzer_sys::fuzz_target;
use udp_client::{MAX_STEPS, Script, Typing};

fuzz_target!(|data: &[u8]| {
    let Some((&flags, text)) = data.split_first() else { return };
    let Ok(text) = std::str::from_utf8(text) else { return };
    let typing = Typing {
        escapes: flags & 1 != 0,
        crlf: flags & 2 != 0,
        checksum: (flags & 4 != 0).then_some(Checksum::Crc16Modbus),
    };
    let encoding = match flags >> 3 & 3 {
        0 => Encoding::Utf8,
        1 => Encoding::Gbk,
        _ => Encoding::Hex,
    };
    match Script::parse("f.script", text, typing, encoding) {
        Ok(script) => assert!((1..=MAX_STEPS).contains(&script.total)),
        Err(e) => {
            let said = e.to_string();
            assert_eq!(e.exit_code(), 2, "{said}");
            assert!(said.starts_with("f.script") && !said.contains('\n'), "{said}");
        }
    }
});
