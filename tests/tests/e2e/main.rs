//! Cross-program tests: `udp-server` and `udp-client` paired, in-process through their
//! libraries and as real processes, asserting on what crossed the wire.

mod chapter;
mod device_scripts;
mod discovery;
mod examples;
mod faults;
mod files;
mod in_process;
mod loops;
mod processes;
mod relay;
mod replay;
mod repository;
mod rules;
mod scripts;
mod show;

use testkit::WAIT;
