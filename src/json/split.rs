//! A long array of items parsed on two threads: the second half from a guessed item start, kept only when the
//! first half's parse arrives exactly there.

use std::sync::atomic::{AtomicBool, Ordering};
use std::thread;

use super::columns::Columns;
use super::scanner::{Scan, Scanner};
use super::timestamp::DayCache;

impl Columns {
    /// [`Columns::items`] on two threads: another thread parses from `cut` (a guessed item start half way
    /// through the page) to the end of the array while this one parses from the start. When this thread's own
    /// parse arrives at `cut` between two items, the guess was right and the other half is taken as it is
    /// (same parser, absolute byte offsets, so even its errors read the same); otherwise it is dropped and this
    /// thread goes on alone.
    pub(super) fn items_split(
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
    fn items_up_to(
        &mut self,
        scan: &mut Scanner<'_>,
        symbol: Option<&str>,
        cut: usize,
        rest: thread::ScopedJoinHandle<'_, Scan<(Columns, usize)>>,
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
    pub(super) fn items_after(
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
pub(super) const SPLIT_MIN_BYTES: usize = 128 * 1024;

/// A likely item start at or after `from`: the `{` of the first `},{` there. Only a guess (the bytes could sit in
/// a string); [`Columns::items_split`] checks it.
pub(super) fn guess_item_start(bytes: &[u8], from: usize) -> Option<usize> {
    bytes
        .get(from..)?
        .windows(3)
        .position(|w| w == b"},{")
        .map(|at| from + at + 2)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::json::{parse_page, PageKind, PageOptions};

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
