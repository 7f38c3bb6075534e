"""The signals asset with tiny real champions in a temporary MLflow registry: it logs what it
served (signals and every champion's predictions for the served rows) and obeys a halt."""

from __future__ import annotations

import json
from datetime import date, timedelta

import dagster as dg
import polars as pl
import pytest

from assets.serving import SignalConfig, signals
from resources.mlflow_tracking import CHAMPION
from tests.conftest import make_resources
from tests.support.registry import register

SYMBOLS = ["AAA", "BBB"]
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


def serve(resources: dict) -> tuple[pl.DataFrame, dict]:
    dates = [LAST - timedelta(days=i) for i in range(70)]
    keys = pl.DataFrame({"symbol": [s for s in SYMBOLS for _ in dates], "date": dates * 2})
    context = dg.build_asset_context()
    frame = signals(
        context,
        config=SignalConfig(),
        mlflow_tracking=resources["mlflow_tracking"],
        served_log=resources["served_log"],
        operator_control=resources["operator_control"],
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
