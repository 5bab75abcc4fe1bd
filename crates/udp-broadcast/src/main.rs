//! `udp-broadcast` command line: `send` and `listen`; parse, set up logging and Ctrl-C, run,
//! print the summary, exit code.

// No unsafe code: nix and jiff make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::io::IsTerminal;
use std::net::{IpAddr, SocketAddr};
use std::process::ExitCode;
use std::time::Duration;

use clap::{Parser, Subcommand};
use common::cli::OutputArgs;
use common::output::Output;
use common::shutdown::Shutdown;
use udp_broadcast::feed::FeedKind;
use udp_broadcast::listen::Board;
use udp_broadcast::{Body, ListenConfig, SendConfig};

const PROGRAM: &str = "udp-broadcast";

/// One sender, every listener: UDP broadcast and multicast of a live feed.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = "Examples:
  udp-broadcast listen                               hear broadcasts on port 7788 (start several)
  udp-broadcast send --feed quotes                   stock quotes to 127.255.255.255:7788 (this machine)
  udp-broadcast listen --board                       the latest quote per symbol, redrawn in place
  udp-broadcast send --count 5 --interval 200ms hi   five numbered \"hi\" messages, then stop
  udp-broadcast send --raw -e hex \"aa 55 01 17\"      those 4 bytes alone, as a device sends them (no seq= header)
  udp-broadcast send --to 255.255.255.255:7788       the whole LAN (every host on your network)
  udp-broadcast send --to 239.1.2.3:7788             multicast (on loopback unless --interface)
  udp-broadcast listen --group 239.1.2.3             join a multicast group
  udp-broadcast listen --show-header                 each datagram's UDP header (ports, length, checksum)
  udp-broadcast listen --pcap heard.pcap             what arrives, as a capture for Wireshark (tshark -r heard.pcap)

Not on every OS: kernel drop counts (Linux only); --show-header's checksum needs packet info
(Linux and macOS). Windows shares a port with SO_REUSEADDR only."
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Send a numbered message every interval to a broadcast address or multicast group.
    Send(SendArgs),
    /// Listen for broadcasts (sharing the port), report loss, duplicates and reordering.
    Listen(ListenArgs),
}

#[derive(Debug, clap::Args)]
struct SendArgs {
    /// Destination: 127.255.255.255 is this machine; 255.255.255.255 or a subnet's broadcast address the LAN; 224.0.0.0/4 or ff00::/8 multicast.
    #[arg(long, value_name = "ADDR", default_value_t = udp_broadcast::send::DEFAULT_TO, value_parser = common::addr::parse)]
    to: SocketAddr,

    /// Time between messages (at least 10ms) [default: 1s].
    #[arg(short, long, value_name = "DUR", value_parser = common::duration::parse)]
    interval: Option<Duration>,

    /// Stop after N messages.
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,

    /// A built-in live feed when no MESSAGE is given: quotes or flights.
    #[arg(long, value_name = "quotes|flights", default_value = "quotes")]
    feed: FeedKind,

    /// Multicast: the interface to send from (an IPv4 address or lo; for IPv6 a name or index).
    #[arg(long, value_name = "IP|NAME")]
    interface: Option<String>,

    /// Multicast: how many routers the datagrams may cross [default: 0 on loopback, 1 with --interface].
    #[arg(long, value_name = "N")]
    ttl: Option<u32>,

    /// No seq=/session= header: send the message (or feed line) alone, as a real sensor or device does (listeners then cannot count losses).
    #[arg(long)]
    raw: bool,

    /// The message: words joined with spaces, typed in --encoding (hex: aa 55 01 17), sent with seq= and session= in front unless --raw.
    #[arg(value_name = "MESSAGE")]
    message: Vec<String>,

    #[command(flatten)]
    output: OutputArgs,
}

#[derive(Debug, clap::Args)]
struct ListenArgs {
    /// Address to bind [default: 0.0.0.0:7788, or [::]:7788 for an IPv6 group].
    #[arg(short, long, value_name = "ADDR", value_parser = common::addr::parse)]
    bind: Option<SocketAddr>,

    /// Join this multicast group (IPv4 224.0.0.0/4 or IPv6 ff00::/8).
    #[arg(short, long, value_name = "MCAST")]
    group: Option<IpAddr>,

    /// The interface to join on (an IPv4 address or lo; for IPv6 a name or index) [default: lo].
    #[arg(long, value_name = "IP|NAME")]
    interface: Option<String>,

    /// Stop after N datagrams.
    #[arg(short = 'n', long, value_name = "N")]
    count: Option<u64>,

    /// Show the latest value per key instead of every message (redrawn on a terminal).
    #[arg(long)]
    board: bool,

    /// Receive queue size in bytes (SO_RCVBUF); small values make the kernel drop datagrams.
    #[arg(long, value_name = "BYTES")]
    recv_buffer: Option<usize>,

    /// Show each datagram's UDP header: source and destination port, length (payload + 8) and the RFC 768 checksum.
    #[arg(long)]
    show_header: bool,

    /// Verify the check bytes at the end of each message: sum8, xor8, crc16-modbus, crc16-ccitt, crc32.
    #[arg(long, value_name = "NAME")]
    checksum: Option<common::checksum::Checksum>,

    /// Append every message's bytes to PATH, in arrival order.
    #[arg(long, value_name = "PATH")]
    save: Option<std::path::PathBuf>,

    /// Write every datagram received to FILE as a pcap capture, with its IP and UDP headers, for Wireshark or tshark -r FILE.
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,

    /// Receive buffer in bytes (1-65535); a longer datagram is cut and reported as truncated.
    #[arg(long, value_name = "BYTES", default_value_t = 65_535, value_parser = clap::value_parser!(u16).range(1..))]
    buffer_size: u16,

    /// Linux: receive with GRO (a GSO sender's datagrams, several per receive, each still shown and counted on its own; kernel drops then count lost buffers).
    #[arg(long)]
    offload: bool,

    #[command(flatten)]
    faults: common::cli::FaultArgs,

    #[command(flatten)]
    output: OutputArgs,
}

fn main() -> ExitCode {
    match common::cli::parse::<Cli>(PROGRAM) {
        Ok(cli) => common::cli::exit_code(PROGRAM, run(cli)),
        Err(code) => code,
    }
}

fn run(cli: Cli) -> common::Result<()> {
    let shutdown = Shutdown::new();
    match cli.command {
        Command::Send(args) => {
            args.output.init_logging(PROGRAM);
            shutdown.on_signals()?;
            let config = SendConfig {
                to: args.to,
                interval: args.interval.unwrap_or(udp_broadcast::send::DEFAULT_INTERVAL),
                count: args.count,
                body: if args.message.is_empty() {
                    Body::Feed(args.feed)
                } else {
                    Body::Text(args.message.join(" "))
                },
                interface: args.interface,
                ttl: args.ttl,
                raw: args.raw,
                output: args.output.options(),
            };
            let out = Output::stdout(config.output);
            let summary = udp_broadcast::send(&config, &shutdown, &out)?;
            out.summary(&summary.to_text(), summary.to_json())
        }
        Command::Listen(args) => {
            args.output.init_logging(PROGRAM);
            shutdown.on_signals()?;
            let board = args
                .board
                .then(|| if can_redraw() { Board::Redraw } else { Board::Lines });
            let config = ListenConfig {
                bind: args.bind,
                group: args.group,
                interface: args.interface,
                count: args.count,
                board,
                output: args.output.options(),
                faults: args.faults.config(),
                recv_buffer: args.recv_buffer,
                show_header: args.show_header,
                checksum: args.checksum,
                save: args.save,
                pcap: args.pcap,
                buffer_size: Some(usize::from(args.buffer_size)),
                offload: args.offload,
            };
            let out = Output::stdout(config.output);
            let summary = udp_broadcast::listen(&config, &shutdown, &out)?;
            out.summary(&summary.to_text(), summary.to_json())
        }
    }
}

/// Whether stdout is a terminal that redraws in place with ANSI cursor codes: not a pipe,
/// not `TERM=dumb`, and on Windows a console whose virtual-terminal mode could be turned on
/// (Windows Terminal and conhost since Windows 10). Otherwise the board is one line per update.
fn can_redraw() -> bool {
    if !std::io::stdout().is_terminal() {
        return false;
    }
    #[cfg(windows)]
    let ok = anstyle_query::windows::enable_virtual_terminal_processing().is_ok();
    #[cfg(not(windows))]
    let ok = std::env::var_os("TERM").is_none_or(|term| term != "dumb");
    if !ok {
        log::info!("this terminal cannot redraw in place; the board is one line per update");
    }
    ok
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }
}
