//! `udp-relay`'s command line never panics: any words (split at NUL bytes) parse into a
//! configuration or one usage error, and so does any text given to its fault and network
//! options (`--drop`, `--delay`, `--allow`, `--truncate`, `--idle`, …) alone.
#![no_main]

use libfuzzer_sys::fuzz_target;

const OPTIONS: &[&str] = &[
    "--drop", "--up-drop", "--down-duplicate", "--delay", "--up-delay", "--reorder", "--corrupt",
    "--down-corrupt", "--truncate", "--up-truncate", "--idle", "--max-clients", "--allow", "--to",
    "--bind", "--seed", "--checksum",
];

fuzz_target!(|data: &[u8]| {
    let text = String::from_utf8_lossy(data);
    let words: Vec<&str> = text.split('\0').collect();
    let _ = udp_relay::cli::parse_args(std::iter::once("udp-relay").chain(words.iter().copied()));
    // The whole input as the value of each option, the others at their defaults.
    for option in OPTIONS {
        let _ = udp_relay::cli::parse_args(["udp-relay", "--to", "8888", option, &text]);
    }
    let _ = text.parse::<udp_relay::Allow>();
});
