//! `--script FILE` (`-` for stdin): a test of a device, one step a line — send, expect a
//! reply, wait, repeat — read whole and checked before anything is sent ([`parse`]), then
//! run step by step ([`run`]), one result line a step and `steps 12, passed 11, failed 1`.
//!
//! Which reply an `expect` takes: the next one that arrived **after the last send**. A
//! reply that arrives while no expect waits (during a `delay`, or a second datagram for
//! one expect) is printed at once and kept for the next expect; when the next `send`
//! goes out, whatever is still kept, or still waiting in the socket, answered something
//! older: it is counted as unexpected and no expect takes it. So a late reply to a step
//! that already failed cannot make the next step fail too. An expect takes one reply and
//! judges it: a device that answers `busy` before `OK` needs `expect busy` first (or a
//! /REGEX/ that accepts both).

pub(crate) mod macros;
pub(crate) mod parse;
mod run;

use std::io::Read;
use std::net::SocketAddr;
use std::path::Path;
use std::time::Duration;

use common::codec::Encoding;
use common::error::echo_path;
use common::{Error, Result};

use crate::Typing;
use crate::expect::Expect;
use macros::Template;

pub use parse::MAX_STEPS;
pub use run::ScriptSummary;
pub(crate) use run::run;

/// The largest script file (`--script /dev/zero` stops here, at once).
pub const MAX_FILE: u64 = 4 * 1024 * 1024;

/// A script, read and checked.
#[derive(Debug, Clone, PartialEq)]
pub struct Script {
    /// Where it came from (its path, or `stdin`): every message names it.
    pub name: String,
    steps: Vec<Step>,
    /// Steps it runs in all, repeats multiplied out (at most [`MAX_STEPS`]).
    pub total: u64,
}

/// One line of a script.
#[derive(Debug, Clone, PartialEq)]
enum Step {
    /// `send TEXT`: `bytes` framed once when the text has no macro.
    Send {
        line: usize,
        template: Template,
        bytes: Option<Vec<u8>>,
    },
    /// `expect PATTERN [within DUR]`: `fixed` compiled once when it has no macro.
    Expect {
        line: usize,
        template: Template,
        fixed: Option<Expect>,
        within: Option<Duration>,
    },
    /// `delay DUR`.
    Delay { line: usize, wait: Duration },
    /// `repeat N { … }`.
    Repeat { line: usize, count: u64, body: Vec<Step> },
}

impl Script {
    /// Reads a script from `text`; `name` starts every error (`at.script:7: …`).
    ///
    /// # Errors
    /// [`Error::Usage`] naming the file and line of the first bad line.
    ///
    /// # Examples
    /// ```
    /// use common::codec::Encoding;
    /// use udp_client::{Script, Typing};
    /// let script = Script::parse("ping.script", "repeat 3 {\nsend PING {seq}\nexpect PONG*\n}\n", Typing::default(), Encoding::Utf8).unwrap();
    /// assert_eq!(script.total, 6);
    /// let bad = Script::parse("ping.script", "send PING\nexpext PONG\n", Typing::default(), Encoding::Utf8);
    /// assert!(bad.unwrap_err().to_string().starts_with("ping.script:2: unknown step 'expext'"));
    /// ```
    pub fn parse(name: &str, text: &str, typing: Typing, encoding: Encoding) -> Result<Script> {
        parse::parse(name, text, parse::Reading { typing, encoding })
    }

    /// Reads the script at `path` (`-`: standard input), at most `MAX_FILE` (4 MiB) bytes of
    /// UTF-8 text.
    ///
    /// # Errors
    /// [`Error::Usage`] for a file that cannot be read as a script, or a bad line in it.
    pub fn load(path: &Path, typing: Typing, encoding: Encoding) -> Result<Script> {
        let (name, bytes) = if path == Path::new("-") {
            ("stdin".to_string(), read_capped(std::io::stdin().lock(), "stdin")?)
        } else {
            let name = echo_path(path);
            let what = format!("cannot read --script {name}");
            // Too many open files or an I/O error is the machine's fault (exit 1).
            let file = std::fs::File::open(path).map_err(|e| Error::path(&what, &e))?;
            (name.clone(), read_capped(file, &name)?)
        };
        let text = String::from_utf8(bytes)
            .map_err(|e| Error::Usage(format!("cannot read --script {name}: not UTF-8 text ({e})")))?;
        Script::parse(&name, &text, typing, encoding)
    }

    /// Every datagram whose bytes are known before the run fits the UDP limit.
    pub(crate) fn check(&self, target: SocketAddr) -> Result<()> {
        fn walk(steps: &[Step], target: SocketAddr) -> Result<()> {
            for step in steps {
                match step {
                    Step::Send { bytes: Some(b), .. } => crate::errors::check_size(b.len(), target)?,
                    Step::Repeat { body, .. } => walk(body, target)?,
                    _ => {}
                }
            }
            Ok(())
        }
        walk(&self.steps, target)
    }
}

/// At most [`MAX_FILE`] bytes of `reader`: a script is text, not a disk image.
fn read_capped(reader: impl Read, name: &str) -> Result<Vec<u8>> {
    let what = format!("cannot read --script {name}");
    let mut bytes = Vec::new();
    reader
        .take(MAX_FILE + 1)
        .read_to_end(&mut bytes)
        .map_err(|e| Error::path(&what, &e))?;
    if bytes.len() as u64 > MAX_FILE {
        return Err(Error::Usage(format!(
            "{what}: larger than {} MiB (a script holds text steps, one a line)",
            MAX_FILE >> 20
        )));
    }
    Ok(bytes)
}
