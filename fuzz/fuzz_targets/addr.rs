//! Address and duration parsing never panics on any text, and no duration it accepts can
//! overflow a clock (names are not resolved here: only text that cannot be a host name
//! reaches the resolver-free paths).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(text) = std::str::from_utf8(data) {
        let _ = common::addr::looks_like(text);
        // Skip what would go to DNS: a fuzzer must not make network look-ups.
        if text.parse::<std::net::SocketAddr>().is_ok() || text.parse::<u16>().is_ok() || !text.contains(':') {
            let _ = common::addr::parse(text);
        }
        // Every duration a flag accepts is at most a year, so `now + d` never overflows
        // (a huge one used to panic: "overflow when adding duration to instant").
        if let Ok(d) = common::duration::parse(text) {
            assert!(d <= common::duration::MAX, "{text:?} parsed to {d:?}");
            assert!(common::duration::after(std::time::Instant::now(), d).is_some());
        }
    }
});
