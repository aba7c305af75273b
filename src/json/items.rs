//! One item of each kind (trade, quote, bar) read from the scanner into the column buffers.

use super::columns::Columns;
use super::scanner::{Scan, Scanner};
use super::split::{guess_item_start, SPLIT_MIN_BYTES};
use super::{PageKind, SHARES_SINCE_NS};
use crate::time::{date_label, ny_date};

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
    pub(super) fn item(&mut self, scan: &mut Scanner<'_>, symbol: Option<&str>) -> Scan<()> {
        match self.kind {
            PageKind::Trades => self.trade(scan, symbol),
            PageKind::Quotes => self.quote(scan, symbol),
            PageKind::Bars => self.bar(scan, symbol),
        }
    }

    /// One array of items (or `null`) for `symbol` (None: the single-symbol shape, filled in at the end).
    pub(super) fn items(&mut self, scan: &mut Scanner<'_>, symbol: Option<&str>) -> Scan<()> {
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
}
