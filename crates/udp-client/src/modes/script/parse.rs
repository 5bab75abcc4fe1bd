//! Reading a `--script` file: one step a line, checked whole before anything is sent, so a
//! typo on line 40 costs nothing on the wire. The grammar, one line each:
//!
//! ```text
//! # a comment (a line whose first non-blank character is #); blank lines are skipped
//! send TEXT                  the rest of the line, typed as -e/--escapes/-C/--checksum say
//! expect PATTERN             the next reply: exact, PREFIX* or /REGEX/ (the server's rules)
//! expect PATTERN within DUR  ... within DUR instead of --timeout
//! delay DUR                  wait (replies that arrive meanwhile are kept for an expect)
//! repeat N {                 the lines up to the matching } N times (N ≥ 1; nesting allowed)
//! }
//! ```
//!
//! `{seq}` (this send's number, from 1) and `{time}` (Unix time in milliseconds) in a send
//! or an expect are replaced when the step runs; in an expect they are the last send's.

use std::time::Duration;

use common::codec::Encoding;
use common::error::echo;
use common::{Error, Result};

use super::macros::{Template, Values};
use super::{Script, Step};
use crate::Typing;
use crate::expect::Expect;

/// Steps a script may run in all, its repeats multiplied out: a script always ends (a
/// million steps of a loopback exchange take about a minute), and a typo such as
/// `repeat 1000000000 {` is refused at once instead of running for a week.
pub const MAX_STEPS: u64 = 1_000_000;

/// How deeply `repeat` blocks may nest (the runner recurses once a level).
pub(crate) const MAX_DEPTH: usize = 32;

/// How the script's text becomes datagrams and patterns.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Reading {
    pub(crate) typing: Typing,
    pub(crate) encoding: Encoding,
}

/// An open `repeat N {`: its line, count and the steps read so far.
struct Block {
    line: usize,
    count: u64,
    steps: Vec<Step>,
}

/// Parses a whole script. `name` (the path, or `stdin`) starts every error: `NAME:LINE: why`.
pub(crate) fn parse(name: &str, text: &str, how: Reading) -> Result<Script> {
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let at = |line: usize, why: String| Error::Usage(format!("{name}:{line}: {why}"));
    let mut open: Vec<Block> = Vec::new();
    let mut top: Vec<Step> = Vec::new();
    for (i, raw) in text.lines().enumerate() {
        let line = i + 1;
        let words = raw.trim();
        if words.is_empty() || words.starts_with('#') {
            continue;
        }
        if words == "}" {
            let block = open
                .pop()
                .ok_or_else(|| at(line, "a } with no repeat N { to close".into()))?;
            let step = Step::Repeat {
                line: block.line,
                count: block.count,
                body: block.steps,
            };
            open.last_mut().map_or(&mut top, |b| &mut b.steps).push(step);
            continue;
        }
        if let Some(count) = repeat_header(words).map_err(|why| at(line, why))? {
            if open.len() == MAX_DEPTH {
                return Err(at(line, format!("repeat blocks nest at most {MAX_DEPTH} deep")));
            }
            open.push(Block {
                line,
                count,
                steps: Vec::new(),
            });
            continue;
        }
        let step = one_step(raw, line, how).map_err(|why| at(line, why))?;
        open.last_mut().map_or(&mut top, |b| &mut b.steps).push(step);
    }
    if let Some(block) = open.last() {
        return Err(at(block.line, "this repeat N { has no closing }".into()));
    }
    let total = count_steps(&top);
    if total == 0 {
        return Err(Error::Usage(format!(
            "{name}: no steps (a line is send TEXT, expect PATTERN, delay DUR or repeat N {{ … }})"
        )));
    }
    if total > MAX_STEPS {
        return Err(Error::Usage(format!(
            "{name}: {} steps with its repeats multiplied out; a script runs at most {MAX_STEPS}: use smaller counts",
            if total == u64::MAX {
                "too many".to_string()
            } else {
                total.to_string()
            }
        )));
    }
    Ok(Script {
        name: name.to_string(),
        steps: top,
        total,
    })
}

/// `repeat N {` gives `Some(N)`; any other line `None`.
fn repeat_header(words: &str) -> std::result::Result<Option<u64>, String> {
    let Some(rest) = keyword(words, "repeat") else {
        return Ok(None);
    };
    let example = "write repeat N { with N ≥ 1, the steps on the lines after it, and } alone on a line to end them";
    let count = rest.strip_suffix('{').map(str::trim).filter(|c| !c.is_empty());
    let Some(count) = count else {
        return Err(format!(
            "a repeat needs a count and {{ at the end of its line: {example}"
        ));
    };
    match count.parse::<u64>() {
        Ok(0) => Err(format!("repeat 0 runs nothing: {example}")),
        Ok(n) => Ok(Some(n)),
        Err(_) => Err(format!("'{}' is not a count: {example}", echo(count))),
    }
}

/// The text after `word` and a blank (or nothing after it), if the line starts with it.
fn keyword<'a>(line: &'a str, word: &str) -> Option<&'a str> {
    let rest = line.strip_prefix(word)?;
    if rest.is_empty() {
        return Some(rest);
    }
    rest.strip_prefix([' ', '\t'])
}

/// One `send`, `expect` or `delay` line (`raw`: as written, for the exact send text).
fn one_step(raw: &str, line: usize, how: Reading) -> std::result::Result<Step, String> {
    let words = raw.trim();
    if let Some(text) = keyword(raw.trim_start(), "send") {
        // Trailing blanks are invisible in an editor: they are not sent (with --escapes,
        // write \x20 for a space at the end).
        let text = text.trim_end();
        let template = Template::parse(text);
        // The datagram is framed now with sample values, so bad hex or a bad escape is
        // refused before anything is sent; a send with no macro is framed once for good.
        let sample = how
            .typing
            .frame(how.encoding, template.expand(Values::SAMPLE, how.encoding).as_bytes())
            .map_err(|e| e.to_string())?;
        let bytes = (!template.has_macros()).then_some(sample);
        return Ok(Step::Send { line, template, bytes });
    }
    if let Some(rest) = keyword(words, "expect") {
        let (pattern, within) = split_within(rest)?;
        if pattern.is_empty() {
            return Err("expect needs a PATTERN: exact text, PREFIX* or /REGEX/ (e.g. expect OK within 1s)".into());
        }
        let template = Template::parse(pattern);
        let sample = template.expand(Values::SAMPLE, how.encoding);
        let checked = Expect::parse(&sample, how.encoding, how.typing.escapes)?;
        let fixed = (!template.has_macros()).then_some(checked);
        return Ok(Step::Expect {
            line,
            template,
            fixed,
            within,
        });
    }
    if let Some(rest) = keyword(words, "delay") {
        let wait = common::duration::parse(rest).map_err(|e| e.to_string())?;
        return Ok(Step::Delay { line, wait });
    }
    let first = words.split_whitespace().next().unwrap_or(words);
    Err(format!(
        "unknown step '{}': a line is send TEXT, expect PATTERN [within DUR], delay DUR, repeat N {{, }} or a # comment",
        echo(first)
    ))
}

/// `PATTERN within DUR` → the pattern and the deadline; a pattern without one (or whose
/// last words are not `within` and a duration) is all pattern.
fn split_within(rest: &str) -> std::result::Result<(&str, Option<Duration>), String> {
    let rest = rest.trim();
    match rest.rsplit_once(" within ") {
        Some((pattern, dur)) if !dur.trim().is_empty() && !dur.trim().contains(' ') => {
            let within = common::duration::parse(dur).map_err(|e| format!("after 'within': {e}"))?;
            Ok((pattern.trim_end(), Some(within)))
        }
        _ => Ok((rest, None)),
    }
}

/// How many steps run in all, repeats multiplied out (saturating: a count that large is
/// refused anyway).
fn count_steps(steps: &[Step]) -> u64 {
    steps.iter().fold(0u64, |sum, step| {
        let n = match step {
            Step::Repeat { count, body, .. } => count.saturating_mul(count_steps(body)),
            _ => 1,
        };
        sum.saturating_add(n)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(text: &str) -> Result<Script> {
        parse(
            "t.script",
            text,
            Reading {
                typing: Typing::default(),
                encoding: Encoding::Utf8,
            },
        )
    }

    fn error(text: &str) -> String {
        let err = read(text).unwrap_err();
        assert_eq!(err.exit_code(), 2, "{err}");
        err.to_string()
    }

    #[test]
    fn every_kind_of_line_and_nested_repeats_count_their_steps() {
        let script = read(
            "# an AT session\n\nsend AT\nexpect OK within 500ms\n  repeat 3 {\n    send AT+READ={seq}\n    repeat 2 {\n      delay 10ms\n    }\n    expect /^\\+READ:\\d+$/\n  }\n",
        )
        .unwrap();
        // 2 + 3 × (1 + 2 + 1)
        assert_eq!(script.total, 14);
        assert_eq!(script.steps.len(), 3);
        match &script.steps[1] {
            Step::Expect {
                line, within, fixed, ..
            } => {
                assert_eq!((*line, *within), (4, Some(Duration::from_millis(500))));
                assert!(fixed.is_some(), "no macro: compiled once");
            }
            other => panic!("{other:?}"),
        }
        match &script.steps[2] {
            Step::Repeat { line, count, body } => assert_eq!((*line, *count, body.len()), (5, 3, 3)),
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn a_send_keeps_its_inner_spaces_and_drops_trailing_blanks() {
        let script = read("send  two  spaces \t\nsend\n").unwrap();
        match &script.steps[..] {
            [Step::Send { bytes: Some(a), .. }, Step::Send { bytes: Some(b), .. }] => {
                assert_eq!(a, b" two  spaces");
                assert!(b.is_empty(), "a bare send is a 0-byte datagram");
            }
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn bad_lines_name_the_file_and_the_line() {
        for (text, want) in [
            ("send a\nsned b\n", "t.script:2: unknown step 'sned'"),
            ("delay soon\n", "t.script:1: bad duration 'soon'"),
            ("expect\n", "t.script:1: expect needs a PATTERN"),
            ("expect /(/\n", "t.script:1: "),
            (
                "expect OK within ever\n",
                "t.script:1: after 'within': bad duration 'ever'",
            ),
            ("repeat {\n}\n", "t.script:1: a repeat needs a count"),
            ("repeat x {\n}\n", "t.script:1: 'x' is not a count"),
            ("repeat 0 {\n}\n", "t.script:1: repeat 0 runs nothing"),
            ("send a\n}\n", "t.script:2: a } with no repeat"),
            (
                "send a\nrepeat 2 {\nsend b\n",
                "t.script:2: this repeat N { has no closing }",
            ),
            ("# only a comment\n", "t.script: no steps"),
            (
                "repeat 1000 {\nrepeat 1001 {\nsend x\n}\n}\n",
                "t.script: 1001000 steps",
            ),
            (
                "repeat 18446744073709551615 {\nrepeat 18446744073709551615 {\nsend x\n}\n}\n",
                "t.script: too many steps",
            ),
        ] {
            let said = error(text);
            assert!(said.starts_with(want), "{text:?}: {said}");
        }
        let deep = "repeat 1 {\n".repeat(MAX_DEPTH + 1);
        assert!(error(&deep).contains(&format!("nest at most {MAX_DEPTH} deep")));
    }

    #[test]
    fn bad_hex_and_bad_escapes_are_refused_when_read() {
        let hex = Reading {
            typing: Typing::default(),
            encoding: Encoding::Hex,
        };
        let err = parse("m.script", "send 01 03 0g\n", hex).unwrap_err();
        assert!(err.to_string().starts_with("m.script:1: "), "{err}");
        let escapes = Reading {
            typing: Typing {
                escapes: true,
                ..Typing::default()
            },
            encoding: Encoding::Utf8,
        };
        let err = parse("m.script", "send ok\nsend AT\\q\n", escapes).unwrap_err();
        assert!(err.to_string().starts_with("m.script:2: bad escape"), "{err}");
    }

    #[test]
    fn the_last_within_is_the_deadline_and_any_other_is_pattern() {
        assert_eq!(
            split_within("OK within 2s").unwrap(),
            ("OK", Some(Duration::from_secs(2)))
        );
        assert_eq!(
            split_within("stay within bounds please").unwrap(),
            ("stay within bounds please", None)
        );
        assert_eq!(split_within("OK").unwrap(), ("OK", None));
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(3_000))]
        /// Any text, made of the grammar's own pieces or not, parses or is refused with
        /// a usage error naming the file (and a line when one is at fault): never a panic.
        #[test]
        fn any_text_parses_or_is_refused_with_its_line(
            lines in proptest::collection::vec(
                proptest::prop_oneof![
                    "(send|expect|delay|repeat) ?[ -~]{0,12}",
                    "repeat [0-9]{1,20} \\{",
                    proptest::strategy::Just("}".to_string()),
                    "[ -~\\t时\\x00]{0,16}",
                ],
                0..24,
            )
        ) {
            let text = lines.join("\n");
            for encoding in [Encoding::Utf8, Encoding::Hex, Encoding::Gbk] {
                let how = Reading { typing: Typing { escapes: true, crlf: true, checksum: None }, encoding };
                match parse("p.script", &text, how) {
                    Ok(script) => proptest::prop_assert!(script.total >= 1 && script.total <= MAX_STEPS),
                    Err(e) => {
                        proptest::prop_assert_eq!(e.exit_code(), 2);
                        proptest::prop_assert!(e.to_string().starts_with("p.script"), "{}", e);
                        proptest::prop_assert_eq!(e.to_string().lines().count(), 1, "{}", e);
                    }
                }
            }
        }
    }
}
