//! `udp-client` command line: parse the options, set up logging and Ctrl-C, call
//! [`udp_client::run`], print the summary, turn the result into an exit code.

// No unsafe code: nix and jiff make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests (see CONTRIBUTING.md).
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::io::BufReader;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;
use common::output::Output;
use common::shutdown::Shutdown;
use udp_client::{Config, Mode};

const PROGRAM: &str = "udp-client";

/// A bare `--timeout` or `--interval` longer than this was most likely meant in milliseconds.
const LONGEST_LIKELY_WAIT: Duration = Duration::from_secs(60);

/// A UDP client: sends datagrams and prints what comes back; one-shot, interactive or ping.
#[derive(Debug, Parser)]
#[command(
    name = PROGRAM,
    version,
    after_help = "TARGET is the first word if it is an address (IP:PORT, [IPv6]:PORT, HOST:PORT or PORT),
or the first two if they are a host and a port (127.0.0.1 9006, as nc -u takes them);
otherwise every word is the message and TARGET is 127.0.0.1:8888. An address without a
port (127.0.0.1, ::1:9005, localhost) is an error, never a message: to send a message that
starts with such a word, quote it or put it after --. Durations: 500ms, 2s, 1m; a bare
number is seconds.

Examples:
  udp-client hello                        one datagram \"hello\" to 127.0.0.1:8888; print the reply
  udp-client 192.168.1.20:8080 hi there   one datagram \"hi there\" to another machine
  udp-client 127.0.0.1 9006 hello         the same, HOST PORT as two words (like nc -u)
  udp-client 9000                         interactive: each line you type is one datagram
  udp-client --count 10                   ping: 10 numbered datagrams, RTT and loss summary
  udp-client --count 10000 --interval 0   flood: 64 in flight, datagrams/s echoed
  udp-client --count 100 --graph          a bar per reply on a terminal, a mark per loss
  udp-client --count 3600 --report-every 1m
                                          a line a minute: sent, received, loss, p50, jitter
  udp-client --no-reply hello             send and exit (for a sink such as nc -u -l)
  udp-client --retries 3 hello            resend up to 3 times if no reply comes
  udp-client --encoding hex \"48 65 6c\"    send raw bytes; show replies as hex
  udp-client --bind 9001 9002             local port 9001, as NetAssist's \"local port\" (chat)
  udp-client --escapes 9999 'AT\\r\\n'      an AT command: the bytes 41 54 0d 0a
  udp-client -e hex --checksum crc16-modbus 502 \"01 03 00 00 00 0a\"
                                          a Modbus request with its CRC (c5 cd)
  udp-client --repeat 5 --interval 1s hi  the same message 5 times, no sequence number
  udp-client --broadcast 127.255.255.255:7799 who
                                          find devices: one probe, every reply with its sender
  udp-client --broadcast --repeat 5 --interval 2s 127.255.255.255:7799 who
                                          a probe every 2 s, each round's replies
  udp-client --file fw.bin --no-reply 9000
                                          a file in 1472-byte datagrams (udp-server --save on the other side)
  udp-client --pcap talk.pcap hello       also write what was sent and received for Wireshark
  udp-client --replay device.pcap --filter-port 8888 9000
                                          what was sent to port 8888 in the capture, again, to 9000
  udp-client --expect /OK/ -C 9999 AT     exit 0 only if the reply says OK (the server's rule syntax)
  udp-client --script scripts/at-session.script -C 9999
                                          a test: send, expect, delay, repeat; one line a step
  udp-client --any-source 9999 hi         hear a reply from any address or port, with its sender"
)]
struct Cli {
    /// Where to send: IP:PORT, [IPv6]:PORT, HOST:PORT or PORT [default: 127.0.0.1:8888].
    #[arg(value_name = "TARGET")]
    target: Option<String>,

    /// The message: words joined with spaces into one datagram. None: read lines from stdin.
    #[arg(value_name = "MESSAGE")]
    message: Vec<String>,

    /// How long to wait for a reply: 500ms, 2s, 1m; a bare number is seconds [default: 2s; in a flood, 200ms per datagram].
    #[arg(long, value_name = "DUR", value_parser = common::duration::parse, conflicts_with = "no_reply")]
    timeout: Option<Duration>,

    /// Do not wait for replies.
    #[arg(long)]
    no_reply: bool,

    /// Send --file and --no-reply floods one datagram per system call (Linux otherwise sends runs of up to 64 with GSO: the same datagrams).
    #[arg(long)]
    no_offload: bool,

    /// Ping mode: send N numbered datagrams and report loss and round-trip times.
    #[arg(short = 'n', long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..))]
    count: Option<u64>,

    /// Ping mode: time between datagrams (a bare number is seconds); 0 floods, keeping --window datagrams in flight [default: 1s].
    #[arg(short, long, value_name = "DUR", value_parser = common::duration::parse)]
    interval: Option<Duration>,

    /// Flood: datagrams in flight at once [default: 64]
    #[arg(short, long, value_name = "N", value_parser = clap::value_parser!(u16).range(1..))]
    window: Option<u16>,

    /// One-shot: resend up to N times when no reply comes within --timeout [default: 0]
    #[arg(short, long, value_name = "N")]
    retries: Option<u32>,

    /// Bind this local address first (NetAssist's "local port", nc -p): IP:PORT or PORT (= 127.0.0.1:PORT).
    #[arg(short, long, value_name = "ADDR", value_parser = common::addr::parse)]
    bind: Option<SocketAddr>,

    /// Turn \r \n \t \0 \\ and \xNN in typed text into those bytes (AT commands, device protocols).
    #[arg(long)]
    escapes: bool,

    /// End every message or line sent with \r\n (as nc -C).
    #[arg(short = 'C', long)]
    crlf: bool,

    /// Append check bytes to what is sent and verify them on replies: sum8, xor8, crc16-modbus, crc16-ccitt, crc32.
    #[arg(long, value_name = "NAME")]
    checksum: Option<common::checksum::Checksum>,

    /// Send the exact MESSAGE N times, every --interval, with no sequence number (NetAssist's loop send); with --broadcast, N probes.
    #[arg(long, value_name = "N", value_parser = clap::value_parser!(u64).range(1..), conflicts_with = "count")]
    repeat: Option<u64>,

    /// Send a file as consecutive datagrams of at most --chunk bytes.
    #[arg(long, value_name = "PATH", conflicts_with_all = ["count", "repeat"])]
    file: Option<std::path::PathBuf>,

    /// With --file: the most bytes per datagram (1472 fills one Ethernet frame) [default: 1472]
    #[arg(long, value_name = "BYTES")]
    chunk: Option<usize>,

    /// With --file: read a FIFO, a device or a pipe as it comes (otherwise only a regular file is sent).
    #[arg(long, requires = "file")]
    stream: bool,

    /// Append every reply's bytes to PATH (NetAssist's "receive to file").
    #[arg(long, value_name = "PATH")]
    save: Option<std::path::PathBuf>,

    /// Write every datagram sent and received to FILE as a pcap capture, with its IP and UDP headers, for Wireshark or tshark -r FILE.
    #[arg(long, value_name = "FILE")]
    pcap: Option<std::path::PathBuf>,

    /// Ping and flood: one line every DUR with the interval's sent, received, loss (replies not back by its end), p50 and jitter (as iperf3 -i).
    #[arg(long, value_name = "DUR", value_parser = common::duration::parse)]
    report_every: Option<Duration>,

    /// Ping: on a terminal, one bar per reply (a fixed log scale, a mark per loss), prettyping-style; plain lines elsewhere.
    #[arg(long)]
    graph: bool,

    /// Send MESSAGE to a broadcast address or multicast group and list every reply within --timeout (device discovery); with --repeat N, a probe every --interval and each round's replies.
    #[arg(long, conflicts_with_all = ["count", "file"])]
    broadcast: bool,

    /// Send the UDP payloads of a pcap or pcapng capture (tcpdump, Wireshark, --pcap) to TARGET again, at the recorded pace or every --interval; replies are shown.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["count", "repeat", "file", "broadcast"])]
    replay: Option<std::path::PathBuf>,

    /// With --replay: only the datagrams sent to port P (in a capture of a conversation, the server's port picks the requests).
    #[arg(long, value_name = "P")]
    filter_port: Option<u16>,

    /// With --replay: only the datagrams from ADDR (IP, or IP:PORT).
    #[arg(long, value_name = "ADDR")]
    filter_src: Option<udp_client::Source>,

    /// With --replay: "recorded" keeps the gaps the capture recorded between datagrams (the default); --interval DUR sends one every DUR instead.
    #[arg(long, value_name = "PACE", conflicts_with = "interval", value_parser = ["recorded"])]
    pace: Option<String>,

    /// Every reply must match PATTERN (exact, PREFIX* or /REGEX/, as udp-server's rules; with -e hex a regex reads the hex text): each is marked [expect ok] or [expect FAILED: …], and the exit code is 0 only if all matched.
    #[arg(long, value_name = "PATTERN")]
    expect: Option<String>,

    /// Run the test in FILE (- for stdin): send TEXT, expect PATTERN [within DUR], delay DUR, repeat N { … }, # comments; {seq} and {time} in a send; one result line a step, exit 0 only if all passed.
    #[arg(long, value_name = "FILE", conflicts_with_all = ["count", "repeat", "file", "broadcast", "replay", "no_reply"])]
    script: Option<std::path::PathBuf>,

    /// Leave the socket unconnected and hear replies from any address and port, each shown with its sender (a device that answers from another port, unsolicited pushes).
    #[arg(long, conflicts_with = "broadcast")]
    any_source: bool,

    /// With --any-source: only datagrams from ADDR (IP, or IP:PORT) count; others are ignored (counted, each shown at -v).
    #[arg(long, value_name = "ADDR", requires = "any_source")]
    only_from: Option<udp_client::Source>,

    #[command(flatten)]
    output: common::cli::OutputArgs,
}

fn main() -> ExitCode {
    match common::cli::parse::<Cli>(PROGRAM) {
        Ok(cli) => common::cli::exit_code(PROGRAM, send(cli)),
        Err(code) => code,
    }
}

fn send(cli: Cli) -> common::Result<()> {
    cli.output.init_logging(PROGRAM);
    let raw: Vec<String> = std::env::args().collect();
    common::duration::warn_if_bare_and_long(&raw, &["--timeout", "--interval", "-i"], LONGEST_LIKELY_WAIT);
    let message_only = after_dashdash(&raw, cli.target.as_deref());
    let (config, mode) = decide(cli, message_only)?;
    let shutdown = Shutdown::new();
    shutdown.on_signals()?;
    let out = Output::stdout(config.output);
    let input = Box::new(BufReader::new(std::io::stdin()));
    let summary = udp_client::run(&config, &mode, &shutdown, &out, input)?;
    if let Some((text, json)) = summary.report() {
        out.summary(&text, json)?;
    }
    summary.check(config.target)
}

/// The one place the command line becomes a [`Config`] (what every mode shares) and a
/// [`Mode`] (only what that mode uses). `message_only`: the words came after `--`, so none
/// of them is the target.
fn decide(cli: Cli, message_only: bool) -> common::Result<(Config, Mode)> {
    let typing = udp_client::Typing {
        escapes: cli.escapes,
        crlf: cli.crlf,
        checksum: cli.checksum,
    };
    let (target, message) = target_and_message(&cli, message_only, typing)?;
    let given = given_flags(&cli);
    let expect = cli
        .expect
        .as_deref()
        .map(|text| udp_client::expect::Expect::parse(text, cli.output.encoding, cli.escapes))
        .transpose()
        .map_err(|why| common::Error::Usage(format!("--expect: {why}")))?;
    let config = Config {
        target,
        expect,
        bind: cli.bind,
        timeout: cli.timeout,
        no_reply: cli.no_reply,
        no_offload: cli.no_offload,
        typing,
        output: cli.output.options(),
        save: cli.save.clone(),
        pcap: cli.pcap.clone(),
        any_source: cli.any_source.then_some(udp_client::AnySource {
            only_from: cli.only_from,
        }),
    };
    let mode = mode(cli, message)?;
    refuse_unused(&given, &mode, config.no_reply)?;
    Ok((config, mode))
}

/// The mode-specific flags given on the command line.
fn given_flags(cli: &Cli) -> Vec<&'static str> {
    [
        ("--retries", cli.retries.is_some()),
        ("--interval", cli.interval.is_some()),
        ("--window", cli.window.is_some()),
        ("--chunk", cli.chunk.is_some()),
        ("--report-every", cli.report_every.is_some()),
        ("--graph", cli.graph),
        ("--checksum", cli.checksum.is_some()),
        ("--escapes", cli.escapes),
        ("--crlf", cli.crlf),
        ("--filter-port", cli.filter_port.is_some()),
        ("--filter-src", cli.filter_src.is_some()),
        ("--pace", cli.pace.is_some()),
        ("--any-source", cli.any_source),
        ("--expect", cli.expect.is_some()),
        ("--no-offload", cli.no_offload),
    ]
    .into_iter()
    .filter_map(|(flag, given)| given.then_some(flag))
    .collect()
}

/// A flag does what it says in the chosen mode, or it is a usage error: never ignored.
fn refuse_unused(given: &[&str], mode: &Mode, no_reply: bool) -> common::Result<()> {
    let (what, honoured) = honoured(mode, no_reply);
    match given.iter().find(|flag| !honoured.contains(flag)) {
        Some(flag) => Err(common::Error::Usage(format!(
            "{flag} does nothing with {what}: leave it out (it applies to {})",
            where_it_applies(flag)
        ))),
        None => Ok(()),
    }
}

/// The chosen mode's name, and the mode-specific flags it honours.
fn honoured(mode: &Mode, no_reply: bool) -> (&'static str, &'static [&'static str]) {
    const TYPED: [&str; 3] = ["--checksum", "--escapes", "--crlf"];
    match mode {
        Mode::OneShot(_) => (
            "a one-shot MESSAGE",
            &[
                "--retries",
                "--checksum",
                "--escapes",
                "--crlf",
                "--any-source",
                "--expect",
            ],
        ),
        Mode::Interactive => (
            "interactive mode",
            &["--checksum", "--escapes", "--crlf", "--any-source"],
        ),
        // The check bytes would sit before the `seq=N ` prefix, and replies are not checked.
        Mode::Ping(_) => (
            "a ping (--count)",
            &["--interval", "--report-every", "--graph", "--escapes", "--crlf"],
        ),
        Mode::Flood(_) if no_reply => (
            "a flood with --no-reply",
            &[
                "--interval",
                "--report-every",
                "--window",
                "--escapes",
                "--crlf",
                "--no-offload",
            ],
        ),
        Mode::Flood(_) => (
            "a flood (--interval 0)",
            &["--interval", "--report-every", "--window", "--escapes", "--crlf"],
        ),
        Mode::Repeat(_) => (
            "--repeat",
            &[
                "--interval",
                "--checksum",
                "--escapes",
                "--crlf",
                "--any-source",
                "--expect",
            ],
        ),
        Mode::File(_) if no_reply => ("--file --no-reply", &["--interval", "--chunk", "--no-offload"]),
        Mode::File(_) => ("--file", &["--interval", "--chunk", "--window"]),
        Mode::Discover(d) if d.probes > 1 => (
            "--broadcast --repeat",
            &["--interval", "--checksum", "--escapes", "--crlf"],
        ),
        Mode::Discover(_) => ("--broadcast", &TYPED),
        Mode::Replay(_) => ("--replay", &["--interval", "--filter-port", "--filter-src", "--pace"]),
        Mode::Script(_) => ("--script", &["--checksum", "--escapes", "--crlf", "--any-source"]),
    }
}

/// Where a mode-specific flag does something, for the usage error.
fn where_it_applies(flag: &str) -> &'static str {
    match flag {
        "--retries" => "a one-shot MESSAGE",
        "--interval" => "--count, --repeat (also with --broadcast), --file and --replay",
        "--window" => "a flood (--interval 0) and --file with replies",
        "--chunk" => "--file",
        "--report-every" => "--count",
        "--graph" => "a paced ping (--count with an --interval above 0)",
        "--filter-port" | "--filter-src" | "--pace" => "--replay FILE",
        "--any-source" => "a one-shot MESSAGE, typed lines, --repeat and --script",
        "--expect" => "a one-shot MESSAGE and --repeat; a script has expect lines",
        "--no-offload" => "--file and floods (--interval 0) with --no-reply",
        _ => "a MESSAGE or typed lines",
    }
}

/// Splits the words into TARGET and MESSAGE, and encodes the message.
fn target_and_message(
    cli: &Cli,
    message_only: bool,
    typing: udp_client::Typing,
) -> common::Result<(SocketAddr, Option<Vec<u8>>)> {
    let mut words: Vec<String> = cli.target.iter().chain(&cli.message).cloned().collect();
    let given = match words.first() {
        Some(first) if !message_only => common::addr::target_words(first, words.get(1).map(String::as_str))?,
        _ => None,
    };
    let target: SocketAddr = match given {
        Some((addr, used)) => {
            words.drain(..used);
            addr
        }
        None => udp_client::DEFAULT_TARGET,
    };
    let message = if words.is_empty() {
        None
    } else {
        Some(typing.frame(cli.output.encoding, words.join(" ").as_bytes())?)
    };
    Ok((target, message))
}

/// The mode the options ask for, with only its own settings. clap refuses the flags that
/// exclude each other; what clap cannot see (a MESSAGE where none belongs) is refused here.
fn mode(cli: Cli, message: Option<Vec<u8>>) -> common::Result<Mode> {
    let interval = cli.interval.unwrap_or(udp_client::DEFAULT_INTERVAL);
    let report_every = cli.report_every.filter(|d| !d.is_zero());
    if let Some(path) = &cli.replay {
        return replay(path, &cli, message.is_some());
    }
    if let Some(path) = &cli.script {
        return script(path, &cli, message.is_some());
    }
    if cli.broadcast {
        return Ok(Mode::Discover(udp_client::Discover {
            message: message.unwrap_or_default(),
            probes: cli.repeat.unwrap_or(1),
            interval,
        }));
    }
    Ok(match (cli.file, cli.repeat, cli.count, message) {
        (Some(_), _, _, Some(_)) => {
            return Err(common::Error::Usage("--file sends the file: leave out MESSAGE".into()));
        }
        (Some(path), ..) => Mode::File(udp_client::FileSend {
            path,
            chunk: cli.chunk.unwrap_or(udp_client::DEFAULT_CHUNK),
            // A file goes back to back unless --interval paces it.
            interval: cli.interval.unwrap_or(Duration::ZERO),
            window: usize::from(cli.window.unwrap_or(udp_client::DEFAULT_WINDOW)),
            stream: cli.stream,
        }),
        (None, Some(_), _, None) => {
            return Err(common::Error::Usage("--repeat needs a MESSAGE to repeat".into()));
        }
        (None, Some(count), _, Some(message)) => Mode::Repeat(udp_client::Repeat {
            message,
            count,
            interval,
        }),
        (None, None, Some(count), message) => {
            let requests = udp_client::Requests {
                message,
                count,
                report_every,
            };
            if interval.is_zero() {
                Mode::Flood(udp_client::Flood {
                    requests,
                    window: usize::from(cli.window.unwrap_or(udp_client::DEFAULT_WINDOW)),
                })
            } else {
                Mode::Ping(udp_client::Ping {
                    requests,
                    interval,
                    graph: cli.graph,
                })
            }
        }
        (None, None, None, Some(message)) => Mode::OneShot(udp_client::OneShot {
            message,
            retries: cli.retries.unwrap_or(0),
        }),
        (None, None, None, None) => Mode::Interactive,
    })
}

/// `--script FILE`: read and checked whole now, so a bad line is a usage error before any
/// socket is made.
fn script(path: &std::path::Path, cli: &Cli, message: bool) -> common::Result<Mode> {
    if message {
        return Err(common::Error::Usage(
            "--script sends what the script says: leave out MESSAGE (or write it as a send line)".into(),
        ));
    }
    let typing = udp_client::Typing {
        escapes: cli.escapes,
        crlf: cli.crlf,
        checksum: cli.checksum,
    };
    udp_client::Script::load(path, typing, cli.output.encoding).map(Mode::Script)
}

/// `--replay FILE`: the capture is read now, so a file that cannot be read or holds nothing
/// to send is a usage error before any socket is made.
fn replay(path: &std::path::Path, cli: &Cli, message: bool) -> common::Result<Mode> {
    if message {
        return Err(common::Error::Usage(
            "--replay sends the capture's payloads: leave out MESSAGE".into(),
        ));
    }
    let filter = udp_client::Filter {
        port: cli.filter_port,
        src: cli.filter_src,
    };
    let pace = match cli.interval {
        Some(interval) => udp_client::Pace::Interval(interval),
        None => udp_client::Pace::Recorded,
    };
    udp_client::Replay::load(path, filter, pace).map(Mode::Replay)
}

/// Whether the first word came after a `--` on the command line (`udp-client -- localhost
/// is up`): then it is part of the message, whatever it looks like.
fn after_dashdash(raw: &[String], first: Option<&str>) -> bool {
    let (Some(first), Some(dash)) = (first, raw.iter().skip(1).position(|a| a == "--")) else {
        return false;
    };
    raw.iter().skip(1).position(|a| a == first).is_none_or(|i| i > dash)
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// The target and the message the command line gives.
    #[derive(Debug)]
    struct Parsed {
        target: SocketAddr,
        message: Option<Vec<u8>>,
    }

    fn config(args: &[&str]) -> common::Result<Parsed> {
        let raw: Vec<String> = std::iter::once("udp-client")
            .chain(args.iter().copied())
            .map(String::from)
            .collect();
        let cli = Cli::try_parse_from(&raw).unwrap();
        let message_only = after_dashdash(&raw, cli.target.as_deref());
        let (config, mode) = decide(cli, message_only)?;
        let message = match mode {
            Mode::OneShot(m) => Some(m.message),
            Mode::Interactive => None,
            other => panic!("not a one-shot: {other:?}"),
        };
        Ok(Parsed {
            target: config.target,
            message,
        })
    }

    #[test]
    fn host_port_as_two_words_and_addresses_without_a_port_are_errors() {
        let c = config(&["127.0.0.1", "9006", "hello"]).unwrap();
        assert_eq!(
            (c.target, c.message),
            ("127.0.0.1:9006".parse().unwrap(), Some(b"hello".to_vec()))
        );
        for args in [
            &["::1:9005", "hi"][..],
            &["localhost", "hi"],
            &["127.0.0.1", "hi"],
            &["127.0.0.1:", "hi"],
        ] {
            let err = config(args).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{args:?}");
            assert!(err.to_string().contains("write "), "{err}");
        }
        // Quoted, or after --, such a word is the message.
        let c = config(&["localhost is up"]).unwrap();
        assert_eq!((c.target.port(), c.message), (8888, Some(b"localhost is up".to_vec())));
        let c = config(&["--", "localhost", "is", "up"]).unwrap();
        assert_eq!((c.target.port(), c.message), (8888, Some(b"localhost is up".to_vec())));
        let c = config(&["9000", "--", "127.0.0.1", "hi"]).unwrap();
        assert_eq!((c.target.port(), c.message), (9000, Some(b"127.0.0.1 hi".to_vec())));
    }

    #[test]
    fn verify_cli() {
        Cli::command().debug_assert();
    }

    #[test]
    fn the_first_word_is_the_target_only_if_it_looks_like_an_address() {
        let c = config(&["hello"]).unwrap();
        assert_eq!(
            (c.target, c.message),
            ("127.0.0.1:8888".parse().unwrap(), Some(b"hello".to_vec()))
        );
        let c = config(&["9000", "hi", "there"]).unwrap();
        assert_eq!(
            (c.target, c.message),
            ("127.0.0.1:9000".parse().unwrap(), Some(b"hi there".to_vec()))
        );
        let c = config(&["[::1]:53"]).unwrap();
        assert_eq!((c.target, c.message), ("[::1]:53".parse().unwrap(), None));
        let c = config(&["localhost:7", ""]).unwrap();
        assert_eq!(
            (c.target, c.message),
            ("127.0.0.1:7".parse().unwrap(), Some(Vec::new()))
        );
    }

    #[test]
    fn a_bad_target_is_an_error_not_a_message() {
        let err = config(&["127.0.0.1:70000", "hi"]).unwrap_err();
        assert_eq!(err.exit_code(), 2);
        assert!(err.to_string().contains("'127.0.0.1:70000'"), "{err}");
    }

    #[test]
    fn messages_are_encoded_with_the_chosen_encoding() {
        assert_eq!(
            config(&["-e", "gbk", "你好"]).unwrap().message,
            Some(vec![0xc4, 0xe3, 0xba, 0xc3])
        );
        assert_eq!(config(&["-e", "hex", "48 0x65"]).unwrap().message, Some(b"He".to_vec()));
        // A bare number first is a port, whatever the encoding: quote hex as one word.
        let c = config(&["-e", "hex", "48", "65"]).unwrap();
        assert_eq!((c.target.port(), c.message), (48, Some(b"e".to_vec())));
        assert_eq!(config(&["-e", "hex", "4 5"]).unwrap_err().exit_code(), 2);
    }
}
