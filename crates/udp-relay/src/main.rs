//! `udp-relay` command line: parse the options, set up logging and Ctrl-C, call
//! [`udp_relay::run`], print the summary, turn the result into an exit code.

// No unsafe code: mio and nix make the system calls std lacks.
#![forbid(unsafe_code)]
// Example code gets copied: no unwrap, expect or panic outside tests.
#![cfg_attr(not(test), deny(clippy::unwrap_used, clippy::expect_used, clippy::panic))]

use std::process::ExitCode;

use common::output::Output;
use common::shutdown::Shutdown;
use udp_relay::cli::{Cli, PROGRAM};

fn main() -> ExitCode {
    match common::cli::parse::<Cli>(PROGRAM) {
        Ok(cli) => common::cli::exit_code(PROGRAM, relay(&cli)),
        Err(code) => code,
    }
}

fn relay(cli: &Cli) -> common::Result<()> {
    cli.output.init_logging(PROGRAM);
    let config = udp_relay::cli::config(cli)?;
    let shutdown = Shutdown::new();
    shutdown.on_signals()?;
    let out = Output::stdout(config.output);
    let summary = udp_relay::run(&config, &shutdown, &out)?;
    out.summary(&summary.to_text(), summary.to_json())
}
