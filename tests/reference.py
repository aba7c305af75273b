"""Plain pandas/numpy/Python references for the kernels, written for obviousness, not speed.

They follow SPEC §3 and ALPACA.md §7.1 directly, with their own copy of Alpaca's table, so a bug in the Rust
table or loop cannot hide behind a shared helper.
"""

from __future__ import annotations

from decimal import ROUND_HALF_UP, Decimal

import numpy as np
import pandas as pd

NS = 1_000_000_000

# ALPACA.md §7.1: code -> list of (tapes, bar kinds, open/close, high/low, volume); "1" = 1st.
ALPACA_TABLE: dict[str, list[tuple[str, str, str, str, str]]] = {
    " ": [("AB", "MD", "Y", "Y", "Y")],
    "@": [("CO", "MD", "Y", "Y", "Y")],
    "A": [("C", "MD", "Y", "Y", "Y")],
    "B": [("AB", "MD", "N", "N", "Y"), ("C", "MD", "Y", "Y", "Y")],
    "C": [("ABCO", "MD", "N", "N", "Y")],
    "D": [("C", "MD", "Y", "Y", "Y")],
    "E": [("AB", "MD", "Y", "Y", "Y")],
    "F": [("ABC", "MD", "Y", "Y", "Y")],
    "G": [("C", "M", "N", "N", "Y"), ("C", "D", "1", "Y", "Y")],
    "H": [("ABC", "MD", "N", "N", "Y")],
    "I": [("ABCO", "MD", "N", "N", "Y")],
    "K": [("ABC", "MD", "Y", "Y", "Y")],
    "L": [("ABC", "MD", "Y", "Y", "Y")],
    "M": [("ABC", "MD", "N", "N", "N")],
    "N": [("ABCO", "MD", "N", "N", "Y")],
    "O": [("ABC", "MD", "Y", "Y", "Y")],
    "P": [("ABCO", "M", "N", "N", "Y"), ("ABCO", "D", "1", "Y", "Y")],
    "Q": [("ABC", "MD", "N", "N", "N")],
    "R": [("ABCO", "MD", "N", "N", "Y")],
    "T": [("ABCO", "M", "Y", "Y", "Y"), ("ABCO", "D", "N", "N", "Y")],
    "U": [("ABCO", "MD", "N", "N", "Y")],
    "V": [("ABC", "MD", "N", "N", "Y")],
    "W": [("CO", "MD", "N", "N", "Y")],
    "X": [("ABC", "MD", "Y", "Y", "Y")],
    "Y": [("C", "MD", "Y", "Y", "Y")],
    "Z": [("ABC", "M", "N", "N", "Y"), ("ABC", "D", "1", "Y", "Y")],
    "4": [("ABC", "M", "N", "N", "Y"), ("ABC", "D", "1", "Y", "Y")],
    "5": [("ABC", "MD", "Y", "Y", "Y")],
    "6": [("ABC", "MD", "Y", "Y", "Y")],
    "7": [("ABC", "MD", "N", "N", "Y")],
    "9": [("ABC", "M", "N", "N", "N"), ("ABC", "D", "Y", "Y", "N")],
}
_OC_ORDER = {"N": 0, "1": 1, "Y": 2}


def rule(code: str, tape: str | None, kind: str) -> tuple[int, bool, bool]:
    """(open/close level 0/1/2, updates high/low, updates volume) for one code.

    A code listed only for other tapes, or on an unknown tape, takes the strictest of its listed rules;
    an unlisted code does not restrict.
    """
    if code == "":
        code = " "
    rows = [r for r in ALPACA_TABLE.get(code, []) if kind in r[1]]
    if not rows:
        return (2, True, True)
    mine = [r for r in rows if tape is not None and len(tape) == 1 and tape in r[0]]
    use = mine or rows
    return (
        min(_OC_ORDER[r[2]] for r in use),
        all(r[3] == "Y" for r in use),
        all(r[4] == "Y" for r in use),
    )


def trade_rule(conditions: list[str] | None, tape: str | None, update: str | None, kind: str) -> tuple[int, bool, bool]:
    if update in ("canceled", "incorrect"):
        return (0, False, False)
    oc, hl, vol = 2, True, True
    for code in conditions or []:
        if len(code) > 1:
            continue
        c_oc, c_hl, c_vol = rule(code, tape, kind)
        oc, hl, vol = min(oc, c_oc), hl and c_hl, vol and c_vol
    return oc, hl, vol


def _labels(ts: np.ndarray, interval: str) -> np.ndarray:
    if interval == "1d":
        local = pd.to_datetime(ts, unit="ns", utc=True).tz_convert("America/New_York")
        dates = pd.to_datetime(local.strftime("%Y-%m-%d")).as_unit("ns")
        return np.asarray(dates.asi8, dtype=np.int64)
    unit = {"s": 1, "m": 60, "h": 3600}[interval[-1]]
    length = int(interval[:-1]) * unit * NS
    return ts - np.mod(ts, length)


def ref_bars(df: pd.DataFrame, interval: str, policy: str = "alpaca", symbol: str | None = None) -> pd.DataFrame:
    """Bars as SPEC §3.1 says, from a DataFrame with int64 ns `timestamp` and the trade columns."""
    kind = "D" if interval == "1d" else "M"
    with_vwap = interval == "1d" or interval[-1] in "mh"
    df = df.copy()
    if "symbol" not in df:
        df["symbol"] = symbol
    df["key_"] = df["symbol"].fillna("")
    df["row_"] = np.arange(len(df))
    df = df.sort_values(["key_", "timestamp", "row_"], kind="stable")
    df["label_"] = _labels(df["timestamp"].to_numpy(np.int64), interval)
    use_rules = ("conditions" in df and policy == "alpaca") or "update" in df
    rows = []
    for (_, label), group in df.groupby(["key_", "label_"], sort=True):
        sym = group["symbol"].iloc[0]
        o = h = lo = c = None
        vol = count = pv_vol = 0
        pv = 0.0
        for rec in group.itertuples(index=False):
            p, s = float(rec.price), int(rec.size)
            if use_rules:
                conds = getattr(rec, "conditions", None) if policy == "alpaca" else None
                conds = None if conds is None or (isinstance(conds, float)) else list(conds)
                oc, hl, vo = trade_rule(conds, getattr(rec, "tape", None), getattr(rec, "update", None), kind)
            else:
                oc, hl, vo = 2, True, True
            if (oc == 2 or (oc == 1 and o is None)) and o is None:
                o = p
            if oc == 2 or (oc == 1 and c is None):
                c = p
            if hl:
                h = p if h is None else max(h, p)
                lo = p if lo is None else min(lo, p)
            if vo:
                vol += s
                count += 1
                if hl:
                    pv += p * s
                    pv_vol += s
        if use_rules:
            if o is None or h is None or c is None or vol <= 0:
                continue
            vwap = pv / pv_vol if pv_vol > 0 else None
        else:
            vwap = pv / vol if vol > 0 else None
        row = {"symbol": sym, "timestamp": label, "open": o, "high": h, "low": lo, "close": c, "volume": vol}
        if with_vwap:
            row["vwap"] = vwap
        row["trade_count"] = count
        rows.append(row)
    cols = ["symbol", "timestamp", "open", "high", "low", "close", "volume"]
    cols += ["vwap", "trade_count"] if with_vwap else ["trade_count"]
    return pd.DataFrame(rows, columns=cols)


def micros(price: float) -> int:
    """A price in exact decimal micro-units, rounded half up."""
    return int(Decimal(repr(price)).quantize(Decimal("0.000001"), rounding=ROUND_HALF_UP) * 1_000_000)


def ref_best_quotes(df: pd.DataFrame, symbol: str | None = None) -> pd.DataFrame:
    """Best quote per UTC second as SPEC §3.2 says."""
    df = df.copy()
    if "symbol" not in df:
        df["symbol"] = symbol
    df["key_"] = df["symbol"].fillna("")
    df["row_"] = np.arange(len(df))
    df = df.sort_values(["key_", "timestamp", "row_"], kind="stable")
    if "exchange" in df and "bid_exchange" not in df:
        df["bid_exchange"] = df["exchange"]
        df["ask_exchange"] = df["exchange"]
    rows = []
    for rec in df.itertuples(index=False):
        bp, ap, bs, az = float(rec.bid_price), float(rec.ask_price), int(rec.bid_size), int(rec.ask_size)
        if not (bp > 0 and ap > 0 and bs > 0 and az > 0):
            continue
        spread = micros(ap) - micros(bp)
        if spread < 0:
            continue
        rows.append((rec.key_, int(rec.timestamp) - int(rec.timestamp) % NS, spread, rec))
    best: dict[tuple[str, int], tuple[int, object]] = {}
    for key, second, spread, rec in rows:
        k = (key, second)
        if k not in best or spread < best[k][0]:
            best[k] = (spread, rec)
    out = []
    for (_, second), (spread, rec) in sorted(best.items()):
        bx = getattr(rec, "bid_exchange", None)
        ax = getattr(rec, "ask_exchange", None)
        out.append(
            {
                "symbol": rec.symbol,
                "timestamp": second,
                "bid_price": float(rec.bid_price),
                "bid_size": int(rec.bid_size),
                "ask_price": float(rec.ask_price),
                "ask_size": int(rec.ask_size),
                "spread": spread / 1e6,
                "exchange": bx if bx == ax else None,
                "bid_exchange": bx,
                "ask_exchange": ax,
            }
        )
    cols = [
        "symbol",
        "timestamp",
        "bid_price",
        "bid_size",
        "ask_price",
        "ask_size",
        "spread",
        "exchange",
        "bid_exchange",
        "ask_exchange",
    ]
    return pd.DataFrame(out, columns=cols)
