//! The command line: options, and the [`Config`] they make. In the library (not `main.rs`)
//! so that the fuzz target and the tests parse exactly what a user types.

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use clap::{Args, Parser};
use common::faults::{FaultConfig, parse_delay, parse_probability};

use crate::{Allow, Config, FlowFaults};

/// The program's name, in its messages.
pub const PROGRAM: &str = "udp-relay";

/// A UDP relay: clients send to it, it sends on to the server and the replies back, with a
/// bad network inside if you ask for one.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = "Examples:
  udp-relay --to 127.0.0.1:8888           relay 127.0.0.1:9000 to a server on port 8888
  udp-relay --to 8888 --drop 0.2 --seed 7
                                          lose 20% each way, the same datagrams every run
  udp-relay --to 8888 --up-drop 0.3       lose requests only, never replies
  udp-relay --to 8888 --down-delay 50ms..150ms --reorder 0.1
                                          late replies, and reordering both ways
  udp-relay --to 8888 --corrupt 0.05 --checksum crc16-modbus -e hex
                                          flip a byte in 5% of datagrams; watch the CRC catch it
  udp-relay --to 8888 --truncate 64       cut every datagram to 64 bytes (a small buffer)
  udp-relay --bind 0.0.0.0:9000 --allow 192.168.1.0/24 --to 192.168.1.50:502
                                          between a device on the LAN and its master
  udp-relay --to 8888 --json --save-up up.bin --save-down down.bin
                                          every datagram as JSON, both directions saved
  udp-relay --to 8888 -q                  only the summary (for floods)

Both-way fault flags (--drop, --duplicate, --delay, --reorder, --corrupt, --truncate) apply
to each direction; --up-X and --down-X set one direction and win over the both-way flag.
Up is from clients to the server, down is the replies."
)]
pub struct Cli {
    // The help text is an attribute, not a doc comment: rustdoc would take `[IPv6]` for a link.
    #[arg(
        short,
        long,
        value_name = "ADDR",
        default_value_t = crate::DEFAULT_BIND,
        value_parser = common::addr::parse,
        help = "Address clients send to: IP:PORT, [IPv6]:PORT, HOST:PORT or PORT (0.0.0.0 = every interface)"
    )]
    pub bind: SocketAddr,

    #[arg(
        short,
        long,
        value_name = "ADDR",
        value_parser = common::addr::parse,
        help = "The server to relay to: IP:PORT, [IPv6]:PORT, HOST:PORT or PORT"
    )]
    pub to: SocketAddr,

    /// Close a client's upstream socket after this long without traffic (e.g. 30s, 5m).
    #[arg(long, value_name = "DUR", default_value = "60s", value_parser = parse_idle)]
    pub idle: Duration,

    /// At most N clients at once; datagrams from more are refused and counted.
    #[arg(long, value_name = "N", default_value_t = crate::DEFAULT_MAX_CLIENTS, value_parser = parse_max_clients)]
    pub max_clients: usize,

    /// Relay only clients in this network (e.g. 192.168.1.0/24, or one address); repeatable.
    #[arg(long, value_name = "CIDR")]
    pub allow: Vec<Allow>,

    /// Let --to be a broadcast or multicast address (every host there gets every datagram).
    #[arg(long)]
    pub to_broadcast: bool,

    /// Verify the check bytes at the end of each datagram as it leaves: sum8, xor8, crc16-modbus, crc16-ccitt, crc32.
    #[arg(long, value_name = "NAME")]
    pub checksum: Option<common::checksum::Checksum>,

    /// Write every datagram received and sent, both sides (clients and server), to FILE as a pcap capture for Wireshark or tshark -r FILE.
    #[arg(long, value_name = "FILE")]
    pub pcap: Option<PathBuf>,

    /// Send every datagram with its own send call: no GSO runs (Linux sends a run of equal-size datagrams in one call; a capture on lo then shows one long packet per run).
    #[arg(long)]
    pub no_offload: bool,

    /// Append every datagram sent up to the server to PATH.
    #[arg(long, value_name = "PATH")]
    pub save_up: Option<PathBuf>,

    /// Append every datagram sent down to the clients to PATH.
    #[arg(long, value_name = "PATH")]
    pub save_down: Option<PathBuf>,

    #[command(flatten)]
    pub faults: common::cli::FaultArgs,

    /// Flip one byte of each datagram with probability P, both ways.
    #[arg(long, value_name = "P", value_parser = parse_probability)]
    pub corrupt: Option<f64>,

    /// Cut every datagram to at most N bytes, both ways.
    #[arg(long, value_name = "N")]
    pub truncate: Option<usize>,

    #[command(flatten)]
    pub up: UpArgs,

    #[command(flatten)]
    pub down: DownArgs,

    #[command(flatten)]
    pub output: common::cli::OutputArgs,
}

/// One direction's faults, as typed (`None`: the both-way flag, or nothing).
#[derive(Debug, Clone, Copy, Default)]
pub struct OneWay {
    drop: Option<f64>,
    duplicate: Option<f64>,
    delay: Option<(Duration, Duration)>,
    reorder: Option<f64>,
    corrupt: Option<f64>,
    truncate: Option<usize>,
}

macro_rules! one_way_args {
    ($name:ident, $dir:literal, $drop:ident, $dup:ident, $delay:ident, $reorder:ident, $corrupt:ident, $truncate:ident) => {
        /// Faults for one direction only.
        #[derive(Debug, Clone, Args)]
        pub struct $name {
            #[arg(long, value_name = "P", value_parser = parse_probability, help = concat!("Lose each datagram going ", $dir, " with probability P"))]
            $drop: Option<f64>,
            #[arg(long, value_name = "P", value_parser = parse_probability, help = concat!("Send each datagram going ", $dir, " twice with probability P"))]
            $dup: Option<f64>,
            #[arg(long, value_name = "DUR[..DUR]", value_parser = parse_delay, help = concat!("Hold each datagram going ", $dir, " back for DUR or DUR..DUR"))]
            $delay: Option<(Duration, Duration)>,
            #[arg(long, value_name = "P", value_parser = parse_probability, help = concat!("Let the next datagram going ", $dir, " overtake this one with probability P"))]
            $reorder: Option<f64>,
            #[arg(long, value_name = "P", value_parser = parse_probability, help = concat!("Flip one byte of each datagram going ", $dir, " with probability P"))]
            $corrupt: Option<f64>,
            #[arg(long, value_name = "N", help = concat!("Cut every datagram going ", $dir, " to at most N bytes"))]
            $truncate: Option<usize>,
        }

        impl $name {
            fn one_way(&self) -> OneWay {
                OneWay {
                    drop: self.$drop,
                    duplicate: self.$dup,
                    delay: self.$delay,
                    reorder: self.$reorder,
                    corrupt: self.$corrupt,
                    truncate: self.$truncate,
                }
            }
        }
    };
}

one_way_args!(
    UpArgs,
    "up (client to server)",
    up_drop,
    up_duplicate,
    up_delay,
    up_reorder,
    up_corrupt,
    up_truncate
);
one_way_args!(
    DownArgs,
    "down (server to client)",
    down_drop,
    down_duplicate,
    down_delay,
    down_reorder,
    down_corrupt,
    down_truncate
);

/// `--idle`: a duration from 1 ms to a day.
fn parse_idle(text: &str) -> Result<Duration, String> {
    match common::duration::parse(text) {
        Ok(d) if d >= Duration::from_millis(1) && d <= Duration::from_secs(86_400) => Ok(d),
        Ok(_) => Err(format!("{text:?}: use a duration from 1ms to 24h, e.g. 60s")),
        Err(e) => Err(e.to_string()),
    }
}

/// The most `--max-clients`: each client costs a socket.
pub const MAX_MAX_CLIENTS: usize = 1_000_000;

fn parse_max_clients(text: &str) -> Result<usize, String> {
    match text.parse::<usize>() {
        Ok(n) if (1..=MAX_MAX_CLIENTS).contains(&n) => Ok(n),
        _ => Err(format!("{text:?}: use a number from 1 to {MAX_MAX_CLIENTS}")),
    }
}

/// The configuration the command line asks for.
///
/// # Errors
/// [`common::Error::Usage`] for values that parse but cannot be used together.
pub fn config(cli: &Cli) -> common::Result<Config> {
    let shared = cli.faults.config();
    let both = OneWay {
        corrupt: cli.corrupt,
        truncate: cli.truncate,
        ..OneWay::default()
    };
    // Each direction draws from its own seed, so that losing a request says nothing about
    // losing its reply; both follow from --seed.
    let up = flow(shared, both, cli.up.one_way(), shared.seed);
    let down = flow(shared, both, cli.down.one_way(), shared.seed.wrapping_add(1));
    Ok(Config {
        bind: cli.bind,
        to: cli.to,
        up,
        down,
        idle: cli.idle,
        max_clients: cli.max_clients,
        allow: cli.allow.clone(),
        to_broadcast: cli.to_broadcast,
        checksum: cli.checksum,
        save_up: cli.save_up.clone(),
        save_down: cli.save_down.clone(),
        pcap: cli.pcap.clone(),
        no_offload: cli.no_offload,
        output: cli.output.options(),
    })
}

/// One direction: its own flag where given, else the both-way one.
fn flow(shared: FaultConfig, both: OneWay, one: OneWay, seed: u64) -> FlowFaults {
    FlowFaults {
        faults: FaultConfig {
            drop: one.drop.unwrap_or(shared.drop),
            duplicate: one.duplicate.unwrap_or(shared.duplicate),
            delay: one.delay.or(shared.delay),
            reorder: one.reorder.unwrap_or(shared.reorder),
            seed,
        },
        corrupt: one.corrupt.or(both.corrupt).unwrap_or(0.0),
        truncate: one.truncate.or(both.truncate),
    }
}

/// Parses `args` (the program name first) into a configuration, as `main` does: for the
/// fuzz target and tests. Never panics.
///
/// # Errors
/// The one-line usage error a user would see.
pub fn parse_args<I, T>(args: I) -> Result<Config, String>
where
    I: IntoIterator<Item = T>,
    T: Into<std::ffi::OsString> + Clone,
{
    let cli = Cli::try_parse_from(args).map_err(|e| e.to_string())?;
    let config = config(&cli).map_err(|e| e.to_string())?;
    crate::guard::check(&config).map_err(|e| e.to_string())?;
    Ok(config)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;
    use proptest::prelude::*;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn one_way_flags_win_over_both_way_ones_and_seeds_differ_per_direction() {
        let c = parse_args([
            "udp-relay",
            "--to",
            "8888",
            "--drop",
            "0.2",
            "--up-drop",
            "0.5",
            "--corrupt",
            "0.1",
            "--down-truncate",
            "4",
            "--seed",
            "7",
        ])
        .unwrap();
        assert_eq!((c.up.faults.drop, c.down.faults.drop), (0.5, 0.2));
        assert_eq!((c.up.corrupt, c.down.corrupt), (0.1, 0.1));
        assert_eq!((c.up.truncate, c.down.truncate), (None, Some(4)));
        assert_eq!((c.up.faults.seed, c.down.faults.seed), (7, 8));
        assert_eq!(c.to, "127.0.0.1:8888".parse().unwrap());
    }

    #[test]
    fn unsafe_or_senseless_setups_are_usage_errors() {
        for args in [
            &["udp-relay", "--to", "127.0.0.1:9000"][..],
            &["udp-relay", "--bind", "0.0.0.0:7000", "--to", "127.0.0.1:7000"],
            &["udp-relay", "--to", "255.255.255.255:9"],
            &["udp-relay", "--to", "224.0.0.1:9"],
            &[
                "udp-relay",
                "--to",
                "8888",
                "--bind",
                "0.0.0.0:9000",
                "--duplicate",
                "0.1",
            ],
            &["udp-relay", "--to", "8888", "--max-clients", "0"],
            &["udp-relay", "--to", "8888", "--idle", "0"],
            &["udp-relay", "--to", "8888", "--idle", "9223372036854775807s"],
            &["udp-relay", "--to", "8888", "--up-drop", "2"],
            &["udp-relay", "--to", "8888", "--delay", "25h"],
            &["udp-relay", "--to", "8888", "--down-delay", "1ms..9223372036854775807s"],
            &["udp-relay", "--to", "8888", "--allow", "10.0.0.0/99"],
        ] {
            assert!(parse_args(args.iter().copied()).is_err(), "{args:?}");
        }
        assert!(parse_args(["udp-relay", "--to", "224.0.0.1:9", "--to-broadcast"]).is_ok());
        let allowed = [
            "udp-relay",
            "--to",
            "8888",
            "--bind",
            "0.0.0.0:9000",
            "--duplicate",
            "0.1",
            "--allow",
            "10.0.0.0/8",
        ];
        assert!(parse_args(allowed).is_ok());
    }

    proptest! {
        /// Whatever is typed, parsing answers (a configuration or an error) and never panics.
        #[test]
        fn any_arguments_parse_or_fail_cleanly(words in proptest::collection::vec("[-a-z0-9.:/\\[\\]]{0,12}", 0..8)) {
            let mut args = vec!["udp-relay".to_string(), "--to".into(), "8888".into()];
            args.extend(words);
            let _ = parse_args(args);
        }
    }
}
