//! Stopping cleanly on Ctrl-C or SIGTERM.
//!
//! The chapter's `while True:` loop can only be stopped by killing the process, which loses
//! the last output and any summary. Here a signal handler only sets a flag, and every
//! receive loop uses a read timeout of [`POLL_INTERVAL`] so that it looks at the flag at
//! least that often, then returns normally: output is flushed, a summary printed, exit 0.

use std::io;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use crate::{Error, Result};

/// How often a blocked receive wakes up to check for a stop request. Short enough to stop
/// well within 250 ms, long enough that an idle program costs next to no CPU.
pub const POLL_INTERVAL: Duration = Duration::from_millis(100);

/// A stop request, shared between the signal handler, the program and its tests.
#[derive(Debug, Clone, Default)]
pub struct Shutdown {
    flag: Arc<AtomicBool>,
}

impl Shutdown {
    /// A flag that is not set.
    pub fn new() -> Self {
        Self::default()
    }

    /// Asks every loop holding a clone of this flag to stop.
    pub fn trigger(&self) {
        self.flag.store(true, Ordering::SeqCst);
    }

    /// Whether a stop was asked for.
    pub fn is_triggered(&self) -> bool {
        self.flag.load(Ordering::SeqCst)
    }

    /// Sleeps for `duration`, waking early on a stop request; returns whether one came.
    /// This is how a sender paces itself and still stops within [`POLL_INTERVAL`].
    pub fn sleep(&self, duration: Duration) -> bool {
        let end = std::time::Instant::now() + duration;
        loop {
            if self.is_triggered() {
                return true;
            }
            let left = end.saturating_duration_since(std::time::Instant::now());
            if left.is_zero() {
                return false;
            }
            std::thread::sleep(left.min(POLL_INTERVAL));
        }
    }

    /// Sets the flag on Ctrl-C (SIGINT), SIGTERM and SIGHUP. Call once, from `main`.
    ///
    /// # Errors
    /// [`Error::Runtime`] when a handler is already installed or the OS refuses.
    pub fn on_signals(&self) -> Result<()> {
        let flag = self.clone();
        ctrlc::set_handler(move || flag.trigger())
            .map_err(|e| Error::Runtime(format!("cannot install the Ctrl-C handler: {e}")))
    }
}

/// Whether a receive error only means "nothing arrived yet, look at the stop flag":
/// the read timeout expired (`WouldBlock` on Unix, `TimedOut` on Windows) or a signal
/// interrupted the call (Linux does not restart `recvfrom` when a read timeout is set).
pub fn is_wake_up(err: &io::Error) -> bool {
    matches!(
        err.kind(),
        io::ErrorKind::WouldBlock | io::ErrorKind::TimedOut | io::ErrorKind::Interrupted
    )
}

/// Whether a receive error reports an ICMP error caused by an *earlier* send (for example
/// "port unreachable" after a reply to a peer that has gone). It says nothing about the
/// socket itself, so a server must carry on.
pub fn is_earlier_send_error(err: &io::Error) -> bool {
    crate::error::is_port_unreachable(err)
        || matches!(
            err.kind(),
            io::ErrorKind::HostUnreachable | io::ErrorKind::NetworkUnreachable
        )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn clones_share_one_flag() {
        let a = Shutdown::new();
        let b = a.clone();
        assert!(!b.is_triggered());
        a.trigger();
        assert!(b.is_triggered());
    }

    #[test]
    fn timeouts_and_signals_are_wake_ups_not_failures() {
        for kind in [
            io::ErrorKind::WouldBlock,
            io::ErrorKind::TimedOut,
            io::ErrorKind::Interrupted,
        ] {
            assert!(is_wake_up(&io::Error::from(kind)));
        }
        assert!(!is_wake_up(&io::Error::from(io::ErrorKind::ConnectionRefused)));
        assert!(is_earlier_send_error(&io::Error::from(
            io::ErrorKind::ConnectionRefused
        )));
        // Windows: WSAECONNRESET and WSAENETRESET, even on an unconnected server socket.
        for raw in [crate::error::WSAECONNRESET, crate::error::WSAENETRESET] {
            assert!(is_earlier_send_error(&io::Error::from_raw_os_error(raw)));
        }
    }
}
