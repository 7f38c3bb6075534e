"""The served log: append-only Parquet records, read back whole and seen by DuckDB."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta, timezone

import polars as pl
import pytest

from resources.served_log import PREDICTION_SCHEMA, ServedLog, prediction_rows
from resources.warehouse import DuckDBWarehouse

AT = datetime(2026, 12, 1, 21, 30, 5, 123456, tzinfo=UTC)
RUN_A = "0a1b2c3d-aaaa-bbbb-cccc-000000000001"
RUN_B = "9f8e7d6c-aaaa-bbbb-cccc-000000000002"


def predictions() -> pl.DataFrame:
    keys = pl.DataFrame({"symbol": ["AAPL", "MSFT"], "date": [date(2026, 11, 30)] * 2})
    direction = keys.with_columns(p_down=pl.lit(0.2), p_neutral=pl.lit(0.1), p_up=pl.lit(0.7))
    volatility = keys.with_columns(vol_forecast=pl.lit(0.25))
    return pl.concat(
        [
            prediction_rows("direction_xgboost", "direction", "3", direction),
            prediction_rows("volatility_garch", "volatility", "1", volatility),
        ]
    )


def snapshot(log: ServedLog, kind: str) -> dict[str, tuple[int, bytes]]:
    return {p.name: (p.stat().st_mtime_ns, p.read_bytes()) for p in log.files(kind)}


def test_appends_keep_every_record_and_never_touch_earlier_files(tmp_path):
    log = ServedLog(lake_dir=str(tmp_path / "lake"))
    first = log.append("predictions", predictions(), AT, RUN_A)
    assert first.parent == tmp_path / "lake" / "served_predictions"
    assert first.name.startswith("20261201T213005123456Z-0a1b2c3d-")
    before = snapshot(log, "predictions")

    # the same content served again by another run: a second record, the first one untouched
    second = log.append("predictions", predictions(), AT + timedelta(seconds=1), RUN_B)
    assert second != first
    after = snapshot(log, "predictions")
    assert len(after) == 2 and {k: after[k] for k in before} == before

    # the same instant, run and content again: the name is taken, so it raises, not overwrites
    with pytest.raises(FileExistsError, match="never overwritten"):
        log.append("predictions", predictions(), AT, RUN_A)
    assert snapshot(log, "predictions") == after
    assert not [p for p in first.parent.iterdir() if p.suffix != ".parquet"]  # no temp left

    stored = log.read("predictions")
    assert stored.height == 8
    assert stored["dagster_run_id"].unique().sort().to_list() == [RUN_A, RUN_B]
    assert stored.schema["served_at"] == pl.Datetime("us", "UTC")
    assert stored["served_at"].min() == AT
    assert {c: stored.schema[c] for c in PREDICTION_SCHEMA} == PREDICTION_SCHEMA
    garch = stored.filter(pl.col("model") == "volatility_garch")
    assert garch["p_up"].null_count() == garch.height and garch["vol_forecast"].min() == 0.25
    assert stored.select("served_at", "symbol", "date").equals(
        stored.select("served_at", "symbol", "date").sort("served_at", "symbol", "date")
    )


def test_duckdb_sees_the_log_as_views(tmp_path):
    log = ServedLog(lake_dir=str(tmp_path / "lake"))
    log.append("predictions", predictions(), AT, RUN_A)
    log.append("predictions", predictions(), AT + timedelta(minutes=1), RUN_B)
    signals = pl.DataFrame(
        {"symbol": ["AAPL"], "date": [date(2026, 11, 30)], "signal": ["BUY"], "halted": [False]}
    )
    log.append("signals", signals, AT, RUN_A)
    warehouse = DuckDBWarehouse(lake_dir=str(tmp_path / "lake"))
    counts = warehouse.query(
        "SELECT dagster_run_id, count(*) AS n FROM served_predictions "
        "WHERE model = 'direction_xgboost' GROUP BY 1 ORDER BY 1"
    )
    assert counts.to_dicts() == [
        {"dagster_run_id": RUN_A, "n": 2},
        {"dagster_run_id": RUN_B, "n": 2},
    ]
    served = warehouse.query("SELECT symbol, signal, halted FROM served_signals")
    assert served.to_dicts() == [{"symbol": "AAPL", "signal": "BUY", "halted": False}]


def test_served_at_is_utc_and_bad_input_is_refused(tmp_path):
    log = ServedLog(lake_dir=str(tmp_path / "lake"))
    assert log.read("signals").is_empty() and "served_at" in log.read("signals").columns
    assert log.read("predictions").columns[:5] == ["symbol", "date", "model", "family", "version"]
    assert log.append("predictions", predictions().head(0), AT, RUN_A) is None
    assert log.files("predictions") == []
    local = AT.astimezone(timezone(timedelta(hours=5, minutes=30)))
    path = log.append("predictions", predictions(), local, RUN_A)
    assert path.name.startswith("20261201T213005123456Z")
    with pytest.raises(ValueError, match="unknown kind"):
        log.append("features", predictions(), AT, RUN_A)
    with pytest.raises(ValueError, match="unknown kind"):
        log.read("features")
    with pytest.raises(ValueError, match="run id"):
        log.append("predictions", predictions(), AT, "../../etc")
    with pytest.raises(ValueError, match="model"):
        log.append("predictions", predictions().drop("model"), AT, RUN_B)
