//! Rules (`udp-server --rule`) never panic: any text parses or is one usage error, and any
//! request through any rule that parsed is answered or not, in time linear in its length.
//! The text covers the whole syntax: MATCH, `=>`, delays (`[200ms]`) and several
//! datagrams (`A||B`), a template's built up to a limit as the server builds them.
#![no_main]

use common::codec::Encoding;
use libfuzzer_sys::fuzz_target;
use udp_server::rules::Rule;

fuzz_target!(|data: &[u8]| {
    let split = data.iter().position(|&b| b == 0).unwrap_or(data.len());
    let (rule, request) = data.split_at(split);
    if let Ok(text) = std::str::from_utf8(rule) {
        for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
            if let Ok(rule) = Rule::parse(text, enc, true) {
                let _ = rule.answer(request);
                if let Some(answer) = rule.respond(request, 64) {
                    assert!(answer.len() <= udp_server::rules::MAX_STEPS);
                }
            }
        }
    }
});
