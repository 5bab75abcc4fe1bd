//! What a payload should look like: exact text (`PONG`), a prefix (`TEMP=*`) or a regular
//! expression (`/^OK (\d+)$/`). The server's `--rule MATCH=>REPLY` and the client's
//! `--expect` read the same syntax, so a rule written for the simulator checks the device.
//!
//! A pattern is typed as the payload is (`-e utf8|gbk|hex`, `--escapes`): with `-e hex`
//! exact and prefix patterns are hex bytes (`01 03*`), and a regular expression matches the
//! payload written as hex text (`01 03 00 0a`: two lower-case digits a byte, one space
//! between), so `/^01 03 (.. ..)/` reads like the bytes.
//!
//! The regex crate matches in time linear in the input, whatever the pattern (there is no
//! backtracking to exploit), but linear is per NFA state: `/[a-z]{800}q/` tracks 800 states
//! per byte. So a pattern may compile to at most [`REGEX_SIZE_LIMIT`] bytes, and a regular
//! expression looks only at payloads up to [`REGEX_MAX_INPUT`] bytes (longer ones never
//! match it).

use std::borrow::Cow;

use regex::bytes::{CaptureLocations, Regex, RegexBuilder};

use crate::codec::{Encoding, to_hex};
use crate::error::echo;
use crate::{Error, Result};

/// The most memory one compiled regular expression may take. Enough for device protocols
/// (`^SET (\w+)=(\d+)$` takes 30 KB: a Unicode `\w` is large), not for `\w{500}`.
pub const REGEX_SIZE_LIMIT: usize = 64 * 1024;

/// Payloads longer than this (as matched: the hex text with `-e hex`, 85 bytes) never match
/// a regular expression, so a 65 KB datagram costs a regex no more than a 256-byte one: a
/// few ms for the worst pattern accepted (`/(?:a*){900}q/`: 4.8–6.6 ms per request,
/// `/[a-z]{255}q/`: 0.4–0.7 ms; release build, 2-core machine), microseconds for a device
/// pattern. At 512 bytes the same pattern cost 9.8–14 ms; before any bound, `/\w{500}q/`
/// took 1.5 s per 65 KB request.
pub const REGEX_MAX_INPUT: usize = 256;

/// How a pattern recognises a payload.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
    Regex(Regex),
}

/// One pattern: `exact`, `PREFIX*` or `/REGEX/`.
#[derive(Debug, Clone)]
pub struct Pattern {
    /// The pattern as written, for logs and error messages.
    text: String,
    matcher: Matcher,
    /// Hex mode: a regular expression matches the payload as hex text.
    hex: bool,
}

/// A payload a pattern matched, and (for a regular expression) its capture groups.
#[derive(Debug)]
pub struct Found<'a> {
    /// What the regular expression read: the payload, or its hex text.
    subject: Cow<'a, [u8]>,
    /// The groups' positions in `subject` (none for exact and prefix patterns).
    groups: Option<(CaptureLocations, &'a Regex)>,
}

impl Found<'_> {
    /// Group `i` as it appeared in what was matched (group 0: the whole match). `None` for
    /// a group that did not take part, or an exact or prefix pattern.
    pub fn group(&self, i: usize) -> Option<&[u8]> {
        let (locs, _) = self.groups.as_ref()?;
        let (start, end) = locs.get(i)?;
        self.subject.get(start..end)
    }

    /// The group named `name` (`(?<name>…)`).
    pub fn name(&self, name: &str) -> Option<&[u8]> {
        let (_, re) = self.groups.as_ref()?;
        let i = re.capture_names().position(|n| n == Some(name))?;
        self.group(i)
    }
}

impl Pattern {
    /// Parses a pattern typed in `encoding` (with `--escapes` if `escapes`).
    ///
    /// # Errors
    /// [`Error::Usage`] naming the pattern: empty, a bad regular expression (or one too
    /// large), bad hex or a bad escape.
    ///
    /// # Examples
    /// ```
    /// use common::codec::Encoding;
    /// use common::pattern::Pattern;
    /// let p = Pattern::parse("/^OK (\\d+)$/", Encoding::Utf8, false).unwrap();
    /// assert_eq!(p.find(b"OK 23").unwrap().group(1), Some(&b"23"[..]));
    /// assert!(!p.matches(b"ERROR"));
    /// let hex = Pattern::parse("/^01 03/", Encoding::Hex, false).unwrap();
    /// assert!(hex.matches(&[0x01, 0x03, 0x02]));
    /// ```
    pub fn parse(text: &str, encoding: Encoding, escapes: bool) -> Result<Pattern> {
        Pattern::parse_why(text, encoding, escapes).map_err(|why| {
            Error::Usage(format!(
                "bad pattern '{}': {} (e.g. 'OK', 'TEMP=*', '/^OK \\d+$/')",
                echo(text),
                echo(&why)
            ))
        })
    }

    /// Like [`Pattern::parse`], but the error is only why (one line, not yet escaped), for
    /// a caller that names the pattern in its own words (`bad rule '…'`, `bad --expect …`).
    ///
    /// # Errors
    /// Why the pattern is refused.
    pub fn parse_why(text: &str, encoding: Encoding, escapes: bool) -> std::result::Result<Pattern, String> {
        if text.is_empty() {
            return Err("the pattern is empty".into());
        }
        let typed = |t: &str| encoding.encode_typed(t, escapes).map_err(|e| e.to_string());
        let matcher = match text.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
            Some(re) => Matcher::Regex(compile(re)?),
            None => match text.strip_suffix('*') {
                Some(prefix) => Matcher::Prefix(typed(prefix)?),
                None => Matcher::Exact(typed(text)?),
            },
        };
        Ok(Pattern {
            text: text.to_string(),
            matcher,
            hex: encoding == Encoding::Hex,
        })
    }

    /// The pattern as written, for logs.
    pub fn text(&self) -> &str {
        &self.text
    }

    /// Whether `payload` matches.
    pub fn matches(&self, payload: &[u8]) -> bool {
        self.find(payload).is_some()
    }

    /// `payload` if it matches, with the capture groups of a regular expression.
    pub fn find<'a>(&'a self, payload: &'a [u8]) -> Option<Found<'a>> {
        match &self.matcher {
            Matcher::Exact(m) => (payload == m.as_slice()).then_some(Found {
                subject: Cow::Borrowed(payload),
                groups: None,
            }),
            Matcher::Prefix(p) => payload.starts_with(p).then_some(Found {
                subject: Cow::Borrowed(payload),
                groups: None,
            }),
            Matcher::Regex(re) => {
                // The length check comes first: 65 KB of hex text is not built to be skipped.
                // Hex text is 3 characters a byte ("01 "), less the last space.
                let len = if self.hex {
                    (payload.len().saturating_mul(3)).saturating_sub(1)
                } else {
                    payload.len()
                };
                if len > REGEX_MAX_INPUT {
                    return None;
                }
                let subject: Cow<'a, [u8]> = if self.hex {
                    Cow::Owned(to_hex(payload).into_bytes())
                } else {
                    Cow::Borrowed(payload)
                };
                let mut locs = re.capture_locations();
                re.captures_read(&mut locs, &subject)?;
                Some(Found {
                    subject,
                    groups: Some((locs, re)),
                })
            }
        }
    }

    /// For an exact pattern, the payload it matches.
    pub fn exact(&self) -> Option<&[u8]> {
        match &self.matcher {
            Matcher::Exact(m) => Some(m),
            _ => None,
        }
    }

    /// Whether this is a regular expression (whose captures a reply template may use).
    pub fn is_regex(&self) -> bool {
        matches!(self.matcher, Matcher::Regex(_))
    }
}

/// A regular expression within [`REGEX_SIZE_LIMIT`], or why not.
fn compile(pattern: &str) -> std::result::Result<Regex, String> {
    RegexBuilder::new(pattern)
        .size_limit(REGEX_SIZE_LIMIT)
        .build()
        .map_err(|e| match e {
            regex::Error::CompiledTooBig(_) => format!(
                "the regular expression is too large (over {} KB compiled): use fewer repetitions, or [a-zA-Z0-9_] for \\w",
                REGEX_SIZE_LIMIT / 1024
            ),
            other => first_line(&other.to_string()),
        })
}

/// The regex crate's errors are several lines (the pattern, a caret, the reason): the reason.
fn first_line(text: &str) -> String {
    text.lines()
        .rfind(|l| !l.trim().is_empty())
        .unwrap_or(text)
        .trim()
        .to_string()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(text: &str, encoding: Encoding) -> Pattern {
        Pattern::parse(text, encoding, true).unwrap()
    }

    #[test]
    fn exact_prefix_and_regex() {
        assert!(p("PONG", Encoding::Utf8).matches(b"PONG"));
        assert!(!p("PONG", Encoding::Utf8).matches(b"PONG!"));
        assert!(p("TEMP=*", Encoding::Utf8).matches(b"TEMP=23"));
        assert!(!p("TEMP=*", Encoding::Utf8).matches(b"HUM=40"));
        assert!(p("OK\\r\\n", Encoding::Utf8).matches(b"OK\r\n"), "escapes apply");
        let re = p("/^(?<k>\\w+)=(\\d+)$/", Encoding::Utf8);
        let found = re.find(b"temp=23").unwrap();
        assert_eq!(found.group(0), Some(&b"temp=23"[..]));
        assert_eq!(found.group(2), Some(&b"23"[..]));
        assert_eq!(found.name("k"), Some(&b"temp"[..]));
        assert_eq!(found.group(3), None);
        assert_eq!(re.text(), "/^(?<k>\\w+)=(\\d+)$/");
    }

    #[test]
    fn hex_patterns_are_bytes_and_a_hex_regex_reads_the_hex_text() {
        assert!(p("01 03 00 0a", Encoding::Hex).matches(&[1, 3, 0, 0x0a]));
        assert!(p("01 03*", Encoding::Hex).matches(&[1, 3, 9]));
        let re = p("/^01 03 (.. ..)$/", Encoding::Hex);
        assert_eq!(re.find(&[1, 3, 0, 0x0a]).unwrap().group(1), Some(&b"00 0a"[..]));
        assert!(p("/^$/", Encoding::Hex).matches(b""));
    }

    #[test]
    fn errors_are_one_usage_line_naming_the_pattern() {
        for (text, why) in [
            ("", "the pattern is empty"),
            ("/(unbalanced/", "bad pattern '/(unbalanced/'"),
            ("zz", "bad pattern 'zz'"),
            ("/\\w{500}q/", "too large (over 64 KB compiled)"),
        ] {
            let err = Pattern::parse(text, Encoding::Hex, false).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            let line = err.to_string();
            assert!(line.contains(why) && !line.contains('\n'), "{line}");
        }
    }

    /// `/\w{500}q/` compiled to 10 MB and took 713 ms per 65 KB request; now it is refused,
    /// and a regex never looks at more than REGEX_MAX_INPUT bytes.
    #[test]
    fn a_regex_reads_at_most_regex_max_input_bytes() {
        let re = p("/^a+$/", Encoding::Utf8);
        assert!(re.matches(&vec![b'a'; REGEX_MAX_INPUT]));
        assert!(!re.matches(&vec![b'a'; REGEX_MAX_INPUT + 1]));
        // Hex text: 3 characters a byte, less the last space.
        let n = (REGEX_MAX_INPUT + 1) / 3;
        let re = p("/^(..)/", Encoding::Hex);
        assert!(re.matches(&vec![1; n]) && !re.matches(&vec![1; n + 1]));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3_000))]
        /// Any text parses or is one usage error; any payload through any pattern is safe,
        /// and an exact pattern matches what it says.
        #[test]
        fn random_patterns_and_payloads_never_panic(text in "[a-zA-Z0-9 /*$()\\\\.+?^\\[\\]{}时-]{0,30}", payload in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
                match Pattern::parse(&text, enc, true) {
                    Ok(pattern) => {
                        let _ = pattern.find(&payload);
                        if let Some(bytes) = pattern.exact() {
                            proptest::prop_assert!(pattern.matches(bytes));
                        }
                    }
                    Err(e) => proptest::prop_assert_eq!(e.exit_code(), 2),
                }
            }
        }
    }
}
