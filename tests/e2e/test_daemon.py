"""The pipeline running itself under the real daemon: a drifted nightly result makes the
daemon's sensor launch `retrain`, which trains, registers and promotes new models in MLflow;
severe drift later makes it launch `sweep`, which continues the Optuna studies and retrains with
their best parameters.

Real processes over a temporary instance: `market materialize --no-train` on the data as known
on 2026-03-31, `market nightly` (same data) with the drift window on March 2020 against calm
2019, then `dagster-daemon run` until the run it launched has finished; then a second nightly
reading on all the data (new labeled sessions: a retrain on the same rows is never launched)
and a second daemon; last, the nightly schedule ticking under a third daemon, that night from a
vendor's csv files in which one symbol is broken (blocked alone; the others reach the signals).
Every process is stopped by its own process group.
"""

import time
from pathlib import Path

import dagster as dg
import optuna
import polars as pl
import pytest

from quant.models import MODEL_FAMILIES
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking
from tests.support.processes import dagster_daemon, isolated_env
from tests.support.processes import run_market as market

pytestmark = pytest.mark.slow


FIRST_DATA = "2026-03-31"


def nightly_drift(env: dict[str, str], drift_end: str, *as_of: str) -> float:
    night = market(
        env,
        "nightly",
        *as_of,
        "--drift-end",
        drift_end,
        "--reference-start",
        "2019-01-01",
        "--reference-end",
        "2019-12-31",
    )
    assert night.returncode == 0, night.stdout[-2000:] + night.stderr[-3000:]
    return float(night.stdout.split("drift share ")[1].split()[0])


def wait_for_run(
    home: str, job: str, timeout_s: float, tags: dict[str, str] | None = None
) -> dg.DagsterRun:
    """The newest ``job`` run (with ``tags``) once it has finished."""
    deadline = time.monotonic() + timeout_s
    finished = (
        dg.DagsterRunStatus.SUCCESS,
        dg.DagsterRunStatus.FAILURE,
        dg.DagsterRunStatus.CANCELED,
    )
    with dg.DagsterInstance.from_config(home) as instance:
        while time.monotonic() < deadline:
            runs = instance.get_runs(filters=dg.RunsFilter(job_name=job, tags=tags or {}), limit=1)
            if runs and runs[0].status in finished:
                return runs[0]
            time.sleep(3)
    raise AssertionError(f"no finished {job} run within {timeout_s}s")


def export_csv(lake: Path, folder: Path, split_from: dict[str, str]) -> None:
    """The lake's raw bars as a vendor's csv files, with an unadjusted 4:1 split from a date
    for the symbols of ``split_from`` (prices quartered, history otherwise intact)."""
    folder.mkdir()
    prices = ("open", "high", "low", "close", "adj_close")
    for path in sorted((lake / "raw_ohlcv").glob("*.parquet")):
        bars = pl.read_parquet(path)
        symbol = bars["symbol"][0]
        if symbol in split_from:
            cut = pl.lit(split_from[symbol]).str.to_date()
            bars = bars.with_columns(
                pl.when(pl.col("date") >= cut).then(pl.col(c) / 4).otherwise(pl.col(c)).alias(c)
                for c in prices
            )
        bars.select(
            pl.col("date").alias("Date"),
            *[pl.col(c).alias(c.replace("_", " ").title()) for c in prices],
            pl.col("volume").alias("Volume"),
        ).write_csv(folder / f"{path.stem}.csv")


def check_verdicts(instance: dg.DagsterInstance, run_id: str, check: str) -> dict[str, bool]:
    """``raw_ohlcv``'s ``check`` verdict per symbol partition in run ``run_id``."""
    key = dg.AssetCheckKey(dg.AssetKey("raw_ohlcv"), check)
    verdicts = {}
    for record in instance.event_log_storage.get_asset_check_execution_history(key, limit=200):
        event = record.event
        if event is None or event.run_id != run_id:
            continue
        if event.dagster_event_type.value == "ASSET_CHECK_EVALUATION":
            evaluation = event.dagster_event.event_specific_data
            verdicts[evaluation.partition] = evaluation.passed
    return verdicts


@pytest.mark.timeout(900)  # about 6 minutes alone on 2 cores: room for a loaded CI machine
def test_daemon_sensor_launches_a_retrain_on_drift(tmp_path, monkeypatch):
    # retrain (not sweep) on this drift: the severe threshold is set above it
    env = isolated_env(tmp_path, MARKET_SEVERE_DRIFT_SHARE="0.95")
    built = market({**env, "MARKET_AS_OF": FIRST_DATA}, "materialize", "--no-train")
    assert built.returncode == 0, built.stdout[-2000:] + built.stderr[-3000:]
    share = nightly_drift(env, "2020-04-15", "--as-of", FIRST_DATA)
    assert 0.3 <= share < 0.95

    home = env["DAGSTER_HOME"]
    monkeypatch.setenv("DAGSTER_HOME", home)  # the instance's dagster.yaml reads it
    with dagster_daemon(env):
        run = wait_for_run(home, "retrain", timeout_s=400)
    log = (tmp_path / "dagster_home" / "daemon.log").read_text()
    assert run.status == dg.DagsterRunStatus.SUCCESS, log[-4000:]
    assert run.tags["market/trigger"] == "feature_drift"
    assert run.tags["dagster/run_key"].startswith("retrain:feature_drift:")
    assert run.tags["dagster/sensor_name"] == "drift_retrain_sensor"

    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'data' / 'mlflow' / 'mlflow.db'}",
        artifact_root=str(tmp_path / "data" / "mlflow" / "artifacts"),
    )
    for name in MODEL_FAMILIES:
        champion = tracking.version_by_alias(name, CHAMPION)
        assert champion is not None, name
        assert tracking.client().get_run(champion.run_id).data.tags["dagster_run_id"] == run.run_id

    for name in MODEL_FAMILIES:  # the retrain trained on the data it had, not on a constant
        data_as_of = tracking.version_by_alias(name, CHAMPION).tags["data_as_of"]
        assert data_as_of <= FIRST_DATA and data_as_of >= "2026-03-20", name

    # later, on all the data, severe drift (>= 0.5) → the sensor launches a sweep
    later = {**env, "MARKET_SEVERE_DRIFT_SHARE": "0.5"}
    share = nightly_drift(later, "2020-06-01")  # 47 days on: past the 20-day cool-down
    assert share >= 0.5
    with dagster_daemon(later):
        sweep = wait_for_run(home, "sweep", timeout_s=400)
    log = (tmp_path / "dagster_home" / "daemon.log").read_text()
    assert sweep.status == dg.DagsterRunStatus.SUCCESS, log[-4000:]
    assert sweep.tags["dagster/run_key"].startswith("sweep:feature_drift:")
    optuna_db = tmp_path / "data" / "optuna" / "optuna.db"
    studies = optuna.get_all_study_summaries(storage=f"sqlite:///{optuna_db}")
    assert {s.study_name for s in studies} == {"direction_xgboost", "direction_lstm"}
    xgb = tracking.client().get_model_version("direction_xgboost", "2")
    params = tracking.client().get_run(xgb.run_id).data.params
    assert params["params_source"] == "optuna study direction_xgboost"
    assert {CHAMPION, CHALLENGER} & set(xgb.aliases)

    # the nightly schedule under the daemon: ticking every minute here (weekdays 22:00 New York
    # by default), it launches one nightly run over the whole universe, which succeeds; that
    # night the vendor's csv files carry an unadjusted 4:1 split for AAPL: AAPL is blocked
    # alone, its validated bars kept, and every other symbol reaches the signals
    lake = tmp_path / "data" / "lake"
    csv_dir = tmp_path / "vendor_csv"
    export_csv(lake, csv_dir, split_from={"AAPL": "2026-04-01"})
    aapl_validated = (lake / "ohlcv" / "AAPL.parquet").read_bytes()
    every_minute = {
        **later,
        "MARKET_NIGHTLY_CRON": "* * * * *",
        "MARKET_SOURCE": "csv",
        "MARKET_CSV_DIR": str(csv_dir),
    }
    with dagster_daemon(every_minute):
        nightly = wait_for_run(
            home, "nightly", 480, tags={"dagster/schedule_name": "nightly_schedule"}
        )
    log = (tmp_path / "dagster_home" / "daemon.log").read_text()
    assert nightly.status == dg.DagsterRunStatus.SUCCESS, log[-4000:]
    assert nightly.tags["dagster/schedule_name"] == "nightly_schedule"
    assert nightly.tags["dagster/asset_partition_range_start"] == "^GSPC"
    assert (lake / "ohlcv" / "AAPL.parquet").read_bytes() == aapl_validated
    with dg.DagsterInstance.from_config(home) as instance:
        verdicts = check_verdicts(instance, nightly.run_id, "price_sanity")
        signals = instance.get_latest_materialization_event(dg.AssetKey("signals"))
    assert verdicts["AAPL"] is False and verdicts["MSFT"] is True
    assert signals is not None and signals.run_id == nightly.run_id  # the others reached signals
