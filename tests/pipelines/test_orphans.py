"""A run whose process died is found and marked failed, freeing its slot; what it stored is
intact and a rerun succeeds (real instance; a real `market materialize` killed with SIGKILL)."""

import os
import signal
import socket
import subprocess
import sys
import time

import dagster as dg
import polars as pl
import pytest
from dagster._core.test_utils import create_run_for_test

from pipelines.orphans import HOST_TAG, PID_TAG, dead_run_reaper, reap_dead_runs
from tests.support.processes import BIN, PROJECT_ROOT, isolated_env, run_market


def dead_pid() -> int:
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid


def open_mlflow_runs(dagster_run_id: str) -> tuple[str, str]:
    """A training run and its nested trial, left RUNNING as a killed process leaves them."""
    import mlflow

    from resources import settings

    client = mlflow.MlflowClient(settings.mlflow_tracking_uri())
    experiment = client.create_experiment(f"direction-{dagster_run_id}")
    parent = client.create_run(experiment, tags={"dagster_run_id": dagster_run_id})
    child = client.create_run(experiment, tags={"mlflow.parentRunId": parent.info.run_id})
    return parent.info.run_id, child.info.run_id


def test_only_runs_whose_process_is_gone_are_failed(instance, tmp_path, monkeypatch):
    monkeypatch.setenv("MARKET_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    (tmp_path / "data" / "mlflow").mkdir(parents=True)
    host = socket.gethostname()
    retrain = {"market/kind": "retrain"}
    orphan = create_run_for_test(
        instance,
        job_name="retrain",
        status=dg.DagsterRunStatus.STARTED,
        tags={**retrain, PID_TAG: str(dead_pid()), HOST_TAG: host},
    )
    alive = create_run_for_test(
        instance,
        job_name="retrain",
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: str(os.getpid()), HOST_TAG: host},
    )
    elsewhere = create_run_for_test(
        instance,
        job_name="retrain",
        status=dg.DagsterRunStatus.STARTED,
        tags={PID_TAG: str(dead_pid()), HOST_TAG: "another-host"},
    )
    killed_mlflow = open_mlflow_runs(orphan.run_id)
    alive_mlflow = open_mlflow_runs(alive.run_id)
    reaped = dead_run_reaper(dg.build_sensor_context(instance=instance))
    assert orphan.run_id in reaped.skip_message
    # the dead run's MLflow runs (and nested trials) are ended as KILLED; the live one's are not
    import mlflow

    from resources import settings

    client = mlflow.MlflowClient(settings.mlflow_tracking_uri())
    assert [client.get_run(r).info.status for r in killed_mlflow] == ["KILLED", "KILLED"]
    assert [client.get_run(r).info.status for r in alive_mlflow] == ["RUNNING", "RUNNING"]
    assert instance.get_run_by_id(orphan.run_id).status == dg.DagsterRunStatus.FAILURE
    for run in (alive, elsewhere):
        assert instance.get_run_by_id(run.run_id).status == dg.DagsterRunStatus.STARTED
    failure = [
        e
        for e in instance.all_logs(orphan.run_id)
        if e.dagster_event and e.dagster_event.event_type_value == "PIPELINE_FAILURE"
    ]
    assert "is gone: killed or crashed mid-run" in failure[0].dagster_event.message
    assert reap_dead_runs(instance) == []  # idempotent


SMALL_UNIVERSE = ["^GSPC", "^VIX", "AAPL", "MSFT", "JPM", "XOM"]
# where the kill lands: the job whose run is in progress, and the slice `market materialize` runs
KILL_POINTS = {
    "ingestion": ("ingest", ["^NSEBANK", "^VIX", "AAPL", "MSFT"], ["--no-train"]),
    "validation": ("validate", ["^NSEBANK", "^VIX", "AAPL", "MSFT"], ["--no-train"]),
    "training": ("sweep", SMALL_UNIVERSE, []),
}


def small_universe(folder) -> str:
    """A universe file of the six symbols (both market-context roles among them)."""
    lines = (PROJECT_ROOT / "config" / "universe.yaml").read_text().splitlines()
    chosen = [line for line in lines if any(f'symbol: "{s}"' in line for s in SMALL_UNIVERSE)]
    path = folder / "universe.yaml"
    path.write_text("instruments:\n" + "\n".join(chosen) + "\n")
    return str(path)


def wait_for_run(instance: dg.DagsterInstance, job: str, seconds: float) -> dg.DagsterRun:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        started = instance.get_runs(
            filters=dg.RunsFilter(job_name=job, statuses=[dg.DagsterRunStatus.STARTED])
        )
        if started:
            return started[0]
        time.sleep(0.1)
    raise AssertionError(f"no {job} run started within {seconds} s")


def wait_for_mlflow_run(dagster_run_id: str, seconds: float) -> None:
    """Until the run has an MLflow run open (read with sqlite3: an MLflow client here would
    join the running process's schema creation)."""
    import sqlite3

    from resources import settings

    database = settings.mlflow_tracking_uri().removeprefix("sqlite:///")
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with sqlite3.connect(f"file:{database}?mode=ro", uri=True) as db:
                found = db.execute(
                    "SELECT 1 FROM tags WHERE key = 'dagster_run_id' AND value = ?",
                    (dagster_run_id,),
                ).fetchone()
            if found:
                return
        except sqlite3.Error:
            pass  # not created yet, or its schema is being created
        time.sleep(0.5)
    raise AssertionError(f"run {dagster_run_id} opened no MLflow run within {seconds} s")


@pytest.mark.slow
@pytest.mark.timeout(1500)  # two pipeline runs back to back: a loaded CI machine needs the room
@pytest.mark.parametrize("point", list(KILL_POINTS))
def test_a_killed_market_run_is_failed_by_the_next_command_and_the_rerun_succeeds(
    point, tmp_path, monkeypatch
):
    job, symbols, flags = KILL_POINTS[point]
    env = isolated_env(tmp_path)
    if point == "training":
        env["MARKET_UNIVERSE"] = small_universe(tmp_path)
    home = env["DAGSTER_HOME"]
    monkeypatch.setenv("DAGSTER_HOME", home)  # the instance's dagster.yaml reads it
    monkeypatch.setenv("MARKET_DATA_DIR", env["MARKET_DATA_DIR"])
    # the store is the one under the data folder: an earlier test's mlflow.set_tracking_uri
    # leaves MLFLOW_TRACKING_URI in this process's environment
    monkeypatch.delenv("MLFLOW_TRACKING_URI", raising=False)
    slice_ = ["--symbols", *symbols, *flags] if flags else []
    process = subprocess.Popen(
        [str(BIN / "market"), "materialize", *slice_],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    with dg.DagsterInstance.from_config(home) as instance:
        killed = wait_for_run(instance, job, 300)
        if point == "training":  # once its first MLflow run is open: mid-training
            wait_for_mlflow_run(killed.run_id, 600)
        os.killpg(process.pid, signal.SIGKILL)  # the whole process group
        process.wait()
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.STARTED

    again = run_market(env, "materialize", *slice_, timeout=600)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    with dg.DagsterInstance.from_config(home) as instance:
        assert instance.get_run_by_id(killed.run_id).status == dg.DagsterRunStatus.FAILURE
        rerun = instance.get_runs(filters=dg.RunsFilter(job_name=job), limit=1)[0]
        assert rerun.run_id != killed.run_id
        assert rerun.status == dg.DagsterRunStatus.SUCCESS
    lake = tmp_path / "data" / "lake"
    for symbol in symbols:  # nothing torn: every file reads whole
        name = symbol.lstrip("^")
        assert pl.read_parquet(lake / "ohlcv" / f"{name}.parquet").height > 1000
    assert not list(lake.rglob("*.tmp"))  # no temporary file left behind
    if point == "training":
        import mlflow

        from resources import settings

        uri = settings.mlflow_tracking_uri()
        client = mlflow.MlflowClient(tracking_uri=uri, registry_uri=uri)
        experiments = [e.experiment_id for e in client.search_experiments()]
        runs = client.search_runs(experiments, max_results=5000)
        # the killed run's MLflow runs are ended, none is left RUNNING; the rerun registered
        # the models and the report scored them
        assert not [r for r in runs if r.info.status == "RUNNING"]
        assert [r for r in runs if r.data.tags.get("dagster_run_id") == killed.run_id]
        assert client.get_model_version_by_alias("direction_xgboost", "champion") is not None
