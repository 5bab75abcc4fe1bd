//! Diagnostics on stderr, so that stdout carries only data.

use std::io::Write;

use log::LevelFilter;

/// The level for `-q` / nothing / `-v` / `-vv`: warnings only, info, debug, trace.
pub fn level(verbose: u8, quiet: bool) -> LevelFilter {
    match (quiet, verbose) {
        (true, _) => LevelFilter::Warn,
        (false, 0) => LevelFilter::Info,
        (false, 1) => LevelFilter::Debug,
        (false, _) => LevelFilter::Trace,
    }
}

/// Sends `log` records to stderr as `udp-server: warning: …`; `RUST_LOG`, when set, wins
/// over `-v`/`-q`. Calling it twice is harmless (tests run programs in one process).
pub fn init(program: &'static str, verbose: u8, quiet: bool) {
    let _ = env_logger::Builder::new()
        .filter_level(level(verbose, quiet))
        .parse_default_env()
        .format(move |buf, record| {
            // What stdout holds was printed before this line: it goes out first.
            crate::output::flush_stdout();
            let level = match record.level() {
                log::Level::Error => "error: ",
                log::Level::Warn => "warning: ",
                log::Level::Info => "",
                log::Level::Debug => "debug: ",
                log::Level::Trace => "trace: ",
            };
            writeln!(buf, "{program}: {level}{}", record.args())
        })
        .try_init();
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn flags_map_to_levels() {
        assert_eq!(level(0, true), LevelFilter::Warn);
        assert_eq!(level(3, true), LevelFilter::Warn);
        assert_eq!(level(0, false), LevelFilter::Info);
        assert_eq!(level(1, false), LevelFilter::Debug);
        assert_eq!(level(2, false), LevelFilter::Trace);
    }
}
