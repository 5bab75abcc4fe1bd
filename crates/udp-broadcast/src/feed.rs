//! The feed protocol: one human-readable line per datagram,
//!
//! ```text
//! seq=17 session=4f3a9c2e AAPL 189.23 +0.12
//! ```
//!
//! `seq` counts up from 1 so a listener can see gaps (lost), repeats (duplicates) and
//! late arrivals (reordered): UDP reports none of these itself. `session` is random per
//! sender run, so a restarted sender is told apart from a huge gap. The rest is the body;
//! its first word is the key a board keeps the latest value for (the chapter's point: a
//! lost quote is soon replaced by a newer one). Only `seq=` is required, so a sender
//! written the chapter's way in Python (`"seq=%d AAPL 189.23" % n`) is understood too.
//!
//! The header is ASCII text; the body after it is bytes, in any encoding or none (a GBK
//! text, a binary frame). A datagram that does not start with `seq=` is not ours at all
//! (a sensor's `T=23.0;H=41`, a device's `aa 55 …`): it is *foreign*, shown as it is and
//! counted, but it says nothing about loss. Only a datagram that starts like ours and then
//! breaks the format (`seq=x`) is *malformed*.

use std::collections::hash_map::Entry;
use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// One parsed feed message, borrowing from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The sequence number, from 1.
    pub seq: u64,
    /// The sender's session id, if it sent one.
    pub session: Option<&'a str>,
    /// Everything after the header, as bytes: `AAPL 189.23 +0.12`, or a binary payload.
    pub body: &'a [u8],
}

impl<'a> Message<'a> {
    /// The board key (first word of the body) and value (the rest), as bytes: the listener
    /// shows them in its encoding, escaped.
    pub fn key_value(&self) -> Option<(&'a [u8], &'a [u8])> {
        let body = self.body.trim_ascii();
        if body.is_empty() {
            return None;
        }
        Some(split_word(body)).map(|(k, v)| (k, v.trim_ascii()))
    }
}

/// Why a datagram is not a feed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotFeed {
    /// It does not start with `seq=`: another protocol (a sensor, a device), not ours.
    Foreign,
    /// `seq=` followed by something that is not a number from 0 to 2^64−1: malformed.
    BadSeq,
    /// `session=` with an empty id, one over 32 bytes, or one that is not UTF-8: malformed.
    BadSession,
}

/// Longest session id accepted; longer ones are malformed.
const MAX_SESSION_LEN: usize = 32;

/// Parses a datagram as a feed message. Never panics, whatever the bytes.
///
/// # Errors
/// [`NotFeed`]: foreign (not ours at all), or what is wrong with a header that is.
///
/// # Examples
/// ```
/// use udp_broadcast::feed::{parse, Message, NotFeed};
/// let m = parse(b"seq=17 session=4f3a AAPL 189.23").unwrap();
/// assert_eq!(m, Message { seq: 17, session: Some("4f3a"), body: b"AAPL 189.23" });
/// assert_eq!(parse(b"seq=2 \xaa\x55").unwrap().body, [0xaa, 0x55]);
/// assert_eq!(parse(b"T=23.0;H=41"), Err(NotFeed::Foreign));
/// assert_eq!(parse(b"seq=x"), Err(NotFeed::BadSeq));
/// ```
pub fn parse(datagram: &[u8]) -> Result<Message<'_>, NotFeed> {
    let datagram = datagram.strip_suffix(b"\n").unwrap_or(datagram);
    let (first, rest) = split_word(datagram);
    let digits = first.strip_prefix(b"seq=").ok_or(NotFeed::Foreign)?;
    if digits.is_empty() || !digits.iter().all(u8::is_ascii_digit) {
        return Err(NotFeed::BadSeq);
    }
    // ASCII digits are UTF-8; the number may still be too big for a u64.
    let seq = std::str::from_utf8(digits)
        .ok()
        .and_then(|d| d.parse().ok())
        .ok_or(NotFeed::BadSeq)?;
    let (second, after) = split_word(rest);
    match second.strip_prefix(b"session=") {
        Some(id) if !id.is_empty() && id.len() <= MAX_SESSION_LEN => Ok(Message {
            seq,
            session: Some(std::str::from_utf8(id).map_err(|_| NotFeed::BadSession)?),
            body: after,
        }),
        Some(_) => Err(NotFeed::BadSession),
        None => Ok(Message {
            seq,
            session: None,
            body: rest,
        }),
    }
}

/// The bytes up to the first space, and the bytes after it.
fn split_word(bytes: &[u8]) -> (&[u8], &[u8]) {
    match bytes.iter().position(|&b| b == b' ') {
        Some(at) => (&bytes[..at], &bytes[at + 1..]),
        None => (bytes, &[]),
    }
}

/// The datagram for one message: the ASCII header `seq=N session=ID `, then `body` byte
/// for byte (text in any encoding, or binary).
pub fn frame(seq: u64, session: &str, body: &[u8]) -> Vec<u8> {
    let mut datagram = format!("seq={seq} session={session} ").into_bytes();
    datagram.extend_from_slice(body);
    datagram
}

/// What one message turned out to be, for its sender's stream.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Verdict {
    /// The first message heard from this sender.
    First,
    /// The next number, as expected.
    InOrder,
    /// Numbers were skipped: this many are missing (lost, unless they turn up late).
    Gap(u64),
    /// A number already received.
    Duplicate,
    /// A missing number that turned up after later ones: reordered, no longer lost.
    Late,
    /// A new session from the same sender address: the sender restarted.
    Restart,
    /// A new sender while [`MAX_SENDERS`] are already tracked: shown, not tracked.
    Untracked,
    /// Not the feed format: another protocol, shown as it is.
    Foreign,
    /// Starts like the feed format (`seq=`) but breaks it.
    Malformed,
}

impl Verdict {
    /// A short note for the text line, or `None` when all is as expected.
    pub fn note(self) -> Option<String> {
        match self {
            Verdict::First | Verdict::InOrder | Verdict::Foreign => None,
            Verdict::Gap(n) => Some(format!("{n} lost")),
            Verdict::Duplicate => Some("duplicate".into()),
            Verdict::Late => Some("late: reordered".into()),
            Verdict::Restart => Some("sender restarted".into()),
            Verdict::Untracked => Some("not tracked: too many senders".into()),
            Verdict::Malformed => Some("malformed".into()),
        }
    }
}

/// Gaps remembered per sender, to recognise late arrivals; beyond this many, the oldest
/// gaps are taken as lost for good. A gap is one range however long, so a datagram with a
/// huge sequence number costs no more than any other.
const MAX_GAPS: usize = 256;

/// Senders tracked at once. Anyone can send to a listener from any (forged) address; with
/// this cap and the gaps remembered per sender (256), the tracker stays within a few megabytes whatever arrives.
pub const MAX_SENDERS: usize = 256;

/// The listener's counters, as the summary reports them (and names them in its JSON).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, serde::Serialize)]
pub struct Counts {
    /// Datagrams received (feed, foreign or malformed).
    pub received: u64,
    /// Distinct sender addresses, whatever they sent (up to [`MAX_SENDERS`]).
    pub senders: u64,
    /// Numbers skipped and not (yet) arrived.
    pub lost: u64,
    /// Numbers received more than once.
    pub duplicates: u64,
    /// Numbers that arrived after later ones.
    pub reordered: u64,
    /// New sessions from a known sender address.
    pub restarts: u64,
    /// Datagrams that start like feed messages (`seq=`) but break the format.
    pub malformed: u64,
    /// Messages from senders beyond [`MAX_SENDERS`], shown but not tracked.
    pub untracked: u64,
    /// Datagrams in another format (not `seq=…`): shown and counted, not checked for loss.
    /// In the JSON only when some arrived, so a feed's summary is as it always was.
    #[serde(skip_serializing_if = "is_zero")]
    pub foreign: u64,
}

fn is_zero(n: &u64) -> bool {
    *n == 0
}

#[derive(Debug)]
struct Stream {
    session: Option<String>,
    highest: u64,
    /// Missing numbers as ranges: first → last, inclusive.
    missing: BTreeMap<u64, u64>,
}

impl Stream {
    /// Removes `seq` from the missing ranges; whether it was missing.
    fn arrived_late(&mut self, seq: u64) -> bool {
        let Some((&first, &last)) = self.missing.range(..=seq).next_back() else {
            return false;
        };
        if seq > last {
            return false;
        }
        self.missing.remove(&first);
        if first < seq {
            self.missing.insert(first, seq - 1);
        }
        if seq < last {
            self.missing.insert(seq + 1, last);
        }
        true
    }
}

/// Tracks every sender's sequence numbers. A sender that sent only foreign datagrams is
/// counted, with no stream (`None`) until it sends a feed message.
#[derive(Debug, Default)]
pub struct Tracker {
    streams: HashMap<SocketAddr, Option<Stream>>,
    counts: Counts,
}

impl Tracker {
    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Counts a datagram from `from` that is not a feed message, and says what it was.
    pub fn not_feed(&mut self, from: SocketAddr, why: NotFeed) -> Verdict {
        self.counts.received += 1;
        if why == NotFeed::Foreign {
            self.counts.foreign += 1;
        } else {
            self.counts.malformed += 1;
        }
        match sender(&mut self.streams, &mut self.counts, from) {
            None => Verdict::Untracked,
            Some(_) if why == NotFeed::Foreign => Verdict::Foreign,
            Some(_) => Verdict::Malformed,
        }
    }

    /// Records `message` from `from` and says what it was.
    ///
    /// # Examples
    /// ```
    /// use udp_broadcast::feed::{parse, Tracker, Verdict};
    /// let from = "127.0.0.1:5000".parse().unwrap();
    /// let mut t = Tracker::default();
    /// let verdicts: Vec<Verdict> = ["seq=1 a", "seq=2 b", "seq=5 e", "seq=6 f"]
    ///     .iter().map(|m| t.observe(from, &parse(m.as_bytes()).unwrap())).collect();
    /// assert_eq!(verdicts, [Verdict::First, Verdict::InOrder, Verdict::Gap(2), Verdict::InOrder]);
    /// assert_eq!(t.counts().lost, 2);
    /// ```
    pub fn observe(&mut self, from: SocketAddr, message: &Message<'_>) -> Verdict {
        self.counts.received += 1;
        let seq = message.seq;
        let fresh = || Stream {
            session: message.session.map(str::to_string),
            highest: seq,
            missing: BTreeMap::new(),
        };
        let Some(slot) = sender(&mut self.streams, &mut self.counts, from) else {
            return Verdict::Untracked;
        };
        let Some(stream) = slot else {
            *slot = Some(fresh());
            return Verdict::First;
        };
        let c = &mut self.counts;
        if stream.session.as_deref() != message.session {
            c.restarts += 1;
            *stream = fresh();
            return Verdict::Restart;
        }
        if seq > stream.highest {
            let skipped = seq - stream.highest - 1;
            if skipped > 0 {
                stream.missing.insert(stream.highest + 1, seq - 1);
                if stream.missing.len() > MAX_GAPS {
                    stream.missing.pop_first();
                }
            }
            stream.highest = seq;
            // Saturating: two senders that each jump to 2^64 − 1 would overflow a sum.
            c.lost = c.lost.saturating_add(skipped);
            return if skipped == 0 {
                Verdict::InOrder
            } else {
                Verdict::Gap(skipped)
            };
        }
        if stream.arrived_late(seq) {
            c.lost = c.lost.saturating_sub(1);
            c.reordered += 1;
            Verdict::Late
        } else {
            c.duplicates += 1;
            Verdict::Duplicate
        }
    }
}

/// The stream slot of the sender `from`, made (and the sender counted) on first sight;
/// `None` (and the message counted untracked) once [`MAX_SENDERS`] are known.
fn sender<'s>(
    streams: &'s mut HashMap<SocketAddr, Option<Stream>>,
    counts: &mut Counts,
    from: SocketAddr,
) -> Option<&'s mut Option<Stream>> {
    let full = streams.len() >= MAX_SENDERS;
    match streams.entry(from) {
        Entry::Occupied(slot) => Some(slot.into_mut()),
        Entry::Vacant(_) if full => {
            counts.untracked += 1;
            None
        }
        Entry::Vacant(slot) => {
            counts.senders += 1;
            Some(slot.insert(None))
        }
    }
}

/// A built-in live feed for the demo: random-walk stock quotes or a flight board.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FeedKind {
    /// `AAPL 189.23 +0.12`
    Quotes,
    /// `CA1501 PEK-SHA 08:30 Boarding`
    Flights,
}

impl std::str::FromStr for FeedKind {
    type Err = common::Error;

    fn from_str(text: &str) -> common::Result<Self> {
        match text {
            "quotes" => Ok(FeedKind::Quotes),
            "flights" => Ok(FeedKind::Flights),
            _ => Err(common::Error::Usage(format!(
                "unknown feed '{}': use quotes or flights",
                common::codec::Encoding::Utf8.render(text.as_bytes())
            ))),
        }
    }
}

/// Generates feed bodies: a few keys, each updated in turn.
#[derive(Debug, Clone)]
pub struct Feed {
    kind: FeedKind,
    rng: common::rng::Rng,
    tick: usize,
    prices: Vec<f64>,
}

const SYMBOLS: [(&str, f64); 6] = [
    ("AAPL", 189.20),
    ("MSFT", 415.50),
    ("GOOG", 172.30),
    ("TSLA", 242.10),
    ("BABA", 86.40),
    ("0700.HK", 380.00),
];
const FLIGHTS: [(&str, &str, &str); 5] = [
    ("CA1501", "PEK-SHA", "08:30"),
    ("MU5101", "SHA-PEK", "09:00"),
    ("CZ3101", "CAN-PEK", "09:45"),
    ("HU7801", "HAK-PEK", "10:10"),
    ("3U8881", "CTU-PEK", "11:20"),
];
const STATUSES: [&str; 6] = [
    "Scheduled",
    "Check-in",
    "Boarding",
    "Final call",
    "Departed",
    "Delayed 20m",
];

impl Feed {
    /// A feed whose random walk starts from `seed`.
    pub fn new(kind: FeedKind, seed: u64) -> Self {
        Feed {
            kind,
            rng: common::rng::Rng::new(seed),
            tick: 0,
            prices: SYMBOLS.iter().map(|(_, p)| *p).collect(),
        }
    }

    /// The next body.
    pub fn next_body(&mut self) -> String {
        let tick = self.tick;
        self.tick += 1;
        let r = self.next_random();
        match self.kind {
            FeedKind::Quotes => {
                let i = tick % SYMBOLS.len();
                // A step of up to ±0.5 % of the price.
                let step = ((r % 1001) as f64 - 500.0) / 100_000.0;
                let old = self.prices[i];
                let new = ((old * (1.0 + step)) * 100.0).round() / 100.0;
                self.prices[i] = new;
                format!("{} {new:.2} {:+.2}", SYMBOLS[i].0, new - old)
            }
            FeedKind::Flights => {
                let (flight, route, time) = FLIGHTS[tick % FLIGHTS.len()];
                let status = STATUSES[(tick / FLIGHTS.len() + (r % 2) as usize) % STATUSES.len()];
                format!("{flight} {route} {time} {status}")
            }
        }
    }

    /// The next step of the random walk.
    fn next_random(&mut self) -> u64 {
        self.rng.next_u64()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn from() -> SocketAddr {
        "127.0.0.1:5000".parse().unwrap()
    }

    fn feed(t: &mut Tracker, from: SocketAddr, messages: &[&str]) -> Vec<Verdict> {
        messages
            .iter()
            .map(|m| t.observe(from, &parse(m.as_bytes()).unwrap()))
            .collect()
    }

    #[test]
    fn parses_what_the_sender_writes() {
        let text = frame(3, "abcd1234", b"AAPL 189.23 +0.12");
        let m = parse(&text).unwrap();
        assert_eq!(
            m,
            Message {
                seq: 3,
                session: Some("abcd1234"),
                body: b"AAPL 189.23 +0.12"
            }
        );
        assert_eq!(m.key_value(), Some((&b"AAPL"[..], &b"189.23 +0.12"[..])));
        assert_eq!(
            parse(b"seq=1\n").unwrap(),
            Message {
                seq: 1,
                session: None,
                body: b""
            }
        );
        assert_eq!(parse(b"seq=1").unwrap().key_value(), None);
    }

    #[test]
    fn says_why_a_datagram_is_not_a_feed_message() {
        // Not ours at all: foreign, whatever the bytes.
        assert_eq!(parse(b"\xff\xfe"), Err(NotFeed::Foreign));
        assert_eq!(parse(b"hello"), Err(NotFeed::Foreign));
        assert_eq!(parse(b""), Err(NotFeed::Foreign));
        assert_eq!(parse(b"T=23.0;H=41"), Err(NotFeed::Foreign));
        assert_eq!(parse(b"sequence=1 x"), Err(NotFeed::Foreign));
        // Ours, broken: malformed.
        assert_eq!(parse(b"seq=1 session=\xff x"), Err(NotFeed::BadSession));
        assert_eq!(parse(b"seq="), Err(NotFeed::BadSeq));
        assert_eq!(parse(b"seq=-1 x"), Err(NotFeed::BadSeq));
        assert_eq!(parse(b"seq=+1 x"), Err(NotFeed::BadSeq));
        assert_eq!(parse(b"seq=99999999999999999999 x"), Err(NotFeed::BadSeq));
        assert_eq!(parse(b"seq=1 session= x"), Err(NotFeed::BadSession));
    }

    #[test]
    fn a_binary_or_gbk_body_follows_the_ascii_header() {
        let m = parse(b"seq=7 session=ab \xaa\x55\x01\x17").unwrap();
        assert_eq!(
            (m.seq, m.session, m.body),
            (7, Some("ab"), &[0xaa, 0x55, 0x01, 0x17][..])
        );
        let gbk = frame(1, "ab", &[0xce, 0xc2, b' ', 0xb6, 0xc8]);
        let m = parse(&gbk).unwrap();
        assert_eq!(m.key_value(), Some((&[0xce, 0xc2][..], &[0xb6, 0xc8][..])));
    }

    /// A sender that sent only foreign datagrams is counted; its first feed message starts
    /// its stream (not a restart), and a foreign datagram in a feed breaks no sequence.
    #[test]
    fn foreign_and_malformed_datagrams_count_their_senders_and_break_no_stream() {
        let mut t = Tracker::default();
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        assert_eq!(t.not_feed(other, NotFeed::Foreign), Verdict::Foreign);
        assert_eq!(t.not_feed(from(), NotFeed::BadSeq), Verdict::Malformed);
        assert_eq!(feed(&mut t, from(), &["seq=1 a"]), [Verdict::First]);
        assert_eq!(t.not_feed(from(), NotFeed::Foreign), Verdict::Foreign);
        assert_eq!(feed(&mut t, from(), &["seq=2 b"]), [Verdict::InOrder]);
        assert_eq!(
            t.counts(),
            Counts {
                received: 5,
                senders: 2,
                malformed: 1,
                foreign: 2,
                ..Default::default()
            }
        );
        assert_eq!(Verdict::Foreign.note(), None);
        assert_eq!(Verdict::Malformed.note().as_deref(), Some("malformed"));
    }

    #[test]
    fn seq_1_2_5_6_is_two_lost() {
        let mut t = Tracker::default();
        assert_eq!(
            feed(&mut t, from(), &["seq=1 a", "seq=2 b", "seq=5 e", "seq=6 f"])[2],
            Verdict::Gap(2)
        );
        assert_eq!(
            t.counts(),
            Counts {
                received: 4,
                senders: 1,
                lost: 2,
                ..Default::default()
            }
        );
    }

    #[test]
    fn duplicates_and_late_arrivals_are_told_apart() {
        let mut t = Tracker::default();
        let v = feed(&mut t, from(), &["seq=1 a", "seq=3 c", "seq=2 b", "seq=3 c", "seq=2 b"]);
        assert_eq!(
            v,
            [
                Verdict::First,
                Verdict::Gap(1),
                Verdict::Late,
                Verdict::Duplicate,
                Verdict::Duplicate
            ]
        );
        let c = t.counts();
        assert_eq!((c.lost, c.reordered, c.duplicates), (0, 1, 2));
    }

    #[test]
    fn a_new_session_is_a_restart_not_a_gap_or_a_reorder() {
        let mut t = Tracker::default();
        let v = feed(
            &mut t,
            from(),
            &[
                "seq=1 session=aa x",
                "seq=900 session=aa x",
                "seq=1 session=bb x",
                "seq=2 session=bb x",
            ],
        );
        assert_eq!(
            v,
            [Verdict::First, Verdict::Gap(898), Verdict::Restart, Verdict::InOrder]
        );
        let c = t.counts();
        assert_eq!((c.restarts, c.reordered, c.duplicates, c.lost), (1, 0, 0, 898));
    }

    #[test]
    fn senders_are_tracked_separately() {
        let mut t = Tracker::default();
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        feed(&mut t, from(), &["seq=1 a", "seq=2 a"]);
        feed(&mut t, other, &["seq=1 a", "seq=3 a"]);
        let c = t.counts();
        assert_eq!((c.senders, c.lost, c.received), (2, 1, 4));
    }

    #[test]
    fn a_huge_gap_is_one_range_and_late_arrivals_inside_it_are_found() {
        let mut t = Tracker::default();
        feed(&mut t, from(), &["seq=1 a", "seq=18446744073709551615 z"]);
        assert_eq!(t.counts().lost, u64::MAX - 2);
        assert_eq!(t.streams[&from()].as_ref().unwrap().missing.len(), 1);
        let v = feed(
            &mut t,
            from(),
            &["seq=1000 m", "seq=1000 m", "seq=2 b", "seq=18446744073709551614 y"],
        );
        assert_eq!(v, [Verdict::Late, Verdict::Duplicate, Verdict::Late, Verdict::Late]);
        assert_eq!(t.counts().lost, u64::MAX - 5);
        assert_eq!(
            t.streams[&from()].as_ref().unwrap().missing.len(),
            2,
            "3..=999 and 1001..=2^64-3"
        );
    }

    #[test]
    fn huge_gaps_from_two_senders_saturate_instead_of_overflowing() {
        // Found by the fuzz target: the sum of two senders' gaps overflowed a u64.
        let mut t = Tracker::default();
        let other: SocketAddr = "127.0.0.1:5001".parse().unwrap();
        feed(&mut t, from(), &["seq=0 a", "seq=18446744073709551615 z"]);
        feed(&mut t, other, &["seq=0 a", "seq=18446744073709551615 z"]);
        assert_eq!(t.counts().lost, u64::MAX);
        feed(&mut t, other, &["seq=7 late"]);
        assert_eq!(t.counts().lost, u64::MAX - 1);
    }

    #[test]
    fn senders_past_the_cap_are_shown_but_not_tracked() {
        let mut t = Tracker::default();
        let message = parse(b"seq=1 x").unwrap();
        for port in 1..=MAX_SENDERS as u16 + 10 {
            let verdict = t.observe(SocketAddr::from(([10, 0, 0, 1], port)), &message);
            let expected = if usize::from(port) <= MAX_SENDERS {
                Verdict::First
            } else {
                Verdict::Untracked
            };
            assert_eq!(verdict, expected, "port {port}");
        }
        let c = t.counts();
        assert_eq!(
            (c.received, c.senders, c.untracked),
            (MAX_SENDERS as u64 + 10, MAX_SENDERS as u64, 10)
        );
        assert_eq!(t.streams.len(), MAX_SENDERS);
    }

    #[test]
    fn only_the_latest_gaps_are_remembered() {
        let mut t = Tracker::default();
        let mut messages = vec!["seq=1 a".to_string()];
        messages.extend((1..=MAX_GAPS as u64 + 10).map(|i| format!("seq={} x", i * 2 + 1)));
        let refs: Vec<&str> = messages.iter().map(String::as_str).collect();
        feed(&mut t, from(), &refs);
        assert_eq!(t.streams[&from()].as_ref().unwrap().missing.len(), MAX_GAPS);
        // seq=2 was forgotten as a gap: it now counts as a duplicate, and stays lost.
        assert_eq!(feed(&mut t, from(), &["seq=2 b"]), [Verdict::Duplicate]);
        assert_eq!(t.counts().lost, MAX_GAPS as u64 + 10);
    }

    #[test]
    fn the_parser_never_panics_on_random_bytes() {
        // A bounded property test (the fuzz target in fuzz/ goes further): 200 000
        // datagrams of random bytes, and of random mutations of a valid message.
        let mut rng = Feed::new(FeedKind::Quotes, 0x5eed);
        let valid = frame(42, "abcd", b"AAPL 1.00");
        let mut t = Tracker::default();
        for i in 0..200_000u64 {
            let len = (rng.next_random() % 64) as usize;
            let mut bytes: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| rng.next_random() as u8).collect()
            } else {
                valid.clone()
            };
            if !bytes.is_empty() {
                let at = (rng.next_random() as usize) % bytes.len();
                bytes[at] = rng.next_random() as u8;
            }
            match parse(&bytes) {
                Ok(m) => {
                    let _ = m.key_value();
                    t.observe(from(), &m);
                }
                Err(why) => {
                    t.not_feed(from(), why);
                }
            }
        }
        assert_eq!(t.counts().received, 200_000);
    }

    #[test]
    fn feeds_produce_readable_bodies() {
        let mut quotes = Feed::new(FeedKind::Quotes, 7);
        let body = quotes.next_body();
        assert!(body.starts_with("AAPL 1"), "{body}");
        let mut flights = Feed::new(FeedKind::Flights, 7);
        assert!(flights.next_body().starts_with("CA1501 PEK-SHA 08:30 "));
        for _ in 0..1000 {
            let body = quotes.next_body();
            let price: f64 = body.split(' ').nth(1).unwrap().parse().unwrap();
            assert!(price > 0.0, "{body}");
        }
    }
}
