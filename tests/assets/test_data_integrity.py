"""One bad symbol alone, nothing good replaced by less, unreadable files named: on a real
instance, through the csv source, ingestion, the contract, ``ohlcv`` and ``features`` in ONE
range run each (as the nightly does)."""

from datetime import date
from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from assets import features, ingestion, validation
from assets.validation import contract_reports
from resources.lake import CorruptPartitionError
from tests.conftest import make_resources
from tests.support.runs import materializations, range_tags

ALL = [
    *dg.load_assets_from_modules([ingestion, validation, features]),
    *dg.load_asset_checks_from_modules([validation]),
]
FIRST, LAST = "AAPL", "GOOGL"  # AAPL, MSFT, GOOGL in universe order
SYMBOLS = ["AAPL", "MSFT", "GOOGL"]
STAGES = ["raw_ohlcv", "ohlcv", "ohlcv_quarantine", "features"]


def write_csv(folder: Path, symbol: str, bars: pl.DataFrame) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    bars.select(
        pl.col("date").alias("Date"),
        *[pl.col(c).alias(c.title()) for c in ("open", "high", "low", "close", "volume")],
    ).write_csv(folder / f"{symbol}.csv")


def run(resources, instance, selection=STAGES) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        ALL,
        selection=selection,
        instance=instance,
        resources=resources,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )


def contract_verdicts(instance, symbol: str) -> dict[str, tuple[bool, str]]:
    """The latest contract verdict of each rule for one symbol partition."""
    out = {}
    for rule in (
        "completeness",
        "ohlc_logic",
        "price_sanity",
        "volume_sanity",
        "temporal_integrity",
    ):
        key = dg.AssetCheckKey(dg.AssetKey("raw_ohlcv"), rule)
        for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=50):
            event = record.event
            if event is None or event.dagster_event_type.value != "ASSET_CHECK_EVALUATION":
                continue
            evaluation = event.dagster_event.event_specific_data
            if evaluation.partition == symbol:
                out[rule] = (evaluation.passed, evaluation.severity.value)
                break
    return out


@pytest.fixture
def csv_lake(instance, data_dir, tmp_path, sample_panel):
    """Three equities delivered as csv files, materialized once through features."""
    csv_dir = tmp_path / "csv"
    bars = {
        s: sample_panel.filter(
            (pl.col("symbol") == s) & pl.col("date").is_between(date(2022, 1, 1), date(2024, 6, 28))
        ).sort("date")
        for s in SYMBOLS
    }
    for symbol, frame in bars.items():
        write_csv(csv_dir, symbol, frame)
    resources = make_resources(data_dir, source="csv", csv_dir=str(csv_dir), start=None)
    assert run(resources, instance).success
    return resources, csv_dir, bars


def stored_bytes(lake, symbol: str) -> dict[str, bytes]:
    return {a: lake.path(a, symbol).read_bytes() for a in ("raw_ohlcv", "ohlcv", "features")}


def test_one_corrupt_symbol_is_blocked_alone_in_a_range_run(csv_lake, instance):
    resources, csv_dir, bars = csv_lake
    lake = resources["lake"]
    before = stored_bytes(lake, "MSFT")
    # the others grow by a day; MSFT's vendor delivers an unadjusted 4:1 split
    for symbol in ("AAPL", "GOOGL"):
        more = bars[symbol].tail(1).with_columns(pl.lit(date(2024, 7, 1)).alias("date"))
        write_csv(csv_dir, symbol, pl.concat([bars[symbol], more]))
    broken = bars["MSFT"].with_columns(
        pl.when(pl.col("date") >= date(2024, 3, 1))
        .then(pl.col(c) / 4)
        .otherwise(pl.col(c))
        .alias(c)
        for c in ("open", "high", "low", "close")
    )
    write_csv(csv_dir, "MSFT", broken)

    result = run(resources, instance)
    assert result.success  # the run goes on for the symbols that pass
    for symbol in ("AAPL", "GOOGL"):
        assert lake.read("ohlcv", symbol)["date"].max() == date(2024, 7, 1)
        assert lake.read("features", symbol)["date"].max() == date(2024, 7, 1)
        assert contract_verdicts(instance, symbol)["price_sanity"] == (True, "ERROR")
    # MSFT's raw delivery is stored (as delivered, for inspection), its validated bars and
    # features stay as they were, and the failure is recorded on MSFT's partition
    assert lake.path("ohlcv", "MSFT").read_bytes() == before["ohlcv"]
    assert lake.path("features", "MSFT").read_bytes() == before["features"]
    assert contract_verdicts(instance, "MSFT")["price_sanity"] == (False, "ERROR")
    status = materializations(result, "ohlcv")["MSFT"].metadata["status"].value
    assert status.startswith("BLOCKED by price_sanity: the stored partition is kept")
    blocked = [
        e.partition
        for e in result.get_asset_check_evaluations()
        if not e.passed and e.severity.value == "ERROR"
    ]
    assert set(blocked) == {"MSFT"}


def test_a_new_symbol_too_short_to_model_is_refused_and_the_others_go_on(
    instance, data_dir, tmp_path, sample_panel
):
    csv_dir = tmp_path / "csv"
    for symbol in ("AAPL", "GOOGL"):
        write_csv(
            csv_dir,
            symbol,
            sample_panel.filter(
                (pl.col("symbol") == symbol) & (pl.col("date") >= date(2023, 1, 1))
            ).sort("date"),
        )
    # a gap-free, valid, one-session delivery: every bar is fine, the history is not
    one = sample_panel.filter((pl.col("symbol") == "MSFT") & (pl.col("date") == date(2024, 6, 3)))
    write_csv(csv_dir, "MSFT", one)
    resources = make_resources(data_dir, source="csv", csv_dir=str(csv_dir), start=None)
    result = run(resources, instance)
    assert result.success
    lake = resources["lake"]
    assert contract_verdicts(instance, "MSFT")["completeness"] == (False, "ERROR")
    assert not lake.exists("ohlcv", "MSFT") and not lake.exists("features", "MSFT")
    assert lake.exists("features", "AAPL") and lake.exists("features", "GOOGL")
    (report,) = contract_reports(lake, ["MSFT"]).values()
    message = report.error_message(str(lake.path("raw_ohlcv", "MSFT")))
    assert "only 1 complete session" in message and "252" in message
    assert str(lake.path("raw_ohlcv", "MSFT")) in message and "rule completeness" in message


def truncate(path: Path) -> None:
    content = path.read_bytes()
    path.write_bytes(content[: len(content) // 2])


def test_a_corrupt_stored_file_is_named_blocks_only_its_symbol_and_is_restored_from_the_landing(
    csv_lake, instance
):
    resources, _, _ = csv_lake
    lake = resources["lake"]
    good = lake.read("raw_ohlcv", "MSFT")
    truncate(lake.path("raw_ohlcv", "MSFT"))
    with pytest.raises(CorruptPartitionError) as raised:
        lake.read("raw_ohlcv", "MSFT")
    message = str(raised.value)
    assert str(lake.path("raw_ohlcv", "MSFT")) in message and "raw_ohlcv[MSFT]" in message
    assert "market restore MSFT" in message

    ohlcv_before = lake.path("ohlcv", "MSFT").read_bytes()
    corrupt = lake.path("raw_ohlcv", "MSFT").read_bytes()
    result = run(resources, instance)  # the nightly's stages over the three symbols
    assert result.success  # AAPL and GOOGL fetched and validated; MSFT blocked alone
    # the unreadable file is neither overwritten blindly nor used: refused at ingestion...
    assert lake.path("raw_ohlcv", "MSFT").read_bytes() == corrupt
    delivery = next(
        e
        for e in result.get_asset_check_evaluations()
        if e.check_name == "delivery" and e.partition == "MSFT"
    )
    assert not delivery.passed and "market restore MSFT" in delivery.description
    # ...and blocked at validation, its validated bars kept
    assert lake.path("ohlcv", "MSFT").read_bytes() == ohlcv_before
    assert contract_verdicts(instance, "MSFT")["temporal_integrity"] == (False, "ERROR")
    meta = materializations(result, "ohlcv")["MSFT"].metadata
    assert "market restore MSFT" in meta["what_to_do"].value
    assert contract_verdicts(instance, "AAPL")["temporal_integrity"][0] is True

    restored = resources["landing"].rebuild("csv", "MSFT")
    assert restored.equals(good)  # the landing holds every accepted delivery
    lake.write("raw_ohlcv", restored, "MSFT")
    assert run(resources, instance).success
    assert contract_verdicts(instance, "MSFT")["temporal_integrity"][0] is True


def test_a_corrupt_derived_file_says_to_rematerialize_that_symbol(csv_lake):
    resources, _, _ = csv_lake
    lake = resources["lake"]
    truncate(lake.path("features", "GOOGL"))
    with pytest.raises(CorruptPartitionError, match=r"features\[GOOGL\].*--symbols GOOGL"):
        lake.read("features", "GOOGL")
