"""Schedules and sensors: the pipeline running itself.

- ``nightly_schedule``: weekdays 22:00 America/New_York, one ``nightly`` run over the universe.
- ``weekly_sweep_schedule``: Saturdays 06:00 America/New_York, the ``sweep`` job, unless no
  labeled session has arrived since the last retrain.
- ``drift_retrain_sensor``: reads new ``feature_drift`` / ``model_health`` materializations
  (a cursor of storage ids, so each is considered once) and launches ``retrain`` or ``sweep``
  with a run key derived from the triggering materialization; a ``retrain`` on the calendar
  (every 21 sessions of new labeled data); never one when no labeled session has arrived since
  the last retrain. Otherwise it says why it skipped.
"""

from __future__ import annotations

import json
import os
from datetime import date

import dagster as dg

from assets.partitions import UNIVERSE
from pipelines.jobs import nightly_job, retrain_job, sweep_job
from quant.automation import (
    RETRAIN,
    DataProgress,
    Decision,
    Observation,
    TriggerPolicy,
    calendar_decision,
    decide,
    most_severe,
)

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
MONITORED = ("feature_drift", "model_health")


def universe_range_tags() -> dict[str, str]:
    """Tags for one run over every symbol partition (executed as one step per asset)."""
    return {RANGE_START: UNIVERSE.symbols[0], RANGE_END: UNIVERSE.symbols[-1]}


# MARKET_NIGHTLY_CRON overrides the time (the daemon test uses every minute)
NIGHTLY_CRON = os.environ.get("MARKET_NIGHTLY_CRON", "0 22 * * 1-5")


@dg.schedule(
    job=nightly_job,
    cron_schedule=NIGHTLY_CRON,
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Weekdays after the US close: ingest, validate, features, labels, context, "
    "drift and health for the whole universe in one run.",
)
def nightly_schedule(
    context: dg.ScheduleEvaluationContext,
) -> dg.RunRequest | dg.SkipReason:
    """One nightly run per night: a tick skips while that night's run is queued, in progress
    or done (a schedule's run key does not stop a second tick of the same night; two nightlies
    on one data folder would race). A failed night may be launched again by a later tick."""
    day = context.scheduled_execution_time.date().isoformat()
    night = {"market/night": day}
    earlier = context.instance.get_runs(filters=dg.RunsFilter(job_name="nightly", tags=night))
    standing = [r for r in earlier if r.status not in NIGHT_MAY_RETRY]
    if standing:
        return dg.SkipReason(
            f"the nightly run of {day} is {standing[0].status.value.lower()} "
            f"({standing[0].run_id}): one nightly per night"
        )
    return dg.RunRequest(run_key=f"nightly-{day}", tags={**universe_range_tags(), **night})


NIGHT_MAY_RETRY = (dg.DagsterRunStatus.FAILURE, dg.DagsterRunStatus.CANCELED)


@dg.schedule(
    job=sweep_job,
    cron_schedule="0 6 * * 6",
    execution_timezone="America/New_York",
    default_status=dg.DefaultScheduleStatus.RUNNING,
    description="Saturday mornings: continue the Optuna studies, then retrain (its result is a "
    "new configuration, judged in shadow) — skipped when no labeled session has arrived since "
    "the last retrain.",
)
def weekly_sweep_schedule(context: dg.ScheduleEvaluationContext) -> dg.RunRequest | dg.SkipReason:
    day = context.scheduled_execution_time.date().isoformat()
    progress = data_progress(context.instance)
    if progress.nothing_new:
        return dg.SkipReason(f"no new labeled data: {progress.describe()}")
    return dg.RunRequest(run_key=f"sweep-{day}", tags={"market/kind": "retrain"})


def _latest_metadata(instance: dg.DagsterInstance, asset: str, key: str) -> str | None:
    records = instance.fetch_materializations(dg.AssetKey(asset), limit=1).records
    if not records:
        return None
    value = records[0].asset_materialization.metadata.get(key)
    return str(value.value) if value is not None and value.value else None


def sessions_between(after: str, through: str) -> int:
    """NYSE sessions in (after, through] (the universe's anchor calendar)."""
    from quant.validation.calendars import exchange_sessions

    start, end = date.fromisoformat(after[:10]), date.fromisoformat(through[:10])
    if end <= start:
        return 0
    sessions = exchange_sessions("NYSE", start, end)
    return int((sessions > start).sum())


def data_progress(instance: dg.DagsterInstance) -> DataProgress:
    """Labels' extent now (the latest ``model_health``) against the last retrain's (the latest
    ``training_set``'s validation end)."""
    labeled = _latest_metadata(instance, "model_health", "labeled_through")
    trained = _latest_metadata(instance, "training_set", "validation_end")
    new = sessions_between(trained, labeled) if labeled and trained else None
    return DataProgress(labeled, trained, new)


class TriggerThresholds(dg.ConfigurableResource):
    """The sensor's thresholds, calendar and cool-down. Drift thresholds: the ones each
    ``feature_drift`` reading calibrated on its reference, unless set here (then fixed); 0.3 /
    0.5 for a reading that carries none. ``retrain_every_sessions``: the calendar retrain.
    After a launch, further drift readings within ``cooldown_days`` of the data that triggered
    it are noted, not acted on."""

    retrain_drift_share: float | None = None
    severe_drift_share: float | None = None
    cooldown_days: int = 20
    retrain_every_sessions: int = 21

    @classmethod
    def from_env(cls) -> TriggerThresholds:
        """MARKET_RETRAIN_DRIFT_SHARE, MARKET_SEVERE_DRIFT_SHARE (unset: calibrated),
        MARKET_RETRAIN_COOLDOWN_DAYS, MARKET_RETRAIN_EVERY_SESSIONS."""

        def share(name: str) -> float | None:
            value = os.environ.get(name)
            return float(value) if value else None

        return cls(
            retrain_drift_share=share("MARKET_RETRAIN_DRIFT_SHARE"),
            severe_drift_share=share("MARKET_SEVERE_DRIFT_SHARE"),
            cooldown_days=int(os.environ.get("MARKET_RETRAIN_COOLDOWN_DAYS", 20)),
            retrain_every_sessions=int(os.environ.get("MARKET_RETRAIN_EVERY_SESSIONS", 21)),
        )

    def policy(self) -> TriggerPolicy:
        fixed = {
            name
            for name, value in (
                ("retrain", self.retrain_drift_share),
                ("severe", self.severe_drift_share),
            )
            if value is not None
        }
        retrain = 0.3 if self.retrain_drift_share is None else self.retrain_drift_share
        severe = 0.5 if self.severe_drift_share is None else self.severe_drift_share
        return TriggerPolicy(
            retrain, max(severe, retrain), frozenset(fixed), self.retrain_every_sessions
        )


def observe(record: dg.EventLogRecord, asset: str) -> Observation:
    """What the sensor reads from one materialization's metadata."""
    metadata = record.asset_materialization.metadata

    def number(key: str) -> float | None:
        value = metadata.get(key)
        return float(value.value) if value is not None else None

    decayed = metadata.get("decayed")
    # one clock for every reading: the lake's last session (older readings: their window end)
    as_of = metadata.get("data_date") or metadata.get("current_end")
    return Observation(
        asset=asset,
        storage_id=record.storage_id,
        drift_share=number("drift_share"),
        decayed=bool(decayed.value) if decayed is not None else None,
        as_of=str(as_of.value) if as_of is not None and as_of.value else None,
        retrain_threshold=number("retrain_threshold"),
        severe_threshold=number("severe_threshold"),
    )


def new_observations(
    instance: dg.DagsterInstance, cursor: dict[str, int]
) -> tuple[list[Observation], dict[str, int]]:
    """Materializations of the monitored assets after the cursor, oldest first, and the cursor
    that follows them. An asset the cursor has never seen contributes only its latest
    materialization: a newly started sensor acts on the present, not on all of history."""
    found, after = [], dict(cursor)
    for asset in MONITORED:
        key = dg.AssetKey(asset)
        if asset in cursor:
            records = instance.fetch_materializations(
                dg.AssetRecordsFilter(asset_key=key, after_storage_id=cursor[asset]),
                limit=100,
                ascending=True,
            ).records
        else:
            records = instance.fetch_materializations(key, limit=1).records
        found.extend(observe(r, asset) for r in records)
        if records:
            after[asset] = records[-1].storage_id
    return sorted(found, key=lambda o: o.storage_id), after


SENSOR_TAG = "market/sensor"


def run_request(decision: Decision, sensor_name: str) -> dg.RunRequest:
    tags = {
        # the job's own concurrency tag: a request's tags replace the job's of the same key
        "market/kind": "retrain",
        "market/job": decision.job,
        "market/trigger": decision.observation.asset,
        "market/reason": decision.reason[:200],
        SENSOR_TAG: sensor_name,
    }
    if decision.observation.as_of:
        tags["market/as_of"] = decision.observation.as_of
    return dg.RunRequest(run_key=decision.run_key, job_name=decision.job, tags=tags)


UNFINISHED = [
    dg.DagsterRunStatus.QUEUED,
    dg.DagsterRunStatus.NOT_STARTED,
    dg.DagsterRunStatus.STARTING,
    dg.DagsterRunStatus.STARTED,
]


def in_flight(instance: dg.DagsterInstance, sensor_name: str) -> str | None:
    """Why nothing may be launched now: a run this sensor launched has not finished (its
    training set is not written yet, so the calendar and the cool-down cannot see it)."""
    runs = instance.get_runs(
        filters=dg.RunsFilter(tags={SENSOR_TAG: sensor_name}, statuses=UNFINISHED), limit=1
    )
    if not runs:
        return None
    run = runs[0]
    return (
        f"{run.job_name} run {run.run_id[:8]} launched on data as of "
        f"{run.tags.get('market/as_of', '?')} has not finished ({run.status.value})"
    )


def in_cooldown(
    instance: dg.DagsterInstance, sensor_name: str, as_of: str | None, days: int
) -> str | None:
    """Why a launch now would repeat the last one (None when it would not): the reading's data
    date is within ``days`` after the last launch's, or before it (an older reading)."""
    if not as_of or days <= 0:
        return None
    last = instance.get_runs(filters=dg.RunsFilter(tags={SENSOR_TAG: sensor_name}), limit=1)
    previous = last[0].tags.get("market/as_of") if last else None
    if previous is None:
        return None
    gap = (date.fromisoformat(as_of[:10]) - date.fromisoformat(previous[:10])).days
    if gap < days:
        return (
            f"cool-down: {last[0].job_name} run {last[0].run_id[:8]} was launched on data as of "
            f"{previous}, {gap} days before {as_of} (< {days})"
        )
    return None


@dg.sensor(
    jobs=[retrain_job, sweep_job],
    minimum_interval_seconds=30,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Launches `retrain` when the drift share reaches its calibrated threshold or "
    "the champions decay, `sweep` (re-tune, then retrain) when drift is severe, and `retrain` on "
    "the calendar every 21 sessions of new labeled data; never when no labeled session has "
    "arrived since the last retrain.",
)
def drift_retrain_sensor(
    context: dg.SensorEvaluationContext, trigger_thresholds: TriggerThresholds
) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    observations, after = new_observations(context.instance, cursor)
    cursor_out = json.dumps(after, sort_keys=True)
    policy = trigger_thresholds.policy()
    progress = data_progress(context.instance)
    decisions = [decide(o, policy) for o in observations]
    chosen = most_severe(decisions)
    if chosen is None:
        chosen = calendar_decision(progress, policy)
    if chosen is None:
        if not observations:
            reason = "no new feature_drift or model_health materialization"
        else:
            reason = "; ".join(d.reason for d in decisions[-4:])
        if progress.labeled_through:
            reason += f"; calendar: {progress.describe()}"
        return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=cursor_out)
    if progress.nothing_new:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(
                f"{chosen.reason}; but no new labeled data: {progress.describe()} — a retrain "
                "would refit the same rows"
            ),
            cursor=cursor_out,
        )
    busy = in_flight(context.instance, context.sensor_name)
    if busy:
        return dg.SensorResult(
            skip_reason=dg.SkipReason(f"{chosen.reason}; {busy}"), cursor=cursor_out
        )
    if chosen.observation.asset != "calendar":
        waiting = in_cooldown(
            context.instance,
            context.sensor_name,
            chosen.observation.as_of,
            trigger_thresholds.cooldown_days,
        )
        if waiting:
            return dg.SensorResult(
                skip_reason=dg.SkipReason(f"{chosen.reason}; {waiting}"), cursor=cursor_out
            )
    context.log.info(f"launching {chosen.job}: {chosen.reason}")
    return dg.SensorResult(
        run_requests=[run_request(chosen, context.sensor_name)], cursor=cursor_out
    )


SCHEDULES = [nightly_schedule, weekly_sweep_schedule]
SENSORS = [drift_retrain_sensor]
__all__ = ["RETRAIN", "SCHEDULES", "SENSORS"]
