//! Running a script: each step in order, one result line each, replies kept for the expect
//! they belong to (see the module above for which one that is).

use std::collections::VecDeque;
use std::time::{Duration, Instant};

use common::codec::Encoding;
use common::duration::display;
use common::error::echo;
use common::{Error, Result};
use serde::Serialize;

use super::macros::{Template, Values};
use super::{Script, Step};
use crate::DEFAULT_TIMEOUT;
use crate::expect::{Expect, Verdict};
use crate::session::{Arrival, OnRefused, Session, later};
use crate::summary::{Summary, fields};

/// Replies kept for a later expect, at most: a device that floods the client between two
/// expects costs it a bounded amount of memory (the oldest are counted as unexpected).
const KEPT: usize = 256;

/// How much of a sent text a step line repeats.
const SHOWN: usize = 60;

/// Runs every step of `script` on the session; the summary counts them.
pub(crate) fn run(session: &mut Session<'_>, script: &Script) -> Result<Summary> {
    session.on_refused = OnRefused::Warn("; the script's sends are lost until a server runs there");
    let mut runner = Runner {
        timeout: session.config.timeout.unwrap_or(DEFAULT_TIMEOUT),
        encoding: session.config.output.encoding,
        session,
        kept: VecDeque::new(),
        last: Values { seq: 0, time_ms: 0 },
        last_sent_at: None,
        done: ScriptSummary {
            name: script.name.clone(),
            total: script.total,
            ..ScriptSummary::default()
        },
    };
    runner.steps(&script.steps)?;
    // What is still kept, or waiting in the socket, answered nothing the script expected.
    runner.stale()?;
    runner.done.stopped = runner.session.stopped();
    Ok(Summary::Script(runner.done))
}

/// The run's state between steps.
struct Runner<'s, 'a> {
    session: &'s mut Session<'a>,
    timeout: Duration,
    encoding: Encoding,
    /// Replies that arrived after the last send and no expect has taken yet.
    kept: VecDeque<Vec<u8>>,
    /// The last send's macro values (an expect's `{seq}` is the last send's).
    last: Values,
    last_sent_at: Option<Instant>,
    done: ScriptSummary,
}

/// What one step did, for its line.
struct Outcome {
    what: String,
    verdict: Verdict,
    json: StepJson,
}

impl Runner<'_, '_> {
    fn steps(&mut self, steps: &[Step]) -> Result<()> {
        for step in steps {
            if self.session.stopped() {
                return Ok(());
            }
            let outcome = match step {
                Step::Repeat { count, body, .. } => {
                    for _ in 0..*count {
                        self.steps(body)?;
                        if self.session.stopped() {
                            break;
                        }
                    }
                    continue;
                }
                Step::Send { line, template, bytes } => self.send(*line, template, bytes.as_deref())?,
                Step::Expect {
                    line,
                    template,
                    fixed,
                    within,
                } => match self.expect(*line, template, fixed.as_ref(), *within)? {
                    Some(outcome) => outcome,
                    // Stopped while waiting: the step did not run to its end.
                    None => return Ok(()),
                },
                Step::Delay { line, wait } => match self.delay(*line, *wait)? {
                    Some(outcome) => outcome,
                    None => return Ok(()),
                },
            };
            self.report(step_line(step), outcome)?;
        }
        Ok(())
    }

    /// `send TEXT`: replies still kept, or queued in the socket, are stale from now on.
    fn send(&mut self, line: usize, template: &Template, bytes: Option<&[u8]>) -> Result<Outcome> {
        self.stale()?;
        let values = Values::now(self.last.seq + 1);
        let typed = template.expand(values, self.encoding);
        let what = format!("send {}", shorten(&echo(&typed)));
        let framed = match bytes {
            Some(b) => Ok(b.to_vec()),
            None => self
                .session
                .config
                .typing
                .frame(self.encoding, typed.as_bytes())
                .and_then(|b| crate::errors::check_size(b.len(), self.session.target()).map(|()| b)),
        };
        let mut json = StepJson::new(line, "send");
        json.text = Some(typed.clone());
        let verdict = match framed {
            Err(e) => Verdict::Failed(e.to_string()),
            Ok(payload) => {
                let target = self.session.target();
                json.len = Some(payload.len());
                if self.session.send(&payload)? {
                    self.session.out.sent(target, payload.len()).map_err(Error::stdout)?;
                    Verdict::Ok
                } else {
                    Verdict::Failed(format!("not sent: nobody is listening at {target}"))
                }
            }
        };
        // The numbers count sends made, so a send that failed does not use one up.
        if verdict.is_ok() {
            self.last = values;
            self.last_sent_at = Some(Instant::now());
        }
        Ok(Outcome { what, verdict, json })
    }

    /// `expect PATTERN`: the first kept reply, or the next to arrive within the deadline.
    /// `None` when a stop came first.
    fn expect(
        &mut self,
        line: usize,
        template: &Template,
        fixed: Option<&Expect>,
        within: Option<Duration>,
    ) -> Result<Option<Outcome>> {
        let wait = within.unwrap_or(self.timeout);
        let deadline = later(Instant::now(), wait);
        let written = template.expand(self.last, self.encoding);
        let mut json = StepJson::new(line, "expect");
        json.pattern = Some(written.clone());
        let what = format!("expect {}", shorten(&echo(&written)));
        let compiled;
        let expect = match fixed {
            Some(e) => e,
            None => match Expect::parse(&written, self.encoding, self.session.config.typing.escapes) {
                Ok(e) => {
                    compiled = e;
                    &compiled
                }
                Err(why) => {
                    return Ok(Some(Outcome {
                        what,
                        verdict: Verdict::Failed(why),
                        json,
                    }));
                }
            },
        };
        let reply = match self.kept.pop_front() {
            Some(reply) => Some(reply),
            None => self.next_reply(deadline)?,
        };
        let verdict = match reply {
            Some(reply) => expect.judge(&reply, self.session.config.typing.checksum),
            None if self.session.stopped() => return Ok(None),
            None => Verdict::Failed(format!("no reply within {}", display(wait))),
        };
        Ok(Some(Outcome { what, verdict, json }))
    }

    /// The next reply to arrive before `deadline`, printed, its bytes copied.
    fn next_reply(&mut self, deadline: Instant) -> Result<Option<Vec<u8>>> {
        match self.session.recv(deadline)? {
            Some(arrival) => {
                self.show(arrival, None)?;
                Ok(Some(self.session.data(arrival).to_vec()))
            }
            None => Ok(None),
        }
    }

    /// `delay DUR`: replies that arrive meanwhile are printed and kept for an expect.
    /// `None` when a stop cut it short.
    fn delay(&mut self, line: usize, wait: Duration) -> Result<Option<Outcome>> {
        let until = later(Instant::now(), wait);
        while let Some(arrival) = self.session.recv(until)? {
            self.show(arrival, None)?;
            if self.kept.len() == KEPT {
                self.kept.pop_front();
                self.done.unexpected += 1;
            }
            self.kept.push_back(self.session.data(arrival).to_vec());
        }
        if self.session.stopped() && Instant::now() < until {
            return Ok(None);
        }
        let mut json = StepJson::new(line, "delay");
        json.ms = Some(wait.as_secs_f64() * 1e3);
        Ok(Some(Outcome {
            what: format!("delay {}", display(wait)),
            verdict: Verdict::Ok,
            json,
        }))
    }

    /// Replies kept, and any waiting in the socket, answered something older than what
    /// comes next: printed (those in the socket), counted, and taken by no expect.
    fn stale(&mut self) -> Result<()> {
        self.done.unexpected += self.kept.len() as u64;
        self.kept.clear();
        while let Some(arrival) = self.session.ready()? {
            self.done.unexpected += 1;
            self.show(arrival, Some("unexpected: it came before the next send"))?;
        }
        Ok(())
    }

    /// Prints a reply, with its time since the last send.
    fn show(&mut self, arrival: Arrival, note: Option<&str>) -> Result<()> {
        let rtt = self.last_sent_at.map(|at| at.elapsed());
        self.session.show_reply_noted(arrival, rtt, note)
    }

    /// The step's result line (or JSON event), counted in the summary.
    fn report(&mut self, line: usize, outcome: Outcome) -> Result<()> {
        self.done.steps += 1;
        let Outcome {
            what,
            verdict,
            mut json,
        } = outcome;
        json.step = self.done.steps;
        json.ok = verdict.is_ok();
        let result = match &verdict {
            Verdict::Ok => {
                self.done.passed += 1;
                "ok".to_string()
            }
            Verdict::Failed(why) => {
                self.done.failed += 1;
                if self.done.first_failure.is_none() {
                    self.done.first_failure = Some((line, what.clone()));
                }
                json.why = Some(why.clone());
                format!("FAILED: {why}")
            }
        };
        let text = format!("step {}  line {line}  {what}  {result}", self.done.steps);
        self.session.out.report(&text, fields(&json)).map_err(Error::stdout)
    }
}

/// The line a step was written on.
fn step_line(step: &Step) -> usize {
    match step {
        Step::Send { line, .. } | Step::Expect { line, .. } | Step::Delay { line, .. } | Step::Repeat { line, .. } => {
            *line
        }
    }
}

/// The first [`SHOWN`] characters of `text`, `…` if there was more.
fn shorten(text: &str) -> String {
    if text.chars().count() <= SHOWN {
        return text.to_string();
    }
    let start: String = text.chars().take(SHOWN).collect();
    format!("{start}…")
}

/// A step's JSON line (`"event":"step"`).
#[derive(Serialize)]
struct StepJson {
    event: &'static str,
    step: u64,
    line: usize,
    kind: &'static str,
    ok: bool,
    /// A send's text, macros replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    text: Option<String>,
    /// A send's datagram length.
    #[serde(skip_serializing_if = "Option::is_none")]
    len: Option<usize>,
    /// An expect's pattern, macros replaced.
    #[serde(skip_serializing_if = "Option::is_none")]
    pattern: Option<String>,
    /// A delay's length.
    #[serde(skip_serializing_if = "Option::is_none")]
    ms: Option<f64>,
    /// Why it failed.
    #[serde(skip_serializing_if = "Option::is_none")]
    why: Option<String>,
}

impl StepJson {
    fn new(line: usize, kind: &'static str) -> Self {
        StepJson {
            event: "step",
            step: 0,
            line,
            kind,
            ok: false,
            text: None,
            len: None,
            pattern: None,
            ms: None,
            why: None,
        }
    }
}

/// What a script run did.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ScriptSummary {
    /// The script's name (its path, or `stdin`).
    #[serde(skip)]
    pub name: String,
    /// Steps the script has, repeats multiplied out.
    #[serde(skip)]
    pub total: u64,
    /// Steps run.
    pub steps: u64,
    /// Steps that passed.
    pub passed: u64,
    /// Steps that failed.
    pub failed: u64,
    /// Replies no expect took (they came before a later send, or after the last step).
    pub unexpected: u64,
    /// The first failed step: its line and what it was.
    #[serde(skip)]
    pub first_failure: Option<(usize, String)>,
    /// Whether Ctrl-C or SIGTERM stopped it.
    #[serde(skip)]
    pub stopped: bool,
}

impl ScriptSummary {
    /// `udp-client: steps 12, passed 11, failed 1`, and the JSON fields.
    pub(crate) fn report(&self) -> (String, serde_json::Value) {
        let stopped = if self.stopped && self.steps < self.total {
            format!(" of {} (stopped)", self.total)
        } else {
            String::new()
        };
        let unexpected = match self.unexpected {
            0 => String::new(),
            1 => ", 1 reply unexpected".to_string(),
            n => format!(", {n} replies unexpected"),
        };
        (
            format!(
                "udp-client: steps {}{stopped}, passed {}, failed {}{unexpected}",
                self.steps, self.passed, self.failed
            ),
            fields(self),
        )
    }

    /// Exit 0 only if every step that ran passed.
    ///
    /// # Errors
    /// [`Error::Runtime`] naming the first step that failed.
    pub(crate) fn check(&self) -> Result<()> {
        match &self.first_failure {
            Some((line, what)) => Err(Error::Runtime(format!(
                "{}: {} of {} steps failed, the first at line {line} ({what})",
                self.name, self.failed, self.steps
            ))),
            None => Ok(()),
        }
    }
}
