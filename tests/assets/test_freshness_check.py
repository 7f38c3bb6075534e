"""``ohlcv_freshness`` on a real instance: one range run over several symbols records one WARN
verdict per symbol partition, judged on each symbol's own exchange calendar."""

from datetime import date

import dagster as dg

from assets.freshness import CHECK_NAME, ohlcv_freshness
from assets.ingestion import raw_ohlcv
from assets.validation import ohlcv
from tests.conftest import make_resources
from tests.support.runs import range_tags, symbols_between

FIRST, LAST = "^DJI", "AAPL"  # ^DJI, ^NSEI, ^NSEBANK, ^VIX, AAPL in universe order
CHECK_KEY = dg.AssetCheckKey(dg.AssetKey("ohlcv"), CHECK_NAME)


def test_one_range_run_records_a_verdict_per_partition(instance, data_dir):
    resources = make_resources(data_dir)  # the sample at its default as-of: its equities' end
    assert resources["market_data"].run_date() == date(2026, 5, 29)
    result = dg.materialize(
        [raw_ohlcv, ohlcv, ohlcv_freshness],
        instance=instance,
        resources=resources,
        tags=range_tags(FIRST, LAST),
        raise_on_error=False,
    )
    assert result.success
    symbols = symbols_between(FIRST, LAST)
    records = instance.event_log_storage.get_asset_check_execution_history(CHECK_KEY, limit=50)
    evaluations = {}
    for record in records:
        evaluation = record.event.dagster_event.event_specific_data
        evaluations[evaluation.partition] = evaluation
    assert sorted(evaluations) == sorted(symbols)  # one execution per partition, not one per run

    for symbol, data_date, sessions, calendar in (
        ("^DJI", "2025-07-11", 222, "NYSE"),
        ("^NSEI", "2026-04-10", 32, "NSE"),
        ("^NSEBANK", "2026-03-20", 44, "NSE"),
    ):
        stale = evaluations[symbol]
        assert not stale.passed and stale.severity == dg.AssetCheckSeverity.WARN
        assert not stale.blocking
        meta = {k: v.value for k, v in stale.metadata.items()}
        assert meta["sessions_behind"] == sessions and meta["data_date"] == data_date
        assert meta["calendar"] == calendar and meta["run_date"] == "2026-05-29"
        assert meta["max_sessions_behind"] == 2 and "HOLD" in meta["what_to_do"]
        assert f"{sessions} {calendar} sessions behind" in stale.description
    aapl = evaluations["AAPL"]
    assert aapl.passed and aapl.metadata["sessions_behind"].value == 0
    assert evaluations["^VIX"].passed  # ends 2026-08-21: ahead of the run date, never behind
