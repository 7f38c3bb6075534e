"""The nightly schedule and the drift sensor on a real instance (no daemon: one tick each)."""

from datetime import datetime
from zoneinfo import ZoneInfo

import dagster as dg
from dagster._core.test_utils import create_run_for_test

from assets.partitions import UNIVERSE
from pipelines.automation import (
    SENSOR_TAG,
    TriggerThresholds,
    drift_retrain_sensor,
    nightly_schedule,
)
from pipelines.definitions import defs

SENSOR = "drift_retrain_sensor"


def drift(instance: dg.DagsterInstance, share: float, as_of: str) -> None:
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "feature_drift", metadata={"drift_share": share, "current_end": as_of}
        )
    )


def tick(instance, cursor=None, **thresholds) -> dg.SensorResult:
    context = dg.build_sensor_context(
        instance=instance,
        cursor=cursor,
        sensor_name=SENSOR,
        resources={"trigger_thresholds": TriggerThresholds(**thresholds)},
    )
    return drift_retrain_sensor(context)


def test_schedule_tick_requests_one_nightly_run_over_the_universe(instance):
    when = datetime(2026, 11, 23, 22, 0, tzinfo=ZoneInfo("America/New_York"))
    request = nightly_schedule(
        dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    )
    assert request.run_key == "nightly-2026-11-23"
    assert request.tags["dagster/asset_partition_range_start"] == UNIVERSE.symbols[0]
    assert request.tags["dagster/asset_partition_range_end"] == UNIVERSE.symbols[-1]
    schedule = defs.resolve_schedule_def("nightly_schedule")
    assert schedule.cron_schedule == "0 22 * * 1-5"
    assert schedule.execution_timezone == "America/New_York"
    assert schedule.job_name == "nightly"


def test_one_nightly_per_night_while_that_night_runs_or_succeeded(instance):
    when = datetime(2026, 11, 23, 22, 0, tzinfo=ZoneInfo("America/New_York"))

    def tick():
        return nightly_schedule(
            dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
        )

    assert isinstance(tick(), dg.RunRequest)  # nothing yet
    night = {"market/night": "2026-11-23"}
    failed = create_run_for_test(
        instance, job_name="nightly", status=dg.DagsterRunStatus.FAILURE, tags=night
    )
    assert isinstance(tick(), dg.RunRequest)  # a failed night may run again
    running = create_run_for_test(
        instance, job_name="nightly", status=dg.DagsterRunStatus.STARTED, tags=night
    )
    skipped = tick()
    assert isinstance(skipped, dg.SkipReason)
    assert (
        running.run_id in skipped.skip_message and "one nightly per night" in skipped.skip_message
    )
    assert failed.run_id not in skipped.skip_message
    other = {"market/night": "2026-11-24"}  # another night's run does not hold this one
    instance.delete_run(running.run_id)
    create_run_for_test(
        instance, job_name="nightly", status=dg.DagsterRunStatus.SUCCESS, tags=other
    )
    assert isinstance(tick(), dg.RunRequest)


def test_sensor_launches_once_per_drifted_materialization_then_skips(instance):
    assert tick(instance).skip_reason is not None  # nothing materialized yet
    drift(instance, 0.1, "2024-07-01")
    calm = tick(instance)
    assert not calm.run_requests and "0.10 < 0.30" in calm.skip_reason.skip_message
    drift(instance, 0.42, "2024-09-03")
    fired = tick(instance, calm.cursor)
    (request,) = fired.run_requests
    assert request.job_name == "retrain"
    assert request.run_key.startswith("retrain:feature_drift:")
    assert request.tags["market/as_of"] == "2024-09-03"
    again = tick(instance, fired.cursor)  # same cursor: the materialization is not seen twice
    assert not again.run_requests and "no new" in again.skip_reason.skip_message
    replayed = tick(instance, calm.cursor)  # an older cursor gives the same, deterministic key
    assert replayed.run_requests[0].run_key == request.run_key


def test_severe_drift_launches_a_sweep_and_thresholds_are_configurable(instance):
    drift(instance, 0.55, "2024-09-03")
    assert tick(instance).run_requests[0].job_name == "sweep"
    assert not tick(instance, severe_drift_share=0.9, retrain_drift_share=0.6).run_requests


def test_a_recent_launch_puts_the_sensor_in_cool_down(instance):
    @dg.asset
    def placeholder() -> None:
        return None

    dg.materialize(
        [placeholder],
        instance=instance,
        tags={SENSOR_TAG: SENSOR, "market/as_of": "2024-09-01"},
    )
    drift(instance, 0.42, "2024-09-10")
    held = tick(instance)
    assert not held.run_requests and "cool-down" in held.skip_reason.skip_message
    drift(instance, 0.42, "2024-10-15")
    assert tick(instance, held.cursor).run_requests[0].job_name == "retrain"


def report(instance: dg.DagsterInstance, asset: str, **metadata: object) -> None:
    instance.report_runless_asset_event(dg.AssetMaterialization(asset, metadata=metadata))


def test_calibrated_thresholds_of_the_reading_decide_unless_fixed(instance):
    report(
        instance,
        "feature_drift",
        drift_share=0.25,
        current_end="2024-09-03",
        retrain_threshold=0.21,
        severe_threshold=0.4,
    )
    (request,) = tick(instance).run_requests
    assert request.job_name == "retrain" and "0.25 >= 0.21" in request.tags["market/reason"]
    # an operator's fixed threshold wins over the calibrated one
    held = tick(instance, retrain_drift_share=0.3)
    assert not held.run_requests and "0.25 < 0.30" in held.skip_reason.skip_message
    report(
        instance,
        "feature_drift",
        drift_share=0.45,
        current_end="2024-10-03",
        retrain_threshold=0.21,
        severe_threshold=0.4,
    )
    swept = tick(instance, held.cursor)
    assert swept.run_requests[0].job_name == "sweep"
    # a sweep keeps the retrain concurrency key: it never runs beside a retrain
    assert swept.run_requests[0].tags["market/kind"] == "retrain"


def test_calendar_retrains_every_21_new_labeled_sessions_and_never_on_the_same_data(instance):
    report(instance, "training_set", validation_end="2026-03-31")
    report(instance, "model_health", decayed=False, labeled_through="2026-04-15")
    early = tick(instance)
    assert not early.run_requests
    assert "10 labeled sessions since the last retrain" in early.skip_reason.skip_message
    report(instance, "model_health", decayed=False, labeled_through="2026-05-01")
    (due,) = tick(instance, early.cursor).run_requests
    assert due.job_name == "retrain"
    assert due.run_key == "retrain:calendar:2026-05-01"
    assert "calendar (every 21 sessions): 22 labeled sessions" in due.tags["market/reason"]
    # configurable: every 5 sessions is due already at 2026-04-15's 10
    report(instance, "model_health", decayed=False, labeled_through="2026-04-15")
    assert tick(instance, retrain_every_sessions=5).run_requests[0].run_key.endswith("2026-04-15")


def test_no_launch_without_new_labeled_data_whatever_the_drift(instance):
    report(instance, "training_set", validation_end="2026-04-30")
    report(instance, "model_health", decayed=True, labeled_through="2026-04-30")
    drift(instance, 0.9, "2026-05-29")
    held = tick(instance)
    assert not held.run_requests
    message = held.skip_reason.skip_message
    assert "no new labeled data" in message and "0 labeled sessions" in message


def test_weekly_sweep_is_skipped_when_nothing_new_was_labeled(instance):
    from pipelines.automation import weekly_sweep_schedule

    when = datetime(2026, 11, 28, 6, 0, tzinfo=ZoneInfo("America/New_York"))
    report(instance, "training_set", validation_end="2026-04-30")
    report(instance, "model_health", decayed=False, labeled_through="2026-04-30")
    context = dg.build_schedule_context(instance=instance, scheduled_execution_time=when)
    skipped = weekly_sweep_schedule(context)
    assert isinstance(skipped, dg.SkipReason) and "no new labeled data" in skipped.skip_message
    report(instance, "model_health", decayed=False, labeled_through="2026-05-08")
    request = weekly_sweep_schedule(context)
    assert request.run_key == "sweep-2026-11-28"


def launched(instance: dg.DagsterInstance, request: dg.RunRequest, status=None) -> None:
    """Record the run a request would start (finished unless ``status`` says otherwise)."""
    from dagster._core.test_utils import create_run_for_test

    create_run_for_test(
        instance,
        job_name=request.job_name,
        tags=request.tags,
        status=status or dg.DagsterRunStatus.SUCCESS,
    )


def test_one_retrain_per_data_date_whatever_mix_of_drift_and_health_arrives(instance):
    # the nightly of 2024-09-03: drift reads the features to that day, health the labels,
    # which end 20 sessions earlier; both carry the lake's last session as their data date
    report(
        instance,
        "feature_drift",
        drift_share=0.42,
        current_end="2024-09-03",
        data_date="2024-09-03",
    )
    (request,) = tick(instance).run_requests
    launched(instance, request)
    assert request.tags["market/as_of"] == "2024-09-03"
    report(instance, "model_health", decayed=True, current_end="2024-08-05", data_date="2024-09-03")
    held = tick(instance, json_cursor(instance))
    assert not held.run_requests and "cool-down" in held.skip_reason.skip_message
    # readings written before the one clock (window ends only): an older date is no reason
    # to launch again either
    report(instance, "model_health", decayed=True, current_end="2024-08-05")
    assert not tick(instance, json_cursor(instance)).run_requests


def test_nothing_is_launched_while_a_sensor_run_has_not_finished(instance):
    report(
        instance,
        "feature_drift",
        drift_share=0.42,
        current_end="2024-09-03",
        data_date="2024-09-03",
    )
    (request,) = tick(instance).run_requests
    launched(instance, request, dg.DagsterRunStatus.STARTED)
    # a month later a severe reading arrives before the retrain has finished
    report(
        instance, "feature_drift", drift_share=0.9, current_end="2024-10-08", data_date="2024-10-08"
    )
    held = tick(instance, json_cursor(instance))
    assert not held.run_requests
    assert "has not finished (STARTED)" in held.skip_reason.skip_message


def json_cursor(instance: dg.DagsterInstance) -> str:
    """A cursor that has seen every materialization but the latest of each monitored asset."""
    import json

    cursor = {}
    for asset in ("feature_drift", "model_health"):
        records = instance.fetch_materializations(dg.AssetKey(asset), limit=2).records
        if len(records) == 2:
            cursor[asset] = records[1].storage_id
        elif records:
            cursor[asset] = records[0].storage_id - 1
    return json.dumps(cursor)
