//! Alpaca market-data JSON pages -> Arrow (ALPACA.md §5): the multi-symbol shape
//! (`{"trades": {"AAPL": [...]}, "next_page_token": ...}`) and the single-symbol shape
//! (`{"trades": [...], "symbol": "AAPL", ...}`), with `null`, `[]` or missing arrays. Items are appended straight
//! into column buffers by a small JSON scanner specialised for these pages (strings without escapes are borrowed,
//! unknown keys are skipped, any valid JSON is accepted): no allocation per row.
//!
//! Timestamps are RFC-3339 with 0-9 fractional digits (and `Z` or an offset), kept to the nanosecond. Prices may
//! be integral (`"p": 833`). Quote sizes before 2025-11-03 (New York) are round lots and are converted to shares
//! when asked (SPEC §3.2). Daily bars (stamped at New York midnight) can be relabelled to the date at 00:00 UTC.
//!
//! The parts: `scanner` reads JSON, `columns` holds the column buffers, `items` appends one item of each
//! kind, `split` parses a long array on two threads, `timestamp` parses RFC-3339 and `text_time` the
//! timestamps databases store as text.

mod columns;
mod items;
mod scanner;
mod split;
mod text_time;
mod timestamp;

use std::borrow::Cow;
use std::sync::Arc;

use arrow_array::RecordBatch;
use arrow_schema::{DataType, Field, Schema, SchemaRef};

use crate::error::{Error, Result};
use crate::schema::{conditions_type, utc_ns};
use columns::Columns;
use scanner::{Scan, Scanner};
use timestamp::DayCache;

pub use text_time::text_timestamps;
pub use timestamp::parse_rfc3339;

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
    use arrow_array::Array;

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
}
