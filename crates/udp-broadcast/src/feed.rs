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

use std::collections::{BTreeMap, HashMap};
use std::net::SocketAddr;

/// One parsed feed message, borrowing from the datagram.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Message<'a> {
    /// The sequence number, from 1.
    pub seq: u64,
    /// The sender's session id, if it sent one.
    pub session: Option<&'a str>,
    /// Everything after the header: `AAPL 189.23 +0.12`.
    pub body: &'a str,
}

impl<'a> Message<'a> {
    /// The board key (first word of the body) and value (the rest).
    pub fn key_value(&self) -> Option<(&'a str, &'a str)> {
        let body = self.body.trim();
        if body.is_empty() {
            return None;
        }
        Some(body.split_once(' ').map_or((body, ""), |(k, v)| (k, v.trim())))
    }
}

/// Why a datagram is not a feed message.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Malformed {
    /// Not UTF-8 text.
    NotText,
    /// No `seq=N` at the start.
    NoSeq,
    /// `seq=` followed by something that is not a number from 0 to 2^64−1.
    BadSeq,
    /// `session=` with an empty id or one over 32 characters.
    BadSession,
}

/// Longest session id accepted; longer ones are malformed.
const MAX_SESSION_LEN: usize = 32;

/// Parses a datagram as a feed message. Never panics, whatever the bytes.
///
/// # Errors
/// [`Malformed`] saying what is missing.
///
/// # Examples
/// ```
/// use udp_broadcast::feed::{parse, Message};
/// let m = parse(b"seq=17 session=4f3a AAPL 189.23").unwrap();
/// assert_eq!(m, Message { seq: 17, session: Some("4f3a"), body: "AAPL 189.23" });
/// assert_eq!(parse(b"seq=2 hello").unwrap().session, None);
/// assert!(parse(b"hello").is_err());
/// ```
pub fn parse(datagram: &[u8]) -> Result<Message<'_>, Malformed> {
    let text = std::str::from_utf8(datagram).map_err(|_| Malformed::NotText)?;
    let text = text.strip_suffix('\n').unwrap_or(text);
    let (first, rest) = split_word(text);
    let digits = first.strip_prefix("seq=").ok_or(Malformed::NoSeq)?;
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(Malformed::BadSeq);
    }
    let seq = digits.parse().map_err(|_| Malformed::BadSeq)?;
    let (second, after) = split_word(rest);
    match second.strip_prefix("session=") {
        Some(id) if !id.is_empty() && id.len() <= MAX_SESSION_LEN => Ok(Message {
            seq,
            session: Some(id),
            body: after,
        }),
        Some(_) => Err(Malformed::BadSession),
        None => Ok(Message {
            seq,
            session: None,
            body: rest,
        }),
    }
}

fn split_word(text: &str) -> (&str, &str) {
    text.split_once(' ').unwrap_or((text, ""))
}

/// The datagram text for one message.
pub fn format(seq: u64, session: &str, body: &str) -> String {
    format!("seq={seq} session={session} {body}")
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
}

impl Verdict {
    /// A short note for the text line, or `None` when all is as expected.
    pub fn note(self) -> Option<String> {
        match self {
            Verdict::First | Verdict::InOrder => None,
            Verdict::Gap(n) => Some(format!("{n} lost")),
            Verdict::Duplicate => Some("duplicate".into()),
            Verdict::Late => Some("late: reordered".into()),
            Verdict::Restart => Some("sender restarted".into()),
            Verdict::Untracked => Some("not tracked: too many senders".into()),
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

/// The listener's counters, as the summary reports them.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counts {
    /// Datagrams received (well-formed or not).
    pub received: u64,
    /// Distinct sender addresses.
    pub senders: u64,
    /// Numbers skipped and not (yet) arrived.
    pub lost: u64,
    /// Numbers received more than once.
    pub duplicates: u64,
    /// Numbers that arrived after later ones.
    pub reordered: u64,
    /// New sessions from a known sender address.
    pub restarts: u64,
    /// Datagrams that are not feed messages.
    pub malformed: u64,
    /// Messages from senders beyond [`MAX_SENDERS`], shown but not tracked.
    pub untracked: u64,
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

/// Tracks every sender's sequence numbers.
#[derive(Debug, Default)]
pub struct Tracker {
    streams: HashMap<SocketAddr, Stream>,
    counts: Counts,
}

impl Tracker {
    /// The counters so far.
    pub fn counts(&self) -> Counts {
        self.counts
    }

    /// Counts a datagram that is not a feed message.
    pub fn malformed(&mut self) {
        self.counts.received += 1;
        self.counts.malformed += 1;
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
        let c = &mut self.counts;
        c.received += 1;
        let seq = message.seq;
        let fresh = || Stream {
            session: message.session.map(str::to_string),
            highest: seq,
            missing: BTreeMap::new(),
        };
        let Some(stream) = self.streams.get_mut(&from) else {
            if self.streams.len() >= MAX_SENDERS {
                c.untracked += 1;
                return Verdict::Untracked;
            }
            c.senders += 1;
            self.streams.insert(from, fresh());
            return Verdict::First;
        };
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
                "unknown feed '{text}': use quotes or flights"
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
        let text = format(3, "abcd1234", "AAPL 189.23 +0.12");
        let m = parse(text.as_bytes()).unwrap();
        assert_eq!(
            m,
            Message {
                seq: 3,
                session: Some("abcd1234"),
                body: "AAPL 189.23 +0.12"
            }
        );
        assert_eq!(m.key_value(), Some(("AAPL", "189.23 +0.12")));
        assert_eq!(
            parse(b"seq=1\n").unwrap(),
            Message {
                seq: 1,
                session: None,
                body: ""
            }
        );
        assert_eq!(parse(b"seq=1").unwrap().key_value(), None);
    }

    #[test]
    fn says_why_a_datagram_is_malformed() {
        assert_eq!(parse(b"\xff\xfe"), Err(Malformed::NotText));
        assert_eq!(parse(b"hello"), Err(Malformed::NoSeq));
        assert_eq!(parse(b""), Err(Malformed::NoSeq));
        assert_eq!(parse(b"seq="), Err(Malformed::BadSeq));
        assert_eq!(parse(b"seq=-1 x"), Err(Malformed::BadSeq));
        assert_eq!(parse(b"seq=+1 x"), Err(Malformed::BadSeq));
        assert_eq!(parse(b"seq=99999999999999999999 x"), Err(Malformed::BadSeq));
        assert_eq!(parse(b"seq=1 session= x"), Err(Malformed::BadSession));
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
        assert_eq!(t.streams[&from()].missing.len(), 1);
        let v = feed(
            &mut t,
            from(),
            &["seq=1000 m", "seq=1000 m", "seq=2 b", "seq=18446744073709551614 y"],
        );
        assert_eq!(v, [Verdict::Late, Verdict::Duplicate, Verdict::Late, Verdict::Late]);
        assert_eq!(t.counts().lost, u64::MAX - 5);
        assert_eq!(t.streams[&from()].missing.len(), 2, "3..=999 and 1001..=2^64-3");
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
        assert_eq!(t.streams[&from()].missing.len(), MAX_GAPS);
        // seq=2 was forgotten as a gap: it now counts as a duplicate, and stays lost.
        assert_eq!(feed(&mut t, from(), &["seq=2 b"]), [Verdict::Duplicate]);
        assert_eq!(t.counts().lost, MAX_GAPS as u64 + 10);
    }

    #[test]
    fn the_parser_never_panics_on_random_bytes() {
        // A bounded property test (the fuzz target in fuzz/ goes further): 200 000
        // datagrams of random bytes, and of random mutations of a valid message.
        let mut rng = Feed::new(FeedKind::Quotes, 0x5eed);
        let valid = format(42, "abcd", "AAPL 1.00");
        let mut t = Tracker::default();
        for i in 0..200_000u64 {
            let len = (rng.next_random() % 64) as usize;
            let mut bytes: Vec<u8> = if i % 2 == 0 {
                (0..len).map(|_| rng.next_random() as u8).collect()
            } else {
                valid.clone().into_bytes()
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
                Err(_) => t.malformed(),
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
