//! Alpaca's bar rules (ALPACA.md §7.1, SPEC §3.1): which trades may set open/close, high/low and volume,
//! per tape, per condition code, for intraday ("minute") and daily bars.
//!
//! A trade's rule is packed in one byte: bits 0-1 hold the open/close rule ([`OC_NONE`], [`OC_FIRST`],
//! [`OC_ALWAYS`]), bit 2 [`HIGH_LOW`], bit 3 [`VOLUME`]. Combining conditions takes the strictest rule per field.

use arrow_array::cast::AsArray;
use arrow_array::{Array, ArrayRef, ListArray, StringArray};
use arrow_schema::{DataType, Field};
use std::sync::Arc;

use crate::error::{Error, Result};
use crate::schema;
use crate::stream::{for_chunks, pack_short};

/// Never updates open/close.
pub const OC_NONE: u8 = 0;
/// Updates open/close only while they are unset ("1st" in Alpaca's table).
pub const OC_FIRST: u8 = 1;
/// Always updates open/close.
pub const OC_ALWAYS: u8 = 2;
/// Mask of the open/close rule.
pub const OC_MASK: u8 = 0b11;
/// Updates high/low.
pub const HIGH_LOW: u8 = 0b100;
/// Counts in volume and trade count.
pub const VOLUME: u8 = 0b1000;
/// A trade that counts for everything.
pub const ALL: u8 = OC_ALWAYS | HIGH_LOW | VOLUME;

/// Which column of Alpaca's table applies.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BarKind {
    /// Intraday bars (Alpaca's minute column).
    Minute,
    /// Daily bars.
    Daily,
}

/// How trade conditions decide what a trade updates.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Policy {
    /// Alpaca's bar rules.
    Alpaca,
    /// Every trade counts for everything.
    All,
}

impl Policy {
    /// Parses `"alpaca"` or `"all"`.
    ///
    /// # Errors
    /// [`Error::InvalidArgument`] for anything else.
    pub fn parse(text: &str) -> Result<Self> {
        match text {
            "alpaca" => Ok(Self::Alpaca),
            "all" => Ok(Self::All),
            other => Err(Error::InvalidArgument(format!(
                "unknown conditions policy {other:?}: use \"alpaca\" or \"all\""
            ))),
        }
    }
}

const N: u8 = OC_NONE;
const F: u8 = OC_FIRST;
const Y: u8 = OC_ALWAYS;

/// One row of Alpaca's update matrix: code, tapes, bar kinds (`M`, `D`), O/C rule, updates H/L, updates volume.
type Row = (u8, &'static str, &'static str, u8, bool, bool);

/// ALPACA.md §7.1, row for row.
const TABLE: &[Row] = &[
    (b' ', "AB", "MD", Y, true, true),
    (b'@', "CO", "MD", Y, true, true),
    (b'A', "C", "MD", Y, true, true),
    (b'B', "AB", "MD", N, false, true),
    (b'B', "C", "MD", Y, true, true),
    (b'C', "ABCO", "MD", N, false, true),
    (b'D', "C", "MD", Y, true, true),
    (b'E', "AB", "MD", Y, true, true),
    (b'F', "ABC", "MD", Y, true, true),
    (b'G', "C", "M", N, false, true),
    (b'G', "C", "D", F, true, true),
    (b'H', "ABC", "MD", N, false, true),
    (b'I', "ABCO", "MD", N, false, true),
    (b'K', "ABC", "MD", Y, true, true),
    (b'L', "ABC", "MD", Y, true, true),
    (b'M', "ABC", "MD", N, false, false),
    (b'N', "ABCO", "MD", N, false, true),
    (b'O', "ABC", "MD", Y, true, true),
    (b'P', "ABCO", "M", N, false, true),
    (b'P', "ABCO", "D", F, true, true),
    (b'Q', "ABC", "MD", N, false, false),
    (b'R', "ABCO", "MD", N, false, true),
    (b'T', "ABCO", "M", Y, true, true),
    (b'T', "ABCO", "D", N, false, true),
    (b'U', "ABCO", "MD", N, false, true),
    (b'V', "ABC", "MD", N, false, true),
    (b'W', "CO", "MD", N, false, true),
    (b'X', "ABC", "MD", Y, true, true),
    (b'Y', "C", "MD", Y, true, true),
    (b'Z', "ABC", "M", N, false, true),
    (b'Z', "ABC", "D", F, true, true),
    (b'4', "ABC", "M", N, false, true),
    (b'4', "ABC", "D", F, true, true),
    (b'5', "ABC", "MD", Y, true, true),
    (b'6', "ABC", "MD", Y, true, true),
    (b'7', "ABC", "MD", N, false, true),
    (b'9', "ABC", "M", N, false, false),
    (b'9', "ABC", "D", Y, true, false),
];

const TAPES: &[u8; 4] = b"ABCO";
/// Index used for a missing or unlisted tape (`N` overnight, null, ...).
const UNKNOWN_TAPE: usize = 4;

/// The strictest of two rules, field by field.
#[inline]
#[must_use]
pub fn strictest(a: u8, b: u8) -> u8 {
    (a & OC_MASK).min(b & OC_MASK) | (a & b & (HIGH_LOW | VOLUME))
}

/// A lookup table `tape x code -> rule` for one bar kind.
///
/// A code the table lists for other tapes only (e.g. `@` on tape A) and any code on an unknown tape get the
/// strictest rule the table gives that code on any tape; a code the table does not list at all does not restrict
/// the trade.
pub struct Rules {
    table: Box<[[u8; 256]; 5]>,
}

impl Rules {
    /// Builds the table for `kind`.
    #[must_use]
    pub fn new(kind: BarKind) -> Self {
        let letter = match kind {
            BarKind::Minute => 'M',
            BarKind::Daily => 'D',
        };
        let mut defined = [[None::<u8>; 256]; 4];
        for &(code, tapes, bars, oc, hl, vol) in TABLE {
            if !bars.contains(letter) {
                continue;
            }
            let rule = oc | if hl { HIGH_LOW } else { 0 } | if vol { VOLUME } else { 0 };
            for (t, tape) in TAPES.iter().enumerate() {
                if tapes.as_bytes().contains(tape) {
                    defined[t][usize::from(code)] = Some(rule);
                }
            }
        }
        let mut table = Box::new([[ALL; 256]; 5]);
        for code in 0..256 {
            let fallback = (0..4)
                .filter_map(|t| defined[t][code])
                .reduce(strictest)
                .unwrap_or(ALL);
            for t in 0..4 {
                table[t][code] = defined[t][code].unwrap_or(fallback);
            }
            table[UNKNOWN_TAPE][code] = fallback;
        }
        Self { table }
    }

    /// The rule for one condition code on a tape (`None` = unknown tape).
    #[must_use]
    pub fn rule(&self, code: &str, tape: Option<&str>) -> u8 {
        let tape_index = tape_index(tape);
        match code.as_bytes() {
            [byte] => self.table[tape_index][usize::from(*byte)],
            // Alpaca's codes are one character; an empty string is the regular-sale space trimmed away.
            [] => self.table[tape_index][usize::from(b' ')],
            _ => ALL,
        }
    }

    /// Per-trade rules for a batch: the strictest rule of each trade's condition codes on its tape (a null or
    /// empty list does not restrict the trade), and 0 for trades whose `update` is `canceled` or `incorrect`
    /// (they never count). Long batches are split over up to `threads` threads.
    ///
    /// # Errors
    /// A `conditions` column that is not a list of strings, a `tape` or `update` column that is not strings.
    pub fn trade_rules(
        &self,
        len: usize,
        conditions: Option<&ArrayRef>,
        tape: Option<&ArrayRef>,
        update: Option<&ArrayRef>,
        threads: usize,
    ) -> Result<Vec<u8>> {
        let tapes = tape.map(|t| schema::strings(t, "tape")).transpose()?;
        let list = conditions.map(as_string_list).transpose()?;
        let update = update.map(|u| schema::strings(u, "update")).transpose()?;
        let mut out = vec![ALL; len];
        for_chunks(&mut out, threads, |first, rules| {
            if let Some(list) = &list {
                self.condition_rules(list, tapes.as_ref(), first, rules);
            }
            if let Some(update) = &update {
                let len = rules.len();
                let rows = first..first + len;
                let mut cancel = |i: usize| {
                    if matches!(update.value(i), "canceled" | "incorrect") {
                        rules[i - first] = 0;
                    }
                };
                // Most trades carry no update: visit only the rows that do.
                match update.nulls() {
                    Some(nulls) => nulls
                        .inner()
                        .slice(first, len)
                        .set_indices()
                        .for_each(|k| cancel(first + k)),
                    None => rows.for_each(cancel),
                }
            }
        });
        Ok(out)
    }

    /// Rules from the condition codes of the trades `first..first + rules.len()`, read straight from the
    /// buffers. A trade's list of one-byte codes (nearly all lists: `@`, `@ I`, `@ F I`, ...) is packed with its
    /// tape into one `u64` and resolved through a small cache, so each distinct list is looked up in the table
    /// once; other lists take the general path.
    fn condition_rules(
        &self,
        list: &ListArray,
        tapes: Option<&StringArray>,
        first: usize,
        rules: &mut [u8],
    ) {
        if rules.is_empty() {
            return;
        }
        let offsets = &list.value_offsets()[first..=first + rules.len()];
        let codes = list.values().as_string::<i32>();
        let (code_offsets, code_bytes) = (codes.value_offsets(), codes.value_data());
        let nulls = list.nulls().filter(|n| n.null_count() > 0);
        let (lo, hi) = (to_usize(offsets[0]), to_usize(offsets[rules.len()]));
        if nulls.is_none() && single_bytes(&code_offsets[lo..=hi]) {
            // Every code of these rows is one byte: a list's codes are its bytes, found from the list offsets
            // alone. The tape, when it is one byte per row too, is read the same way.
            let bytes = &code_bytes[to_usize(code_offsets[lo])..to_usize(code_offsets[hi])];
            let offsets = offsets.iter().map(|&o| to_usize(o) - lo);
            match tapes.and_then(|t| single_byte_rows(t, first, rules.len())) {
                Some(tape_bytes) => {
                    let tape = tape_bytes.iter().map(|&b| TAPE_INDEX[usize::from(b)]);
                    self.one_byte_rules(offsets, bytes, tape, rules);
                }
                None if tapes.is_none() => {
                    let tape = std::iter::repeat(UNKNOWN_TAPE);
                    self.one_byte_rules(offsets, bytes, tape, rules);
                }
                None => {
                    let tape_of = TapeColumn::new(tapes);
                    let tape = (first..).map(|i| tape_of.index(i));
                    self.one_byte_rules(offsets, bytes, tape, rules);
                }
            }
            return;
        }
        let tape_of = TapeColumn::new(tapes);
        let mut cache = ListCache::new();
        for ((i, rule), pair) in (first..).zip(rules.iter_mut()).zip(offsets.windows(2)) {
            if nulls.is_some_and(|n| n.is_null(i)) {
                continue;
            }
            let tape = tape_of.index(i);
            let (lo, hi) = (to_usize(pair[0]), to_usize(pair[1]));
            let (start, end) = (to_usize(code_offsets[lo]), to_usize(code_offsets[hi]));
            let count = hi - lo;
            // Every code one byte long and at most 7 of them: the bytes, count and tape make the key.
            let key = if end - start == count && count <= 7 {
                pack_short(code_bytes, start, count) | list_key(count, tape)
            } else {
                u64::MAX
            };
            *rule = cache.get(key).unwrap_or_else(|| {
                let rule = self.list_rule(&code_offsets[lo..=hi], code_bytes, tape);
                cache.put(key, rule);
                rule
            });
        }
    }

    /// [`Self::condition_rules`] for rows whose codes are all one byte: row `k`'s codes are
    /// `bytes[offsets[k]..offsets[k + 1]]`, its tape index `tape[k]`.
    #[inline]
    fn one_byte_rules(
        &self,
        offsets: impl Iterator<Item = usize>,
        bytes: &[u8],
        tape: impl Iterator<Item = usize>,
        rules: &mut [u8],
    ) {
        let mut cache = ListCache::new();
        let mut offsets = offsets;
        let Some(mut lo) = offsets.next() else {
            return;
        };
        for ((rule, hi), tape) in rules.iter_mut().zip(offsets).zip(tape) {
            let count = hi - lo;
            let key = if count <= 7 {
                pack_short(bytes, lo, count) | list_key(count, tape)
            } else {
                u64::MAX
            };
            *rule = cache.get(key).unwrap_or_else(|| {
                let rule = self.byte_list_rule(&bytes[lo..hi], tape);
                cache.put(key, rule);
                rule
            });
            lo = hi;
        }
    }

    /// The strictest rule of a list of one-byte codes on tape `tape`.
    fn byte_list_rule(&self, codes: &[u8], tape: usize) -> u8 {
        let row = &self.table[tape];
        codes.iter().fold(ALL, |strict, &code| {
            strictest(strict, row[usize::from(code)])
        })
    }

    /// The strictest rule of one list of codes (given by its `offsets` into `bytes`) on tape `tape`.
    fn list_rule(&self, offsets: &[i32], bytes: &[u8], tape: usize) -> u8 {
        let row = &self.table[tape];
        let mut strict = ALL;
        for pair in offsets.windows(2) {
            let (start, end) = (
                pair[0].unsigned_abs() as usize,
                pair[1].unsigned_abs() as usize,
            );
            let code = match end - start {
                1 => row[usize::from(bytes[start])],
                0 => row[usize::from(b' ')],
                _ => ALL,
            };
            strict = strictest(strict, code);
        }
        strict
    }
}

/// The count and tape bits of a packed list's cache key (the codes take the low 7 bytes).
#[inline]
fn list_key(count: usize, tape: usize) -> u64 {
    (count as u64) << 56 | (tape as u64) << 59
}

/// An Arrow offset as an index (offsets are never negative in a valid array).
#[inline]
fn to_usize(offset: i32) -> usize {
    offset.unsigned_abs() as usize
}

/// True if every string of these offsets is one byte long (a fold, not a search: it vectorizes).
fn single_bytes(offsets: &[i32]) -> bool {
    offsets
        .iter()
        .zip(&offsets[1..])
        .fold(true, |all, (&a, &b)| all & (b.wrapping_sub(a) == 1))
}

/// The bytes of the strings of rows `first..first + len`, if each is exactly one byte and none is null.
fn single_byte_rows(strings: &StringArray, first: usize, len: usize) -> Option<&[u8]> {
    if strings.null_count() > 0 {
        return None;
    }
    let offsets = &strings.value_offsets()[first..=first + len];
    single_bytes(offsets).then(|| {
        let start = to_usize(offsets[0]);
        &strings.value_data()[start..start + len]
    })
}

/// A direct-mapped cache `packed list -> rule` (`u64::MAX` is never a key: it marks lists that are not cached).
struct ListCache {
    slots: [(u64, u8); 64],
}

impl ListCache {
    fn new() -> Self {
        Self {
            slots: [(u64::MAX, 0); 64],
        }
    }

    #[inline]
    fn slot(key: u64) -> usize {
        (key.wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 58) as usize
    }

    #[inline]
    fn get(&self, key: u64) -> Option<u8> {
        let (k, rule) = self.slots[Self::slot(key)];
        (k == key && key != u64::MAX).then_some(rule)
    }

    fn put(&mut self, key: u64, rule: u8) {
        if key != u64::MAX {
            self.slots[Self::slot(key)] = (key, rule);
        }
    }
}

/// The tape of each trade as an index into the rule table, read from the string buffers.
struct TapeColumn<'a> {
    /// Offsets, bytes and validity; `None` when there is no tape column.
    column: Option<(&'a [i32], &'a [u8], Option<&'a arrow_buffer::NullBuffer>)>,
}

impl<'a> TapeColumn<'a> {
    fn new(tapes: Option<&'a StringArray>) -> Self {
        Self {
            column: tapes.map(|t| {
                (
                    t.value_offsets(),
                    t.value_data(),
                    t.nulls().filter(|n| n.null_count() > 0),
                )
            }),
        }
    }

    #[inline]
    fn index(&self, i: usize) -> usize {
        let Some((offsets, bytes, nulls)) = self.column else {
            return UNKNOWN_TAPE;
        };
        if nulls.is_some_and(|n| n.is_null(i)) {
            return UNKNOWN_TAPE;
        }
        let (lo, hi) = (
            offsets[i].unsigned_abs() as usize,
            offsets[i + 1].unsigned_abs() as usize,
        );
        if hi - lo == 1 {
            TAPE_INDEX[usize::from(bytes[lo])]
        } else {
            UNKNOWN_TAPE
        }
    }
}

/// Tape byte -> table index (`A`, `B`, `C`, `O`; anything else is unknown).
const TAPE_INDEX: [usize; 256] = {
    let mut index = [UNKNOWN_TAPE; 256];
    index[b'A' as usize] = 0;
    index[b'B' as usize] = 1;
    index[b'C' as usize] = 2;
    index[b'O' as usize] = 3;
    index
};

fn tape_index(tape: Option<&str>) -> usize {
    match tape.map(str::as_bytes) {
        Some([b'A']) => 0,
        Some([b'B']) => 1,
        Some([b'C']) => 2,
        Some([b'O']) => 3,
        _ => UNKNOWN_TAPE,
    }
}

fn as_string_list(array: &ArrayRef) -> Result<ListArray> {
    let bad = || Error::ColumnType {
        column: "conditions".into(),
        expected: "a list of strings".into(),
        found: array.data_type().to_string(),
    };
    let item = match array.data_type() {
        DataType::List(f)
        | DataType::LargeList(f)
        | DataType::ListView(f)
        | DataType::LargeListView(f) => f.data_type().clone(),
        _ => return Err(bad()),
    };
    if !matches!(
        item,
        DataType::Utf8 | DataType::LargeUtf8 | DataType::Utf8View | DataType::Dictionary(..)
    ) {
        return Err(bad());
    }
    let target = DataType::List(Arc::new(Field::new("item", DataType::Utf8, true)));
    let cast = if array.data_type() == &target {
        array.as_list::<i32>().clone()
    } else {
        arrow_cast::cast(array, &target)
            .map_err(|_| bad())?
            .as_list::<i32>()
            .clone()
    };
    Ok(cast)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tape_specific_rows() {
        let m = Rules::new(BarKind::Minute);
        assert_eq!(m.rule("B", Some("A")), VOLUME);
        assert_eq!(m.rule("B", Some("C")), ALL);
        assert_eq!(m.rule(" ", Some("A")), ALL);
        assert_eq!(m.rule("@", Some("C")), ALL);
        // '@' is listed for C and O only; on tape A the table's strictest rule for '@' (Y) applies.
        assert_eq!(m.rule("@", Some("A")), ALL);
        // 'W' is listed for C and O (volume only); on A the same restriction applies.
        assert_eq!(m.rule("W", Some("A")), VOLUME);
        // Unknown tape: strictest across tapes ('B' is volume-only on A/B).
        assert_eq!(m.rule("B", None), VOLUME);
        // Codes the table does not list never restrict.
        assert_eq!(m.rule("1", Some("C")), ALL);
    }

    #[test]
    fn minute_and_daily_columns_differ() {
        let m = Rules::new(BarKind::Minute);
        let d = Rules::new(BarKind::Daily);
        assert_eq!(m.rule("T", Some("C")), ALL);
        assert_eq!(d.rule("T", Some("C")), VOLUME);
        assert_eq!(m.rule("Z", Some("C")), VOLUME);
        assert_eq!(d.rule("Z", Some("C")), OC_FIRST | HIGH_LOW | VOLUME);
        assert_eq!(m.rule("9", Some("A")), 0);
        assert_eq!(d.rule("9", Some("A")), OC_ALWAYS | HIGH_LOW);
    }

    #[test]
    fn strictest_rule_wins() {
        let d = Rules::new(BarKind::Daily);
        let r = ["@", "4", "I"]
            .iter()
            .map(|c| d.rule(c, Some("C")))
            .fold(ALL, strictest);
        assert_eq!(r, VOLUME);
    }

    /// Every path of `trade_rules` (one-byte codes with a one-byte tape, a tape with nulls or longer values, no
    /// tape; lists with an empty or a two-byte code, nulls, long lists) equals the strictest per-code rule.
    #[test]
    fn trade_rules_equal_the_per_code_rules() {
        use crate::test_rng::Rng;
        use arrow_array::builder::{ListBuilder, StringBuilder};
        let rules = Rules::new(BarKind::Minute);
        let codes = ["@", "I", "F", "T", "4", "B", "Z", "9", "W", " ", "", "XY"];
        let tapes = [
            Some("A"),
            Some("B"),
            Some("C"),
            Some("O"),
            None,
            Some("AB"),
            Some("Q"),
        ];
        let mut rng = Rng(5);
        for round in 0..300 {
            // Round 4 is long enough to be cut over two threads (each chunk starts at a row offset).
            let n = if round == 4 {
                600_000
            } else {
                1 + rng.below(200) as usize
            };
            // Some rounds keep to the fast path's shapes: one-byte codes, one-byte tapes without nulls.
            let simple = round % 2 == 0;
            let code_pool = if simple { &codes[..9] } else { &codes[..] };
            let tape_pool = if simple { &tapes[..4] } else { &tapes[..] };
            let mut lists = ListBuilder::new(StringBuilder::new());
            let (mut expected_lists, mut row_tapes) = (vec![], vec![]);
            for _ in 0..n {
                let null = !simple && rng.below(10) == 0;
                let len = rng.below(if simple { 5 } else { 10 }) as usize;
                let list: Vec<&str> = (0..len)
                    .map(|_| code_pool[rng.below(code_pool.len() as u64) as usize])
                    .collect();
                if null {
                    lists.append(false);
                } else {
                    for code in &list {
                        lists.values().append_value(code);
                    }
                    lists.append(true);
                }
                expected_lists.push((!null).then_some(list));
                row_tapes.push(tape_pool[rng.below(tape_pool.len() as u64) as usize]);
            }
            let list: ArrayRef = Arc::new(lists.finish());
            let tape: ArrayRef = Arc::new(StringArray::from(row_tapes.clone()));
            let with_tape = round % 3 != 0;
            let got = rules
                .trade_rules(
                    n,
                    Some(&list),
                    with_tape.then_some(&tape),
                    None,
                    1 + round % 2 + usize::from(round == 4),
                )
                .unwrap();
            for (k, expected) in expected_lists.iter().enumerate() {
                let tape = if with_tape { row_tapes[k] } else { None };
                let want = expected.as_ref().map_or(ALL, |codes| {
                    codes
                        .iter()
                        .map(|c| rules.rule(c, tape))
                        .fold(ALL, strictest)
                });
                assert_eq!(
                    got[k], want,
                    "round {round} row {k}: {expected:?} on {tape:?}"
                );
            }
        }
    }
}
