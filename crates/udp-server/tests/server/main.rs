//! udp-server's tests: one binary, two modules. `in_process` calls `udp_server::run` on a
//! thread; `process` runs the real binary. Both assert on what crossed the wire.

mod in_process;
mod process;

use std::time::Duration;

/// The deadline for anything that should happen at once; generous for a loaded machine.
const WAIT: Duration = Duration::from_secs(5);
