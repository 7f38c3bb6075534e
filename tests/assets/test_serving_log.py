"""The signals asset with tiny real champions in a temporary MLflow registry: it logs what it
served (signals and every champion's predictions for the served rows), obeys a halt, and holds
a symbol whose data are stale on its exchange calendar."""

from __future__ import annotations

import json
from datetime import UTC, date, datetime, timedelta

import dagster as dg
import polars as pl
import pytest

from assets.serving import SignalConfig, signals
from resources.market_data import MarketData
from resources.mlflow_tracking import CHAMPION
from tests.conftest import make_resources
from tests.support.registry import register

SYMBOLS = ["AAPL", "MSFT"]  # symbols of the universe: freshness needs their exchange calendar
LAST = date(2026, 11, 30)


@pytest.fixture
def resources(data_dir):
    resources = make_resources(data_dir)
    tracking = resources["mlflow_tracking"]
    for name, family, outputs in [
        ("direction_xgboost", "direction", None),
        # the ensemble's opposite call must be logged but (as before) not voted
        ("direction_ensemble", "direction", {"p_down": 0.8, "p_neutral": 0.1, "p_up": 0.1}),
        ("volatility_garch", "volatility", None),
        ("regime_random_forest", "regime", None),
    ]:
        tracking.set_alias(name, CHAMPION, register(tracking, name, family, outputs))
    return resources


def serve(
    resources: dict, market_data: MarketData | None = None, last: dict[str, date] | None = None
) -> tuple[pl.DataFrame, dict]:
    """Serve 70 days of rows per symbol, ending on ``last[symbol]`` (default LAST)."""
    ends = {s: (last or {}).get(s, LAST) for s in SYMBOLS}
    keys = pl.DataFrame(
        {
            "symbol": [s for s in SYMBOLS for _ in range(70)],
            "date": [ends[s] - timedelta(days=i) for s in SYMBOLS for i in range(70)],
        }
    )
    context = dg.build_asset_context()
    frame = signals(
        context,
        config=SignalConfig(),
        mlflow_tracking=resources["mlflow_tracking"],
        served_log=resources["served_log"],
        operator_control=resources["operator_control"],
        market_data=market_data or resources["market_data"],
        features=keys.with_columns(pl.lit(1.0).alias("x")),
        market_context=keys,
    )
    return frame, context.get_output_metadata("result")


def test_signals_are_logged_and_a_halt_holds_everything(resources):
    log, control = resources["served_log"], resources["operator_control"]
    frame, metadata = serve(resources)
    assert frame["signal"].to_list() == ["BUY", "BUY"] and frame["date"].unique().to_list() == [
        LAST
    ]
    assert frame["halted"].to_list() == [False, False] and "halted" not in metadata
    # the sample's run date (2026-05-29) is before LAST: nothing is behind
    assert frame["data_date"].to_list() == frame["date"].to_list()
    assert frame["stale"].to_list() == [False, False] and metadata["stale_symbols"].data == []
    assert metadata["run_date"] == "2026-05-29" and "as_of" not in metadata
    assert metadata["served_rows_logged"] == 2 + 2 * 4

    control.halt("market closed early", "ops")
    held, metadata = serve(resources)
    assert held["signal"].to_list() == ["HOLD", "HOLD"] and held["position"].to_list() == [0, 0]
    assert held["halted"].to_list() == [True, True]
    assert held["p_up"].to_list() == frame["p_up"].to_list()  # the probabilities are kept
    assert "market closed early" in str(metadata["halted"])

    served = log.read("signals")
    assert served.height == 4 and served["halted"].to_list() == [False, False, True, True]
    versions = json.loads(served["model_versions"][0])
    assert set(versions) == {
        "direction_xgboost",
        "direction_ensemble",
        "volatility_garch",
        "regime_random_forest",
    }
    predictions = log.read("predictions")
    assert predictions.height == 2 * 2 * 4  # two runs x two symbols x four champions
    assert set(predictions["date"]) == {LAST}  # exactly the served rows, not the history
    ensemble = predictions.filter(pl.col("model") == "direction_ensemble")
    assert ensemble["p_down"].to_list() == [0.8] * 4 and ensemble["vol_forecast"].null_count() == 4
    garch = predictions.filter(pl.col("model") == "volatility_garch")
    assert garch["vol_forecast"].to_list() == [0.3] * 4 and garch["family"][0] == "volatility"
    assert predictions["version"].to_list()[0] == "1"
    sql = "SELECT count(*) AS n FROM served_predictions WHERE model = 'regime_random_forest'"
    assert resources["warehouse"].query(sql)["n"][0] == 4


def test_a_stale_symbol_is_served_hold_with_its_data_date(resources, data_dir):
    # run date 2026-11-30 (Mon); MSFT's last bar Fri 11-20: 23, 24, 25, 27, 30 Nov = 5 behind
    market_data = make_resources(data_dir, as_of="2026-11-30")["market_data"]
    frame, metadata = serve(resources, market_data, last={"MSFT": date(2026, 11, 20)})
    rows = {r["symbol"]: r for r in frame.iter_rows(named=True)}
    assert rows["AAPL"]["signal"] == "BUY" and not rows["AAPL"]["stale"]
    assert rows["AAPL"]["sessions_behind"] == 0
    msft = rows["MSFT"]
    assert msft["signal"] == "HOLD" and msft["position"] == 0 and msft["stale"]
    assert msft["data_date"] == date(2026, 11, 20) and msft["sessions_behind"] == 5
    assert msft["run_date"] == date(2026, 11, 30) and msft["p_up"] == rows["AAPL"]["p_up"]
    assert metadata["run_date"] == "2026-11-30"
    assert metadata["data_dates"] == "2026-11-20 .. 2026-11-30"
    assert metadata["stale_symbols"].data == [
        {"symbol": "MSFT", "calendar": "NYSE", "data_date": "2026-11-20", "sessions_behind": 5}
    ]
    assert "| MSFT | 2026-11-20 | HOLD | True | 5 |" in metadata["signals"].value
    # the served log keeps the flag; a log file written before the flag existed still reads
    log = resources["served_log"]
    old = frame.drop("data_date", "run_date", "sessions_behind", "stale").with_columns(
        pl.lit("{}").alias("model_versions")
    )
    log.append("signals", old, datetime(2026, 1, 2, tzinfo=UTC), "oldrun")
    served = log.read("signals")
    assert served.height == 4 and served["stale"].to_list() == [None, None, False, True]
    sql = "SELECT symbol, stale FROM served_signals WHERE stale ORDER BY symbol"
    assert resources["warehouse"].query(sql)["symbol"].to_list() == ["MSFT"]
