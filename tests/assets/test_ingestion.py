"""raw_ohlcv materialized for real: temporary Dagster instance, lake and landing in tmp_path."""

from datetime import date

import polars as pl

from assets.ingestion import raw_ohlcv
from quant.bars import content_hash
from resources.market_data import MarketData
from resources.sources import YahooSource
from tests.conftest import make_resources
from tests.support.runs import materializations, materialize_range, symbols_between
from tests.support.yahoo_replay import YahooReplayAdapter, replay_session


def test_several_symbols_in_one_run_match_the_sample(instance, data_dir, sample_panel):
    resources = make_resources(data_dir, start="2020-01-01", as_of="2025-01-31")
    result = materialize_range([raw_ohlcv], "^NSEBANK", "MSFT", resources, instance)
    assert result.success
    symbols = symbols_between("^NSEBANK", "MSFT")
    assert symbols == ["^NSEBANK", "^VIX", "AAPL", "MSFT"]
    assert len(instance.get_runs()) == 1  # one run for all of them
    events = materializations(result, "raw_ohlcv")
    assert sorted(events) == sorted(symbols)
    lake = resources["lake"]
    for symbol in symbols:
        stored = lake.read("raw_ohlcv", symbol)
        expected = sample_panel.filter(
            (pl.col("symbol") == symbol)
            & pl.col("date").is_between(date(2020, 1, 1), date(2025, 1, 31))
        ).sort("date")
        assert stored.equals(expected), symbol
        meta = {k: v.value for k, v in events[symbol].metadata.items()}
        assert meta["dagster/row_count"] == expected.height
        assert meta["first_date"] == str(expected["date"].min())
        assert meta["last_date"] == "2025-01-31"
        assert meta["source"] == "sample"
        assert meta["content_hash"] == content_hash(expected)
        assert meta["new_rows"] == expected.height
        assert meta["run_symbols"] == 4
    # PROVENANCE.md's coverage table: 1,278 NYSE sessions; ^NSEBANK 1,258 of 1,260 NSE sessions
    assert [lake.read("raw_ohlcv", s).height for s in symbols] == [1258, 1278, 1278, 1278]


def test_rematerializing_is_idempotent_and_landing_only_grows(instance, data_dir):
    resources = make_resources(data_dir, start="2024-01-01", as_of="2024-06-30")
    first = materialize_range([raw_ohlcv], "AAPL", "GOOGL", resources, instance)
    before = {
        s: (data_dir / "lake/raw_ohlcv" / f"{s}.parquet").read_bytes()
        for s in ("AAPL", "MSFT", "GOOGL")
    }
    landed_before = sorted(p.name for p in (data_dir / "raw").rglob("*"))
    second = materialize_range([raw_ohlcv], "AAPL", "GOOGL", resources, instance)
    assert first.success and second.success
    after = {s: (data_dir / "lake/raw_ohlcv" / f"{s}.parquet").read_bytes() for s in before}
    m1, m2 = materializations(first, "raw_ohlcv"), materializations(second, "raw_ohlcv")
    for symbol in before:
        assert m1[symbol].metadata["content_hash"] == m2[symbol].metadata["content_hash"]
        assert m2[symbol].metadata["new_rows"].value == 0
    assert after == before  # byte-identical partitions
    landed_after = sorted(p.name for p in (data_dir / "raw").rglob("*"))
    assert set(landed_before) < set(landed_after)  # new receipts, nothing removed
    assert len([n for n in landed_after if n.startswith("bars-")]) == 3  # identical content once


def test_a_failed_fetch_leaves_stored_partitions_untouched(instance, data_dir, tmp_path):
    resources = make_resources(data_dir, start="2024-01-01", as_of="2024-03-31")
    assert materialize_range([raw_ohlcv], "AAPL", "MSFT", resources, instance).success
    stored = {
        s: (data_dir / "lake/raw_ohlcv" / f"{s}.parquet").read_bytes() for s in ("AAPL", "MSFT")
    }

    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    (csv_dir / "MSFT.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n2024-04-01,1,2,0.5,1.5,10\n"
    )
    (csv_dir / "AAPL.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n2024-04-01,1,2,0.5,n/a?,10\n"
    )
    broken = make_resources(data_dir, source="csv", csv_dir=str(csv_dir), start=None)
    result = materialize_range([raw_ohlcv], "AAPL", "MSFT", broken, instance)

    assert not result.success
    failure = next(e for e in result.all_events if e.is_step_failure)
    message = failure.step_failure_data.error.message + str(
        failure.step_failure_data.user_failure_data
    )
    assert "AAPL" in message and "line 2" in message and "'close'" in message
    assert "MSFT" not in str(
        failure.step_failure_data.user_failure_data.metadata["failed_symbols"].value
    )
    for symbol, content in stored.items():
        assert (data_dir / "lake/raw_ohlcv" / f"{symbol}.parquet").read_bytes() == content
    # the good delivery was still landed: nothing delivered is ever lost
    assert any((data_dir / "raw/csv/MSFT").glob("bars-*.parquet"))


def test_yahoo_incremental_run_merges_new_bars(instance, data_dir, monkeypatch):
    replay = YahooReplayAdapter()

    def replayed_yahoo(self: MarketData) -> YahooSource:
        return YahooSource(
            data_dir / "cache",
            start=self.start_date,
            as_of=self.as_of_date,
            session=replay_session(replay),
            sleep=lambda s: None,
        )

    monkeypatch.setattr(MarketData, "build", replayed_yahoo)
    early = make_resources(data_dir, source="yahoo", start="2024-01-01", as_of="2024-02-15")
    assert materialize_range([raw_ohlcv], "AAPL", "AAPL", early, instance).success
    assert early["lake"].read("raw_ohlcv", "AAPL")["date"].max() == date(2024, 2, 15)

    later = make_resources(data_dir, source="yahoo", start="2024-01-01", as_of="2024-02-29")
    result = materialize_range([raw_ohlcv], "AAPL", "AAPL", later, instance)
    assert result.success
    meta = materializations(result, "raw_ohlcv")["AAPL"].metadata
    assert meta["delivery_mode"].value == "incremental"
    assert meta["new_rows"].value == 9  # 2024-02-16 .. 2024-02-29
    stored = later["lake"].read("raw_ohlcv", "AAPL")
    assert stored.height == 41 and stored["date"].is_unique().all()
    first, second = replay.chart_requests("AAPL")
    assert int(second["period1"][0]) > int(first["period1"][0])  # only recent bars were asked for
