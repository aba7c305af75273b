//! Alpaca market-data JSON pages -> Arrow (ALPACA.md §5): the multi-symbol shape
//! (`{"trades": {"AAPL": [...]}, "next_page_token": ...}`) and the single-symbol shape
//! (`{"trades": [...], "symbol": "AAPL", ...}`), with `null`, `[]` or missing arrays. Items are appended straight
//! into column buffers while serde walks the bytes: no intermediate value per row beyond a trade's condition list.
//!
//! Timestamps are RFC-3339 with 0-9 fractional digits (and `Z` or an offset), kept to the nanosecond. Prices may
//! be integral (`"p": 833`). Quote sizes before 2025-11-03 (New York) are round lots and are converted to shares
//! when asked (SPEC §3.2). Daily bars (stamped at New York midnight) can be relabelled to the date at 00:00 UTC.

use std::borrow::Cow;
use std::fmt;
use std::sync::Arc;

use arrow_array::builder::{ListBuilder, StringBuilder};
use arrow_array::{ArrayRef, Float64Array, Int64Array, RecordBatch, TimestampNanosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef};
use serde::de::{self, DeserializeSeed, Deserializer, IgnoredAny, MapAccess, SeqAccess, Visitor};
use serde::Deserialize;

use crate::error::{Error, Result};
use crate::schema::utc_ns;
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

/// The schema of parsed trades (SPEC §2 trades).
#[must_use]
pub fn trade_schema() -> SchemaRef {
    Arc::new(Schema::new(vec![
        Field::new("symbol", DataType::Utf8, false),
        Field::new("timestamp", utc_ns(), false),
        Field::new("price", DataType::Float64, false),
        Field::new("size", DataType::Int64, false),
        Field::new("exchange", DataType::Utf8, true),
        Field::new("id", DataType::Int64, true),
        Field::new(
            "conditions",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            true,
        ),
        Field::new("tape", DataType::Utf8, true),
        Field::new("update", DataType::Utf8, true),
    ]))
}

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
        Field::new(
            "conditions",
            DataType::List(Arc::new(Field::new_list_field(DataType::Utf8, true))),
            true,
        ),
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
    let b = text.as_bytes();
    let bad = || format!("bad RFC-3339 timestamp {text:?}");
    let num = |range: std::ops::Range<usize>| -> std::result::Result<i64, String> {
        let mut v = 0i64;
        for &c in b.get(range).ok_or_else(bad)? {
            if !c.is_ascii_digit() {
                return Err(bad());
            }
            v = v * 10 + i64::from(c - b'0');
        }
        Ok(v)
    };
    if b.len() < 20
        || b[4] != b'-'
        || b[7] != b'-'
        || !matches!(b[10], b'T' | b't' | b' ')
        || b[13] != b':'
        || b[16] != b':'
    {
        return Err(bad());
    }
    let (year, month, day) = (num(0..4)?, num(5..7)?, num(8..10)?);
    let (hour, minute, second) = (num(11..13)?, num(14..16)?, num(17..19)?);
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return Err(bad());
    }
    let mut pos = 19;
    let mut nanos = 0i64;
    if b.get(pos) == Some(&b'.') {
        pos += 1;
        let start = pos;
        while pos < b.len() && b[pos].is_ascii_digit() {
            pos += 1;
        }
        let digits = pos - start;
        if digits == 0 || digits > 9 {
            return Err(bad());
        }
        nanos = num(start..pos)? * 10i64.pow(u32::try_from(9 - digits).map_err(|_| bad())?);
    }
    let offset = match b.get(pos) {
        Some(b'Z' | b'z') if pos + 1 == b.len() => 0,
        Some(&sign @ (b'+' | b'-')) if pos + 6 == b.len() && b[pos + 3] == b':' => {
            let minutes = num(pos + 1..pos + 3)? * 60 + num(pos + 4..pos + 6)?;
            if sign == b'+' {
                minutes
            } else {
                -minutes
            }
        }
        _ => return Err(bad()),
    };
    // Days from the civil date (Howard Hinnant's algorithm), then seconds.
    let y = if month <= 2 { year - 1 } else { year };
    let era = y.div_euclid(400);
    let yoe = y - era * 400;
    let mp = (month + 9) % 12;
    let doy = (153 * mp + 2) / 5 + day - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    let days = era * 146_097 + doe - 719_468;
    let seconds = days * 86_400 + hour * 3_600 + minute * 60 + second - offset * 60;
    seconds
        .checked_mul(1_000_000_000)
        .and_then(|s| s.checked_add(nanos))
        .ok_or_else(bad)
}

/// An integer that may arrive as a JSON float with no fractional part (adjusted volumes).
struct WholeNumber(i64);

impl<'de> Deserialize<'de> for WholeNumber {
    fn deserialize<D: Deserializer<'de>>(d: D) -> std::result::Result<Self, D::Error> {
        struct V;
        impl Visitor<'_> for V {
            type Value = WholeNumber;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a whole number")
            }
            fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<WholeNumber, E> {
                i64::try_from(v)
                    .map(WholeNumber)
                    .map_err(|_| E::custom(format!("{v} is above the int64 range")))
            }
            fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<WholeNumber, E> {
                Ok(WholeNumber(v))
            }
            #[allow(clippy::cast_possible_truncation)]
            fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<WholeNumber, E> {
                if v.is_finite() && v.fract() == 0.0 && v.abs() < 9.0e18 {
                    Ok(WholeNumber(v as i64))
                } else {
                    Err(E::custom(format!("{v} is not a whole number")))
                }
            }
        }
        d.deserialize_any(V)
    }
}

#[derive(Deserialize)]
struct TradeItem<'a> {
    #[serde(borrow)]
    t: Cow<'a, str>,
    #[serde(borrow, default)]
    x: Option<Cow<'a, str>>,
    p: f64,
    s: WholeNumber,
    #[serde(default)]
    i: Option<WholeNumber>,
    #[serde(borrow, default)]
    c: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    z: Option<Cow<'a, str>>,
    #[serde(borrow, default)]
    u: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct QuoteItem<'a> {
    #[serde(borrow)]
    t: Cow<'a, str>,
    #[serde(borrow, default)]
    bx: Option<Cow<'a, str>>,
    bp: f64,
    bs: WholeNumber,
    #[serde(borrow, default)]
    ax: Option<Cow<'a, str>>,
    ap: f64,
    #[serde(rename = "as")]
    as_: WholeNumber,
    #[serde(borrow, default)]
    c: Option<Vec<Cow<'a, str>>>,
    #[serde(borrow, default)]
    z: Option<Cow<'a, str>>,
}

#[derive(Deserialize)]
struct BarItem<'a> {
    #[serde(borrow)]
    t: Cow<'a, str>,
    o: f64,
    h: f64,
    l: f64,
    c: f64,
    v: WholeNumber,
    #[serde(default)]
    n: Option<WholeNumber>,
    #[serde(default)]
    vw: Option<f64>,
}

/// Column buffers the items are appended to.
struct Columns {
    kind: PageKind,
    options: PageOptions,
    symbols: StringBuilder,
    /// Rows whose symbol is not known yet (single-symbol shape, `"symbol"` after the data).
    pending: usize,
    ts: Vec<i64>,
    f: [Vec<f64>; 4],
    i: [Vec<i64>; 2],
    nullable_i: Vec<Option<i64>>,
    nullable_f: Vec<Option<f64>>,
    s: [StringBuilder; 3],
    conditions: ListBuilder<StringBuilder>,
}

impl Columns {
    fn new(kind: PageKind, options: PageOptions) -> Self {
        Self {
            kind,
            options,
            symbols: StringBuilder::new(),
            pending: 0,
            ts: Vec::new(),
            f: Default::default(),
            i: Default::default(),
            nullable_i: Vec::new(),
            nullable_f: Vec::new(),
            s: [
                StringBuilder::new(),
                StringBuilder::new(),
                StringBuilder::new(),
            ],
            conditions: ListBuilder::new(StringBuilder::new()),
        }
    }

    fn timestamp<E: de::Error>(text: &str) -> std::result::Result<i64, E> {
        parse_rfc3339(text).map_err(E::custom)
    }

    fn push_conditions(&mut self, c: Option<Vec<Cow<'_, str>>>) {
        match c {
            Some(codes) => {
                for code in codes {
                    self.conditions.values().append_value(code);
                }
                self.conditions.append(true);
            }
            None => self.conditions.append(false),
        }
    }

    fn push_symbol(&mut self, symbol: Option<&str>) {
        match symbol {
            Some(s) => self.symbols.append_value(s),
            None => self.pending += 1,
        }
    }

    fn push_trade<E: de::Error>(
        &mut self,
        item: TradeItem<'_>,
        symbol: Option<&str>,
    ) -> std::result::Result<(), E> {
        self.ts.push(Self::timestamp(&item.t)?);
        self.push_symbol(symbol);
        self.f[0].push(item.p);
        self.i[0].push(item.s.0);
        self.s[0].append_option(item.x);
        self.nullable_i.push(item.i.map(|v| v.0));
        self.push_conditions(item.c);
        self.s[1].append_option(item.z);
        self.s[2].append_option(item.u);
        Ok(())
    }

    fn push_quote<E: de::Error>(
        &mut self,
        item: QuoteItem<'_>,
        symbol: Option<&str>,
    ) -> std::result::Result<(), E> {
        let ts = Self::timestamp(&item.t)?;
        let lots = if self.options.lots_to_shares && ts < SHARES_SINCE_NS {
            100
        } else {
            1
        };
        let size = |v: i64| {
            v.checked_mul(lots)
                .ok_or_else(|| E::custom(format!("quote size {v} overflows int64")))
        };
        self.ts.push(ts);
        self.push_symbol(symbol);
        self.f[0].push(item.bp);
        self.i[0].push(size(item.bs.0)?);
        self.f[1].push(item.ap);
        self.i[1].push(size(item.as_.0)?);
        self.s[0].append_option(item.bx);
        self.s[1].append_option(item.ax);
        self.push_conditions(item.c);
        self.s[2].append_option(item.z);
        Ok(())
    }

    fn push_bar<E: de::Error>(
        &mut self,
        item: BarItem<'_>,
        symbol: Option<&str>,
    ) -> std::result::Result<(), E> {
        let mut ts = Self::timestamp(&item.t)?;
        if self.options.daily_labels {
            ts = date_label(ny_date(ts));
        }
        self.ts.push(ts);
        self.push_symbol(symbol);
        self.f[0].push(item.o);
        self.f[1].push(item.h);
        self.f[2].push(item.l);
        self.f[3].push(item.c);
        self.i[0].push(item.v.0);
        self.nullable_f.push(item.vw);
        self.nullable_i.push(item.n.map(|v| v.0));
        Ok(())
    }

    fn finish(mut self, single_symbol: Option<&str>) -> Result<RecordBatch> {
        if self.pending > 0 {
            let symbol = single_symbol.ok_or_else(|| {
                Error::InvalidArgument("page has a bare array of items but no \"symbol\"".into())
            })?;
            for _ in 0..self.pending {
                self.symbols.append_value(symbol);
            }
        }
        let ts: ArrayRef = Arc::new(
            TimestampNanosecondArray::from(std::mem::take(&mut self.ts)).with_timezone("UTC"),
        );
        let symbols: ArrayRef = Arc::new(self.symbols.finish());
        let [f0, f1, f2, f3] = self.f;
        let [i0, i1] = self.i;
        let [mut s0, mut s1, mut s2] = self.s;
        let f = |v: Vec<f64>| -> ArrayRef { Arc::new(Float64Array::from(v)) };
        let i = |v: Vec<i64>| -> ArrayRef { Arc::new(Int64Array::from(v)) };
        let s = |b: &mut StringBuilder| -> ArrayRef { Arc::new(b.finish()) as ArrayRef };
        let (schema, columns): (SchemaRef, Vec<ArrayRef>) = match self.kind {
            PageKind::Trades => (
                trade_schema(),
                vec![
                    symbols,
                    ts,
                    f(f0),
                    i(i0),
                    s(&mut s0),
                    Arc::new(Int64Array::from(self.nullable_i)),
                    Arc::new(self.conditions.finish()),
                    s(&mut s1),
                    s(&mut s2),
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
                    s(&mut s0),
                    s(&mut s1),
                    Arc::new(self.conditions.finish()),
                    s(&mut s2),
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

/// Appends one array of items (or nothing, for `null`).
struct Items<'c> {
    columns: &'c mut Columns,
    symbol: Option<&'c str>,
}

impl<'de> DeserializeSeed<'de> for Items<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Items<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("an array of items or null")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_none<E: de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> std::result::Result<(), A::Error> {
        match self.columns.kind {
            PageKind::Trades => {
                while let Some(item) = seq.next_element::<TradeItem<'de>>()? {
                    self.columns.push_trade(item, self.symbol)?;
                }
            }
            PageKind::Quotes => {
                while let Some(item) = seq.next_element::<QuoteItem<'de>>()? {
                    self.columns.push_quote(item, self.symbol)?;
                }
            }
            PageKind::Bars => {
                while let Some(item) = seq.next_element::<BarItem<'de>>()? {
                    self.columns.push_bar(item, self.symbol)?;
                }
            }
        }
        Ok(())
    }
}

/// The data value: a map of symbol -> items (multi), an array of items (single), or null.
struct Data<'c> {
    columns: &'c mut Columns,
}

impl<'de> DeserializeSeed<'de> for Data<'_> {
    type Value = ();
    fn deserialize<D: Deserializer<'de>>(self, d: D) -> std::result::Result<(), D::Error> {
        d.deserialize_any(self)
    }
}

impl<'de> Visitor<'de> for Data<'_> {
    type Value = ();
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a map of symbol to items, an array of items, or null")
    }
    fn visit_unit<E: de::Error>(self) -> std::result::Result<(), E> {
        Ok(())
    }
    fn visit_seq<A: SeqAccess<'de>>(self, seq: A) -> std::result::Result<(), A::Error> {
        Items {
            columns: self.columns,
            symbol: None,
        }
        .visit_seq(seq)
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<(), A::Error> {
        while let Some(symbol) = map.next_key::<Cow<'de, str>>()? {
            map.next_value_seed(Items {
                columns: self.columns,
                symbol: Some(&symbol),
            })?;
        }
        Ok(())
    }
}

/// The page object.
struct PageVisitor<'c> {
    columns: &'c mut Columns,
}

#[derive(Default)]
struct PageMeta {
    symbol: Option<String>,
    token: Option<String>,
}

impl<'de> Visitor<'de> for PageVisitor<'_> {
    type Value = PageMeta;
    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a market-data page object")
    }
    fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> std::result::Result<PageMeta, A::Error> {
        let mut meta = PageMeta::default();
        let key_name = self.columns.kind.key();
        while let Some(key) = map.next_key::<Cow<'de, str>>()? {
            if key == key_name {
                map.next_value_seed(Data {
                    columns: self.columns,
                })?;
            } else if key == "next_page_token" {
                meta.token = map
                    .next_value::<Option<String>>()?
                    .filter(|t| !t.is_empty());
            } else if key == "symbol" {
                meta.symbol = map.next_value::<Option<String>>()?;
            } else {
                map.next_value::<IgnoredAny>()?;
            }
        }
        Ok(meta)
    }
}

/// Parses one page of `kind` from its JSON bytes.
///
/// # Errors
/// [`Error::InvalidValue`] (column `page`) describing the JSON problem and its position.
pub fn parse_page(bytes: &[u8], kind: PageKind, options: PageOptions) -> Result<Page> {
    let mut columns = Columns::new(kind, options);
    let mut de = serde_json::Deserializer::from_slice(bytes);
    let meta = de
        .deserialize_map(PageVisitor {
            columns: &mut columns,
        })
        .and_then(|meta| de.end().map(|()| meta))
        .map_err(|e| Error::InvalidArgument(format!("malformed {} page: {e}", kind.key())))?;
    // A page without the data key is an empty page (ALPACA.md §5.1).
    let batch = columns.finish(meta.symbol.as_deref())?;
    Ok(Page {
        batch,
        next_page_token: meta.token,
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
        ] {
            assert!(parse_rfc3339(bad).is_err(), "{bad}");
        }
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
            daily_labels: false,
        };
        let page = parse_page(q, PageKind::Quotes, opts).unwrap();
        let sizes = page.batch.column(3).as_primitive::<Int64Type>();
        assert_eq!((sizes.value(0), sizes.value(1)), (400, 4));
        let b = br#"{"bars":[{"t":"2023-09-29T04:00:00Z","o":172.02,"h":173.07,"l":170.341,"c":171.21,"v":51861083,"n":535134,"vw":171.599691}],"symbol":"AAPL","next_page_token":null}"#;
        let opts = PageOptions {
            lots_to_shares: false,
            daily_labels: true,
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
}
