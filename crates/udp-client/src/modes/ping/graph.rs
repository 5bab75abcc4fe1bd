//! `--graph`: one bar per reply, drawn live on a terminal, prettyping-style, so a spike or
//! a burst of loss is seen at a glance. The scale is fixed and logarithmic (each step about
//! three times the last), so a bar means the same thing all run long; a lost request is
//! a `✗`. Colour only where the terminal supports it and `NO_COLOR` is unset.

use std::io::IsTerminal;
use std::time::Duration;

/// Upper bounds (ms) of the bars, fastest first.
const LEVELS: [(f64, char); 8] = [
    (0.1, '▁'),
    (0.3, '▂'),
    (1.0, '▃'),
    (3.0, '▄'),
    (10.0, '▅'),
    (30.0, '▆'),
    (100.0, '▇'),
    (f64::INFINITY, '█'),
];
/// Bars per line.
const WIDTH: usize = 60;
const LOST: char = '✗';

/// The graph being drawn.
#[derive(Debug)]
pub(crate) struct Graph {
    colour: bool,
    column: usize,
}

impl Graph {
    /// A graph when `--graph` is asked for and stdout is a terminal; otherwise `None`, and
    /// off a terminal a note says why the output is plain.
    pub(crate) fn start(asked: bool) -> Option<Graph> {
        if !asked {
            return None;
        }
        if !std::io::stdout().is_terminal() {
            log::info!("--graph draws on a terminal; stdout is not one, so here is one line per reply");
            return None;
        }
        let colour = std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("TERM").is_none_or(|t| t != "dumb");
        Some(Graph { colour, column: 0 })
    }

    /// The legend, printed once before the first bar.
    pub(crate) fn legend() -> String {
        let scale: Vec<String> = LEVELS
            .iter()
            .map(|&(le, bar)| {
                if le.is_finite() {
                    format!("{bar} <{le}")
                } else {
                    format!("{bar} more")
                }
            })
            .collect();
        format!("one bar per reply, in ms: {}   {LOST} lost", scale.join("  "))
    }

    /// The bar for one reply (and a line break every `WIDTH` bars).
    pub(crate) fn reply(&mut self, rtt: Duration) -> String {
        let ms = rtt.as_secs_f64() * 1e3;
        let level = LEVELS.iter().position(|&(le, _)| ms < le).unwrap_or(LEVELS.len() - 1);
        let colour = match level {
            0..=3 => "32",
            4..=5 => "33",
            _ => "31",
        };
        self.mark(LEVELS[level].1, colour)
    }

    /// The mark of a request given up for lost.
    pub(crate) fn lost(&mut self) -> String {
        self.mark(LOST, "31;1")
    }

    fn mark(&mut self, c: char, colour: &str) -> String {
        let mut text = if self.colour {
            format!("\x1b[{colour}m{c}\x1b[0m")
        } else {
            c.to_string()
        };
        self.column += 1;
        if self.column == WIDTH {
            self.column = 0;
            text.push('\n');
        }
        text
    }

    /// Ends the last line of bars.
    pub(crate) fn end(&self) -> &'static str {
        if self.column > 0 { "\n" } else { "" }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_follow_the_fixed_scale_and_wrap() {
        let mut g = Graph {
            colour: false,
            column: 0,
        };
        let bars: String = [50u64, 200, 900, 2_500, 9_000, 25_000, 90_000, 500_000]
            .iter()
            .map(|&us| g.reply(Duration::from_micros(us)))
            .collect();
        assert_eq!(bars, "▁▂▃▄▅▆▇█");
        assert_eq!(g.lost(), "✗");
        let line: String = (0..WIDTH - 9).map(|_| g.reply(Duration::from_micros(10))).collect();
        assert!(line.ends_with("▁\n"), "a line break after {WIDTH} marks");
        assert_eq!(g.end(), "");
        assert!(Graph::legend().contains("▁ <0.1") && Graph::legend().contains("✗ lost"));
    }
}
