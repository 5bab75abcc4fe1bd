//! `udp-server` command line: parse the options, set up logging and Ctrl-C, call
//! [`udp_server::run`], print the summary, turn the result into an exit code.

// No unsafe code: nix and jiff make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use common::output::Output;
use common::shutdown::Shutdown;
use udp_server::ratelimit::{RateArg, RateLimit};
use udp_server::{Config, Reply};

const PROGRAM: &str = "udp-server";

/// A UDP server: binds an address, prints every datagram that arrives, and echoes it back.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = "Examples:
  udp-server                              echo on 127.0.0.1:8888 (this machine only)
  udp-server --bind 0.0.0.0:8888          echo for other machines too (NetAssist, nc -u), 100 replies/s per source
  udp-server --bind 0.0.0.0:8888 --rate-limit off
                                          no reply limit (only on a network you trust)
  udp-server --show-header                each datagram's 8-byte UDP header: ports, length, checksum
  udp-server --bind 127.0.0.1:0           let the OS pick a free port (see the first line)
  udp-server --reply none --json          print datagrams as JSON Lines, never answer
  udp-server --reply OK                   answer every datagram with \"OK\" (cut to its length)
  udp-server --buffer-size 1024           receive like the chapter's recvfrom(1024)
  udp-server --encoding gbk               show datagrams from a Chinese NetAssist
  udp-server --count 1                    stop after one datagram (for scripts)
  udp-server --batch 64 -q                up to 64 datagrams per system call (Linux), for floods
  udp-server --batch 64 --offload -q      and GRO: a GSO sender's datagrams 64 per buffer (Linux)
  udp-server --drop 0.3 --seed 7          lose 30% of datagrams, the same ones every run
  udp-server --delay 50ms..150ms --reorder 0.1 --duplicate 0.05
                                          a bad network, on loopback
  udp-server --rule 'PING=>PONG' --rule '/^READ (\\w+)$/=>$1=23.5' --max-reply-ratio 4
                                          a device simulator: replies by what the request says
  udp-server --rules scripts/rules/modbus.rules -e hex --checksum crc16-modbus
                                          a Modbus slave in hex: rules without the CRC, bad CRCs unanswered
  udp-server --rule 'AT=>OK' --rule 'AT+RST=>OK||[500ms]ready' --rule '*=>ERROR' --max-reply-ratio 4
                                          an AT modem: a late second reply, ERROR to anything else
  udp-server --bind 0.0.0.0:7799 --reuse --answer-broadcasts
                                          answer discovery probes (several servers, one port)

Not on every OS: --batch, --offload and kernel drop counts are Linux only. Refusing broadcast and
multicast datagrams on 0.0.0.0 needs packet info (Linux and macOS); elsewhere bind one
address instead of 0.0.0.0. Each is said at start-up where it applies."
)]
struct Cli {
    /// Address to bind: IP:PORT, [IPv6]:PORT, HOST:PORT or PORT (0.0.0.0 = every interface).
    #[arg(short, long, value_name = "ADDR", default_value_t = udp_server::DEFAULT_BIND, value_parser = common::addr::parse)]
    bind: SocketAddr,

    /// How to answer: "echo" (the same bytes back), "none", or a fixed TEXT, written in --encoding and cut to the request's length.
    #[arg(short, long, value_name = "echo|none|TEXT", default_value = "echo")]
    reply: String,

    /// Receive buffer in bytes (1-65535); a longer datagram is cut and reported as truncated.
    #[arg(long, value_name = "BYTES", default_value_t = common::DEFAULT_BUFFER_SIZE as u16, value_parser = clap::value_parser!(u16).range(1..))]
    buffer_size: u16,

    /// Stop after N datagrams.
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,

    /// Receive queue size in bytes (SO_RCVBUF); small values make the kernel drop datagrams.
    #[arg(long, value_name = "BYTES")]
    recv_buffer: Option<usize>,

    /// Linux: move up to N datagrams per system call (recvmmsg/sendmmsg), for high rates.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..=i64::from(udp_server::MAX_BATCH)))]
    batch: Option<u16>,

    /// Replies per second to each source IP, e.g. 100/s, or off; default: off on loopback, 100/s otherwise.
    #[arg(long, value_name = "N/s")]
    rate_limit: Option<RateArg>,

    /// Replies a quiet source may get at once under --rate-limit (default: one second's worth).
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u32).range(1..))]
    rate_burst: Option<u32>,

    /// Show each datagram's UDP header: source and destination port, length (payload + 8) and the RFC 768 checksum.
    #[arg(long)]
    show_header: bool,

    /// Turn \r \n \t \0 \\ and \xNN in the --reply text into those bytes.
    #[arg(long)]
    escapes: bool,

    /// Verify the check bytes at the end of each datagram, and append them to a fixed --reply and to each rule reply: sum8, xor8, crc16-modbus, crc16-ccitt, crc32. Rules match the request without them; with rules or a fixed --reply, a request whose check bytes are wrong is not answered (an echo is sent back unchanged).
    #[arg(long, value_name = "NAME")]
    checksum: Option<common::checksum::Checksum>,

    /// With --checksum: answer requests whose check bytes are wrong too, as if they were right.
    #[arg(long, requires = "checksum")]
    answer_bad_checksum: bool,

    /// Append every datagram's bytes to PATH, in arrival order (NetAssist's "receive to file").
    #[arg(long, value_name = "PATH")]
    save: Option<std::path::PathBuf>,

    /// Write every datagram received and every reply sent to FILE as a pcap capture, with its IP and UDP headers, for Wireshark or tshark -r FILE.
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,

    /// Answer by what the request says: 'MATCH=>REPLY', MATCH exact, PREFIX* or /REGEX/ ($1… in REPLY), '*' for anything; REPLY may wait ('PING=>[200ms]PONG') and be several datagrams ('AT+RST=>OK||[500ms]ready'); repeatable; the first match wins, else --reply.
    #[arg(long, value_name = "MATCH=>REPLY")]
    rule: Vec<String>,

    /// Rules from a file, one a line, # comments.
    #[arg(long, value_name = "FILE")]
    rules: Vec<std::path::PathBuf>,

    /// A fixed or rule reply is cut to R times the request's length (no amplification unless raised).
    #[arg(long, value_name = "R", default_value_t = 1.0, value_parser = parse_ratio)]
    max_reply_ratio: f64,

    /// Answer datagrams sent to a broadcast or multicast address too (device discovery); still rate-limited.
    #[arg(long)]
    answer_broadcasts: bool,

    /// Share the port with other servers on this host (SO_REUSEADDR, + SO_REUSEPORT on Unix).
    #[arg(long)]
    reuse: bool,

    /// Answer a peer that repeats the same bytes more than 200 times a second (a client repeating itself on purpose); the echo-loop guard is on by default.
    #[arg(long)]
    no_loop_guard: bool,
    /// Linux: also receive with GRO (several datagrams of one sender per receive, each still shown and counted on its own; kernel drops then count lost buffers).
    #[arg(long, conflicts_with = "no_offload")]
    offload: bool,

    /// Use no kernel offload: no GSO for --batch replies (on by default: the same datagrams leave), no GRO.
    #[arg(long)]
    no_offload: bool,

    #[command(flatten)]
    faults: common::cli::FaultArgs,

    #[command(flatten)]
    output: common::cli::OutputArgs,
}

fn main() -> ExitCode {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if let Some(hint) = habit(&args) {
        common::cli::print_error(PROGRAM, &hint);
        return ExitCode::from(2);
    }
    match common::cli::parse::<Cli>(PROGRAM) {
        Ok(cli) => common::cli::exit_code(PROGRAM, serve(&cli)),
        Err(code) => code,
    }
}

fn serve(cli: &Cli) -> common::Result<()> {
    cli.output.init_logging(PROGRAM);
    let config = config_from(cli)?;
    let shutdown = Shutdown::new();
    shutdown.on_signals()?;
    let out = Output::stdout(config.output);
    // A stdout reader that stops reading (kill -STOP) cannot keep a stop from stopping.
    out.stop_on(&shutdown);
    let summary = udp_server::run(&config, &shutdown, &out)?;
    out.summary(&summary.to_text(), summary.to_json())?;
    match summary.save_error {
        // Said after the summary, which counts what was saved: the run lost data.
        Some(why) => Err(common::Error::Runtime(format!("--save: {why}"))),
        None => Ok(()),
    }
}

fn config_from(cli: &Cli) -> common::Result<Config> {
    let reply = match cli.reply.as_str() {
        "echo" => Reply::Echo,
        "none" => Reply::None,
        text => {
            let bytes = cli.output.encoding.encode_typed(text, cli.escapes)?;
            Reply::Text(cli.checksum.map_or(bytes.clone(), |c| c.append(bytes)))
        }
    };
    Ok(Config {
        bind: cli.bind,
        reply,
        buffer_size: usize::from(cli.buffer_size),
        count: cli.count,
        output: cli.output.options(),
        faults: cli.faults.config(),
        recv_buffer: cli.recv_buffer,
        batch: cli.batch.map(usize::from),
        rate_limit: rate_limit(cli),
        show_header: cli.show_header,
        checksum: cli.checksum,
        answer_bad_checksum: cli.answer_bad_checksum,
        save: cli.save.clone(),
        pcap: cli.pcap.clone(),
        rules: udp_server::rules::Rules::parse(&cli.rule, &cli.rules, cli.output.encoding, cli.escapes)?,
        max_reply_ratio: cli.max_reply_ratio,
        answer_broadcasts: cli.answer_broadcasts,
        reuse: cli.reuse,
        no_loop_guard: cli.no_loop_guard,
        offloads: common::offload::Offloads::from_flags(cli.offload, cli.no_offload),
    })
}

/// What a habit from another tool most likely meant, for arguments clap would only call
/// "unexpected": nc's `-p PORT` and `--port PORT`, and a negative number after an option.
fn habit(args: &[String]) -> Option<String> {
    for (i, arg) in args.iter().enumerate() {
        if arg == "--" {
            return None;
        }
        let port = match arg.as_str() {
            "--port" | "-p" => args.get(i + 1).map(String::as_str),
            other => other
                .strip_prefix("--port=")
                .or_else(|| other.strip_prefix("-p").filter(|p| p.parse::<u16>().is_ok())),
        };
        if let Some(port) = port.filter(|p| p.parse::<u16>().is_ok()) {
            return Some(format!(
                "{PROGRAM} has no {}: write --bind 127.0.0.1:{port} (this machine only) or --bind 0.0.0.0:{port} (other machines too)",
                if arg.starts_with("--") { "--port" } else { "-p" }
            ));
        }
        let negative = arg
            .strip_prefix('-')
            .is_some_and(|n| !n.is_empty() && n.parse::<f64>().is_ok());
        if negative {
            let after = match i.checked_sub(1).map(|j| args[j].as_str()) {
                Some(flag) if flag.starts_with('-') => format!(" after {flag}"),
                _ => String::new(),
            };
            return Some(format!(
                "'{arg}'{after}: negative numbers are not values here (counts and sizes start at 0 or 1; see --help)"
            ));
        }
    }
    None
}

/// `--max-reply-ratio`: a positive number.
fn parse_ratio(text: &str) -> Result<f64, String> {
    match text.parse::<f64>() {
        Ok(r) if r > 0.0 && r.is_finite() => Ok(r),
        _ => Err(format!("{text:?} is not a ratio: use a number above 0, e.g. 1 or 4")),
    }
}

/// `--rate-limit` as given, else the default for the bind address.
fn rate_limit(cli: &Cli) -> Option<RateLimit> {
    let limit = match cli.rate_limit {
        Some(RateArg(per_second)) => per_second.map(RateLimit::new),
        None => udp_server::default_rate_limit(cli.bind),
    };
    limit.map(|l| RateLimit {
        burst: cli.rate_burst.unwrap_or(l.burst),
        ..l
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    /// `udp-server --port 9000` (nc's habit) and `--count -1` used to get clap's bare
    /// "unexpected argument" with no hint.
    #[test]
    fn habits_from_other_tools_get_a_hint() {
        let hint = |args: &[&str]| habit(&args.iter().map(|a| a.to_string()).collect::<Vec<_>>());
        for args in [&["--port", "9000"][..], &["-p", "9000"], &["--port=9000"], &["-p9000"]] {
            let text = hint(args).unwrap();
            assert!(
                text.contains("write --bind 127.0.0.1:9000 (this machine only) or --bind 0.0.0.0:9000"),
                "{text}"
            );
        }
        assert_eq!(
            hint(&["--count", "-1"]).unwrap(),
            "'-1' after --count: negative numbers are not values here (counts and sizes start at 0 or 1; see --help)"
        );
        assert!(hint(&["--reply", "x", "-q"]).is_none());
        assert!(hint(&["--reply=-1"]).is_none(), "a value joined with = is a value");
        assert!(hint(&["--bind", "127.0.0.1:0", "-v"]).is_none());
    }

    #[test]
    fn fixed_replies_are_encoded_with_the_chosen_encoding() {
        let cli = Cli::parse_from(["udp-server", "--reply", "4f 4b", "--encoding", "hex"]);
        assert_eq!(config_from(&cli).unwrap().reply, Reply::Text(b"OK".to_vec()));
        let cli = Cli::parse_from(["udp-server", "--reply", "zz", "--encoding", "hex"]);
        assert_eq!(config_from(&cli).unwrap_err().exit_code(), 2);
    }

    #[test]
    fn the_rate_limit_is_on_by_default_only_off_loopback() {
        let limit = |args: &[&str]| config_from(&Cli::parse_from(args)).unwrap().rate_limit;
        assert_eq!(limit(&["udp-server"]), None);
        assert_eq!(limit(&["udp-server", "-b", "[::1]:9"]), None);
        assert_eq!(
            limit(&["udp-server", "-b", "0.0.0.0:9"]),
            Some(RateLimit {
                exempt_loopback: true,
                ..RateLimit::new(100)
            })
        );
        // An explicit limit applies to every source, loopback included.
        assert_eq!(
            limit(&["udp-server", "-b", "0.0.0.0:9", "--rate-limit", "100/s"]),
            Some(RateLimit::new(100))
        );
        assert_eq!(limit(&["udp-server", "-b", "0.0.0.0:9", "--rate-limit", "off"]), None);
        assert_eq!(
            limit(&["udp-server", "--rate-limit", "20/s", "--rate-burst", "5"]),
            Some(RateLimit {
                per_second: 20,
                burst: 5,
                exempt_loopback: false
            })
        );
    }
}
