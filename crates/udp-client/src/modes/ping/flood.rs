//! `--interval 0`: keep up to `--window` requests in flight, refilling as replies return;
//! a request unanswered for the timeout is given up (and counted lost unless it turns up).
//! No line per reply (like `ping -f`): printing would cost more than the datagrams.

use std::time::{Duration, Instant};

use common::Result;
use common::offload;
use common::output::plural;

use super::summary::PingSummary;
use super::tracker::{Match, Tracker};
use super::{Flood, request};
use crate::DEFAULT_FLOOD_TIMEOUT;
use crate::progress::Progress;
use crate::session::{Session, later};

/// On loopback a flood loses next to nothing; past this share something is limiting it.
const FLOOD_LOSS_WORTH_A_WORD: f64 = 10.0;

/// Floods the target with `count` requests, `window` in flight at most.
pub(crate) fn run(session: &mut Session<'_>, mode: &Flood) -> Result<PingSummary> {
    let (count, window) = (mode.requests.count, mode.window.max(1));
    let no_reply = session.config.no_reply;
    if no_reply {
        log::info!(
            "sending {} to {} as fast as the OS takes them; nothing is awaited (--no-reply)",
            plural(count, "datagram"),
            session.target()
        );
    } else {
        log::info!(
            "flooding {} with {}, {window} in flight at most; no line per reply",
            session.target(),
            plural(count, "datagram")
        );
    }
    let mut flood = Flooding {
        loss_timeout: session.config.timeout.unwrap_or(DEFAULT_FLOOD_TIMEOUT),
        tracker: Tracker::with_reports(&mode.requests, session.target(), !no_reply),
        session,
        mode,
        window,
        next_seq: 1,
        start: Instant::now(),
        last_reply: Instant::now(),
        progress: Progress::new(count, false),
    };
    while !flood.session.shutdown.is_triggered() {
        flood.fill_window()?;
        flood.tracker.report_due(flood.session.out)?;
        if no_reply || (flood.next_seq > count && flood.tracker.in_flight() == 0) {
            break;
        }
        flood.receive_one()?;
        flood.tracker.expire(Instant::now(), flood.loss_timeout);
    }
    if !no_reply {
        flood.linger()?;
    }
    flood.tracker.last_report(flood.session.out)?;
    let stopped = flood.session.shutdown.is_triggered();
    Ok(flood.finish(stopped))
}

/// The state of a flood: the window of requests in flight, oldest first.
struct Flooding<'s, 'a> {
    session: &'s mut Session<'a>,
    mode: &'s Flood,
    loss_timeout: Duration,
    window: usize,
    tracker: Tracker,
    next_seq: u64,
    start: Instant,
    last_reply: Instant,
    /// The live progress line, on a terminal.
    progress: Progress,
}

impl Flooding<'_, '_> {
    /// Sends until the window is full. With --no-reply nothing comes back to free the
    /// window: everything is sent at once ([`Flooding::send_everything`]).
    fn fill_window(&mut self) -> Result<()> {
        if self.session.config.no_reply {
            return self.send_everything();
        }
        while self.tracker.in_flight() < self.window && self.next_seq <= self.mode.requests.count {
            if self.session.shutdown.is_triggered() {
                break;
            }
            let now = Instant::now();
            let payload = request(self.next_seq, self.mode.requests.message());
            if self.session.send(&payload)? {
                self.tracker.sent(self.next_seq, now);
            }
            self.progress.add(1);
            self.next_seq += 1;
        }
        Ok(())
    }

    /// `--no-reply`: every request, [`offload::MAX_SEGMENTS`] at a time, checking for Ctrl-C
    /// between them. The session sends each run of equal length in one call where GSO is
    /// on (`seq=10 …` to `seq=99 …` are one length): the same datagrams, far fewer calls.
    fn send_everything(&mut self) -> Result<()> {
        let count = self.mode.requests.count;
        while self.next_seq <= count && !self.session.shutdown.is_triggered() {
            let first = self.next_seq;
            let last = count.min(first + offload::MAX_SEGMENTS as u64 - 1);
            let payloads: Vec<Vec<u8>> = (first..=last)
                .map(|seq| request(seq, self.mode.requests.message()))
                .collect();
            let (tracker, now) = (&mut self.tracker, Instant::now());
            self.session
                .send_all(&payloads, |i| tracker.sent(first + i as u64, now))?;
            self.progress.add(payloads.len() as u64);
            self.next_seq = last + 1;
        }
        Ok(())
    }

    /// Waits (a short while) for one reply and frees its window slot.
    fn receive_one(&mut self) -> Result<()> {
        if let Some(arrival) = self.session.poll()? {
            self.session.save(arrival)?;
            let now = Instant::now();
            if let (
                _,
                Match::First {
                    was_in_flight: true, ..
                },
            ) = self.tracker.reply(self.session.data(arrival), now)
            {
                self.last_reply = now;
            }
        }
        Ok(())
    }

    /// A duplicate of a late reply may still be on its way: listen a little longer.
    fn linger(&mut self) -> Result<()> {
        let grace_end = later(Instant::now(), self.tracker.grace(self.loss_timeout));
        while !self.session.shutdown.is_triggered() && Instant::now() < grace_end {
            if let Some(arrival) = self.session.poll()? {
                self.tracker.reply(self.session.data(arrival), Instant::now());
            }
        }
        Ok(())
    }

    /// The summary, with the rate: echoed datagrams per second, or sent ones with --no-reply.
    fn finish(self, stopped: bool) -> PingSummary {
        self.progress.finish();
        let no_reply = self.session.config.no_reply;
        let elapsed = self.last_reply.duration_since(self.start).as_secs_f64();
        let mut summary = self.tracker.finish(stopped);
        if elapsed > 0.0 && summary.received > 0 {
            summary.rate = Some(summary.received as f64 / elapsed);
        }
        let sending = self.start.elapsed().as_secs_f64();
        if no_reply && sending > 0.0 {
            summary.rate = Some(summary.sent as f64 / sending);
        }
        if !no_reply && summary.received > 0 && summary.loss_percent() >= FLOOD_LOSS_WORTH_A_WORD {
            log::warn!(
                "{:.0}% of the flood was lost: the server may be rate-limiting its replies (udp-server --rate-limit), or a receive queue overflowed (try a smaller --window)",
                summary.loss_percent()
            );
        }
        summary
    }
}
