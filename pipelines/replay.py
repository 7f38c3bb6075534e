"""Replay the nightly pipeline over history, offline: what the schedule and the drift sensor
would have done, day by day, on the bundled sample.

For each replayed session the ``nightly`` job runs with the sample source's ``as_of`` set to
that date (the data as it was known then) and the drift window ending there; then the real
``drift_retrain_sensor`` is evaluated against the instance (same cursor, run keys and cool-down
as under the daemon) and the runs it requests are executed. Everything lands in the instance in
$DAGSTER_HOME, so the UI shows the replayed nights and the retrains they caused.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import date

import dagster as dg

from pipelines import runner

SENSOR = "drift_retrain_sensor"


@dataclass
class ReplayStep:
    as_of: str
    nightly_ok: bool
    drift_share: float | None = None
    decayed: bool | None = None
    sensor: str = ""
    launched: list[str] = field(default_factory=list)


def replay_sessions(start: date, end: date, every: int) -> list[str]:
    """Every ``every``-th NYSE session from ``start`` to ``end`` (the universe's US calendar)."""
    from quant.validation.calendars import exchange_sessions

    sessions = exchange_sessions("NYSE", start, end).to_list()
    return [d.isoformat() for d in sessions[::every]]


def monitoring_summary(result: dg.ExecuteJobResult) -> tuple[float | None, bool | None]:
    share = decayed = None
    for event in result.all_events:
        if event.event_type_value != "ASSET_MATERIALIZATION":
            continue
        meta = event.event_specific_data.materialization.metadata
        if event.asset_key == dg.AssetKey("feature_drift"):
            share = float(meta["drift_share"].value)
        elif event.asset_key == dg.AssetKey("model_health"):
            decayed = bool(meta["decayed"].value)
    return share, decayed


def evaluate_sensor(instance: dg.DagsterInstance, cursor: str | None) -> dg.SensorResult:
    """One tick of the real drift sensor, as the daemon would run it."""
    from pipelines.definitions import defs

    sensor = defs.resolve_sensor_def(SENSOR)
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        sensor_name=SENSOR,
        resources={"trigger_thresholds": defs.resources["trigger_thresholds"]},
        definitions=defs,
    )
    return sensor(context)


def sweep_run_config(xgboost_trials: int, lstm_trials: int) -> dict[str, object]:
    return {
        **runner.RUN_CONFIG,
        "ops": {
            "direction_xgboost_sweep": {"config": {"n_trials": xgboost_trials}},
            "direction_lstm_sweep": {"config": {"n_trials": lstm_trials}},
        },
    }


def replay(
    start: date,
    end: date,
    every: int = 5,
    launch: bool = True,
    sweep_trials: tuple[int, int] = (4, 2),
    echo: Callable[[ReplayStep], None] | None = None,
) -> list[ReplayStep]:
    """Replay the nightly run on every ``every``-th session from ``start`` to ``end``."""
    instance = dg.DagsterInstance.get()
    cursor = None
    steps = []
    for as_of in replay_sessions(start, end, every):
        night = runner.run_nightly(instance, as_of=as_of)
        step = ReplayStep(as_of, night.success, *monitoring_summary(night))
        tick = evaluate_sensor(instance, cursor)
        cursor = tick.cursor
        if tick.skip_reason:
            step.sensor = f"skip: {tick.skip_reason.skip_message}"
        for request in tick.run_requests or []:
            tags = {**request.tags, "dagster/run_key": request.run_key}
            step.sensor = f"launch {request.job_name} ({request.run_key})"
            if not launch:
                continue
            factory = runner.retrain_job if request.job_name == "retrain" else runner.sweep_job
            config = sweep_run_config(*sweep_trials) if request.job_name == "sweep" else None
            result = runner.execute(factory, tags, instance, config)
            step.launched.append(f"{request.job_name} {'ok' if result.success else 'FAILED'}")
        steps.append(step)
        if echo:
            echo(step)
    return steps
