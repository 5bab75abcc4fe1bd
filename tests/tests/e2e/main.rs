//! Cross-program tests: `udp-server` and `udp-client` paired, in-process through their
//! libraries and as real processes, asserting on what crossed the wire.

mod chapter;
mod faults;
mod in_process;
mod processes;

use std::time::Duration;

/// The deadline for anything that should happen at once; generous for a loaded machine.
const WAIT: Duration = Duration::from_secs(5);
