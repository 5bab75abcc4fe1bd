//! Command-line plumbing every program's `main` uses: one-line usage errors, exit codes.

use std::io::Write;
use std::process::ExitCode;

use clap::error::ErrorKind;
use clap::{Args, Parser};

use crate::codec::Encoding;
use crate::output::{OutputOptions, Show};

/// The output and logging flags every program has; `#[command(flatten)]` them in.
#[derive(Debug, Clone, Args)]
pub struct OutputArgs {
    /// How payloads are typed and shown: utf8, gbk (Chinese NetAssist) or hex.
    #[arg(short, long, value_name = "utf8|gbk|hex", default_value = "utf8")]
    pub encoding: Encoding,

    /// How payloads are shown, whatever -e types them in: hex, text or both [default: as -e says].
    #[arg(long, value_name = "hex|text|both")]
    pub show: Option<Show>,

    /// Print JSON Lines on stdout (one object per datagram, a summary last).
    #[arg(long)]
    pub json: bool,

    /// Prefix each datagram with the local time.
    #[arg(long)]
    pub timestamp: bool,

    /// More logs on stderr (-v debug, -vv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count)]
    pub verbose: u8,

    /// No per-datagram lines and no info logs (for floods and benchmarks).
    #[arg(short, long, conflicts_with = "verbose")]
    pub quiet: bool,
}

/// Fault injection on the receiving side, for programs that receive; `#[command(flatten)]`.
#[cfg(feature = "receive")]
#[derive(Debug, Clone, Args)]
pub struct FaultArgs {
    /// Lose each datagram with probability P (0 to 1), as a real network may.
    #[arg(long, value_name = "P", value_parser = crate::faults::parse_probability)]
    pub drop: Option<f64>,

    /// Deliver each datagram twice with probability P.
    #[arg(long, value_name = "P", value_parser = crate::faults::parse_probability)]
    pub duplicate: Option<f64>,

    /// Hold every datagram back for DUR, or for a random time in DUR..DUR (e.g. 50ms..150ms).
    #[arg(long, value_name = "DUR[..DUR]", value_parser = crate::faults::parse_delay)]
    pub delay: Option<(std::time::Duration, std::time::Duration)>,

    /// Let the next datagram overtake this one with probability P.
    #[arg(long, value_name = "P", value_parser = crate::faults::parse_probability)]
    pub reorder: Option<f64>,

    /// Seed for the faults: the same seed and the same datagrams give the same faults [default: random].
    #[arg(long, value_name = "N")]
    pub seed: Option<u64>,
}

#[cfg(feature = "receive")]
impl FaultArgs {
    /// The fault configuration; a random seed (logged, so a run can be repeated) if none given.
    pub fn config(&self) -> crate::faults::FaultConfig {
        // Below 100 000, so the seed the log shows is short enough to type again.
        let seed = self.seed.unwrap_or_else(|| crate::rng::fresh_seed() % 100_000);
        let config = crate::faults::FaultConfig {
            drop: self.drop.unwrap_or(0.0),
            duplicate: self.duplicate.unwrap_or(0.0),
            delay: self.delay,
            reorder: self.reorder.unwrap_or(0.0),
            seed,
        };
        if config.is_active() {
            log::info!(
                "injecting faults: {} (the same seed repeats the same faults)",
                config.describe()
            );
        }
        config
    }
}

impl OutputArgs {
    /// Sets up logging for `program` at the level these flags ask for.
    pub fn init_logging(&self, program: &'static str) {
        crate::logging::init(program, self.verbose, self.quiet);
    }

    /// The output options these flags ask for.
    pub fn options(&self) -> OutputOptions {
        OutputOptions {
            json: self.json,
            timestamp: self.timestamp,
            encoding: self.encoding,
            quiet: self.quiet,
            show: self.show,
        }
    }
}

/// Parses the command line; `--help` and `--version` print and exit 0, and any mistake is
/// one line on stderr (`udp-server: invalid value 'x' for '--bind <ADDR>': …`) and exit 2,
/// keeping clap's tips (`a similar argument exists: '--bind'`) but not its usage block.
pub fn parse<C: Parser>(program: &str) -> Result<C, ExitCode> {
    match C::try_parse() {
        Ok(cli) => Ok(cli),
        Err(err) if matches!(err.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion) => {
            let _ = err.print();
            Err(ExitCode::SUCCESS)
        }
        Err(err) => {
            print_error(program, &explain::<C>(&err));
            Err(ExitCode::from(2))
        }
    }
}

/// The one line for a clap error, with what a newcomer most likely meant.
fn explain<C: Parser>(err: &clap::Error) -> String {
    let command = C::command();
    if err.kind() == ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand {
        let names: Vec<&str> = command.get_subcommands().map(|c| c.get_name()).collect();
        return format!("a subcommand is missing: {} (see --help)", names.join(" or "));
    }
    let mut line = one_line(&err.render().to_string());
    if err.kind() == ErrorKind::UnknownArgument {
        let has_bind = |c: &clap::Command| c.get_arguments().any(|a| a.get_id() == "bind");
        let bind = has_bind(&command) || command.get_subcommands().any(has_bind);
        if let Some(clap::error::ContextValue::String(arg)) = err.get(clap::error::ContextKind::InvalidArg) {
            if bind && !arg.starts_with('-') && crate::addr::looks_like(arg) {
                line = line.replace(" (see --help)", &format!("; did you mean --bind {arg}? (see --help)"));
            }
        }
    }
    line
}

/// Clap's message without the `error: ` prefix, the usage block and the blank lines, with
/// its tips, and a pointer to `--help`.
fn one_line(rendered: &str) -> String {
    let first = rendered
        .lines()
        .find(|line| !line.trim().is_empty())
        .unwrap_or("bad usage");
    let mut text = first.strip_prefix("error: ").unwrap_or(first).trim_end().to_string();
    for tip in rendered.lines().filter_map(|line| line.trim().strip_prefix("tip: ")) {
        text += "; ";
        text += tip;
    }
    format!("{text} (see --help)")
}

/// Prints `program: message` on stderr, ignoring a closed stderr (there is nobody to tell).
pub fn print_error(program: &str, message: &str) {
    let _ = writeln!(std::io::stderr(), "{program}: {message}");
}

/// Turns a program's result into its exit code, printing the error as one line.
pub fn exit_code<T>(program: &str, result: crate::Result<T>) -> ExitCode {
    match result {
        Ok(_) => ExitCode::SUCCESS,
        Err(err) => {
            print_error(program, &err.to_string());
            ExitCode::from(err.exit_code())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clap_tips_survive_the_one_line() {
        let rendered = "error: unexpected argument '--bnid' found\n\n  tip: a similar argument exists: '--bind'\n\nUsage: udp-server --bind <ADDR>\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "unexpected argument '--bnid' found; a similar argument exists: '--bind' (see --help)"
        );
    }

    #[test]
    fn clap_errors_become_one_line() {
        let rendered =
            "error: invalid value 'x' for '--bind <ADDR>': bad address\n\nFor more information, try '--help'.\n";
        assert_eq!(
            one_line(rendered),
            "invalid value 'x' for '--bind <ADDR>': bad address (see --help)"
        );
    }
}
