"""Runs whose process died: found and marked failed, so they free their queue slot.

Runs launched from the command line execute in the launching process (``execute_job``), which
neither the run queue nor Dagster's run monitoring watches: after a ``kill -9`` such a run stays
STARTED for ever, holding its ``market/kind=retrain`` slot, and every later retrain waits behind
it. Each run launched here is tagged with the process id and host that execute it; a run still
in progress whose process no longer exists on this host is marked failed, with the reason.
The MLflow runs a dead run had open are ended as KILLED, so the tracking UI does not show them
running for ever. The reaper runs before every CLI run and from a sensor under the daemon.
"""

import os
import socket

import dagster as dg

PID_TAG, HOST_TAG = "market/pid", "market/host"
IN_PROGRESS = [
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
    dg.DagsterRunStatus.CANCELING,
]


def process_tags() -> dict[str, str]:
    """The tags that say which process executes a run launched here."""
    return {PID_TAG: str(os.getpid()), HOST_TAG: socket.gethostname()}


def process_alive(pid: int) -> bool:
    """Whether a process with ``pid`` exists on this host (a zombie counts as dead)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process
    try:
        with open(f"/proc/{pid}/stat", encoding="ascii") as handle:
            return handle.read().split(") ")[-1][:1] != "Z"
    except OSError:
        return True


def reap_dead_runs(instance: dg.DagsterInstance) -> list[str]:
    """Mark failed every in-progress run whose executing process died; their run ids."""
    host = socket.gethostname()
    reaped = []
    for run in instance.get_runs(filters=dg.RunsFilter(statuses=IN_PROGRESS)):
        pid, run_host = run.tags.get(PID_TAG), run.tags.get(HOST_TAG)
        if not pid or run_host != host or not pid.isdigit() or process_alive(int(pid)):
            continue
        instance.report_run_failed(
            run,
            message=f"the process that executed this run (pid {pid} on {host}) is gone: "
            "killed or crashed mid-run; marked failed so its queue slot is free. Stored data "
            "are as the last finished step left them (every write is atomic); rerun the job.",
        )
        reaped.append(run.run_id)
    if reaped:
        end_mlflow_runs(reaped)
    return reaped


def end_mlflow_runs(dagster_run_ids: list[str]) -> list[str]:
    """End as KILLED the MLflow runs (and their nested trial runs) still RUNNING for the given
    Dagster runs; their MLflow run ids. A tracking store that does not exist yet is left alone."""
    from mlflow import MlflowClient

    from resources import settings

    uri = settings.mlflow_tracking_uri()
    if uri.startswith("sqlite:///") and not os.path.exists(uri.removeprefix("sqlite:///")):
        return []
    client = MlflowClient(tracking_uri=uri)
    experiments = [e.experiment_id for e in client.search_experiments()]
    if not experiments:
        return []
    running = "attributes.status = 'RUNNING'"
    ended = []
    for run_id in dagster_run_ids:  # MLflow's search has no IN over tags
        for parent in client.search_runs(experiments, f"tags.dagster_run_id = '{run_id}'"):
            if parent.info.status != "RUNNING":
                continue
            ended.append(parent.info.run_id)
            nested = f"tags.mlflow.parentRunId = '{parent.info.run_id}' AND {running}"
            ended += [r.info.run_id for r in client.search_runs(experiments, nested)]
    for mlflow_run in ended:
        client.set_terminated(mlflow_run, status="KILLED")
    return ended


@dg.sensor(
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Marks failed the runs whose executing process died (a killed `market` "
    "command), so they stop holding the retrain slot.",
)
def dead_run_reaper(context: dg.SensorEvaluationContext) -> dg.SkipReason:
    reaped = reap_dead_runs(context.instance)
    if reaped:
        return dg.SkipReason(f"marked {len(reaped)} dead run(s) failed: {', '.join(reaped)}")
    return dg.SkipReason("no run lost its process")
