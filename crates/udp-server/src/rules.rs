//! `--rule 'MATCH=>REPLY'` and `--rules FILE`: a device to talk to before the device exists.
//!
//! MATCH is exact text (`PING`), a prefix (`READ*`) or a regular expression (`/^SET (\w+)=(\d+)$/`)
//! whose captures `$1`, `$2`… may appear in REPLY. The first rule that matches answers; no
//! match falls back to `--reply`. With `--encoding hex` both sides are hex, and a regular
//! expression matches the request written as hex (`01 03 00 00 00 0a`).
//!
//! The regex crate matches in time linear in the input, whatever the pattern: no request
//! can make a rule slow (there is no backtracking to exploit).

use std::borrow::Cow;
use std::path::Path;

use common::codec::{Encoding, parse_hex, to_hex};
use common::{Error, Result};
use regex::bytes::Regex;

/// How a rule recognises a request.
#[derive(Debug, Clone)]
enum Matcher {
    Exact(Vec<u8>),
    Prefix(Vec<u8>),
    Regex(Regex),
}

/// One `MATCH=>REPLY` rule.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The rule as written, to name it in logs, the JSON and the summary.
    pub text: String,
    matcher: Matcher,
    /// The reply as bytes, or (for a regular expression) a template with `$1`….
    reply: Vec<u8>,
    /// Hex mode: a regular expression matches, and its reply is written, as hex text.
    hex: bool,
}

/// The rules in order, and how many times each answered.
#[derive(Debug, Clone, Default)]
pub struct Rules {
    rules: Vec<Rule>,
}

impl Rule {
    /// Parses `MATCH=>REPLY` typed in `encoding` (with `--escapes` if `escapes`).
    ///
    /// # Errors
    /// [`Error::Usage`] naming the rule: no `=>`, an empty MATCH, a bad regular expression,
    /// bad hex or a bad escape.
    ///
    /// # Examples
    /// ```
    /// use common::codec::Encoding;
    /// use udp_server::rules::Rule;
    /// let rule = Rule::parse("/^SET (\\w+)=(\\d+)$/=>OK $1", Encoding::Utf8, false).unwrap();
    /// assert_eq!(rule.answer(b"SET temp=23").unwrap().as_ref(), b"OK temp");
    /// assert!(rule.answer(b"GET temp").is_none());
    /// ```
    pub fn parse(text: &str, encoding: Encoding, escapes: bool) -> Result<Rule> {
        let bad = |why: String| {
            Error::Usage(format!(
                "bad rule '{text}': {why} (e.g. 'PING=>PONG', 'READ*=>OK', '/^SET (\\w+)/=>OK $1')"
            ))
        };
        let (pattern, reply) = text
            .split_once("=>")
            .ok_or_else(|| bad("no '=>' between MATCH and REPLY".into()))?;
        if pattern.is_empty() {
            return Err(bad("MATCH is empty".into()));
        }
        let hex = encoding == Encoding::Hex;
        let typed = |t: &str| encoding.encode_typed(t, escapes).map_err(|e| bad(e.to_string()));
        let matcher = match pattern.strip_prefix('/').and_then(|p| p.strip_suffix('/')) {
            Some(re) => Matcher::Regex(Regex::new(re).map_err(|e| bad(first_line(&e.to_string())))?),
            None => match pattern.strip_suffix('*') {
                Some(prefix) => Matcher::Prefix(typed(prefix)?),
                None => Matcher::Exact(typed(pattern)?),
            },
        };
        let reply = match (&matcher, hex) {
            // A hex template: `$1` is expanded into the hex text first, then parsed.
            (Matcher::Regex(_), true) => reply.as_bytes().to_vec(),
            _ => typed(reply)?,
        };
        Ok(Rule {
            text: text.to_string(),
            matcher,
            reply,
            hex,
        })
    }

    /// The reply to `request` if this rule matches it.
    pub fn answer(&self, request: &[u8]) -> Option<Cow<'_, [u8]>> {
        match &self.matcher {
            Matcher::Exact(m) => (request == m.as_slice()).then_some(Cow::Borrowed(self.reply.as_slice())),
            Matcher::Prefix(p) => request.starts_with(p).then_some(Cow::Borrowed(self.reply.as_slice())),
            Matcher::Regex(re) => {
                let hex_text;
                let subject: &[u8] = if self.hex {
                    hex_text = to_hex(request);
                    hex_text.as_bytes()
                } else {
                    request
                };
                let caps = re.captures(subject)?;
                let mut out = Vec::new();
                caps.expand(&self.reply, &mut out);
                if self.hex {
                    // A reply that is not hex once expanded is no reply (logged at debug).
                    return parse_hex(&String::from_utf8_lossy(&out))
                        .map_err(|e| log::debug!("rule '{}': {e}", self.text))
                        .ok()
                        .map(Cow::Owned);
                }
                Some(Cow::Owned(out))
            }
        }
    }

    /// For an exact MATCH, the request's length: a reply longer than `ratio` times it is
    /// known to be cut before anything arrives.
    pub fn exact_len(&self) -> Option<usize> {
        match &self.matcher {
            Matcher::Exact(m) => Some(m.len()),
            _ => None,
        }
    }

    /// The reply's length as written (a template's, for a regular expression).
    pub fn reply_len(&self) -> usize {
        self.reply.len()
    }
}

impl Rules {
    /// The rules given with `--rule` (in order), then those in `--rules` files.
    ///
    /// # Errors
    /// [`Error::Usage`] naming the bad rule (and for a file, its path and line).
    pub fn parse(inline: &[String], files: &[std::path::PathBuf], encoding: Encoding, escapes: bool) -> Result<Rules> {
        let mut rules = Vec::new();
        for text in inline {
            rules.push(Rule::parse(text, encoding, escapes)?);
        }
        for path in files {
            rules.extend(read_file(path, encoding, escapes)?);
        }
        Ok(Rules { rules })
    }

    /// Whether there are none.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The first rule that matches `request`: its index and its reply.
    pub fn answer(&self, request: &[u8]) -> Option<(usize, Cow<'_, [u8]>)> {
        self.rules
            .iter()
            .enumerate()
            .find_map(|(i, r)| r.answer(request).map(|reply| (i, reply)))
    }

    /// The rules, in order.
    pub fn iter(&self) -> impl Iterator<Item = &Rule> {
        self.rules.iter()
    }
}

/// One rule a line; blank lines and lines starting with `#` are skipped.
fn read_file(path: &Path, encoding: Encoding, escapes: bool) -> Result<Vec<Rule>> {
    let text = std::fs::read_to_string(path).map_err(|e| {
        Error::Usage(format!(
            "cannot read --rules {}: {}",
            path.display(),
            common::error::describe(&e)
        ))
    })?;
    let mut rules = Vec::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() || line.starts_with('#') {
            continue;
        }
        let rule = Rule::parse(line, encoding, escapes)
            .map_err(|e| Error::Usage(format!("{} line {}: {e}", path.display(), n + 1)))?;
        rules.push(rule);
    }
    Ok(rules)
}

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

    fn rules(texts: &[&str], encoding: Encoding) -> Rules {
        let texts: Vec<String> = texts.iter().map(|t| t.to_string()).collect();
        Rules::parse(&texts, &[], encoding, true).unwrap()
    }

    #[test]
    fn exact_prefix_and_regex_with_captures_and_the_first_match_wins() {
        let r = rules(
            &[
                "PING=>PONG",
                "READ*=>TEMP=23.5",
                "/^SET (\\w+)=(\\d+)$/=>OK $1 is $2",
                "READ TEMP=>never",
            ],
            Encoding::Utf8,
        );
        let answer = |req: &[u8]| r.answer(req).map(|(i, a)| (i, a.into_owned()));
        assert_eq!(answer(b"PING"), Some((0, b"PONG".to_vec())));
        assert_eq!(answer(b"PING!"), None);
        assert_eq!(
            answer(b"READ TEMP"),
            Some((1, b"TEMP=23.5".to_vec())),
            "the first match wins"
        );
        assert_eq!(answer(b"SET fan=3"), Some((2, b"OK fan is 3".to_vec())));
        assert_eq!(answer(b"hello"), None);
    }

    #[test]
    fn hex_rules_match_bytes_and_a_hex_regex_matches_the_hex_text() {
        let r = rules(
            &[
                "01 03 00 00 00 0a=>01 03 02 00 17",
                "/^01 06 (.. ..) (.. ..)$/=>01 06 $1 $2",
            ],
            Encoding::Hex,
        );
        assert_eq!(r.answer(&[1, 3, 0, 0, 0, 0x0a]).unwrap().1.as_ref(), [1, 3, 2, 0, 0x17]);
        assert_eq!(r.answer(&[1, 6, 0, 1, 0, 3]).unwrap().1.as_ref(), [1, 6, 0, 1, 0, 3]);
    }

    #[test]
    fn escapes_apply_to_replies() {
        let r = rules(&["AT=>OK\\r\\n"], Encoding::Utf8);
        assert_eq!(r.answer(b"AT").unwrap().1.as_ref(), b"OK\r\n");
    }

    #[test]
    fn a_bad_rule_is_a_usage_error_naming_it_and_its_line() {
        for (text, why) in [
            ("PING", "no '=>'"),
            ("=>PONG", "MATCH is empty"),
            ("/(unbalanced/=>x", "bad rule '/(unbalanced/=>x'"),
        ] {
            let err = Rule::parse(text, Encoding::Utf8, false).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(
                err.to_string().contains(&format!("bad rule '{text}'")) && err.to_string().contains(why),
                "{err}"
            );
        }
        let path = std::env::temp_dir().join(format!("udp-rules-{}.rules", std::process::id()));
        std::fs::write(&path, "# a sensor\nPING=>PONG\n\nbroken line\n").unwrap();
        let err = Rules::parse(&[], std::slice::from_ref(&path), Encoding::Utf8, false).unwrap_err();
        std::fs::remove_file(&path).unwrap();
        assert!(
            err.to_string()
                .contains(&format!("{} line 4: bad rule 'broken line'", path.display())),
            "{err}"
        );
    }

    /// A pattern that would take exponential time in a backtracking engine, against an
    /// input built to trigger it: the regex crate matches in linear time, so this completes
    /// (the test measures nothing: it would hang otherwise).
    #[test]
    fn a_pathological_pattern_cannot_make_matching_slow() {
        let r = rules(&["/^(a+)+$/=>matched"], Encoding::Utf8);
        let mut request = vec![b'a'; 50_000];
        request.push(b'!');
        assert!(r.answer(&request).is_none());
        assert!(r.answer(&request[..50_000]).is_some());
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(5_000))]
        /// Any rule text parses or is one usage error; any request through any rule is safe.
        #[test]
        fn random_rules_and_requests_never_panic(text in "[a-zA-Z0-9 /*$=>()\\\\.+?^\\[\\]{}时-]{0,30}", request in proptest::collection::vec(proptest::num::u8::ANY, 0..64)) {
            for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
                match Rule::parse(&text, enc, true) {
                    Ok(rule) => { let _ = rule.answer(&request); }
                    Err(e) => proptest::prop_assert_eq!(e.exit_code(), 2),
                }
            }
        }
    }
}
