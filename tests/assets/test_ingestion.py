"""raw_ohlcv materialized for real: temporary Dagster instance, lake and landing in tmp_path."""

from datetime import date

import dagster as dg
import polars as pl

from assets.ingestion import raw_ohlcv
from quant.bars import content_hash
from resources.market_data import MarketData
from resources.sources import YahooSource
from tests.conftest import make_resources
from tests.support.runs import materializations, materialize_range, range_tags, symbols_between
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


def delivery_checks(instance) -> dict[str, tuple[bool, str]]:
    """The latest ``raw_ohlcv`` delivery verdict per symbol partition: (passed, description)."""
    records = instance.event_log_storage.get_asset_check_execution_history(
        dg.AssetCheckKey(dg.AssetKey("raw_ohlcv"), "delivery"), limit=100
    )
    latest: dict[str, tuple[bool, str]] = {}
    for record in records:  # newest first
        if (
            record.event is None
            or record.event.dagster_event_type.value != "ASSET_CHECK_EVALUATION"
        ):
            continue  # planned, never evaluated
        evaluation = record.event.dagster_event.event_specific_data
        latest.setdefault(evaluation.partition, (evaluation.passed, evaluation.description))
    return latest


def test_a_failed_fetch_is_refused_alone_and_the_other_symbols_are_written(
    instance, data_dir, tmp_path
):
    resources = make_resources(data_dir, start="2024-01-01", as_of="2024-03-31")
    assert materialize_range([raw_ohlcv], "AAPL", "MSFT", resources, instance).success
    lake = resources["lake"]
    aapl_before = lake.path("raw_ohlcv", "AAPL").read_bytes()
    msft_before = lake.read("raw_ohlcv", "MSFT")

    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    grown = msft_before.select(
        pl.col("date").alias("Date"),
        pl.col("open").alias("Open"),
        pl.col("high").alias("High"),
        pl.col("low").alias("Low"),
        pl.col("close").alias("Close"),
        pl.col("volume").alias("Volume"),
    )
    extra = pl.DataFrame(
        {
            "Date": [date(2024, 4, 1)],
            "Open": [1.0],
            "High": [2.0],
            "Low": [0.5],
            "Close": [1.5],
            "Volume": [10.0],
        }
    )
    pl.concat([grown, extra]).write_csv(csv_dir / "MSFT.csv")
    (csv_dir / "AAPL.csv").write_text(
        "Date,Open,High,Low,Close,Volume\n2024-04-01,1,2,0.5,n/a?,10\n"
    )
    broken = make_resources(data_dir, source="csv", csv_dir=str(csv_dir), start=None)
    result = materialize_range([raw_ohlcv], "AAPL", "MSFT", broken, instance)

    assert result.success  # one bad symbol does not stop the other
    assert lake.path("raw_ohlcv", "AAPL").read_bytes() == aapl_before
    assert lake.read("raw_ohlcv", "MSFT").height == msft_before.height + 1
    verdicts = delivery_checks(instance)
    assert verdicts["MSFT"][0] is True
    passed, message = verdicts["AAPL"]
    assert not passed and "line 2" in message and "'close'" in message and "AAPL.csv" in message
    status = materializations(result, "raw_ohlcv")["AAPL"].metadata["status"].value
    assert status.startswith("NOT INGESTED: the stored partition is kept")
    # the refused delivery was not landed (nothing was delivered); the good one was
    assert any((data_dir / "raw/csv/MSFT").glob("bars-*.parquet"))


def test_a_shorter_delivery_never_replaces_stored_history_without_the_flag(
    instance, data_dir, tmp_path
):
    resources = make_resources(data_dir, start="2024-01-01", as_of="2024-03-31")
    assert materialize_range([raw_ohlcv], "AAPL", "MSFT", resources, instance).success
    lake = resources["lake"]
    stored = lake.path("raw_ohlcv", "MSFT").read_bytes()
    stored_rows = lake.read("raw_ohlcv", "MSFT").height
    # the same source as known on an earlier date: a snapshot that lacks the stored quarter's end
    earlier = make_resources(data_dir, start="2024-01-01", as_of="2024-02-15")
    result = materialize_range([raw_ohlcv], "AAPL", "MSFT", earlier, instance)
    assert not result.success  # every symbol refused: nothing to go on with
    assert lake.path("raw_ohlcv", "MSFT").read_bytes() == stored
    passed, message = delivery_checks(instance)["MSFT"]
    assert not passed
    assert f"would replace {stored_rows} stored rows" in message and "2024-03-28" in message
    assert "--replace-history" in message
    landed = sorted((data_dir / "raw/sample/MSFT").glob("bars-*.parquet"))
    assert len(landed) == 2  # the refused delivery is kept in the landing all the same

    # on purpose: the flag replaces the history
    replaced = dg.materialize(
        [raw_ohlcv],
        instance=instance,
        resources=earlier,
        tags=range_tags("AAPL", "MSFT"),
        run_config={"ops": {"raw_ohlcv": {"config": {"replace_history": True}}}},
    )
    assert replaced.success
    assert lake.read("raw_ohlcv", "MSFT")["date"].max() == date(2024, 2, 15)


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
