//! `--expect PATTERN` and a script's `expect`: what a reply must look like, with the very
//! matcher the server's `--rule` uses (`common::pattern`): exact text, `PREFIX*` or
//! `/REGEX/`, typed as `-e`/`--escapes` say; with `-e hex` a regular expression reads the
//! reply as hex text (`/^01 03 02/`).
//!
//! With `--checksum`, the check bytes are checked first (wrong ones fail the reply however
//! the rest reads), and the pattern is matched against the reply **without** them, as the
//! server's rules match requests: write `01 03 02 00 17`, not `… f8 4a`.

use common::checksum::Checksum;
use common::codec::Encoding;
use common::error::echo;
use common::pattern::Pattern;

/// What a reply must look like.
#[derive(Debug, Clone)]
pub struct Expect {
    pattern: Pattern,
    /// How a reply that fails is shown in the verdict.
    encoding: Encoding,
}

impl PartialEq for Expect {
    /// Two are the same when written the same way for the same encoding (a compiled regex
    /// cannot be compared).
    fn eq(&self, other: &Self) -> bool {
        self.pattern.text() == other.pattern.text() && self.encoding == other.encoding
    }
}

/// What an expectation said of one reply.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// It matched (and its check bytes, if any, were right).
    Ok,
    /// It did not: what arrived against what was expected, shortened.
    Failed(String),
}

impl Verdict {
    /// Whether the reply passed.
    pub fn is_ok(&self) -> bool {
        matches!(self, Verdict::Ok)
    }

    /// As `common::output` shows it: `Ok(())`, or why not.
    pub(crate) fn shown(&self) -> Result<(), &str> {
        match self {
            Verdict::Ok => Ok(()),
            Verdict::Failed(why) => Err(why),
        }
    }
}

/// How much of a reply a failed verdict repeats: enough to recognise it on one line.
const SHOWN: usize = 40;

impl Expect {
    /// Parses PATTERN typed in `encoding` (with `--escapes` if `escapes`).
    ///
    /// # Errors
    /// Why the pattern is refused, as one line naming it.
    ///
    /// # Examples
    /// ```
    /// use common::codec::Encoding;
    /// use udp_client::expect::{Expect, Verdict};
    /// let ok = Expect::parse("TEMP=*", Encoding::Utf8, false).unwrap();
    /// assert_eq!(ok.judge(b"TEMP=23.5", None), Verdict::Ok);
    /// assert_eq!(
    ///     ok.judge(b"ERROR", None),
    ///     Verdict::Failed("got \"ERROR\", want TEMP=*".into())
    /// );
    /// ```
    pub fn parse(text: &str, encoding: Encoding, escapes: bool) -> Result<Expect, String> {
        let pattern = Pattern::parse_why(text, encoding, escapes).map_err(|why| {
            format!(
                "bad pattern '{}': {} (e.g. OK, TEMP=*, /^OK \\d+$/)",
                echo(text),
                echo(&why)
            )
        })?;
        Ok(Expect { pattern, encoding })
    }

    /// The pattern as written.
    pub fn text(&self) -> &str {
        self.pattern.text()
    }

    /// Whether `reply` is what was expected; with `checksum`, its check bytes must be right
    /// and the pattern reads the reply without them.
    pub fn judge(&self, reply: &[u8], checksum: Option<Checksum>) -> Verdict {
        let body = match checksum {
            Some(c) if !c.check(reply).is_ok() => {
                return Verdict::Failed(format!("its check bytes are wrong ({})", c.check(reply).to_text()));
            }
            Some(c) => &reply[..reply.len().saturating_sub(c.size())],
            None => reply,
        };
        if self.pattern.matches(body) {
            Verdict::Ok
        } else {
            Verdict::Failed(format!(
                "got {}, want {}",
                self.shorten(body),
                echo(self.pattern.text())
            ))
        }
    }

    /// `"ERROR\r\n"`, or the first [`SHOWN`] characters and its length.
    fn shorten(&self, bytes: &[u8]) -> String {
        let text = self.encoding.render(bytes);
        if text.chars().count() <= SHOWN {
            format!("\"{text}\"")
        } else {
            let start: String = text.chars().take(SHOWN).collect();
            format!("\"{start}…\" ({} B)", bytes.len())
        }
    }
}

/// How many replies passed and failed (`--repeat` with `--expect`).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Tally {
    /// Replies that matched.
    pub matched: u64,
    /// Replies that did not, or whose check bytes were wrong.
    pub failed: u64,
}

impl Tally {
    /// Counts one verdict.
    pub(crate) fn add(&mut self, verdict: &Verdict) {
        if verdict.is_ok() {
            self.matched += 1;
        } else {
            self.failed += 1;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hex_patterns_read_the_reply_without_its_check_bytes() {
        let crc = Some(Checksum::Crc16Modbus);
        let reply = Checksum::Crc16Modbus.append(vec![0x01, 0x03, 0x02, 0x00, 0x17]);
        let exact = Expect::parse("01 03 02 00 17", Encoding::Hex, false).unwrap();
        assert_eq!(exact.judge(&reply, crc), Verdict::Ok);
        let regex = Expect::parse("/^01 03 02 (.. ..)$/", Encoding::Hex, false).unwrap();
        assert_eq!(regex.judge(&reply, crc), Verdict::Ok);
        // Without --checksum the CRC is part of the reply, and an exact pattern misses it.
        assert!(!exact.judge(&reply, None).is_ok());
        let mut bad = reply.clone();
        bad[6] ^= 0xff;
        match exact.judge(&bad, crc) {
            Verdict::Failed(why) => assert!(why.starts_with("its check bytes are wrong (checksum BAD"), "{why}"),
            Verdict::Ok => panic!("a wrong CRC passed"),
        }
    }

    #[test]
    fn a_failed_verdict_shows_a_long_reply_shortened() {
        let e = Expect::parse("OK", Encoding::Utf8, false).unwrap();
        let long = vec![b'x'; 500];
        match e.judge(&long, None) {
            Verdict::Failed(why) => assert_eq!(why, format!("got \"{}…\" (500 B), want OK", "x".repeat(SHOWN))),
            Verdict::Ok => panic!(),
        }
        assert!(
            Expect::parse("/(/", Encoding::Utf8, false)
                .unwrap_err()
                .starts_with("bad pattern '/(/'")
        );
        assert!(Expect::parse("", Encoding::Utf8, false).is_err());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(2_000))]
        /// Any pattern text is parsed or refused in one line, and any reply judged: no panic.
        #[test]
        fn any_pattern_and_any_reply_never_panic(
            text in "[ -~时\\\\/*]{0,24}",
            reply in proptest::collection::vec(proptest::num::u8::ANY, 0..64),
        ) {
            for encoding in [Encoding::Utf8, Encoding::Hex, Encoding::Gbk] {
                match Expect::parse(&text, encoding, true) {
                    Ok(e) => {
                        let _ = e.judge(&reply, None);
                        let _ = e.judge(&reply, Some(Checksum::Crc32));
                    }
                    Err(why) => proptest::prop_assert_eq!(why.lines().count(), 1),
                }
            }
        }
    }
}
