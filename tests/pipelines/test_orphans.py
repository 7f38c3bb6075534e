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


def test_only_runs_whose_process_is_gone_are_failed(instance):
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
    reaped = dead_run_reaper(dg.build_sensor_context(instance=instance))
    assert orphan.run_id in reaped.skip_message
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


@pytest.mark.slow
def test_a_killed_market_run_is_failed_by_the_next_command_and_the_rerun_succeeds(
    tmp_path, monkeypatch
):
    env = isolated_env(tmp_path)
    home = env["DAGSTER_HOME"]
    monkeypatch.setenv("DAGSTER_HOME", home)  # the instance's dagster.yaml reads it
    slice_ = ["--symbols", "^NSEBANK", "^VIX", "AAPL", "MSFT", "--no-train"]
    process = subprocess.Popen(
        [str(BIN / "market"), "materialize", *slice_],
        cwd=PROJECT_ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    with dg.DagsterInstance.from_config(home) as instance:
        deadline = time.monotonic() + 180
        started = []
        while time.monotonic() < deadline and not started:
            started = instance.get_runs(
                filters=dg.RunsFilter(job_name="validate", statuses=[dg.DagsterRunStatus.STARTED])
            )
            time.sleep(0.2)
        assert started, "the validation run never started"
        os.killpg(process.pid, signal.SIGKILL)  # mid-validation, the whole process group
        process.wait()
        run_id = started[0].run_id
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.STARTED  # stuck

    again = run_market(env, "materialize", *slice_, timeout=300)
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    with dg.DagsterInstance.from_config(home) as instance:
        assert instance.get_run_by_id(run_id).status == dg.DagsterRunStatus.FAILURE
    lake = tmp_path / "data" / "lake"
    for symbol in ("NSEBANK", "VIX", "AAPL", "MSFT"):  # nothing torn: every file reads whole
        assert pl.read_parquet(lake / "ohlcv" / f"{symbol}.parquet").height > 1000
    assert not list(lake.rglob("*.tmp"))  # no temporary file left behind
