//! Alpaca market-data JSON pages -> Arrow (ALPACA.md §5): the multi-symbol shape
//! (`{"trades": {"AAPL": [...]}, "next_page_token": ...}`) and the single-symbol shape
//! (`{"trades": [...], "symbol": "AAPL", ...}`), with `null`, `[]` or missing arrays. Items are appended straight
//! into column buffers by a small JSON scanner specialised for these pages (strings without escapes are borrowed,
//! unknown keys are skipped, any valid JSON is accepted): no allocation per row.
//!
//! Timestamps are RFC-3339 with 0-9 fractional digits (and `Z` or an offset), kept to the nanosecond. Prices may
//! be integral (`"p": 833`). Quote sizes before 2025-11-03 (New York) are round lots and are converted to shares
//! when asked (SPEC §3.2). Daily bars (stamped at New York midnight) can be relabelled to the date at 00:00 UTC.

use std::borrow::Cow;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::thread;

use arrow_array::{
    Array, ArrayRef, Float64Array, Int64Array, RecordBatch, StringArray, TimestampNanosecondArray,
};
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::schema::{conditions_type, trade_schema, utc_ns};
use crate::time::{date_label, ny_date};

/// Which endpoint a page comes from.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PageKind {
    /// `/v2/stocks/trades`.
    Trades,
    /// `/v2/stocks/quotes`.
    Quotes,
    /// `/v2/stocks/bars`.
    Bars,
}

impl PageKind {
    /// Parses `trades`, `quotes` or `bars`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "trades" => Ok(Self::Trades),
            "quotes" => Ok(Self::Quotes),
            "bars" => Ok(Self::Bars),
            _ => Err(Error::InvalidArgument(format!(
                "unknown page kind {text:?}: use trades, quotes or bars"
            ))),
        }
    }

    fn key(self) -> &'static str {
        match self {
            Self::Trades => "trades",
            Self::Quotes => "quotes",
            Self::Bars => "bars",
        }
    }
}

/// How a page is converted.
#[derive(Clone, Copy, Debug, Default)]
pub struct PageOptions {
    /// Quotes: multiply sizes stamped before 2025-11-03 (New York) by 100 (round lots -> shares).
    pub lots_to_shares: bool,
    /// Bars: relabel each bar with its New York date at 00:00 UTC (daily bars).
    pub daily_labels: bool,
    /// Threads for a long array of items (0 or 1: the calling thread only).
    pub threads: usize,
}

/// A parsed page: its rows (sorted as the API sent them) and the token of the next page.
#[derive(Debug)]
pub struct Page {
    /// The rows, with a `symbol` column.
    pub batch: RecordBatch,
    /// `next_page_token`; None on the last page.
    pub next_page_token: Option<String>,
}

/// First nanosecond of 2025-11-03 in New York (05:00 UTC): quote sizes are in shares from then on.
pub const SHARES_SINCE_NS: i64 = 1_762_146_000_000_000_000;

/// The schema of parsed raw quotes (the input of the best-quote kernel).
#[must_use]
pub fn raw_quote_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("timestamp", utc_ns(), false),
        Field::new("bid_price", DataType::Float64, false),
        Field::new("bid_size", DataType::Int64, false),
        Field::new("ask_price", DataType::Float64, false),
        Field::new("ask_size", DataType::Int64, false),
        Field::new("bid_exchange", DataType::Utf8, true),
        Field::new("ask_exchange", DataType::Utf8, true),
        Field::new("conditions", conditions_type(), true),
        Field::new("tape", DataType::Utf8, true),
    ]))
}

/// The schema of parsed bars (SPEC §2, 1m and 1d).
#[must_use]
pub fn api_bar_schema() -> SchemaRef {
    crate::schema::bar_schema(true)
}

/// Parses an RFC-3339 timestamp (`2022-01-03T09:00:00.086175744Z`, 0-9 fractional digits, `Z` or `±HH:MM`) to UTC
/// nanoseconds.
///
/// # Errors
/// A message describing what is wrong.
pub fn parse_rfc3339(text: &str) -> std::result::Result<i64, String> {
    parse_timestamp(text.as_bytes()).ok_or_else(|| format!("bad RFC-3339 timestamp {text:?}"))
}

/// Parses timestamps stored as text by databases and `pandas.to_sql`: `YYYY-MM-DD[ T]HH:MM:SS[.f]` with an optional
/// `Z` or `±HH:MM` offset, or a bare date. Text without an offset is taken as UTC; the flag says whether any was.
///
/// # Errors
/// [`Error::InvalidValue`] naming the first row that is not such a timestamp (nulls included).
pub fn text_timestamps(
    values: &arrow_array::StringArray,
    column: &str,
) -> Result<(TimestampNanosecondArray, bool)> {
    let mut out = Vec::with_capacity(values.len());
    let mut naive = false;
    let mut cache = DayCache::default();
    for row in 0..values.len() {
        let bad = || {
            Error::invalid(
                column,
                row as u64,
                format!(
                    "{:?} is not an ISO 8601 timestamp",
                    values.is_valid(row).then(|| values.value(row))
                ),
            )
        };
        if values.is_null(row) {
            return Err(bad());
        }
        let text = values.value(row).as_bytes();
        let ts = if let Some(ts) = parse_timestamp_with(text, &mut cache) {
            ts
        } else {
            // No offset (or a bare date): read as UTC.
            let mut padded = [0u8; 40];
            let with_zone: &[u8] = if text.len() == 10 && text.len() + 10 <= padded.len() {
                padded[..10].copy_from_slice(text);
                padded[10..20].copy_from_slice(b"T00:00:00Z");
                &padded[..20]
            } else if text.len() < padded.len() {
                padded[..text.len()].copy_from_slice(text);
                padded[text.len()] = b'Z';
                &padded[..=text.len()]
            } else {
                return Err(bad());
            };
            naive = true;
            parse_timestamp_with(with_zone, &mut cache).ok_or_else(bad)?
        };
        out.push(ts);
    }
    Ok((
        TimestampNanosecondArray::from(out).with_timezone("UTC"),
        naive,
    ))
}

/// Digits `b[at..at + n]` as a number, or None when one is not a digit.
#[inline]
fn digits(b: &[u8], at: usize, n: usize) -> Option<i64> {
    let mut v = 0i64;
    for &c in b.get(at..at + n)? {
        let d = c.wrapping_sub(b'0');
        if d > 9 {
            return None;
        }
        v = v * 10 + i64::from(d);
    }
    Some(v)
}

#[inline]
fn parse_timestamp(b: &[u8]) -> Option<i64> {
    parse_timestamp_with(b, &mut DayCache::default())
}

/// The last date parsed and its day number: a page's timestamps mostly share one date.
#[derive(Default)]
struct DayCache {
    date: [u8; 10],
    days: i64,
    valid: bool,
}

/// Days in `month` (1-12) of the proleptic Gregorian `year`.
#[inline]
fn days_in_month(year: i64, month: i64) -> i64 {
    match month {
        2 if year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) => 29,
        2 => 28,
        4 | 6 | 9 | 11 => 30,
        _ => 31,
    }
}

/// Days since 1970-01-01 of a `YYYY-MM-DD` prefix (Howard Hinnant's algorithm); None for a date that does not
/// exist (`2024-02-30`).
#[inline]
fn civil_days(b: &[u8]) -> Option<i64> {
    if b[4] != b'-' || b[7] != b'-' {
        return None;
    }
    let (year, month, day) = (digits(b, 0, 4)?, digits(b, 5, 2)?, digits(b, 8, 2)?);
    if !(1..=12).contains(&month) || day < 1 || day > days_in_month(year, month) {
        return None;
    }
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    Some(era * 146_097 + doe - 719_468)
}

#[inline]
fn parse_timestamp_with(b: &[u8], cache: &mut DayCache) -> Option<i64> {
    if b.len() < 20 || !matches!(b[10], b'T' | b't' | b' ') || b[13] != b':' || b[16] != b':' {
        return None;
    }
    let days = if cache.valid && cache.date[..] == b[..10] {
        cache.days
    } else {
        let days = civil_days(b)?;
        cache.date.copy_from_slice(&b[..10]);
        cache.days = days;
        cache.valid = true;
        days
    };
    let (hour, minute, second) = (digits(b, 11, 2)?, digits(b, 14, 2)?, digits(b, 17, 2)?);
    if hour > 23 || minute > 59 || second > 60 {
        return None;
    }
    let mut pos = 19;
    let mut nanos = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let count = pos - start;
        if count == 0 || count > 9 {
            return None;
        }
        nanos = digits(b, start, count)? * POW10_I64[9 - count];
    }
    let offset = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() && b[pos + 3] == b':' => {
            // RFC 3339 offsets are at most 23:59 (real zones stay within ±14:00).
            let (hours, mins) = (digits(b, pos + 1, 2)?, digits(b, pos + 4, 2)?);
            if hours > 23 || mins > 59 {
                return None;
            }
            let minutes = hours * 60 + mins;
            if sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return None,
    };
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    seconds.checked_mul(1_000_000_000)?.checked_add(nanos)
}

const POW10_I64: [i64; 10] = [
    1,
    10,
    100,
    1_000,
    10_000,
    100_000,
    1_000_000,
    10_000_000,
    100_000_000,
    1_000_000_000,
];

/// A string column built by hand: for these short values (exchange codes, tapes, conditions) this is cheaper per
/// value than arrow's builders.
struct StrCol {
    offsets: Vec<i32>,
    values: Vec<u8>,
    validity: Vec<bool>,
    nulls: usize,
}

impl StrCol {
    fn with_capacity(rows: usize, bytes: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            values: Vec::with_capacity(bytes),
            validity: Vec::with_capacity(rows),
            nulls: 0,
        }
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    fn push(&mut self, value: Option<&str>) {
        match value {
            Some(text) => {
                self.values.extend_from_slice(text.as_bytes());
                self.validity.push(true);
            }
            None => {
                self.validity.push(false);
                self.nulls += 1;
            }
        }
        // Checked once in `finish`: if the total fits in i32, every prefix does.
        self.offsets.push(self.values.len() as i32);
    }

    fn len(&self) -> usize {
        self.validity.len()
    }

    /// Appends the rows of `more`.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    fn append(&mut self, more: &Self) {
        let shift = self.values.len() as i32;
        self.offsets
            .extend(more.offsets[1..].iter().map(|o| o.wrapping_add(shift)));
        self.values.extend_from_slice(&more.values);
        self.validity.extend_from_slice(&more.validity);
        self.nulls += more.nulls;
    }

    fn nulls(validity: Vec<bool>, count: usize) -> Option<arrow_buffer::NullBuffer> {
        (count > 0).then(|| arrow_buffer::NullBuffer::from(validity))
    }

    fn finish(self) -> Result<StringArray> {
        if i32::try_from(self.values.len()).is_err() {
            return Err(Error::InvalidArgument("page strings exceed 2 GiB".into()));
        }
        let offsets = arrow_buffer::OffsetBuffer::new(self.offsets.into());
        let nulls = Self::nulls(self.validity, self.nulls);
        Ok(StringArray::try_new(offsets, self.values.into(), nulls)?)
    }
}

/// A list-of-strings column built by hand (condition codes).
struct ListCol {
    offsets: Vec<i32>,
    items: StrCol,
    validity: Vec<bool>,
    nulls: usize,
}

impl ListCol {
    fn with_capacity(rows: usize) -> Self {
        let mut offsets = Vec::with_capacity(rows + 1);
        offsets.push(0);
        Self {
            offsets,
            items: StrCol::with_capacity(rows * 2, rows * 2),
            validity: Vec::with_capacity(rows),
            nulls: 0,
        }
    }

    #[inline]
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    fn end_row(&mut self, valid: bool) {
        self.validity.push(valid);
        self.nulls += usize::from(!valid);
        self.offsets.push(self.items.len() as i32);
    }

    /// Appends the rows of `more`.
    #[allow(clippy::cast_possible_truncation, clippy::cast_possible_wrap)]
    fn append(&mut self, more: &Self) {
        let shift = self.items.len() as i32;
        self.offsets
            .extend(more.offsets[1..].iter().map(|o| o.wrapping_add(shift)));
        self.items.append(&more.items);
        self.validity.extend_from_slice(&more.validity);
        self.nulls += more.nulls;
    }

    fn finish(self) -> Result<arrow_array::ListArray> {
        if i32::try_from(self.items.len()).is_err() {
            return Err(Error::InvalidArgument(
                "page condition lists exceed 2^31 items".into(),
            ));
        }
        let field = Arc::new(Field::new_list_field(DataType::Utf8, true));
        let offsets = arrow_buffer::OffsetBuffer::new(self.offsets.into());
        let nulls = StrCol::nulls(self.validity, self.nulls);
        Ok(arrow_array::ListArray::try_new(
            field,
            offsets,
            Arc::new(self.items.finish()?),
            nulls,
        )?)
    }
}

/// Column buffers the items are appended to.
struct Columns {
    kind: PageKind,
    options: PageOptions,
    symbols: StrCol,
    /// Rows whose symbol is not known yet (single-symbol shape, `"symbol"` after the data).
    pending: usize,
    ts: Vec<i64>,
    f: [Vec<f64>; 4],
    i: [Vec<i64>; 2],
    nullable_i: Vec<Option<i64>>,
    nullable_f: Vec<Option<f64>>,
    s: [StrCol; 3],
    conditions: ListCol,
}

impl Columns {
    /// Buffers sized for about `rows` items (an estimate from the page size).
    fn new(kind: PageKind, options: PageOptions, rows: usize) -> Self {
        let rows = rows.min(1 << 16);
        let strings = || StrCol::with_capacity(rows, rows * 2);
        Self {
            kind,
            options,
            symbols: StrCol::with_capacity(rows, rows * 5),
            pending: 0,
            ts: Vec::with_capacity(rows),
            f: std::array::from_fn(|_| Vec::with_capacity(rows)),
            i: std::array::from_fn(|_| Vec::with_capacity(rows)),
            nullable_i: Vec::with_capacity(rows),
            nullable_f: Vec::with_capacity(rows),
            s: [strings(), strings(), strings()],
            conditions: ListCol::with_capacity(rows),
        }
    }

    /// Appends the rows of `more` (parsed from the same array, further on).
    fn append(&mut self, more: &Self) {
        self.symbols.append(&more.symbols);
        self.pending += more.pending;
        self.ts.extend_from_slice(&more.ts);
        for (to, from) in self.f.iter_mut().zip(&more.f) {
            to.extend_from_slice(from);
        }
        for (to, from) in self.i.iter_mut().zip(&more.i) {
            to.extend_from_slice(from);
        }
        self.nullable_i.extend_from_slice(&more.nullable_i);
        self.nullable_f.extend_from_slice(&more.nullable_f);
        for (to, from) in self.s.iter_mut().zip(&more.s) {
            to.append(from);
        }
        self.conditions.append(&more.conditions);
    }

    fn push_symbol(&mut self, symbol: Option<&str>) {
        match symbol {
            Some(s) => self.symbols.push(Some(s)),
            None => self.pending += 1,
        }
    }

    fn finish(mut self, single_symbol: Option<&str>) -> Result<RecordBatch> {
        if self.pending > 0 {
            let symbol = single_symbol.ok_or_else(|| {
                Error::InvalidArgument("page has a bare array of items but no \"symbol\"".into())
            })?;
            for _ in 0..self.pending {
                self.symbols.push(Some(symbol));
            }
        }
        let ts: ArrayRef = Arc::new(
            TimestampNanosecondArray::from(std::mem::take(&mut self.ts)).with_timezone("UTC"),
        );
        let symbols: ArrayRef = Arc::new(self.symbols.finish()?);
        let [f0, f1, f2, f3] = self.f;
        let [i0, i1] = self.i;
        let [s0, s1, s2] = self.s;
        let f = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
        let i = |v: Vec<i64>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let s = |b: StrCol| -> Result<ArrayRef> { Ok(Arc::new(b.finish()?) as ArrayRef) };
        let (schema, columns): (SchemaRef, Vec<ArrayRef>) = match self.kind {
            PageKind::Trades => (
                trade_schema(),
                vec![
                    symbols,
                    ts,
                    f(f0),
                    i(i0),
                    s(s0)?,
                    Arc::new(Int64Array::from(self.nullable_i)),
                    Arc::new(self.conditions.finish()?),
                    s(s1)?,
                    s(s2)?,
                ],
            ),
            PageKind::Quotes => (
                raw_quote_schema(),
                vec![
                    symbols,
                    ts,
                    f(f0),
                    i(i0),
                    f(f1),
                    i(i1),
                    s(s0)?,
                    s(s1)?,
                    Arc::new(self.conditions.finish()?),
                    s(s2)?,
                ],
            ),
            PageKind::Bars => (
                api_bar_schema(),
                vec![
                    symbols,
                    ts,
                    f(f0),
                    f(f1),
                    f(f2),
                    f(f3),
                    i(i0),
                    Arc::new(Float64Array::from(self.nullable_f)),
                    Arc::new(Int64Array::from(self.nullable_i)),
                ],
            ),
        };
        Ok(RecordBatch::try_new(schema, columns)?)
    }
}

type Scan<T> = std::result::Result<T, String>;

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
struct Scanner<'a> {
    b: &'a [u8],
    pos: usize,
    days: DayCache,
}

/// A JSON number as read: an exact integer when it has no fraction or exponent.
enum Number {
    Int(i64),
    Float(f64),
}

impl<'a> Scanner<'a> {
    #[cold]
    #[inline(never)]
    fn fail<T>(&self, what: &str) -> Scan<T> {
        Err(format!("{what} at byte {}", self.pos))
    }

    #[inline]
    fn peek(&mut self) -> Option<u8> {
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
    fn eat(&mut self, c: u8) -> bool {
        if self.peek() == Some(c) {
            self.pos += 1;
            true
        } else {
            false
        }
    }

    #[inline]
    fn expect(&mut self, c: u8) -> Scan<()> {
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
    fn null(&mut self) -> Scan<bool> {
        if self.peek() == Some(b'n') {
            self.literal(b"null")?;
            Ok(true)
        } else {
            Ok(false)
        }
    }

    #[inline]
    fn string(&mut self) -> Scan<Cow<'a, str>> {
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
            #[allow(clippy::cast_precision_loss)]
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
    fn float(&mut self) -> Scan<f64> {
        #[allow(clippy::cast_precision_loss)]
        match self.number()? {
            Number::Int(v) => Ok(v as f64),
            Number::Float(v) => Ok(v),
        }
    }

    /// An integer; a float is accepted when it is whole (adjusted volumes).
    #[inline]
    fn whole(&mut self) -> Scan<i64> {
        match self.number()? {
            Number::Int(v) => Ok(v),
            #[allow(clippy::cast_possible_truncation)]
            Number::Float(v) if v.fract() == 0.0 && v.abs() < 9.0e18 => Ok(v as i64),
            Number::Float(v) => self.fail(&format!("{v} is not a whole number")),
        }
    }

    /// An RFC-3339 timestamp string as UTC nanoseconds.
    #[inline]
    fn timestamp(&mut self) -> Scan<i64> {
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
    fn opt_string(&mut self) -> Scan<Option<Cow<'a, str>>> {
        if self.null()? {
            Ok(None)
        } else {
            self.string().map(Some)
        }
    }

    fn skip(&mut self, depth: usize) -> Scan<()> {
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
    fn object(&mut self, mut field: impl FnMut(&mut Self, Cow<'a, str>) -> Scan<()>) -> Scan<()> {
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
    fn array(&mut self, mut item: impl FnMut(&mut Self) -> Scan<()>) -> Scan<()> {
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

fn missing(what: &str, key: &str, pos: usize) -> String {
    format!("{what} without \"{key}\" ending at byte {pos}")
}

impl Columns {
    /// Appends the condition codes of one item (`null` = no list).
    #[inline]
    fn conditions(&mut self, scan: &mut Scanner<'_>) -> Scan<bool> {
        if scan.null()? {
            return Ok(false);
        }
        let items = &mut self.conditions.items;
        scan.array(|s| {
            let code = s.string()?;
            items.push(Some(&code));
            Ok(())
        })?;
        Ok(true)
    }

    fn trade(&mut self, scan: &mut Scanner<'_>, symbol: Option<&str>) -> Scan<()> {
        let (mut t, mut p, mut size, mut id) = (None, None, None, None);
        let (mut x, mut z, mut u, mut has_c) = (None, None, None, false);
        scan.object(|s, key| {
            match key.as_ref() {
                "t" => t = Some(s.timestamp()?),
                "p" => p = Some(s.float()?),
                "s" => size = Some(s.whole()?),
                "i" => id = if s.null()? { None } else { Some(s.whole()?) },
                "x" => x = s.opt_string()?,
                "z" => z = s.opt_string()?,
                "u" => u = s.opt_string()?,
                "c" => has_c = self.conditions(s)?,
                _ => s.skip(0)?,
            }
            Ok(())
        })?;
        let end = scan.pos;
        self.ts.push(t.ok_or_else(|| missing("trade", "t", end))?);
        self.f[0].push(p.ok_or_else(|| missing("trade", "p", end))?);
        self.i[0].push(size.ok_or_else(|| missing("trade", "s", end))?);
        self.push_symbol(symbol);
        self.s[0].push(x.as_deref());
        self.nullable_i.push(id);
        self.conditions.end_row(has_c);
        self.s[1].push(z.as_deref());
        self.s[2].push(u.as_deref());
        Ok(())
    }

    fn quote(&mut self, scan: &mut Scanner<'_>, symbol: Option<&str>) -> Scan<()> {
        let (mut t, mut bp, mut ap, mut bs, mut as_) = (None, None, None, None, None);
        let (mut bx, mut ax, mut z, mut has_c) = (None, None, None, false);
        scan.object(|s, key| {
            match key.as_ref() {
                "t" => t = Some(s.timestamp()?),
                "bp" => bp = Some(s.float()?),
                "ap" => ap = Some(s.float()?),
                "bs" => bs = Some(s.whole()?),
                "as" => as_ = Some(s.whole()?),
                "bx" => bx = s.opt_string()?,
                "ax" => ax = s.opt_string()?,
                "z" => z = s.opt_string()?,
                "c" => has_c = self.conditions(s)?,
                _ => s.skip(0)?,
            }
            Ok(())
        })?;
        let end = scan.pos;
        let ts = t.ok_or_else(|| missing("quote", "t", end))?;
        let lots = if self.options.lots_to_shares && ts < SHARES_SINCE_NS {
            100
        } else {
            1
        };
        let size = |v: Option<i64>, key: &str| -> Scan<i64> {
            let v = v.ok_or_else(|| missing("quote", key, end))?;
            v.checked_mul(lots)
                .ok_or_else(|| format!("quote size {v} overflows int64 at byte {end}"))
        };
        self.ts.push(ts);
        self.f[0].push(bp.ok_or_else(|| missing("quote", "bp", end))?);
        self.i[0].push(size(bs, "bs")?);
        self.f[1].push(ap.ok_or_else(|| missing("quote", "ap", end))?);
        self.i[1].push(size(as_, "as")?);
        self.push_symbol(symbol);
        self.s[0].push(bx.as_deref());
        self.s[1].push(ax.as_deref());
        self.conditions.end_row(has_c);
        self.s[2].push(z.as_deref());
        Ok(())
    }

    fn bar(&mut self, scan: &mut Scanner<'_>, symbol: Option<&str>) -> Scan<()> {
        let mut t = None;
        let mut ohlc = [None; 4];
        let (mut v, mut n, mut vw) = (None, None, None);
        scan.object(|s, key| {
            match key.as_ref() {
                "t" => t = Some(s.timestamp()?),
                "o" => ohlc[0] = Some(s.float()?),
                "h" => ohlc[1] = Some(s.float()?),
                "l" => ohlc[2] = Some(s.float()?),
                "c" => ohlc[3] = Some(s.float()?),
                "v" => v = Some(s.whole()?),
                "n" => n = if s.null()? { None } else { Some(s.whole()?) },
                "vw" => vw = if s.null()? { None } else { Some(s.float()?) },
                _ => s.skip(0)?,
            }
            Ok(())
        })?;
        let end = scan.pos;
        let mut ts = t.ok_or_else(|| missing("bar", "t", end))?;
        if self.options.daily_labels {
            ts = date_label(ny_date(ts));
        }
        let mut values = [0.0; 4];
        for (slot, (value, key)) in values.iter_mut().zip(ohlc.iter().zip(["o", "h", "l", "c"])) {
            *slot = value.ok_or_else(|| missing("bar", key, end))?;
        }
        self.ts.push(ts);
        for (column, value) in self.f.iter_mut().zip(values) {
            column.push(value);
        }
        self.i[0].push(v.ok_or_else(|| missing("bar", "v", end))?);
        self.nullable_f.push(vw);
        self.nullable_i.push(n);
        self.push_symbol(symbol);
        Ok(())
    }

    /// One item of the page's kind.
    #[inline]
    fn item(&mut self, scan: &mut Scanner<'_>, symbol: Option<&str>) -> Scan<()> {
        match self.kind {
            PageKind::Trades => self.trade(scan, symbol),
            PageKind::Quotes => self.quote(scan, symbol),
            PageKind::Bars => self.bar(scan, symbol),
        }
    }

    /// One array of items (or `null`) for `symbol` (None: the single-symbol shape, filled in at the end).
    fn items(&mut self, scan: &mut Scanner<'_>, symbol: Option<&str>) -> Scan<()> {
        if scan.null()? {
            return Ok(());
        }
        if self.options.threads > 1 && scan.b.len() - scan.pos >= SPLIT_MIN_BYTES {
            if let Some(cut) = guess_item_start(scan.b, scan.pos + (scan.b.len() - scan.pos) / 2) {
                return self.items_split(scan, symbol, cut);
            }
        }
        scan.array(|s| self.item(s, symbol))
    }

    /// [`Columns::items`] on two threads: another thread parses from `cut` (a guessed item start half way
    /// through the page) to the end of the array while this one parses from the start. When this thread's own
    /// parse arrives at `cut` between two items, the guess was right and the other half is taken as it is
    /// (same parser, absolute byte offsets, so even its errors read the same); otherwise it is dropped and this
    /// thread goes on alone.
    fn items_split(
        &mut self,
        scan: &mut Scanner<'_>,
        symbol: Option<&str>,
        cut: usize,
    ) -> Scan<()> {
        let stop = AtomicBool::new(false);
        let (kind, options, bytes) = (self.kind, self.options, scan.b);
        thread::scope(|scope| {
            let rest = scope.spawn(|| {
                let mut more = Columns::new(kind, options, (bytes.len() - cut) / 64);
                let mut tail = Scanner {
                    b: bytes,
                    pos: cut,
                    days: DayCache::default(),
                };
                more.items_after(&mut tail, symbol, Some(&stop))
                    .map(|()| (more, tail.pos))
            });
            let result = self.items_up_to(scan, symbol, cut, rest);
            stop.store(true, Ordering::Relaxed);
            result
        })
    }

    /// The first half of [`Columns::items_split`].
    fn items_up_to<'s>(
        &mut self,
        scan: &mut Scanner<'_>,
        symbol: Option<&str>,
        cut: usize,
        rest: thread::ScopedJoinHandle<'s, Scan<(Columns, usize)>>,
    ) -> Scan<()> {
        scan.expect(b'[')?;
        if scan.eat(b']') {
            return Ok(());
        }
        loop {
            self.item(scan, symbol)?;
            if !scan.eat(b',') {
                return scan.expect(b']');
            }
            if scan.peek().is_some() && scan.pos == cut {
                let (more, end) = rest
                    .join()
                    .unwrap_or_else(|panic| std::panic::resume_unwind(panic))?;
                self.append(&more);
                scan.pos = end;
                return Ok(());
            }
            if scan.pos > cut {
                return self.items_after(scan, symbol, None);
            }
        }
    }

    /// The items from the one at `scan` (after a `,`) up to and including the closing `]`; gives up (with an
    /// empty error) once `stop` is set.
    fn items_after(
        &mut self,
        scan: &mut Scanner<'_>,
        symbol: Option<&str>,
        stop: Option<&AtomicBool>,
    ) -> Scan<()> {
        loop {
            if stop.is_some_and(|s| s.load(Ordering::Relaxed)) {
                return Err(String::new());
            }
            self.item(scan, symbol)?;
            if !scan.eat(b',') {
                return scan.expect(b']');
            }
        }
    }
}

/// Arrays of items shorter than this many bytes (about 1,300 trades) are parsed on one thread.
const SPLIT_MIN_BYTES: usize = 128 * 1024;

/// A likely item start at or after `from`: the `{` of the first `},{` there. Only a guess (the bytes could sit in
/// a string); [`Columns::items_split`] checks it.
fn guess_item_start(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(3)
        .position(|w| w == b"},{")
        .map(|at| from + at + 2)
}

/// Parses one page of `kind` from its JSON bytes.
///
/// # Errors
/// [`Error::InvalidArgument`] describing the JSON problem and its byte offset.
pub fn parse_page(bytes: &[u8], kind: PageKind, options: PageOptions) -> Result<Page> {
    let mut columns = Columns::new(kind, options, bytes.len() / 64);
    let mut scan = Scanner {
        b: bytes,
        pos: 0,
        days: DayCache::default(),
    };
    let (mut token, mut single_symbol) = (None, None);
    let mut walk = |scan: &mut Scanner<'_>| -> Scan<()> {
        scan.object(|s, key| {
            if key == kind.key() {
                match s.peek() {
                    // Multi-symbol shape: symbol -> items.
                    Some(b'{') => s.object(|s, symbol| columns.items(s, Some(&symbol))),
                    // Single-symbol shape, or null.
                    _ => columns.items(s, None),
                }
            } else if key == "next_page_token" {
                token = s
                    .opt_string()?
                    .map(Cow::into_owned)
                    .filter(|t| !t.is_empty());
                Ok(())
            } else if key == "symbol" {
                single_symbol = s.opt_string()?.map(Cow::into_owned);
                Ok(())
            } else {
                s.skip(0)
            }
        })?;
        if scan.peek().is_some() {
            return scan.fail("trailing characters");
        }
        Ok(())
    };
    // A page without the data key is an empty page (ALPACA.md §5.1).
    walk(&mut scan)
        .map_err(|e| Error::InvalidArgument(format!("malformed {} page: {e}", kind.key())))?;
    let batch = columns.finish(single_symbol.as_deref())?;
    Ok(Page {
        batch,
        next_page_token: token,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use arrow_array::cast::AsArray;
    use arrow_array::types::{Float64Type, Int64Type, TimestampNanosecondType};

    #[test]
    fn timestamps_keep_nanoseconds_and_accept_any_fraction() {
        let base = parse_rfc3339("2022-01-03T09:00:00Z").unwrap();
        assert_eq!(base, 1_641_200_400_000_000_000);
        assert_eq!(
            parse_rfc3339("2022-01-03T09:00:00.086175744Z").unwrap(),
            base + 86_175_744
        );
        assert_eq!(
            parse_rfc3339("2022-01-03T09:00:00.24483968Z").unwrap(),
            base + 244_839_680
        );
        assert_eq!(
            parse_rfc3339("2022-01-03T09:00:00.9Z").unwrap(),
            base + 900_000_000
        );
        assert_eq!(parse_rfc3339("2022-01-03T04:00:00-05:00").unwrap(), base);
        for bad in [
            "",
            "2022-01-03",
            "2022-01-03T09:00:00",
            "2022-01-03T09:00:00.Z",
            "2022-13-03T09:00:00Z",
            "2022-01-03T09:00:00.1234567890Z",
            "2024-02-30T09:00:00Z",
            "2023-02-29T09:00:00Z",
            "2024-04-31T09:00:00Z",
            "2024-01-03T09:00:00+25:00",
            "2024-01-03T09:00:00-04:60",
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
        // Leap days exist where the calendar has them.
        assert!(parse_rfc3339("2024-02-29T09:00:00Z").is_ok());
        assert!(parse_rfc3339("2000-02-29T09:00:00Z").is_ok());
        assert!(parse_rfc3339("1900-02-29T09:00:00Z").is_err());
        assert!(parse_rfc3339("2024-01-03T09:00:00+23:59").is_ok());
    }

    #[test]
    fn single_and_multi_trade_pages() {
        let single = br#"{"trades": [{"t": "2022-01-03T17:00:00.029591476Z", "x": "Q", "p": 181.47, "s": 1, "c": ["@", "I"], "i": 73833, "z": "C"}], "symbol": "AAPL", "next_page_token": "abc"}"#;
        let page = parse_page(single, PageKind::Trades, PageOptions::default()).unwrap();
        assert_eq!(page.next_page_token.as_deref(), Some("abc"));
        assert_eq!(page.batch.column(0).as_string::<i32>().value(0), "AAPL");
        assert_eq!(
            page.batch.column(5).as_primitive::<Int64Type>().value(0),
            73833
        );
        let multi = br#"{"trades":{"AAPL":[{"t":"2022-03-09T05:00:02.183Z","x":"D","p":159.07,"s":1,"c":["@","T","I"],"i":151,"z":"C","u":"canceled"}],"TSLA":[{"t":"2022-03-09T05:08:03.035Z","x":"D","p":833,"s":1,"c":["@"],"i":145,"z":"C"}]},"next_page_token":null}"#;
        let page = parse_page(multi, PageKind::Trades, PageOptions::default()).unwrap();
        assert_eq!(page.next_page_token, None);
        assert_eq!(page.batch.num_rows(), 2);
        assert_eq!(
            page.batch.column(2).as_primitive::<Float64Type>().value(1),
            833.0
        );
        assert_eq!(page.batch.column(8).as_string::<i32>().value(0), "canceled");
        assert!(page.batch.column(8).is_null(1));
        for empty in [
            &br#"{"trades":{},"next_page_token":null}"#[..],
            br#"{"trades":null,"symbol":"A","next_page_token":null}"#,
            br#"{"next_page_token":null}"#,
            br#"{"trades":[],"symbol":"A"}"#,
        ] {
            assert_eq!(
                parse_page(empty, PageKind::Trades, PageOptions::default())
                    .unwrap()
                    .batch
                    .num_rows(),
                0
            );
        }
    }

    #[test]
    fn quotes_in_lots_become_shares_and_daily_bars_are_relabelled() {
        let q = br#"{"quotes":{"AAPL":[{"t":"2022-03-09T09:00:00.000059Z","ax":"K","ap":158.65,"as":1,"bx":"Q","bp":159.52,"bs":4,"c":["R"],"z":"C"},{"t":"2025-11-03T15:00:00Z","ax":"K","ap":1,"as":7,"bx":"Q","bp":1,"bs":4,"c":["R"],"z":"C"}]},"next_page_token":null}"#;
        let opts = PageOptions {
            lots_to_shares: true,
            ..PageOptions::default()
        };
        let page = parse_page(q, PageKind::Quotes, opts).unwrap();
        let sizes = page.batch.column(3).as_primitive::<Int64Type>();
        assert_eq!((sizes.value(0), sizes.value(1)), (400, 4));
        let b = br#"{"bars":[{"t":"2023-09-29T04:00:00Z","o":172.02,"h":173.07,"l":170.341,"c":171.21,"v":51861083,"n":535134,"vw":171.599691}],"symbol":"AAPL","next_page_token":null}"#;
        let opts = PageOptions {
            daily_labels: true,
            ..PageOptions::default()
        };
        let page = parse_page(b, PageKind::Bars, opts).unwrap();
        let ts = page
            .batch
            .column(1)
            .as_primitive::<TimestampNanosecondType>()
            .value(0);
        assert_eq!(ts, parse_rfc3339("2023-09-29T00:00:00Z").unwrap());
    }

    #[test]
    fn malformed_pages_are_errors_not_panics() {
        for bad in [
            &b"{"[..],
            b"[]",
            br#"{"trades": 5}"#,
            br#"{"trades":[{"t":"x","p":1,"s":1}]}"#,
            br#"{"trades":[{"t":"2022-01-03T09:00:00Z","p":1,"s":-1.5}],"symbol":"A"}"#,
            br#"{"trades":[{"t":"2022-01-03T09:00:00Z","p":1,"s":1}]}"#,
            b"{} trailing",
        ] {
            assert!(
                parse_page(bad, PageKind::Trades, PageOptions::default()).is_err(),
                "{}",
                String::from_utf8_lossy(bad)
            );
        }
    }

    /// Trade items; `odd(i)` may replace item `i`'s JSON.
    fn trade_items(n: usize, odd: impl Fn(usize) -> Option<String>) -> Vec<String> {
        (0..n)
            .map(|i| {
                odd(i).unwrap_or_else(|| {
                    format!(
                        r#"{{"t":"2024-04-16T{:02}:{:02}:{:02}.{:09}Z","x":"D","p":{}.{:02},"s":{},"c":["@","T"],"i":{i},"z":"C"}}"#,
                        8 + i / 3600 % 12,
                        i / 60 % 60,
                        i % 60,
                        i * 7919 % 1_000_000_000,
                        100 + i % 50,
                        i % 100,
                        1 + i % 700,
                    )
                })
            })
            .collect()
    }

    /// The page parsed on one thread and on two, as text (rows or the error).
    fn both_ways(page: &str, kind: PageKind) -> [String; 2] {
        [1, 2].map(|threads| {
            let options = PageOptions {
                threads,
                ..PageOptions::default()
            };
            match parse_page(page.as_bytes(), kind, options) {
                Ok(p) => format!("{:?} {:?}", p.batch, p.next_page_token),
                Err(e) => format!("error: {e}"),
            }
        })
    }

    #[test]
    fn two_threads_parse_exactly_what_one_does() {
        let n = 4000;
        let plain = trade_items(n, |_| None).join(",");
        assert!(plain.len() > 2 * SPLIT_MIN_BYTES);
        // A condition code holding the "},{" the cut is guessed from, just after the middle.
        let decoy = trade_items(n, |i| {
            (i == n / 2).then(|| {
                r#"{"t":"2024-04-16T10:00:00Z","p":1,"s":1,"c":["},{","\"},{"],"z":"C"}"#.into()
            })
        })
        .join(",");
        let late_error = trade_items(n, |i| {
            (i == n - 10).then(|| r#"{"t":"2024-04-16T10:00:00Z","p":"x","s":1}"#.into())
        })
        .join(",");
        let early_error = trade_items(n, |i| {
            (i == 10).then(|| r#"{"t":"2024-04-16T10:00:00Z","s":1}"#.into())
        })
        .join(",");
        let small = trade_items(5, |_| None).join(",");
        let pages = [
            format!(r#"{{"trades":{{"AAPL":[{plain}]}},"next_page_token":"QQ"}}"#),
            format!(r#"{{"trades":[{plain}],"symbol":"AAPL","next_page_token":null}}"#),
            format!(r#"{{"trades":{{"AAPL":[{decoy}]}},"next_page_token":null}}"#),
            format!(r#"{{"trades":{{"AAPL":[{late_error}]}}}}"#),
            format!(r#"{{"trades":{{"AAPL":[{early_error}]}}}}"#),
            // The cut guessed from the first array lands in the second.
            format!(r#"{{"trades":{{"AAPL":[{small}],"MSFT":[{plain}]}}}}"#),
            format!(r#"{{"trades":{{"AAPL":[{plain}],"MSFT":[{plain}],"IBM":[{small}]}}}}"#),
            format!(r#"{{"trades":{{"AAPL":[{plain}  ]}}}}"#),
            format!(r#"{{"trades":{{"AAPL":[{plain}"#),
        ];
        for (k, page) in pages.iter().enumerate() {
            let [one, two] = both_ways(page, PageKind::Trades);
            assert_eq!(one, two, "page {k}");
        }
        let [ok, _] = both_ways(&pages[0], PageKind::Trades);
        assert!(ok.contains("QQ") && !ok.starts_with("error"));
        let [late, _] = both_ways(&pages[3], PageKind::Trades);
        assert!(late.starts_with("error"), "{late}");
    }

    /// Rows or the error of one array parsed by [`Columns::items_split`] with the cut forced to `cut`.
    fn split_at(array: &str, cut: usize) -> String {
        let options = PageOptions {
            threads: 2,
            ..PageOptions::default()
        };
        let mut columns = Columns::new(PageKind::Trades, options, 0);
        let mut scan = Scanner {
            b: array.as_bytes(),
            pos: 0,
            days: DayCache::default(),
        };
        match columns.items_split(&mut scan, Some("AAPL"), cut) {
            Ok(()) => format!("{:?} at {}", columns.finish(None).unwrap(), scan.pos),
            Err(e) => format!("error: {e}"),
        }
    }

    #[test]
    fn a_wrong_cut_is_noticed_and_a_right_one_is_used() {
        let items = trade_items(50, |i| {
            (i == 20)
                .then(|| r#"{"t":"2024-04-16T10:00:00Z","p":1,"s":1,"z":"},{\"t\":1}"}"#.into())
        });
        let array = format!("[{}]", items.join(","));
        let whole = split_at(&array, array.len());
        assert!(!whole.starts_with("error"), "{whole}");
        // Every item start, every "{" inside the decoy string, and places that are no item start at all.
        let decoys: Vec<usize> = array.match_indices('{').map(|(at, _)| at).collect();
        for cut in decoys.into_iter().chain([1, 2, 17, array.len() - 1]) {
            assert_eq!(split_at(&array, cut), whole, "cut at {cut}");
        }
    }
}
