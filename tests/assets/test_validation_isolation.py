"""One corrupted symbol among good ones: only it is blocked, and its stored ohlcv is kept."""

from datetime import date

import polars as pl

from assets.ingestion import raw_ohlcv
from tests.conftest import make_resources
from tests.support.runs import materialize_range
from tests.support.validation_runs import check_verdicts, validate

SYMBOLS = ("AAPL", "MSFT", "GOOGL")  # contiguous in the universe: one ingestion run covers them


def write_csvs(folder, sample_panel, corrupt: str | None = None):
    folder.mkdir(exist_ok=True)
    for symbol in SYMBOLS:
        bars = sample_panel.filter(
            (pl.col("symbol") == symbol)
            & pl.col("date").is_between(date(2023, 1, 1), date(2024, 6, 28))
        ).drop("symbol")
        if symbol == corrupt:  # an unadjusted 4:1 split in the newest delivery
            early = pl.col("date") < date(2024, 3, 1)
            bars = bars.drop("adj_close").with_columns(
                *[
                    pl.when(early).then(pl.col(c) * 4).otherwise(pl.col(c)).alias(c)
                    for c in ("open", "high", "low", "close")
                ]
            )
        bars.write_csv(folder / f"{symbol}.csv")


def run_all(resources, instance):
    assert materialize_range([raw_ohlcv], SYMBOLS[0], SYMBOLS[-1], resources, instance).success
    return {s: validate(s, resources, instance) for s in SYMBOLS}


def test_one_bad_symbol_is_blocked_alone(instance, data_dir, tmp_path, sample_panel):
    csv_dir = tmp_path / "csv"
    resources = make_resources(data_dir, source="csv", csv_dir=str(csv_dir), start=None)
    write_csvs(csv_dir, sample_panel)
    first = run_all(resources, instance)
    assert all(r.success for r in first.values())
    lake_file = data_dir / "lake" / "ohlcv" / "MSFT.parquet"
    stored_before = lake_file.read_bytes()

    write_csvs(csv_dir, sample_panel, corrupt="MSFT")
    second = run_all(resources, instance)

    assert second["AAPL"].success and second["GOOGL"].success
    assert not second["MSFT"].success
    assert check_verdicts(second["MSFT"])["price_sanity"] == (False, "ERROR")

    def ohlcv_written(result):
        return [
            m.partition
            for m in result.asset_materializations_for_node("ohlcv")
            if m.asset_key.path == ["ohlcv"]
        ]

    assert ohlcv_written(second["AAPL"]) == ["AAPL"] and ohlcv_written(second["GOOGL"]) == ["GOOGL"]
    assert ohlcv_written(second["MSFT"]) == []
    assert lake_file.read_bytes() == stored_before  # the good data already stored is kept
    # and the bad delivery itself is not lost either: it sits in the raw layers
    assert resources["lake"].read("raw_ohlcv", "MSFT")["adj_close"].null_count() > 0


def test_contract_in_a_range_run_records_a_verdict_per_symbol(
    instance, data_dir, tmp_path, sample_panel
):
    """Launched over a range (the nightly, `make run`, the UI), the contract records each
    symbol's verdict on that symbol's partition: only the broken one fails."""
    from assets.validation import raw_ohlcv_contract

    csv_dir = tmp_path / "csv"
    write_csvs(csv_dir, sample_panel, corrupt="GOOGL")
    resources = make_resources(data_dir, source="csv", csv_dir=str(csv_dir), start=None)
    result = materialize_range(
        [raw_ohlcv, raw_ohlcv_contract], SYMBOLS[0], SYMBOLS[-1], resources, instance
    )
    assert result.success  # the contract never stops the step the symbols share
    price = {
        e.partition: e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "price_sanity"
    }
    assert set(price) == set(SYMBOLS)
    assert not price["GOOGL"].passed and price["GOOGL"].severity.value == "ERROR"
    assert "GOOGL" in price["GOOGL"].description and "2024-03-01" in price["GOOGL"].description
    assert price["AAPL"].passed and price["MSFT"].passed
    assert price["GOOGL"].metadata["file"].value.endswith("raw_ohlcv/GOOGL.parquet")
    assert "--symbols GOOGL" in price["GOOGL"].metadata["what_to_do"].value
