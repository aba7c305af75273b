"""``ticklake import-api`` end to end against the loopback server, with faults on."""

from __future__ import annotations

import datetime as dt
import json
import logging
import os
import random
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
import ticklake
from ticklake.client import AlpacaClient, RateLimiter
from ticklake.importer import import_api
from ticklake.sample import sample_quotes, sample_trades

from tests.alpaca_server import KEY_ID, SECRET, AlpacaServer, Faults
from tests.campaign import child_pythonpath
from tests.reference import ref_bars

REPO = Path(__file__).resolve().parents[1]
D = dt.date
START, END = D(2024, 1, 30), D(2024, 2, 1)  # crosses the month boundary


def with_midnight_trade(table: pa.Table) -> pa.Table:
    """Adds a trade exactly at New York midnight starting 2024-01-31: the inclusive-end trap of ALPACA.md §9."""
    midnight = pd.Timestamp("2024-01-31", tz="America/New_York").as_unit("ns").value
    row = table.slice(0, 1).to_pylist()[0]
    row.update(timestamp=pd.Timestamp(midnight, tz="UTC"), id=10**9, price=row["price"] + 0.01)
    extra = pa.Table.from_pylist([row], schema=table.schema)
    merged = pa.concat_tables([table, extra])
    return merged.sort_by([("timestamp", "ascending")])


def symbol_trades(symbol: str, seed: int) -> pa.Table:
    table = sample_trades(symbol, START, END, n=6000, seed=seed)
    table = table.set_column(0, "symbol", pa.array([symbol] * table.num_rows, pa.string()))
    return with_midnight_trade(table)


def round_lot_quotes(symbol: str, seed: int) -> pa.Table:
    table = sample_quotes(symbol, START, END, n=6000, seed=seed)
    return table.set_column(0, "symbol", pa.array([symbol] * table.num_rows, pa.string()))


@pytest.fixture(scope="module")
def data() -> dict[str, dict[str, pa.Table]]:
    return {
        "trades": {"AAPL": symbol_trades("AAPL", 1), "BRK.B": symbol_trades("BRK.B", 2)},
        "quotes": {"AAPL": round_lot_quotes("AAPL", 3), "BRK.B": round_lot_quotes("BRK.B", 4)},
    }


@pytest.fixture
def server(data: dict[str, dict[str, pa.Table]]) -> Iterator[AlpacaServer]:
    faults = Faults(p429=0.05, p500=0.05, pdrop=0.05, seed=3)
    with AlpacaServer(data["trades"], data["quotes"], faults=faults, max_page=700) as running:
        yield running


OPEN_CLIENTS: list[AlpacaClient] = []


@pytest.fixture(autouse=True)
def close_clients() -> Iterator[None]:
    yield
    while OPEN_CLIENTS:
        OPEN_CLIENTS.pop().close()


def client_for(server: AlpacaServer, secret: str = SECRET, **kwargs: object) -> AlpacaClient:
    options: dict[str, object] = {"rate": 100_000, "backoff": 0.001, **kwargs}
    client = AlpacaClient(KEY_ID, secret, base_url=server.url, **options)  # type: ignore[arg-type]
    OPEN_CLIENTS.append(client)
    return client


def in_range(table: pa.Table) -> pa.Table:
    lo = pd.Timestamp(START, tz="America/New_York").value
    hi = pd.Timestamp(END + dt.timedelta(days=1), tz="America/New_York").value
    ts = table["timestamp"].cast(pa.int64()).to_numpy()
    return table.filter(pa.array((ts >= lo) & (ts < hi)))


def test_lake_equals_the_kernels_over_the_servers_data(
    tmp_path: Path, server: AlpacaServer, data: dict[str, dict[str, pa.Table]]
) -> None:
    client = client_for(server)
    lake = ticklake.Lake(tmp_path)
    symbols = ["AAPL", "BRK.B"]
    for kind in ("1s", "quotes", "trades"):
        report = import_api(kind, "AAPL,BRK.B", START, END, root=tmp_path, client=client, quiet=True)  # type: ignore[arg-type]
        assert report.days == 6 and report.skipped_days == 0 and len(report.files) == 4
    assert client.stats.retries > 0, "the faults never fired"
    for symbol in symbols:
        trades = in_range(data["trades"][symbol])
        got = lake.scan("trades", symbol).to_arrow()
        assert got["id"].to_pylist() == trades["id"].to_pylist()  # no trade twice at a day boundary
        assert got["timestamp"].equals(trades["timestamp"])
        assert got["update"].to_pylist() == trades["update"].to_pylist()
        expected = ticklake.bars(trades, interval="1s")
        assert lake.scan("1s", symbol).to_arrow().equals(expected.cast(lake.scan("1s", symbol).to_arrow().schema))
        quotes = in_range(data["quotes"][symbol])
        best = ticklake.best_quotes(quotes)
        stored = lake.scan("quotes", symbol).to_arrow()
        assert stored.equals(best.cast(stored.schema))
    meta = lake.inventory()
    assert set(meta["period"]) == {"2024-01", "2024-02"}
    assert lake.validate() == []


def test_bars_from_the_api_and_from_trades(
    tmp_path: Path, server: AlpacaServer, data: dict[str, dict[str, pa.Table]]
) -> None:
    client = client_for(server)
    api_root, local_root = tmp_path / "api", tmp_path / "local"
    for kind in ("1m", "1d"):
        import_api(kind, "AAPL,BRK.B", START, END, root=api_root, client=client, quiet=True)  # type: ignore[arg-type]
        import_api(kind, "AAPL,BRK.B", START, END, root=local_root, client=client, quiet=True, from_trades=True)  # type: ignore[arg-type]
    api, local = ticklake.Lake(api_root), ticklake.Lake(local_root)
    for symbol in ("AAPL", "BRK.B"):
        trades = in_range(data["trades"][symbol]).to_pandas()
        trades["timestamp"] = in_range(data["trades"][symbol])["timestamp"].cast(pa.int64()).to_numpy()
        for timeframe in ("1m", "1d"):
            reference = ref_bars(trades, timeframe, "alpaca")
            from_api = api.read_bars(symbol, timeframe)  # type: ignore[arg-type]
            from_trades = local.read_bars(symbol, timeframe)  # type: ignore[arg-type]
            assert from_api["timestamp"].astype("int64").tolist() == reference["timestamp"].tolist()
            assert from_trades["timestamp"].astype("int64").tolist() == reference["timestamp"].tolist()
            for column in ("open", "high", "low", "close", "volume", "trade_count"):
                assert from_api[column].tolist() == reference[column].tolist(), (timeframe, column)
                assert from_trades[column].tolist() == reference[column].tolist(), (timeframe, column)
            np.testing.assert_allclose(from_api["vwap"], reference["vwap"].round(6), rtol=0, atol=1e-6)
    daily = api.read_bars("AAPL", "1d")
    assert (daily["timestamp"].dt.hour == 0).all()  # relabelled to the date at 00:00 UTC


def test_rerun_makes_no_request_and_a_wider_range_downloads_only_the_new_day(
    tmp_path: Path, server: AlpacaServer
) -> None:
    client = client_for(server)
    first = import_api("1s", ["AAPL"], START, END, root=tmp_path, client=client, quiet=True)
    assert first.days == 3 and first.requests > 0
    before = server.count()
    again = import_api("1s", ["AAPL"], START, END, root=tmp_path, client=client, quiet=True)
    assert again.requests == 0 and again.skipped_days == 3 and server.count() == before
    # A wider range downloads only the new day: every request it makes lies inside 2024-02-02 (New York).
    wider = import_api("1s", ["AAPL"], START, D(2024, 2, 2), root=tmp_path, client=client, quiet=True)
    assert wider.skipped_days == 3 and wider.days == 4
    lo = pd.Timestamp("2024-02-02", tz="America/New_York")
    hi = pd.Timestamp("2024-02-03", tz="America/New_York")
    new = server.requests[before:]
    assert new and all(lo <= pd.Timestamp(p["start"]) and pd.Timestamp(p["end"]) < hi for _, p in new)


IMPORTER = """
import sys
from ticklake.client import AlpacaClient
from ticklake.importer import import_api
from tests.alpaca_server import KEY_ID, SECRET
url, root, kind, strategy = sys.argv[1], sys.argv[2], sys.argv[3], sys.argv[4]
client = AlpacaClient(KEY_ID, SECRET, base_url=url, rate=float(sys.argv[5]), backoff=0.001, max_in_flight=2)
print("start", flush=True)
import_api(kind, "AAPL,BRK.B", "2024-01-30", "2024-02-01", root=root, client=client, quiet=True, strategy=strategy)
print("finished", flush=True)
"""


def staged_spans(root: Path, staging: str = ".ticklake/staging") -> list[tuple[str, int, int]]:
    """(symbol, start, end) of every piece the journals of ``root`` (under ``staging`` in it) record as staged and
    not dropped."""
    spans: dict[str, list[tuple[str, int, int]]] = {}
    for journal in root.glob(f"{staging}/*/journal.jsonl"):
        for line in journal.read_text().splitlines():
            try:
                event = json.loads(line)
            except ValueError:
                continue
            if event["t"] == "piece" and event["purpose"] == "data":
                spans[event["id"]] = [(s, event["start"], event["end"]) for s in event["symbols"]]
            elif event["t"] == "drop":
                spans.pop(event["id"], None)
    return [span for parts in spans.values() for span in parts]


def published_days(root: Path) -> int:
    return sum(
        len(json.loads(line)["days"])
        for journal in root.glob(".ticklake/staging/*/journal.jsonl")
        for line in journal.read_text().splitlines()
        if '"t":"done"' in line
    )


@pytest.mark.parametrize(("kind", "strategy"), [("quotes", "per-day"), ("quotes", "packed"), ("1s", "packed")])
def test_killed_import_resumes_without_downloading_what_is_staged(
    tmp_path: Path, data: dict[str, dict[str, pa.Table]], kind: str, strategy: str
) -> None:
    reference = tmp_path / "reference"
    root = tmp_path / "lake"
    with AlpacaServer(data["trades"], data["quotes"], max_page=200) as server:
        import_api(kind, "AAPL,BRK.B", START, END, root=reference, client=client_for(server), quiet=True,  # type: ignore[arg-type]
                   strategy="per-day")  # fmt: skip
        child = subprocess.Popen(
            [sys.executable, "-c", IMPORTER, server.url, str(root), kind, strategy, "3000"],
            cwd=REPO,
            stdout=subprocess.PIPE,
            text=True,
            env={**os.environ, "PYTHONPATH": child_pythonpath()},
        )
        assert child.stdout is not None and child.stdout.readline().strip() == "start"
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not staged_spans(root):
            time.sleep(0.005)
        time.sleep(random.Random(f"{kind}{strategy}").uniform(0, 0.3))  # then anywhere in what follows
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=30)
        child.stdout.close()
        staged = staged_spans(root)
        done_before = published_days(root)
        assert staged or done_before, "the kill landed before anything was staged"
        before = len(server.requests)
        report = import_api(kind, "AAPL,BRK.B", START, END, root=root, client=client_for(server), quiet=True)  # type: ignore[arg-type]
        # Nothing already staged is downloaded again: no request of the resume overlaps a staged span.
        for _, params in server.requests[before:]:
            lo, hi = pd.Timestamp(params["start"]).value, pd.Timestamp(params["end"]).value + 1
            for symbol in params["symbols"].split(","):
                assert not any(s == symbol and a < hi and lo < b for s, a, b in staged), (symbol, lo, hi)
        assert report.skipped_days == done_before
        assert file_bytes(root) == file_bytes(reference)
        total = len(server.requests)
        again = import_api(kind, "AAPL,BRK.B", START, END, root=root, client=client_for(server), quiet=True)  # type: ignore[arg-type]
        assert again.requests == 0 and len(server.requests) == total and again.skipped_days == 6
        assert list(root.rglob("*.tmp")) == []
        assert list(root.glob(".ticklake/staging/*/pieces/*")) == []


def file_bytes(root: Path) -> dict[str, bytes]:
    """The lake files under ``root`` (not the staging area), by relative path."""
    return {
        str(p.relative_to(root)): p.read_bytes()
        for p in sorted(root.rglob("*.parquet"))
        if ".ticklake" not in p.relative_to(root).parts
    }


def test_errors_are_not_retried_and_quote_the_api(tmp_path: Path, data: dict[str, dict[str, pa.Table]]) -> None:
    message = "subscription does not permit querying recent SIP data"
    with AlpacaServer(data["trades"], faults=Faults(script=[f"status:403:{message}"])) as server:
        with pytest.raises(ticklake.AuthError, match=message) as err:
            import_api("trades", "AAPL", START, START, root=tmp_path, client=client_for(server), quiet=True)
        assert err.value.status == 403 and server.count() == 1
    with AlpacaServer(data["trades"], faults=Faults(script=["status:422:invalid timeframe"])) as server:
        with pytest.raises(ticklake.ApiError, match="invalid timeframe"):
            import_api("1m", "AAPL", START, START, root=tmp_path, client=client_for(server), quiet=True)
        assert server.count() == 1
    with AlpacaServer(data["trades"]) as server:
        wrong = client_for(server, secret="wrong-secret")
        with pytest.raises(ticklake.AuthError, match="access key verification failed") as err:
            list(wrong.pages("trades", "AAPL", 0, 1, feed="sip"))
        assert "wrong-secret" not in str(err.value)
        with pytest.raises(ticklake.ApiError, match="unexpected query parameter"):
            client_for(server).get("/v2/stocks/trades", {"symbols": "AAPL", "start": "x", "end": "y", "bogus": "1"})


def test_rate_limit_reset_is_honoured(data: dict[str, dict[str, pa.Table]]) -> None:
    waits: list[float] = []
    with AlpacaServer(data["trades"], faults=Faults(script=["429"])) as server:
        client = client_for(server, sleep=waits.append)
        tables = list(client.pages("trades", "AAPL", 0, 2**62, feed="sip"))
        assert sum(t.num_rows for t, _ in tables) == data["trades"]["AAPL"].num_rows
    # The 429 said "the quota resets in 1-2 s": the next request waited for that (not a fixed short sleep).
    assert max(waits) > 0.9


def test_the_client_follows_the_accounts_limit_and_its_remaining_quota(
    tmp_path: Path, data: dict[str, dict[str, pa.Table]]
) -> None:
    # The account allows 600/min (30 per 3-second window here); another process already spent most of the window.
    with AlpacaServer(data["trades"], rate_limit=600, enforce_rate=True, window=3.0, max_page=300) as server:
        server.window_start, server.window_used = time.time(), 27
        client = client_for(server, rate=None, max_in_flight=1)
        report = import_api(
            "trades", "AAPL,BRK.B", START, END, root=tmp_path, client=client, quiet=True, strategy="per-day"
        )
        assert client.limiter.per_minute == 600  # learned from X-RateLimit-Limit (it started at 200)
        assert server.served_429 == 0 and report.rate_limited == 0
        assert client.limiter.paused > 0  # it waited for the window to reset instead of running into it
        assert report.requests > 30


def test_limiter_spaces_requests_across_threads() -> None:
    now = [100.0]
    slept: list[float] = []

    def sleep(seconds: float) -> None:
        slept.append(seconds)
        now[0] += seconds

    limiter = RateLimiter(600, clock=lambda: now[0], sleep=sleep)
    for _ in range(10):
        limiter.acquire()
    assert now[0] == pytest.approx(100.9)  # 10 requests at 600/min: 0.1 s apart, the first at once
    limiter.pause_until(now[0] + 5)
    limiter.acquire()
    assert slept[-1] == pytest.approx(5.0)
    with pytest.raises(ticklake.InvalidInputError):
        RateLimiter(0)


def test_the_secret_never_leaks(
    tmp_path: Path, data: dict[str, dict[str, pa.Table]], caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    with AlpacaServer(data["trades"], data["quotes"], faults=Faults(p500=0.2, pdrop=0.1, seed=5)) as server:
        client = client_for(server)
        assert SECRET not in repr(client) and KEY_ID not in repr(client)
        assert SECRET not in repr(vars(client))
        import_api("trades", "AAPL", START, END, root=tmp_path / "py", client=client, quiet=True)
        env = {**os.environ, "APCA_API_KEY_ID": KEY_ID, "APCA_API_SECRET_KEY": SECRET, "APCA_API_DATA_URL": server.url}
        done = subprocess.run(
            [sys.executable, "-m", "ticklake.cli", "import-api", "1s", "AAPL,BRK.B", str(START), str(END),
             "--root", str(tmp_path / "cli"), "--rate", "100000"],
            cwd=REPO, capture_output=True, text=True, timeout=120, env=env,
        )  # fmt: skip
        assert done.returncode == 0, done.stderr
        assert "import" in done.stderr  # the progress bar
        bad = subprocess.run(
            [sys.executable, "-m", "ticklake.cli", "import-api", "1s", "AAPL", str(START), str(END),
             "--root", str(tmp_path / "cli2")],
            cwd=REPO, capture_output=True, text=True, timeout=120,
            env={**env, "APCA_API_SECRET_KEY": SECRET + "x", "APCA_API_DATA_URL": server.url},
        )  # fmt: skip
        assert bad.returncode == 2 and "access key verification failed" in bad.stderr
        assert "Traceback" not in bad.stderr
    outputs = [done.stdout, done.stderr, bad.stdout, bad.stderr, caplog.text]
    assert not any(SECRET in text for text in outputs)
    for path in tmp_path.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


def test_bad_arguments(tmp_path: Path) -> None:
    for kwargs, match in [
        ({"kind": "5m"}, "kind"),
        ({"feed": "nasdaq"}, "feed"),
        ({"adjustment": "splits"}, "adjustment"),
        ({"symbols": "../etc"}, "symbol"),
        ({"start": "2024-02-02"}, "before START"),
        ({"start": "2024-01-30 10:00"}, "plain New York date"),
        ({"kind": "quotes", "from_trades": True}, "from-trades"),
    ]:
        args = {"kind": "1s", "symbols": "AAPL", "start": "2024-01-30", "end": "2024-02-01", **kwargs}
        with pytest.raises(ticklake.InvalidInputError, match=match):
            import_api(args.pop("kind"), args.pop("symbols"), args.pop("start"), args.pop("end"), root=tmp_path, **args)  # type: ignore[arg-type]
    env = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    done = subprocess.run(
        [sys.executable, "-m", "ticklake.cli", "import-api", "1s", "AAPL", "2024-01-30", "2024-01-30",
         "--root", str(tmp_path)],
        cwd=REPO, capture_output=True, text=True, timeout=60, env=env,
    )  # fmt: skip
    assert done.returncode == 2 and "APCA_API_KEY_ID" in done.stderr and "Traceback" not in done.stderr


def test_fill_gaps_imports_exactly_the_days_the_lake_lacks(
    tmp_path: Path, data: dict[str, dict[str, pa.Table]]
) -> None:
    with AlpacaServer(data["trades"], data["quotes"], max_page=700) as server:
        client = client_for(server)
        import_api("1s", "AAPL,BRK.B", START, END, root=tmp_path, client=client, quiet=True)
        complete = file_bytes(tmp_path)
        lake = ticklake.Lake(tmp_path)
        assert lake.gaps("bars/1s", ["AAPL", "BRK.B"], START, END) == {}
        # A lost day and a day cut short at noon.
        aapl = lake.scan("1s", "AAPL").to_arrow()
        lake.write_bars(aapl.slice(0, 0), "1s", replace=("2024-01-31 05:00", "2024-02-01 05:00"), symbol="AAPL")
        brk = lake.scan("1s", "BRK.B").to_arrow()
        lake.write_bars(brk.slice(0, 0), "1s", replace=("2024-02-01 17:00", "2024-02-02 05:00"), symbol="BRK.B")
        gaps = lake.gaps("1s", ["AAPL", "BRK.B"], START, END)
        assert gaps == {"AAPL": [D(2024, 1, 31)], "BRK.B": [D(2024, 2, 1)]}
        before = len(server.requests)
        report = import_api("1s", "AAPL,BRK.B", START, END, root=tmp_path, client=client, quiet=True, fill_gaps=True)
        assert report.days == 2 and len(report.files) == 2
        made = len(server.requests) - before
        print(f"fill-gaps: {made} requests ({report.by_purpose}) for {report.days} days filled")
        assert made == report.requests > 0
        for _, params in server.requests[before:]:  # counting requests included
            lo, hi = pd.Timestamp(params["start"]), pd.Timestamp(params["end"])
            days = set(
                pd.date_range(lo.tz_convert("America/New_York").date(), hi.tz_convert("America/New_York").date())
            )
            assert {d.date() for d in days} <= {D(2024, 1, 31), D(2024, 2, 1)}, params
        assert lake.gaps("1s", ["AAPL", "BRK.B"], START, END) == {}
        assert file_bytes(tmp_path) == complete
        again = import_api("1s", "AAPL,BRK.B", START, END, root=tmp_path, client=client, quiet=True, fill_gaps=True)
        assert again.requests == 0 and again.days == 0
