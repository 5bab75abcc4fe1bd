//! Rendering any bytes in any encoding never panics and stays on one line; parsing typed
//! hex and encoding typed text to GBK never panic.
#![no_main]

use common::codec::{Encoding, parse_hex};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    for encoding in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
        let shown = encoding.render(data);
        assert!(!shown.contains('\n') && !shown.contains('\r'));
    }
    if let Ok(text) = std::str::from_utf8(data) {
        if let Ok(bytes) = parse_hex(text) {
            assert_eq!(parse_hex(&common::codec::to_hex(&bytes)).ok(), Some(bytes));
        }
        if let Ok(bytes) = Encoding::Gbk.encode(text) {
            assert_eq!(Encoding::Gbk.render(&bytes), Encoding::Utf8.render(text.as_bytes()));
        }
    }
});
