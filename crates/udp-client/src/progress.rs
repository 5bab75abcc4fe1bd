//! A live progress line on stderr for floods and file sends (sent, rate, time left), drawn
//! by indicatif, and only when stderr is a terminal: in a pipe or a file it would be noise.

use std::io::IsTerminal;

use indicatif::{ProgressBar, ProgressStyle};

/// Updates are batched: a flood sends hundreds of thousands a second.
const EVERY: u64 = 256;

/// The progress of a flood (datagrams) or a file (bytes).
pub(crate) struct Progress {
    bar: Option<ProgressBar>,
    pending: u64,
}

impl Progress {
    /// `total` datagrams, or bytes when `bytes`.
    pub(crate) fn new(total: u64, bytes: bool) -> Self {
        if !std::io::stderr().is_terminal() {
            return Progress { bar: None, pending: 0 };
        }
        let template = if bytes {
            "{bytes}/{total_bytes} sent  {bytes_per_sec}  {eta} left"
        } else {
            "{pos}/{len} datagrams sent  {rate}  {eta} left"
        };
        let bar = ProgressBar::new(total);
        if let Ok(style) = ProgressStyle::with_template(template) {
            bar.set_style(style.with_key(
                "rate",
                |state: &indicatif::ProgressState, w: &mut dyn std::fmt::Write| {
                    let _ = write!(w, "{:.0}/s", state.per_sec());
                },
            ));
        }
        Progress {
            bar: Some(bar),
            pending: 0,
        }
    }

    /// `n` more sent.
    pub(crate) fn add(&mut self, n: u64) {
        let Some(bar) = &self.bar else { return };
        self.pending += n;
        if self.pending >= EVERY {
            bar.inc(self.pending);
            self.pending = 0;
        }
    }

    /// Removes the line, so the summary starts on a clean line.
    pub(crate) fn finish(self) {
        if let Some(bar) = self.bar {
            bar.inc(self.pending);
            bar.finish_and_clear();
        }
    }
}
