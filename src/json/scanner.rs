//! A small JSON scanner specialised for market-data pages: strings without escapes are borrowed, unknown keys are
//! skipped, numbers take a fast path, any valid JSON is accepted.

use std::borrow::Cow;

use super::timestamp::{parse_timestamp, parse_timestamp_with, DayCache};

pub(super) type Scan<T> = std::result::Result<T, String>;

/// Nesting limit for skipped values, so hostile input cannot exhaust the stack.
const MAX_DEPTH: usize = 64;

/// Exact powers of ten as f64 (all up to 1e22 are exact).
const POW10: [f64; 23] = [
    1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16,
    1e17, 1e18, 1e19, 1e20, 1e21, 1e22,
];

/// A `&str` view of bytes already checked to be ASCII.
fn ascii_str(raw: &[u8]) -> &str {
    debug_assert!(raw.is_ascii());
    // SAFETY: the caller saw every byte below 0x80, and ASCII is valid UTF-8.
    unsafe { std::str::from_utf8_unchecked(raw) }
}

/// A JSON reader over the page's bytes, specialised for market-data pages.
pub(super) struct Scanner<'a> {
    pub(super) b: &'a [u8],
    pub(super) pos: usize,
    pub(super) days: DayCache,
}

/// A JSON number as read: an exact integer when it has no fraction or exponent.
enum Number {
    Int(i64),
    Float(f64),
}

impl<'a> Scanner<'a> {
    #[cold]
    #[inline(never)]
    pub(super) fn fail<T>(&self, what: &str) -> Scan<T> {
        Err(format!("{what} at byte {}", self.pos))
    }

    #[inline]
    pub(super) fn peek(&mut self) -> Option<u8> {
        while let Some(&c) = self.b.get(self.pos) {
            if matches!(c, b' ' | b'\n' | b'\r' | b'\t') {
                self.pos += 1;
            } else {
                return Some(c);
            }
        }
        None
    }

    #[inline]
    pub(super) fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    pub(super) fn expect(&mut self, c: u8) -> Scan<()> {
        if self.eat(c) {
            Ok(())
        } else {
            self.expected(c)
        }
    }

    #[cold]
    #[inline(never)]
    fn expected(&self, c: u8) -> Scan<()> {
        self.fail(&format!("expected '{}'", c as char))
    }

    #[inline]
    fn literal(&mut self, word: &[u8]) -> Scan<()> {
        if self.b.get(self.pos..self.pos + word.len()) == Some(word) {
            self.pos += word.len();
            Ok(())
        } else {
            self.fail("invalid literal")
        }
    }

    /// `null` if next (consumed), else false.
    #[inline]
    pub(super) fn null(&mut self) -> Scan<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    #[inline]
    pub(super) fn string(&mut self) -> Scan<Cow<'a, str>> {
        self.expect(b'"')?;
        let start = self.pos;
        let bytes = self.b;
        let mut high = 0u8;
        // A local index and a slice iterator keep the hot loop in registers.
        for (offset, &c) in bytes[start..].iter().enumerate() {
            if c == b'"' {
                let raw = &bytes[start..start + offset];
                self.pos = start + offset + 1;
                // ASCII needs no UTF-8 validation pass; anything else is validated.
                let text = if high < 0x80 {
                    ascii_str(raw)
                } else {
                    std::str::from_utf8(raw).or_else(|_| self.fail("invalid UTF-8 in a string"))?
                };
                return Ok(Cow::Borrowed(text));
            }
            if c == b'\\' {
                self.pos = start + offset;
                return self.escaped_string(start).map(Cow::Owned);
            }
            if c < 0x20 {
                self.pos = start + offset;
                return self.fail("control character in a string");
            }
            high |= c;
        }
        self.pos = bytes.len();
        self.fail("unterminated string")
    }

    fn escaped_string(&mut self, start: usize) -> Scan<String> {
        let mut out = String::from(
            std::str::from_utf8(&self.b[start..self.pos])
                .or_else(|_| self.fail("invalid UTF-8 in a string"))?,
        );
        loop {
            let run = self.pos;
            while let Some(&c) = self.b.get(self.pos) {
                if c == b'"' || c == b'\\' || c < 0x20 {
                    break;
                }
                self.pos += 1;
            }
            out.push_str(
                std::str::from_utf8(&self.b[run..self.pos])
                    .or_else(|_| self.fail("invalid UTF-8 in a string"))?,
            );
            match self.b.get(self.pos) {
                Some(b'"') => {
                    self.pos += 1;
                    return Ok(out);
                }
                Some(b'\\') => {
                    self.pos += 1;
                    let Some(&e) = self.b.get(self.pos) else {
                        return self.fail("unterminated escape");
                    };
                    self.pos += 1;
                    match e {
                        b'"' => out.push('"'),
                        b'\\' => out.push('\\'),
                        b'/' => out.push('/'),
                        b'b' => out.push('\u{8}'),
                        b'f' => out.push('\u{c}'),
                        b'n' => out.push('\n'),
                        b'r' => out.push('\r'),
                        b't' => out.push('\t'),
                        b'u' => {
                            let high = self.hex4()?;
                            let code = if (0xD800..0xDC00).contains(&high) {
                                self.literal(b"\\u")?;
                                let low = self.hex4()?;
                                if !(0xDC00..0xE000).contains(&low) {
                                    return self.fail("invalid surrogate pair");
                                }
                                0x10000 + ((high - 0xD800) << 10) + (low - 0xDC00)
                            } else {
                                high
                            };
                            match char::from_u32(code) {
                                Some(c) => out.push(c),
                                None => return self.fail("invalid \\u escape"),
                            }
                        }
                        _ => return self.fail("invalid escape"),
                    }
                }
                Some(_) => return self.fail("control character in a string"),
                None => return self.fail("unterminated string"),
            }
        }
    }

    fn hex4(&mut self) -> Scan<u32> {
        let digits = self
            .b
            .get(self.pos..self.pos + 4)
            .ok_or_else(|| format!("short \\u escape at byte {}", self.pos))?;
        let text = std::str::from_utf8(digits)
            .map_err(|_| format!("bad \\u escape at byte {}", self.pos))?;
        let value = u32::from_str_radix(text, 16)
            .map_err(|_| format!("bad \\u escape at byte {}", self.pos))?;
        self.pos += 4;
        Ok(value)
    }

    #[inline]
    fn number(&mut self) -> Scan<Number> {
        self.peek();
        let start = self.pos;
        let negative = self.b.get(self.pos) == Some(&b'-');
        if negative {
            self.pos += 1;
        }
        // Fast path: up to 19 digits with an optional fraction and no exponent.
        let (mut mantissa, mut digits, mut fraction) = (0u64, 0u32, 0u32);
        let mut seen_dot = false;
        while let Some(&c) = self.b.get(self.pos) {
            match c {
                b'0'..=b'9' if digits < 19 => {
                    mantissa = mantissa * 10 + u64::from(c - b'0');
                    digits += 1;
                    fraction += u32::from(seen_dot);
                    self.pos += 1;
                }
                b'.' if !seen_dot => {
                    seen_dot = true;
                    self.pos += 1;
                }
                b'0'..=b'9' | b'e' | b'E' | b'+' | b'-' | b'.' => return self.slow_number(start),
                _ => break,
            }
        }
        if digits == 0 || (seen_dot && fraction == 0) {
            return self.fail("bad number");
        }
        if !seen_dot {
            if let Ok(v) = i64::try_from(mantissa) {
                return Ok(Number::Int(if negative { -v } else { v }));
            }
            return self.slow_number(start);
        }
        // Clinger's fast path: an exact mantissa below 2^53 divided by an exact power of ten <= 1e22 is
        // correctly rounded by IEEE division.
        if mantissa < (1 << 53) && fraction <= 22 {
            let value = mantissa as f64 / POW10[fraction as usize];
            return Ok(Number::Float(if negative { -value } else { value }));
        }
        self.slow_number(start)
    }

    fn slow_number(&mut self, start: usize) -> Scan<Number> {
        self.pos = start;
        let mut integral = true;
        while let Some(&c) = self.b.get(self.pos) {
            match c {
                b'0'..=b'9' | b'-' | b'+' => self.pos += 1,
                b'.' | b'e' | b'E' => {
                    integral = false;
                    self.pos += 1;
                }
                _ => break,
            }
        }
        let text = ascii_str(&self.b[start..self.pos]);
        if integral {
            if let Ok(v) = text.parse::<i64>() {
                return Ok(Number::Int(v));
            }
        }
        match text.parse::<f64>() {
            Ok(v) if v.is_finite() => Ok(Number::Float(v)),
            _ => self.fail(&format!("bad number {text:?}")),
        }
    }

    #[inline]
    pub(super) fn float(&mut self) -> Scan<f64> {
        match self.number()? {
            Number::Int(v) => Ok(v as f64),
            Number::Float(v) => Ok(v),
        }
    }

    /// An integer; a float is accepted when it is whole (adjusted volumes).
    #[inline]
    pub(super) fn whole(&mut self) -> Scan<i64> {
        match self.number()? {
            Number::Int(v) => Ok(v),
            Number::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e18 => Ok(v as i64),
            Number::Float(v) => self.fail(&format!("{v} is not a whole number")),
        }
    }

    /// An RFC-3339 timestamp string as UTC nanoseconds.
    #[inline]
    pub(super) fn timestamp(&mut self) -> Scan<i64> {
        // Fast path: the closing quote within the longest RFC-3339 form, no escapes: parse the bytes in place.
        if self.peek() == Some(b'"') {
            let start = self.pos + 1;
            let window = &self.b[start..self.b.len().min(start + 36)];
            if let Some(len) = window.iter().position(|&c| c == b'"' || c == b'\\') {
                if window[len] == b'"' {
                    if let Some(ts) = parse_timestamp_with(&window[..len], &mut self.days) {
                        self.pos = start + len + 1;
                        return Ok(ts);
                    }
                }
            }
        }
        let text = self.string()?;
        parse_timestamp(text.as_bytes())
            .ok_or_else(|| format!("bad RFC-3339 timestamp {text:?} before byte {}", self.pos))
    }

    #[inline]
    pub(super) fn opt_string(&mut self) -> Scan<Option<Cow<'a, str>>> {
        if self.null()? {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    pub(super) fn skip(&mut self, depth: usize) -> Scan<()> {
        if depth > MAX_DEPTH {
            return self.fail("nesting too deep");
        }
        match self.peek() {
            Some(b'"') => self.string().map(|_| ()),
            Some(b'{') => self.object(|s, _| s.skip(depth + 1)),
            Some(b'[') => self.array(|s| s.skip(depth + 1)),
            Some(b't') => self.literal(b"true"),
            Some(b'f') => self.literal(b"false"),
            Some(b'n') => self.literal(b"null"),
            Some(_) => self.number().map(|_| ()),
            None => self.fail("unexpected end"),
        }
    }

    #[inline]
    pub(super) fn object(
        &mut self,
        mut field: impl FnMut(&mut Self, Cow<'a, str>) -> Scan<()>,
    ) -> Scan<()> {
        self.expect(b'{')?;
        if self.eat(b'}') {
            return Ok(());
        }
        loop {
            let key = self.string()?;
            self.expect(b':')?;
            field(self, key)?;
            if self.eat(b',') {
                continue;
            }
            return self.expect(b'}');
        }
    }

    #[inline]
    pub(super) fn array(&mut self, mut item: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
        self.expect(b'[')?;
        if self.eat(b']') {
            return Ok(());
        }
        loop {
            item(self)?;
            if self.eat(b',') {
                continue;
            }
            return self.expect(b']');
        }
    }
}
