"""Replay the nightly pipeline over history, offline: what the schedule, the calendar, the drift
sensor and promotion in shadow would have done, session by session, on the bundled sample.

For each replayed session the ``nightly`` job runs with the sample source's ``as_of`` set to
that date (the data as it was known then) and the drift window ending there; it judges pending
challengers in shadow and serves the signals. Then the real ``drift_retrain_sensor`` is
evaluated against the instance (same cursor, run keys, calendar and cool-down as under the
daemon) and the runs it requests are executed. Everything lands in the instance in
$DAGSTER_HOME, so the UI shows the replayed nights and the retrains they caused.

Each finished step is appended to ``<data>/replay_steps.jsonl`` (with the sensor's cursor), so
an interrupted replay resumes where it stopped; ``replay_table`` renders the record.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import date
from pathlib import Path

import dagster as dg

from pipelines import runner

SENSOR = "drift_retrain_sensor"


@dataclass
class ReplayStep:
    """What one replayed session did."""

    as_of: str
    nightly_ok: bool
    drift_share: float | None = None
    drift_threshold: float | None = None
    decayed: bool | None = None
    sensor: str = ""
    launched: list[str] = field(default_factory=list)
    windows: dict[str, str] = field(default_factory=dict)
    decisions: list[dict[str, object]] = field(default_factory=list)
    pending: dict[str, str] = field(default_factory=dict)
    seconds: float = 0.0
    cursor: str | None = None


def replay_sessions(start: date, end: date, every: int) -> list[str]:
    """Every ``every``-th NYSE session from ``start`` to ``end`` (the universe's US calendar)."""
    from quant.validation.calendars import exchange_sessions

    sessions = exchange_sessions("NYSE", start, end).to_list()
    return [d.isoformat() for d in sessions[::every]]


def _materializations(result: dg.ExecuteJobResult, asset: str) -> list[dict[str, object]]:
    out = []
    for event in result.all_events:
        if event.event_type_value == "ASSET_MATERIALIZATION" and event.asset_key == dg.AssetKey(
            asset
        ):
            meta = event.event_specific_data.materialization.metadata
            out.append({k: v.value for k, v in meta.items()})
    return out


def monitoring_summary(result: dg.ExecuteJobResult) -> tuple[float | None, bool | None]:
    """The drift share and the decay flag a nightly (or monitor) run measured."""
    drift = _materializations(result, "feature_drift")
    health = _materializations(result, "model_health")
    share = float(drift[-1]["drift_share"]) if drift else None
    decayed = bool(health[-1]["decayed"]) if health else None
    return share, decayed


def shadow_outcomes(lake_dir: Path) -> tuple[list[dict[str, object]], dict[str, str]]:
    """The decisions the last ``shadow_promotion`` took, and where the undecided ones stand."""
    import polars as pl

    path = lake_dir / "shadow_promotion.parquet"
    if not path.exists():
        return [], {}
    table = pl.read_parquet(path)
    decided = table.filter(pl.col("status").is_in(["promoted", "rejected"]))
    waiting = table.filter(~pl.col("status").is_in(["promoted", "rejected", "no challenger"]))
    return decided.to_dicts(), dict(zip(waiting["model"], waiting["status"], strict=True))


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


WINDOW_TAGS = ("train_start", "train_end", "validation_start", "validation_end", "data_as_of")


def _training_windows(result: dg.ExecuteJobResult) -> dict[str, str]:
    found = _materializations(result, "training_set")
    return {k: str(found[-1][k]) for k in WINDOW_TAGS if found and k in found[-1]}


class ReplayLog:
    """The steps done so far, one JSON line each (append-only: a resumed replay skips them)."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def steps(self) -> list[ReplayStep]:
        if not self.path.exists():
            return []
        lines = self.path.read_text().splitlines()
        return [ReplayStep(**json.loads(line)) for line in lines if line.strip()]

    def append(self, step: ReplayStep) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with self.path.open("a") as handle:
            handle.write(json.dumps(asdict(step), default=str) + "\n")


def sessions_to_replay(sessions: list[str], done: list[ReplayStep]) -> list[str]:
    """The sessions still to replay: those after the last one done (a resumed replay never
    steps back, so the sensor's cursor stays in order)."""
    last = max((s.as_of for s in done), default="")
    return [s for s in sessions if s > last]


def replay(
    start: date,
    end: date,
    every: int = 21,
    launch: bool = True,
    sweep_trials: tuple[int, int] = (4, 2),
    echo: Callable[[ReplayStep], None] | None = None,
    log: ReplayLog | None = None,
) -> list[ReplayStep]:
    """Replay the nightly run on every ``every``-th session from ``start`` to ``end``; with a
    ``log``, sessions already in it are skipped and the sensor resumes from its cursor."""
    from resources import settings

    instance = dg.DagsterInstance.get()
    done = log.steps() if log else []
    cursor = done[-1].cursor if done else None
    steps = list(done)
    for as_of in sessions_to_replay(replay_sessions(start, end, every), done):
        started = time.perf_counter()
        night = runner.run_nightly(instance, as_of=as_of)
        step = ReplayStep(as_of, night.success, *_nightly_reading(night))
        step.decisions, step.pending = shadow_outcomes(settings.lake_dir())
        tick = evaluate_sensor(instance, cursor)
        cursor = tick.cursor
        if tick.skip_reason:
            step.sensor = f"skip: {tick.skip_reason.skip_message}"
        for request in tick.run_requests or []:
            tags = {**request.tags, "dagster/run_key": request.run_key}
            step.sensor = f"launch {request.job_name}: {request.tags.get('market/reason', '')}"
            if not launch:
                continue
            factory = runner.retrain_job if request.job_name == "retrain" else runner.sweep_job
            config = sweep_run_config(*sweep_trials) if request.job_name == "sweep" else None
            result = runner.execute(factory, tags, instance, config)
            step.launched.append(f"{request.job_name} {'ok' if result.success else 'FAILED'}")
            step.windows = _training_windows(result)
        step.seconds = round(time.perf_counter() - started, 1)
        step.cursor = cursor
        steps.append(step)
        if log:
            log.append(step)
        if echo:
            echo(step)
    return steps


def _nightly_reading(night: dg.ExecuteJobResult) -> tuple[float | None, float | None, bool | None]:
    share, decayed = monitoring_summary(night)
    drift = _materializations(night, "feature_drift")
    threshold = drift[-1].get("retrain_threshold") if drift else None
    return share, None if threshold is None else float(threshold), decayed


def _score(value: object) -> str:
    return "–" if value is None else f"{float(value):.4f}"


def _decision_summary(decisions: list[dict[str, object]]) -> str:
    if not decisions:
        return "–"
    rejected = [f"{d['model']} v{d['challenger']}" for d in decisions if d["status"] != "promoted"]
    promoted = len(decisions) - len(rejected)
    text = f"{len(decisions)} decided: {promoted} promoted"
    return text + (f", rejected {', '.join(rejected)}" if rejected else "")


def replay_table(steps: list[ReplayStep]) -> str:
    """Markdown: per replayed session, the drift reading (and its calibrated threshold), what
    was launched with which windows, and a summary of the shadow decisions; then every
    decision with its kind, both scores, the p-value and the shadow window."""
    lines = [
        "| as of | drift (threshold) | launched | train window | validation window | "
        "shadow decisions | s |",
        "|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        drift = "–" if s.drift_share is None else f"{s.drift_share:.2f}"
        if s.drift_threshold is not None:
            drift += f" ({s.drift_threshold:.2f})"
        launched = ", ".join(s.launched) or "–"
        w = s.windows
        train = f"{w['train_start']} .. {w['train_end']}" if w else "–"
        valid = f"{w['validation_start']} .. {w['validation_end']}" if w else "–"
        lines.append(
            f"| {s.as_of} | {drift} | {launched} | {train} | {valid} | "
            f"{_decision_summary(s.decisions)} | {s.seconds:.0f} |"
        )
    lines += [
        "",
        "| decided on | model | version | kind | metric | challenger | champion | p | "
        "shadow window | verdict |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for s in steps:
        for d in s.decisions:
            lines.append(
                f"| {s.as_of} | {d['model']} | v{d['challenger']} | {d['kind']} | "
                f"{d['metric']} | {_score(d['challenger_score'])} | "
                f"{_score(d['champion_score'])} | {_score(d['p_value'])} | "
                f"{d['shadow_window']} | **{d['status']}** |"
            )
    return "\n".join(lines)
