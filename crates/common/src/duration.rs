//! Durations as people type them: `500ms`, `2s`, `1m`; a bare number is seconds.
//!
//! Every duration has one upper bound, [`MAX`] (a year): a timeout, delay or interval longer
//! than that is a typing slip, and refusing it here means `Instant::now() + d` can never
//! overflow anywhere else (it used to panic on `--delay 9223372036854775807s`).

use std::time::{Duration, Instant};

use crate::{Error, Result};

/// The longest duration any flag accepts: 365 days. Long enough for any interval a person
/// means, short enough that adding it to "now" cannot overflow on any OS.
pub const MAX: Duration = Duration::from_secs(365 * 24 * 3600);

/// `now + d`, or `None` if that is past what an `Instant` can hold. Durations from [`parse`]
/// never overflow; this is for sums of them (a delay's range, a deadline after a deadline).
pub fn after(now: Instant, d: Duration) -> Option<Instant> {
    now.checked_add(d)
}

/// Parses `250us`, `500ms`, `2s`, `1.5s`, `1m`, `1h`, or a bare number of seconds.
///
/// # Errors
/// [`Error::Usage`] naming the value when it is not a non-negative number with a known
/// unit, or when it is longer than [`MAX`] (a year).
///
/// # Examples
/// ```
/// use common::duration::parse;
/// use std::time::Duration;
/// assert_eq!(parse("500ms").unwrap(), Duration::from_millis(500));
/// assert_eq!(parse("2").unwrap(), Duration::from_secs(2));
/// assert_eq!(parse("1m").unwrap(), Duration::from_secs(60));
/// ```
pub fn parse(text: &str) -> Result<Duration> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let seconds_per_unit = match unit.trim() {
        "" | "s" | "sec" => 1.0,
        "ms" => 1e-3,
        "us" | "µs" => 1e-6,
        "m" | "min" => 60.0,
        "h" => 3600.0,
        _ => return Err(bad(text)),
    };
    let value: f64 = number.parse().map_err(|_| bad(text))?;
    let d = Duration::try_from_secs_f64(value * seconds_per_unit).map_err(|_| bad(text))?;
    if d > MAX {
        return Err(Error::Usage(format!(
            "duration '{}' is too long: the most is 365 days (8760h); use a shorter one",
            crate::error::echo(text)
        )));
    }
    Ok(d)
}

/// `--timeout 500` means 500 seconds, since a bare number is seconds; a value past
/// `longest` was most likely meant as milliseconds, and a warning says so. `args` is the
/// command line as typed (`--timeout 500` or `--timeout=500`).
pub fn warn_if_bare_and_long(args: &[String], flags: &[&str], longest: Duration) {
    for (i, arg) in args.iter().enumerate() {
        let value = match arg.split_once('=') {
            Some((flag, value)) if flags.contains(&flag) => value,
            None if flags.contains(&arg.as_str()) => match args.get(i + 1) {
                Some(value) => value.as_str(),
                None => continue,
            },
            _ => continue,
        };
        if let Ok(seconds) = value.trim().parse::<f64>() {
            if seconds > longest.as_secs_f64() {
                log::warn!(
                    "{arg} {value} means {value} seconds (a bare number is seconds); for milliseconds write {value}ms",
                    arg = arg.split_once('=').map_or(arg.as_str(), |(flag, _)| flag)
                );
            }
        }
    }
}

/// A duration the way people read it: `250us`, `1.5ms`, `2s`.
pub fn display(d: Duration) -> String {
    let micros = d.as_micros();
    if micros < 1000 {
        format!("{micros}us")
    } else if micros < 1_000_000 {
        format!("{}ms", trim_float(d.as_secs_f64() * 1e3))
    } else {
        format!("{}s", trim_float(d.as_secs_f64()))
    }
}

fn trim_float(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn bad(text: &str) -> Error {
    Error::Usage(format!(
        "bad duration '{}': use a number with ms, s or m (e.g. 500ms, 2s, 1m; a bare number is seconds)",
        crate::error::echo(text)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_every_unit() {
        assert_eq!(parse("0").unwrap(), Duration::ZERO);
        assert_eq!(parse("250us").unwrap(), Duration::from_micros(250));
        assert_eq!(parse("5ms").unwrap(), Duration::from_millis(5));
        assert_eq!(parse("1.5s").unwrap(), Duration::from_millis(1500));
        assert_eq!(parse("2m").unwrap(), Duration::from_secs(120));
        assert_eq!(parse("1h").unwrap(), Duration::from_secs(3600));
        assert_eq!(parse("0.1").unwrap(), Duration::from_millis(100));
    }

    #[test]
    fn rejects_nonsense_naming_it() {
        for text in ["", "s", "-1s", "1.2.3", "5 parsecs", "1e999", "NaN", "inf"] {
            let err = parse(text).unwrap_err();
            assert!(err.to_string().starts_with(&format!("bad duration '{text}'")), "{err}");
        }
    }

    /// `Instant::now() + d` panicked ("overflow when adding duration to instant") for
    /// `--delay 9223372036854775807s`: such a value is now a usage error at parse time.
    #[test]
    fn durations_past_a_year_are_usage_errors() {
        assert_eq!(parse("365d").unwrap_err().exit_code(), 2, "no unit d");
        assert_eq!(parse("8760h").unwrap(), MAX);
        for text in ["8761h", "9223372036854775807s", "9223372036854775807", "1e30"] {
            let err = parse(text).unwrap_err();
            assert_eq!(err.exit_code(), 2, "{text}");
            assert!(
                err.to_string().contains("too long") || err.to_string().starts_with("bad duration"),
                "{err}"
            );
        }
        assert!(
            parse("9223372036854775807s")
                .unwrap_err()
                .to_string()
                .contains("too long")
        );
        // The bound itself can be added to now.
        assert!(after(Instant::now(), parse("8760h").unwrap()).is_some());
    }

    #[test]
    fn displays_readably() {
        assert_eq!(display(Duration::from_micros(250)), "250us");
        assert_eq!(display(Duration::from_micros(1500)), "1.5ms");
        assert_eq!(display(Duration::from_secs(2)), "2s");
    }
}
