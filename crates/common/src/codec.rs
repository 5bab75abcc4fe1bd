//! Payload codecs: how typed text becomes datagram bytes, and how received bytes are shown.
//!
//! UDP carries bytes, not text. The chapter's Python calls `.encode()`/`.decode()` and
//! crashes on bytes that are not valid UTF-8; a debugging tool must show them instead.
//! So rendering never fails: bytes that are not valid in the encoding appear as `\xff`,
//! and newlines, tabs and other control characters are escaped so that one datagram is
//! always one line. A backslash itself is shown as `\\`, so the rendering is unambiguous.

use std::fmt::Write as _;
use std::str::FromStr;
use std::sync::atomic::{AtomicBool, Ordering};

use encoding_rs::{DecoderResult, EncoderResult, GBK};

use crate::{Error, Result};

/// How payloads are typed and shown.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Encoding {
    /// UTF-8 text (the default, and what Python's `str.encode()` produces).
    #[default]
    Utf8,
    /// GBK (Simplified Chinese), the default encoding of NetAssist on a Chinese Windows.
    Gbk,
    /// Hexadecimal bytes: typed as `48 65 6c`, `48656c` or `0x48 0x65`, shown as `48 65 6c`.
    Hex,
}

impl FromStr for Encoding {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        match text.to_ascii_lowercase().as_str() {
            "utf8" | "utf-8" => Ok(Encoding::Utf8),
            "gbk" | "gb2312" | "cp936" => Ok(Encoding::Gbk),
            "hex" => Ok(Encoding::Hex),
            _ => Err(Error::Usage(format!("unknown encoding '{text}': use utf8, gbk or hex"))),
        }
    }
}

impl Encoding {
    /// Turns typed text into the bytes to send.
    ///
    /// # Errors
    /// [`Error::Usage`] for bad hex, or for a character GBK cannot represent.
    ///
    /// # Examples
    /// ```
    /// use common::codec::Encoding;
    /// assert_eq!(Encoding::Utf8.encode("hi").unwrap(), b"hi");
    /// assert_eq!(Encoding::Gbk.encode("你好").unwrap(), [0xc4, 0xe3, 0xba, 0xc3]);
    /// assert_eq!(Encoding::Hex.encode("0x48 65").unwrap(), b"He");
    /// ```
    pub fn encode(self, text: &str) -> Result<Vec<u8>> {
        match self {
            Encoding::Utf8 => Ok(text.as_bytes().to_vec()),
            Encoding::Gbk => encode_gbk(text),
            Encoding::Hex => parse_hex(text),
        }
    }

    /// Shows received bytes on one line; never fails, never drops a byte.
    ///
    /// # Examples
    /// ```
    /// use common::codec::Encoding;
    /// assert_eq!(Encoding::Utf8.render(b"hi\n\xff"), "hi\\n\\xff");
    /// assert_eq!(Encoding::Gbk.render(&[0xc4, 0xe3, 0xba, 0xc3]), "你好");
    /// assert_eq!(Encoding::Hex.render(b"He"), "48 65");
    /// ```
    pub fn render(self, bytes: &[u8]) -> String {
        match self {
            Encoding::Utf8 => render_utf8(bytes),
            Encoding::Gbk => render_gbk(bytes),
            Encoding::Hex => to_hex(bytes),
        }
    }
}

const HEX: &[u8; 16] = b"0123456789abcdef";

/// Appends `b` as two lower-case hex digits (a table, not `write!`: printing runs per byte).
fn push_hex(out: &mut String, b: u8) {
    out.push(char::from(HEX[usize::from(b >> 4)]));
    out.push(char::from(HEX[usize::from(b & 0x0f)]));
}

/// Bytes as space-separated lower-case hex pairs: `48 65 6c`.
pub fn to_hex(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 3);
    for (i, &b) in bytes.iter().enumerate() {
        if i > 0 {
            out.push(' ');
        }
        push_hex(&mut out, b);
    }
    out
}

/// Parses `48 65 6c`, `48656c`, `0x48 0x65`, `0x48656c`, `48:65:6c`, `48-65-6c` (spaces,
/// commas, colons and hyphens separate groups).
///
/// # Errors
/// [`Error::Usage`] naming the text and the bad digit, or a group with an odd length.
///
/// # Examples
/// ```
/// use common::codec::parse_hex;
/// assert_eq!(parse_hex("48:65-6c, 0x6c6f").unwrap(), b"Hello");
/// assert!(parse_hex("4g").unwrap_err().to_string().contains("'g' is not a hex digit"));
/// ```
pub fn parse_hex(text: &str) -> Result<Vec<u8>> {
    let bad = |why: &str| Error::Usage(format!("bad hex '{text}': {why} (e.g. 48 65 6c, 48:65:6c or 0x48656c)"));
    let mut out = Vec::new();
    for group in text
        .split(|c: char| c.is_whitespace() || matches!(c, ',' | ':' | '-'))
        .filter(|g| !g.is_empty())
    {
        let digits = group
            .strip_prefix("0x")
            .or_else(|| group.strip_prefix("0X"))
            .unwrap_or(group);
        if let Some(c) = digits.chars().find(|c| !c.is_ascii_hexdigit()) {
            return Err(bad(&format!("'{c}' is not a hex digit")));
        }
        if digits.is_empty() || digits.len() % 2 != 0 {
            return Err(bad(&format!("'{group}' has an odd number of digits")));
        }
        for pair in digits.as_bytes().chunks(2) {
            let high = char::from(pair[0]).to_digit(16).unwrap_or(0);
            let low = char::from(pair[1]).to_digit(16).unwrap_or(0);
            out.push((high * 16 + low) as u8);
        }
    }
    Ok(out)
}

/// One piece of typed text with escapes: text to encode, or a byte as written (`\xff`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(String),
    Byte(u8),
}

/// Splits typed text at its escapes: `\r \n \t \0 \\` become those characters, `\xNN` the
/// byte NN (not a character: it is sent as is, whatever the encoding).
fn pieces(text: &str) -> Result<Vec<Piece>> {
    let bad = |esc: &str| {
        Error::Usage(format!(
            "bad escape '{esc}' in '{text}': use \\r \\n \\t \\0 \\\\ or \\xNN (two hex digits)"
        ))
    };
    let mut out = Vec::new();
    let mut literal = String::new();
    let mut chars = text.chars();
    while let Some(c) = chars.next() {
        if c != '\\' {
            literal.push(c);
            continue;
        }
        let byte = match chars.next() {
            Some('r') => b'\r',
            Some('n') => b'\n',
            Some('t') => b'\t',
            Some('0') => 0,
            Some('\\') => b'\\',
            Some('x') => {
                let digits: String = chars.by_ref().take(2).collect();
                match u8::from_str_radix(&digits, 16) {
                    Ok(b) if digits.len() == 2 && digits.chars().all(|d| d.is_ascii_hexdigit()) => b,
                    _ => return Err(bad(&format!("\\x{digits}"))),
                }
            }
            Some(other) => return Err(bad(&format!("\\{other}"))),
            None => return Err(bad("\\")),
        };
        if !literal.is_empty() {
            out.push(Piece::Text(std::mem::take(&mut literal)));
        }
        out.push(Piece::Byte(byte));
    }
    if !literal.is_empty() {
        out.push(Piece::Text(literal));
    }
    Ok(out)
}

impl Encoding {
    /// [`Encoding::encode`], with `\r \n \t \0 \\ \xNN` in the text turned into those bytes
    /// first when `escapes` is on (`--escapes`: AT commands and device protocols). Hex has no
    /// escapes: it is bytes already.
    ///
    /// # Errors
    /// [`Error::Usage`] for a bad escape (named), bad hex, or a character GBK cannot represent.
    ///
    /// # Examples
    /// ```
    /// use common::codec::Encoding;
    /// assert_eq!(Encoding::Utf8.encode_typed("AT\\r\\n", true).unwrap(), b"AT\r\n");
    /// assert_eq!(Encoding::Gbk.encode_typed("你\\x00", true).unwrap(), [0xc4, 0xe3, 0x00]);
    /// assert_eq!(Encoding::Utf8.encode_typed("AT\\r\\n", false).unwrap(), b"AT\\r\\n");
    /// ```
    pub fn encode_typed(self, text: &str, escapes: bool) -> Result<Vec<u8>> {
        if !escapes || self == Encoding::Hex {
            return self.encode(text);
        }
        let mut out = Vec::new();
        for piece in pieces(text)? {
            match piece {
                Piece::Text(t) => out.extend(self.encode(&t)?),
                Piece::Byte(b) => out.push(b),
            }
        }
        Ok(out)
    }
}

fn render_utf8(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len());
    for chunk in bytes.utf8_chunks() {
        push_escaped(&mut out, chunk.valid());
        for &b in chunk.invalid() {
            out.push_str("\\x");
            push_hex(&mut out, b);
        }
    }
    out
}

fn render_gbk(bytes: &[u8]) -> String {
    let mut out = String::with_capacity(bytes.len() * 2);
    let mut rest = bytes;
    while !rest.is_empty() {
        let mut decoder = GBK.new_decoder_without_bom_handling();
        // encoding_rs writes only into spare capacity, and wants room for the worst case.
        let room = decoder
            .max_utf8_buffer_length_without_replacement(rest.len())
            .unwrap_or(rest.len() * 4 + 16);
        let mut text = String::with_capacity(room);
        let (result, read) = decoder.decode_to_string_without_replacement(rest, &mut text, true);
        push_escaped(&mut out, &text);
        match result {
            DecoderResult::Malformed(bad_len, after) => {
                // The malformed bytes end `after` bytes before `read`; those `after` bytes
                // are decoded again from a fresh start, so none is lost.
                let end = read.saturating_sub(after as usize);
                let start = end.saturating_sub(bad_len as usize);
                for b in &rest[start..end] {
                    let _ = write!(out, "\\x{b:02x}");
                }
                rest = &rest[end.max(1).min(rest.len())..];
            }
            // With room for the worst case, OutputFull cannot happen; if it ever did without
            // progress, escaping one byte still moves on.
            DecoderResult::InputEmpty | DecoderResult::OutputFull => {
                rest = &rest[read.max(1).min(rest.len())..];
            }
        }
    }
    out
}

fn encode_gbk(text: &str) -> Result<Vec<u8>> {
    let mut encoder = GBK.new_encoder();
    let capacity = encoder
        .max_buffer_length_from_utf8_without_replacement(text.len())
        .unwrap_or(text.len() * 4);
    let mut out = Vec::with_capacity(capacity);
    let (result, _) = encoder.encode_from_utf8_to_vec_without_replacement(text, &mut out, true);
    match result {
        EncoderResult::InputEmpty => Ok(out),
        EncoderResult::Unmappable(c) => Err(Error::Usage(format!(
            "'{c}' cannot be written in GBK; use --encoding utf8 or hex"
        ))),
        EncoderResult::OutputFull => Err(Error::Usage("text too long to encode as GBK".into())),
    }
}

/// What to say when a datagram shown as UTF-8 [`looks_like_gbk`]: NetAssist on a Chinese
/// Windows sends GBK by default, and as UTF-8 `你好` shows as `\xc4\xe3\xba\xc3`.
pub const GBK_HINT: &str = "looks like GBK (Chinese Windows): try --encoding gbk";

/// Whether `bytes` are not UTF-8 but read cleanly as GBK text: printable ASCII (tab, CR and
/// LF allowed) around at least one two-byte character of the GB2312 area (symbols A1A1–A9FE,
/// hanzi B0A1–F7FE), each a character GBK defines. Everyday Chinese text is in that area;
/// Latin-1 or Windows-1252 text is not (an accented letter is followed by an ASCII letter,
/// or by nothing), nor are random bytes (control bytes, lone high bytes).
///
/// # Examples
/// ```
/// use common::codec::looks_like_gbk;
/// assert!(looks_like_gbk(&[0xc4, 0xe3, 0xba, 0xc3])); // 你好 in GBK
/// assert!(!looks_like_gbk("你好".as_bytes())); // UTF-8 already
/// assert!(!looks_like_gbk(b"caf\xe9 cr\xe8me")); // Latin-1
/// ```
pub fn looks_like_gbk(bytes: &[u8]) -> bool {
    if std::str::from_utf8(bytes).is_ok() {
        return false;
    }
    let mut chinese = 0;
    let mut rest = bytes;
    while let Some((&b, after)) = rest.split_first() {
        rest = match (b, after.first()) {
            (b'\t' | b'\r' | b'\n' | 0x20..=0x7e, _) => after,
            (0xa1..=0xa9 | 0xb0..=0xf7, Some(0xa1..=0xfe)) => {
                chinese += 1;
                &after[1..]
            }
            _ => return false,
        };
    }
    // The GB2312 area has gaps GBK fills with private-use characters: those are not text.
    chinese > 0
        && GBK
            .decode_without_bom_handling_and_without_replacement(bytes)
            .is_some_and(|text| !text.chars().any(|c| ('\u{e000}'..='\u{f8ff}').contains(&c)))
}

/// Says [`GBK_HINT`] once: the first datagram shown as UTF-8 that [`looks_like_gbk`].
#[derive(Debug, Default)]
pub struct GbkHint {
    said: AtomicBool,
}

impl GbkHint {
    /// A hint not said yet.
    pub const fn new() -> Self {
        GbkHint {
            said: AtomicBool::new(false),
        }
    }

    /// True exactly once: for the first `bytes` shown as UTF-8 that look like GBK. Once said,
    /// it costs one atomic load per datagram.
    pub fn is_due(&self, encoding: Encoding, bytes: &[u8]) -> bool {
        encoding == Encoding::Utf8
            && !self.said.load(Ordering::Relaxed)
            && looks_like_gbk(bytes)
            && !self.said.swap(true, Ordering::Relaxed)
    }
}

/// Logs [`GBK_HINT`] as a warning, once per program, for the first datagram shown as UTF-8
/// that looks like GBK. One call where a program shows a datagram.
pub fn hint_gbk_once(encoding: Encoding, bytes: &[u8]) {
    static HINT: GbkHint = GbkHint::new();
    if HINT.is_due(encoding, bytes) {
        log::warn!("{GBK_HINT}");
    }
}

fn push_escaped(out: &mut String, text: &str) {
    for c in text.chars() {
        match c {
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\\' => out.push_str("\\\\"),
            c if (c as u32) < 0x20 || c as u32 == 0x7f => {
                out.push_str("\\x");
                push_hex(out, c as u8);
            }
            // Other control and formatting characters (C1 controls, line and paragraph
            // separators, bidi overrides) could break the line or reorder it on screen.
            c if c.is_control()
                || matches!(c, '\u{2028}' | '\u{2029}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}') =>
            {
                let _ = write!(out, "\\u{{{:x}}}", c as u32);
            }
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_the_encoding_and_rejects_unknown_ones() {
        assert_eq!("UTF-8".parse::<Encoding>().unwrap(), Encoding::Utf8);
        assert_eq!("gbk".parse::<Encoding>().unwrap(), Encoding::Gbk);
        assert_eq!("hex".parse::<Encoding>().unwrap(), Encoding::Hex);
        let err = "latin9".parse::<Encoding>().unwrap_err();
        assert_eq!(err.to_string(), "unknown encoding 'latin9': use utf8, gbk or hex");
    }

    #[test]
    fn utf8_rendering_keeps_one_datagram_on_one_line() {
        assert_eq!(render_utf8(b"a\r\nb\tc\\d"), "a\\r\\nb\\tc\\\\d");
        assert_eq!(render_utf8(b"\x00\x1b[31m\x7f"), "\\x00\\x1b[31m\\x7f");
        assert_eq!(
            render_utf8("é\u{85}\u{2028}\u{202e}".as_bytes()),
            "é\\u{85}\\u{2028}\\u{202e}"
        );
        assert_eq!(render_utf8(b"ok\xff\xfe!"), "ok\\xff\\xfe!");
        assert_eq!(render_utf8("你好".as_bytes()), "你好");
        assert_eq!(render_utf8(b""), "");
    }

    #[test]
    fn gbk_round_trips_and_escapes_bad_bytes_without_losing_the_rest() {
        let bytes = encode_gbk("你好, UDP").unwrap();
        assert_eq!(bytes, b"\xc4\xe3\xba\xc3, UDP");
        assert_eq!(render_gbk(&bytes), "你好, UDP");
        // 0x81 is a lead byte; a space cannot follow it, so it is malformed, and the space
        // after it must still be shown.
        assert_eq!(render_gbk(b"\x81 A"), "\\x81 A");
        assert_eq!(render_gbk(b"A\xff"), "A\\xff");
        assert_eq!(render_gbk(b"\xc4"), "\\xc4");
        assert_eq!(render_gbk(b"\xc4\xe3\n"), "你\\n");
        let err = encode_gbk("😀").unwrap_err();
        assert_eq!(
            err.to_string(),
            "'😀' cannot be written in GBK; use --encoding utf8 or hex"
        );
    }

    #[test]
    fn hex_accepts_the_usual_spellings() {
        assert_eq!(parse_hex("48 65 6c").unwrap(), b"Hel");
        assert_eq!(parse_hex("48656C").unwrap(), b"Hel");
        assert_eq!(parse_hex("0x48 0X65,0x6c").unwrap(), b"Hel");
        assert_eq!(parse_hex("0x48656c").unwrap(), b"Hel");
        assert_eq!(parse_hex("").unwrap(), b"");
        assert_eq!(to_hex(b"Hel"), "48 65 6c");
        assert_eq!(to_hex(b""), "");
    }

    #[test]
    fn bad_hex_is_a_usage_error_naming_the_text() {
        for text in ["4", "zz", "0x", "48 6", "é9", "0xg0"] {
            let err = parse_hex(text).unwrap_err();
            assert!(err.to_string().starts_with(&format!("bad hex '{text}'")), "{err}");
        }
    }

    #[test]
    fn rendering_any_bytes_never_panics_and_stays_on_one_line() {
        // A bounded sweep: every single byte, and every pair of bytes, in every encoding.
        for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
            for a in 0..=255u8 {
                for b in [0u8, 0x0a, 0x40, 0x7f, 0x80, 0x81, 0xa1, 0xfe, 0xff] {
                    let shown = enc.render(&[a, b, a]);
                    assert!(
                        !shown.contains('\n') && !shown.contains('\r'),
                        "{enc:?} {a:02x} {b:02x}"
                    );
                }
            }
        }
    }

    #[test]
    fn escapes_become_the_bytes_they_name_and_a_bad_one_is_named() {
        let typed = |t: &str| Encoding::Utf8.encode_typed(t, true);
        assert_eq!(typed("AT\\r\\n").unwrap(), [0x41, 0x54, 0x0d, 0x0a]);
        assert_eq!(typed("\\x00\\xff").unwrap(), [0x00, 0xff]);
        assert_eq!(typed("a\\tb\\0c\\\\d").unwrap(), b"a\tb\0c\\d");
        for (bad, named) in [
            ("AT\\q", "'\\q'"),
            ("\\x4", "'\\x4'"),
            ("\\xzz", "'\\xzz'"),
            ("end\\", "'\\'"),
        ] {
            let err = typed(bad).unwrap_err();
            assert_eq!(err.exit_code(), 2);
            assert!(err.to_string().contains(&format!("bad escape {named}")), "{err}");
        }
        assert!(
            parse_hex("48-6z")
                .unwrap_err()
                .to_string()
                .contains("'z' is not a hex digit")
        );
        assert_eq!(parse_hex("48:65").unwrap(), b"He");
        assert_eq!(parse_hex("48-65").unwrap(), b"He");
    }

    /// Real Chinese text as a Chinese Windows sends it (NetAssist's default), with ASCII,
    /// punctuation and line ends around it.
    #[test]
    fn gbk_chinese_text_is_recognised() {
        for text in [
            "你好",
            "温度=23.5℃，湿度=60%",
            "设备001 状态：正常\r\n",
            "AT+CWJAP=\"我的网络\",\"密码\"",
            "《计算机网络》第五章：用户数据报协议（UDP）",
        ] {
            let bytes = encode_gbk(text).unwrap();
            assert!(looks_like_gbk(&bytes), "{text}: {bytes:02x?}");
        }
    }

    #[test]
    fn utf8_latin1_and_binary_are_not_taken_for_gbk() {
        // Valid UTF-8, Chinese included, needs no hint.
        for text in ["hello", "你好，世界", "", "温度=23.5℃"] {
            assert!(!looks_like_gbk(text.as_bytes()), "{text}");
        }
        // Latin-1 and Windows-1252 text: each accented letter is one byte, followed by an
        // ASCII letter, a space or nothing.
        for latin1 in [
            &b"caf\xe9"[..],
            b"cr\xe8me br\xfbl\xe9e",
            b"na\xefve r\xe9sum\xe9",
            b"Gr\xfc\xdfe aus M\xfcnchen",
            b"\x93quoted\x94 \x80 5",
            b"se\xf1or a\xf1o",
        ] {
            assert!(!looks_like_gbk(latin1), "{latin1:02x?}");
        }
        // Binary: a Modbus frame, a counter, and bounded pseudo-random noise.
        assert!(!looks_like_gbk(&[0x01, 0x03, 0x00, 0x00, 0x00, 0x0a, 0xc5, 0xcd]));
        assert!(!looks_like_gbk(&[0xff, 0xfe, 0x00, 0x00]));
        let mut seed = 0x9e37_79b9_u32;
        for _ in 0..2000 {
            let noise: Vec<u8> = (0..32)
                .map(|_| {
                    seed ^= seed << 13;
                    seed ^= seed >> 17;
                    seed ^= seed << 5;
                    seed.to_le_bytes()[0]
                })
                .collect();
            assert!(!looks_like_gbk(&noise), "{noise:02x?}");
        }
        // GBK outside the everyday area (a lead byte below A1) and a lone lead byte.
        assert!(!looks_like_gbk(&[0x81, 0x40]));
        assert!(!looks_like_gbk(&[b'a', 0xc4]));
    }

    #[test]
    fn the_gbk_hint_is_due_once_and_only_for_utf8() {
        let gbk = encode_gbk("你好").unwrap();
        let hint = GbkHint::new();
        assert!(!hint.is_due(Encoding::Utf8, b"plain ascii"));
        assert!(!hint.is_due(Encoding::Gbk, &gbk), "already shown as GBK");
        assert!(!hint.is_due(Encoding::Hex, &gbk), "hex shows bytes, whatever they are");
        assert!(hint.is_due(Encoding::Utf8, &gbk));
        assert!(!hint.is_due(Encoding::Utf8, &gbk), "said once");
        assert!(!hint.is_due(Encoding::Utf8, &encode_gbk("再见").unwrap()));
        assert_eq!(GBK_HINT, "looks like GBK (Chinese Windows): try --encoding gbk");
    }

    proptest::proptest! {
        #![proptest_config(proptest::prelude::ProptestConfig::with_cases(20_000))]
        /// Typed text with escapes never panics: it becomes bytes or one usage error.
        #[test]
        fn random_typed_escapes_never_panic(text in "[a-zA-Z0-9\\\\xrnt0 时]{0,24}") {
            for enc in [Encoding::Utf8, Encoding::Gbk, Encoding::Hex] {
                if let Err(e) = enc.encode_typed(&text, true) {
                    proptest::prop_assert_eq!(e.exit_code(), 2);
                }
            }
        }

        /// The fuzz target's properties, bounded for CI: random texts of hex digits,
        /// separators, ASCII and Chinese; typed hex round-trips, GBK text renders back as typed.
        #[test]
        fn random_typed_text_round_trips_through_hex_and_gbk(text in "[0-9a-fA-Fx :,\n时间价格 ¥é€😀-]{0,23}") {
            if let Ok(bytes) = parse_hex(&text) {
                proptest::prop_assert_eq!(parse_hex(&to_hex(&bytes)).unwrap(), bytes, "{:?}", text);
            }
            if let Ok(bytes) = Encoding::Gbk.encode(&text) {
                proptest::prop_assert_eq!(
                    Encoding::Gbk.render(&bytes),
                    Encoding::Utf8.render(text.as_bytes()),
                    "{:?}",
                    text
                );
            }
        }
    }
}
