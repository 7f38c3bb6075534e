"""Champion health reads the served log: the losses of what each champion actually served, per
symbol's latest sessions, against the champion's own reference level."""

from datetime import date, timedelta

import dagster as dg
import numpy as np
import polars as pl
import pytest

from assets.monitoring import HealthConfig, model_health
from resources.mlflow_tracking import CHAMPION
from tests.conftest import make_resources
from tests.support.registry import register

SYMBOLS = ["AAA", "BBB", "CCC"]
DAYS = [date(2026, 3, 2) + timedelta(days=i) for i in range(40)]
REFERENCE = 0.95  # log loss the champion had out of sample when it took office


@pytest.fixture
def resources(data_dir):
    resources = make_resources(data_dir)
    tracking = resources["mlflow_tracking"]
    version = register(tracking, "direction_xgboost", "direction")
    tracking.set_alias("direction_xgboost", CHAMPION, version)
    tracking.client().set_model_version_tag(
        "direction_xgboost", version, "health_reference", str(REFERENCE)
    )
    return resources, version


def labels(up_share: float, seed: int = 0) -> pl.DataFrame:
    rng = np.random.default_rng(seed)
    keys = pl.DataFrame({"symbol": np.repeat(SYMBOLS, len(DAYS)), "date": DAYS * len(SYMBOLS)})
    y = np.where(rng.random(keys.height) < up_share, 2, 0)
    return keys.with_columns(
        pl.Series("direction", y, dtype=pl.Int8),
        pl.lit(None, pl.Float64).alias("fwd_vol_20"),
        pl.lit(None, pl.Int8).alias("regime"),
        pl.lit(None, pl.Date).alias("label_end"),
    )


def serve(resources, version: str, p_up: float, runs: int = 1) -> None:
    """The log as the signals asset writes it: one served row per symbol and session."""
    log = resources["served_log"]
    for night in DAYS:
        for run in range(runs):
            rows = pl.DataFrame(
                {
                    "symbol": SYMBOLS,
                    "date": [night] * 3,
                    "model": "direction_xgboost",
                    "family": "direction",
                    "version": version,
                    "p_down": 1 - p_up - 0.05,
                    "p_neutral": 0.05,
                    "p_up": p_up,
                }
            )
            log.append("predictions", rows, dg_now(night, run), f"run{run}{night:%m%d}")


def dg_now(day: date, run: int):
    from datetime import UTC, datetime

    return datetime(day.year, day.month, day.day, 22, run, tzinfo=UTC)


def judge(resources, frame: pl.DataFrame, **config) -> tuple[pl.DataFrame, dict]:
    context = dg.build_asset_context()
    table = model_health(
        context,
        config=HealthConfig(**config),
        modeling=resources["modeling"],
        mlflow_tracking=resources["mlflow_tracking"],
        served_log=resources["served_log"],
        labels=frame,
    )
    return table, context.get_output_metadata("result")


def test_health_is_judged_on_what_was_served_not_on_a_re_prediction(resources):
    resources, version = resources
    # the registered model says P(Up) = 0.7; what was served (and logged) said 0.9: the
    # log is what counts. Outcomes are 50/50 Up/Down: P(Down) = 0.05 on half the rows gives a
    # log loss near 1.55, far above the 0.95 reference (the model itself would score ~0.9).
    serve(resources, version, p_up=0.9)
    table, metadata = judge(resources, labels(0.5))
    row = table.row(0, named=True)
    assert row["served_sessions"] == len(DAYS)
    served = labels(0.5).with_columns(
        pl.when(pl.col("direction") == 2).then(0.9).otherwise(0.05).alias("p")
    )
    assert row["recent_loss"] == pytest.approx(-np.log(served["p"].to_numpy()).mean())
    assert row["decayed"] and metadata["decayed"] is True
    assert metadata["decayed_models"] == ["direction_xgboost"]
    assert "AAA" in metadata["per_symbol"].value


def test_a_champion_serving_at_its_level_is_healthy_and_reruns_count_once(resources):
    resources, version = resources
    serve(resources, version, p_up=0.6, runs=2)  # each night served twice: counted once
    table, metadata = judge(resources, labels(0.6, seed=1))
    row = table.row(0, named=True)
    assert row["served_sessions"] == len(DAYS)
    assert not row["decayed"] and metadata["decayed"] is False
    assert row["reference"] == pytest.approx(REFERENCE)


def test_too_few_served_sessions_are_not_judged(resources):
    resources, version = resources
    serve(resources, version, p_up=0.9)
    table, _ = judge(resources, labels(0.5), window=10, min_sessions=21)
    row = table.row(0, named=True)
    assert not row["decayed"] and "not enough" in row["reason"]
