//! `udp-server` command line: parse the options, set up logging and Ctrl-C, call
//! [`udp_server::run`], print the summary, turn the result into an exit code.

// Example code gets copied: no unwrap, expect or panic outside tests (see STYLE.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::net::SocketAddr;
use std::process::ExitCode;

use clap::Parser;
use common::codec::Encoding;
use common::output::{Output, OutputOptions};
use common::shutdown::Shutdown;
use udp_server::{Config, Reply};

const PROGRAM: &str = "udp-server";

/// A UDP server: binds an address, prints every datagram that arrives, and echoes it back.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = "Examples:
  udp-server                              echo on 127.0.0.1:8888 (this machine only)
  udp-server --bind 0.0.0.0:8888          echo for other machines too (NetAssist, nc -u)
  udp-server --bind 127.0.0.1:0           let the OS pick a free port (see the first line)
  udp-server --reply none --json          print datagrams as JSON Lines, never answer
  udp-server --reply OK                   answer every datagram with \"OK\" (cut to its length)
  udp-server --buffer-size 1024           receive like the chapter's recvfrom(1024)
  udp-server --encoding gbk               show datagrams from a Chinese NetAssist
  udp-server --count 1                    stop after one datagram (for scripts)"
)]
struct Cli {
    /// Address to bind: IP:PORT, [IPv6]:PORT, HOST:PORT or PORT (0.0.0.0 = every interface).
    #[arg(short, long, value_name = "ADDR", default_value = udp_server::DEFAULT_BIND, value_parser = common::addr::parse_arg)]
    bind: SocketAddr,

    /// How to answer: "echo" (the same bytes back), "none", or a fixed TEXT (cut to the request's length).
    #[arg(short, long, value_name = "echo|none|TEXT", default_value = "echo")]
    reply: String,

    /// Receive buffer in bytes (1-65535); a longer datagram is cut and reported as truncated.
    #[arg(long, value_name = "BYTES", default_value_t = udp_server::DEFAULT_BUFFER_SIZE, value_parser = clap::value_parser!(u16).range(1..))]
    buffer_size: u16,

    /// Stop after N datagrams.
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,

    /// How payloads are shown, and how a fixed --reply TEXT is encoded: utf8, gbk or hex.
    #[arg(short, long, value_name = "utf8|gbk|hex", default_value = "utf8")]
    encoding: Encoding,

    /// Print JSON Lines on stdout (one object per datagram, a summary last).
    #[arg(long)]
    json: bool,

    /// Prefix each datagram with the local time.
    #[arg(short, long)]
    timestamp: bool,

    /// More logs on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    verbose: u8,

    /// No per-datagram lines and no info logs (for floods and benchmarks).
    #[arg(short, long, conflicts_with = "verbose")]
    quiet: bool,
}

fn main() -> ExitCode {
    let cli = match common::cli::parse::<Cli>(PROGRAM) {
        Ok(cli) => cli,
        Err(code) => return code,
    };
    common::logging::init(PROGRAM, cli.verbose, cli.quiet);
    let config = match config_from(&cli) {
        Ok(config) => config,
        Err(err) => return common::cli::exit_code::<()>(PROGRAM, Err(err)),
    };
    let shutdown = Shutdown::new();
    if let Err(err) = shutdown.on_signals() {
        return common::cli::exit_code::<()>(PROGRAM, Err(err));
    }
    let out = Output::stdout(config.output);
    let result = udp_server::run(&config, &shutdown, &out).and_then(|summary| {
        if !out.is_closed() {
            out.summary(&summary.to_text(), summary.to_json())
                .map_err(|e| common::Error::io("cannot write to stdout", &e))?;
        }
        Ok(())
    });
    common::cli::exit_code(PROGRAM, result)
}

fn config_from(cli: &Cli) -> common::Result<Config> {
    let reply = match cli.reply.as_str() {
        "echo" => Reply::Echo,
        "none" => Reply::None,
        text => Reply::Text(cli.encoding.encode(text)?),
    };
    Ok(Config {
        bind: cli.bind,
        reply,
        buffer_size: usize::from(cli.buffer_size),
        count: cli.count,
        output: OutputOptions {
            json: cli.json,
            timestamp: cli.timestamp,
            encoding: cli.encoding,
            quiet: cli.quiet,
        },
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

    #[test]
    fn fixed_replies_are_encoded_with_the_chosen_encoding() {
        let cli = Cli::parse_from(["udp-server", "--reply", "4f 4b", "--encoding", "hex"]);
        assert_eq!(config_from(&cli).unwrap().reply, Reply::Text(b"OK".to_vec()));
        let cli = Cli::parse_from(["udp-server", "--reply", "zz", "--encoding", "hex"]);
        assert_eq!(config_from(&cli).unwrap_err().exit_code(), 2);
    }
}
