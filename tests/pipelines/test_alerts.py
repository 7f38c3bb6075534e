"""The alert sensors on a real instance, delivering to a real local webhook."""

from datetime import UTC, datetime

import dagster as dg
import polars as pl
import pytest
from dagster._core.events import DagsterEvent

from assets.freshness import ohlcv_freshness
from assets.ingestion import raw_ohlcv
from assets.partition_checks import partition_evaluation
from assets.validation import ohlcv, raw_ohlcv_contract
from pipelines.alerts import data_alerts_sensor, run_failure_alert
from resources.alerts import Alerts
from resources.control import OperatorControl
from resources.lake import ParquetLake
from tests.assets.test_validation_isolation import SYMBOLS, write_csvs
from tests.conftest import make_resources
from tests.support.runs import materialize_range
from tests.support.webhook import webhook_server

pytestmark = pytest.mark.slow


@pytest.fixture
def hook():
    with webhook_server() as server:
        yield server


def alert_resources(hook, data_dir) -> dict[str, object]:
    return {
        "alerts": Alerts(webhook_url=hook.url, dagster_ui_url="http://dagster.example:3000"),
        "lake": ParquetLake(base_dir=str(data_dir / "lake")),
        "operator_control": OperatorControl(root=str(data_dir / "control")),
    }


def tick(instance, resources, cursor=None) -> dg.SensorResult:
    context = dg.build_sensor_context(instance=instance, cursor=cursor, resources=resources)
    result = data_alerts_sensor(context)
    assert not result.run_requests  # it only ever notifies
    return result


# ---- run failures -------------------------------------------------------------------------------


@dg.op
def write_report():
    raise ValueError("disk full\nwhile writing data/reports/x.html")


@dg.job
def failing_job():
    write_report()


def failure_context(instance, result, resources) -> dg.RunStatusSensorContext:
    return dg.build_run_status_sensor_context(
        sensor_name="run_failure_alert",
        dagster_instance=instance,
        dagster_run=result.dagster_run,
        dagster_event=result.get_run_failure_event(),
        resources=resources,
    )


def test_a_failed_run_sends_run_failed_with_the_job_the_run_the_error_and_a_link(
    instance, hook, data_dir
):
    result = failing_job.execute_in_process(raise_on_error=False, instance=instance)
    assert not result.success
    run_id = result.run_id
    run_failure_alert(failure_context(instance, result, alert_resources(hook, data_dir)))

    (alert,) = hook.received
    assert alert["kind"] == "run_failed"
    assert alert["subject"] == f"failing_job run {run_id[:8]} failed"
    assert "write_report: ValueError: disk full" in alert["message"]
    assert "while writing" not in alert["message"]  # the first line of the error only
    details = alert["details"]
    assert details["job"] == "failing_job" and details["run_id"] == run_id
    assert details["steps"] == [{"step": "write_report", "error": "ValueError: disk full"}]
    assert details["url"] == f"http://dagster.example:3000/runs/{run_id}"
    assert details["url"] in alert["message"]


@dg.asset
def prices() -> int:
    return 1


@dg.asset_check(asset=prices, blocking=True)
def no_gaps() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="3 sessions missing")


@dg.asset(deps=[prices])
def signals_after_prices() -> int:
    return 2


def test_a_failed_blocking_check_is_named_in_the_alert(instance, hook, data_dir):
    result = dg.materialize(
        [prices, no_gaps, signals_after_prices], instance=instance, raise_on_error=False
    )
    assert not result.success
    run_failure_alert(failure_context(instance, result, alert_resources(hook, data_dir)))
    (alert,) = hook.received
    assert alert["details"]["failed_checks"] == ["prices:no_gaps"]
    assert "failed blocking checks: prices:no_gaps" in alert["message"]


# ---- blocked and stale symbols ------------------------------------------------------------------


def test_a_blocked_symbol_sends_one_alert_listing_it_alone_and_only_once(
    instance, hook, data_dir, tmp_path, sample_panel
):
    csv_dir = tmp_path / "csv"
    write_csvs(csv_dir, sample_panel, corrupt="GOOGL")
    resources = make_resources(data_dir, source="csv", csv_dir=str(csv_dir), start=None)
    run = materialize_range(
        [raw_ohlcv, raw_ohlcv_contract], SYMBOLS[0], SYMBOLS[-1], resources, instance
    )
    assert run.success

    first = tick(instance, alert_resources(hook, data_dir))
    (alert,) = hook.received  # one alert for the run, not one per symbol or rule
    assert alert["kind"] == "symbol_blocked"
    assert alert["subject"] == "1 symbol(s) blocked: GOOGL"
    assert list(alert["details"]["symbols"]) == ["GOOGL"]  # AAPL and MSFT passed
    (rule,) = alert["details"]["symbols"]["GOOGL"]
    assert rule["check"] == "price_sanity" and rule["run_id"] == run.run_id
    assert "GOOGL" in rule["why"] and "\n" not in rule["why"]
    assert "sent symbol_blocked (GOOGL)" in first.skip_reason.skip_message

    second = tick(instance, alert_resources(hook, data_dir), first.cursor)
    assert len(hook.received) == 1  # nothing new
    assert second.skip_reason.skip_message.startswith("nothing to alert")


def test_stale_symbols_send_one_symbol_stale_alert(instance, hook, data_dir):
    resources = make_resources(data_dir)  # the sample: ^DJI and the Indian indices end early
    run = dg.materialize(
        [raw_ohlcv, ohlcv, ohlcv_freshness],
        instance=instance,
        resources=resources,
        tags={
            "dagster/asset_partition_range_start": "^DJI",
            "dagster/asset_partition_range_end": "AAPL",
        },
        raise_on_error=False,
    )
    assert run.success
    tick(instance, alert_resources(hook, data_dir))
    (alert,) = hook.received
    assert alert["kind"] == "symbol_stale"
    stale = alert["details"]["symbols"]
    assert sorted(stale) == ["^DJI", "^NSEBANK", "^NSEI"]  # not AAPL, not ^VIX
    assert stale["^DJI"]["data_date"] == "2025-07-11"
    assert stale["^DJI"]["sessions_behind"] == 222
    assert "^DJI: last bar 2025-07-11, 222 sessions behind 2026-05-29" in alert["message"]


def evaluation(symbol: str, passed: bool) -> dg.AssetCheckEvaluation:
    return partition_evaluation(
        "raw_ohlcv",
        "delivery",
        symbol,
        passed,
        dg.AssetCheckSeverity.ERROR,
        f"{symbol}: {'accepted' if passed else 'the csv source delivered no bars'}",
    )


@dg.op
def nothing():
    pass


@dg.job
def nightly_in_progress():
    nothing()


def report_in_run(instance, verdict: dg.AssetCheckEvaluation) -> dg.DagsterRun:
    """Record ``verdict`` as an event of a new run of ``nightly_in_progress`` (left unfinished)."""
    run = instance.create_run_for_job(nightly_in_progress)
    event = DagsterEvent(
        event_type_value=dg.DagsterEventType.ASSET_CHECK_EVALUATION.value,
        job_name=run.job_name,
        event_specific_data=verdict,
    )
    instance.report_dagster_event(event, run_id=run.run_id)
    return run


def test_verdicts_of_a_run_in_progress_wait_until_it_finishes(instance, hook, data_dir):
    resources = alert_resources(hook, data_dir)
    instance.report_runless_asset_event(evaluation("MSFT", False))  # runless: reported now
    run = report_in_run(instance, evaluation("AAPL", False))

    first = tick(instance, resources)
    assert [list(a["details"]["symbols"]) for a in hook.received] == [["MSFT"]]
    assert f"verdicts of run {run.run_id[:8]} wait" in first.skip_reason.skip_message

    instance.report_run_canceled(run)
    tick(instance, resources, first.cursor)
    assert len(hook.received) == 2
    assert list(hook.received[1]["details"]["symbols"]) == ["AAPL"]


def test_a_symbol_fixed_by_a_later_run_in_the_same_tick_is_not_reported(instance, hook, data_dir):
    for passed in (False, True):
        instance.report_run_canceled(report_in_run(instance, evaluation("MSFT", passed)))
    result = tick(instance, alert_resources(hook, data_dir))
    assert hook.received == []
    assert result.skip_reason.skip_message.startswith("nothing to alert (2 new check result(s)")


# ---- champions ----------------------------------------------------------------------------------


def test_a_shadow_promotion_sends_champion_changed(instance, hook, data_dir):
    lake = ParquetLake(base_dir=str(data_dir / "lake"))
    lake.path("shadow_promotion").parent.mkdir(parents=True, exist_ok=True)
    pl.DataFrame(
        {
            "model": ["direction_xgboost", "volatility_lstm"],
            "champion": ["21", "7"],
            "challenger": ["21", "8"],
            "status": ["promoted", "rejected"],
            "kind": ["refresh", "refresh"],
            "p_value": [0.9583, 0.0001],
        }
    ).write_parquet(lake.path("shadow_promotion"))
    instance.report_runless_asset_event(
        dg.AssetMaterialization(
            "shadow_promotion",
            metadata={"promoted": ["direction_xgboost"], "verdict": "2 decided (1 promoted)"},
        )
    )
    resources = alert_resources(hook, data_dir)
    first = tick(instance, resources)
    (alert,) = hook.received
    assert alert["kind"] == "champion_changed"
    assert alert["subject"] == "champion changed: direction_xgboost v21"
    (change,) = alert["details"]["changes"]
    assert change["by"] == "shadow promotion" and change["kind"] == "refresh"
    assert "p=0.958" in alert["message"]

    # a night that promotes nothing says nothing
    instance.report_runless_asset_event(
        dg.AssetMaterialization("shadow_promotion", metadata={"promoted": []})
    )
    second = tick(instance, resources, first.cursor)
    assert len(hook.received) == 1
    assert "1 shadow promotion(s)" in second.skip_reason.skip_message


def test_an_operator_rollback_sends_champion_changed(instance, hook, data_dir):
    control = OperatorControl(root=str(data_dir / "control"))
    control._audit("halt", "alice", reason="vendor outage")  # not a champion change
    control._audit("pin", "alice", model="regime_random_forest", version="4", previous_version="4")
    resources = alert_resources(hook, data_dir)
    first = tick(instance, resources)
    assert hook.received == []  # pinning the current champion changes nothing

    control._audit(
        "rollback",
        "alice",
        model="direction_lstm",
        version="3",
        previous_version="5",
        reason="bad fills since Monday",
    )
    tick(instance, resources, first.cursor)
    (alert,) = hook.received
    assert alert["subject"] == "champion changed: direction_lstm v3"
    assert "rollback by alice" in alert["message"] and "from v5" in alert["message"]
    assert "bad fills since Monday" in alert["message"]


def test_a_fresh_sensor_reports_only_the_last_day(instance, hook, data_dir):
    control = OperatorControl(root=str(data_dir / "control"))
    control.audit_path.parent.mkdir(parents=True)
    old = datetime(2020, 1, 2, tzinfo=UTC).isoformat()
    control.audit_path.write_text(
        f'{{"at": "{old}", "user": "bob", "action": "rollback", "model": "direction_lstm", '
        '"version": "1", "previous_version": "2", "reason": ""}\n'
    )
    result = tick(instance, alert_resources(hook, data_dir))
    assert hook.received == []
    assert '"audit": 1' in result.cursor


def test_the_alert_sensors_and_resource_are_in_the_code_location():
    from pipelines.definitions import defs

    repository = defs.get_repository_def()
    names = {s.name for s in repository.sensor_defs}
    assert {"run_failure_alert", "data_alerts_sensor"} <= names
    assert isinstance(defs.resources["alerts"], Alerts)
    assert data_alerts_sensor.targets == []  # it launches nothing
    assert data_alerts_sensor.minimum_interval_seconds == 60
    assert data_alerts_sensor.default_status == dg.DefaultSensorStatus.RUNNING


def test_every_new_verdict_is_read_across_pages(instance, hook, data_dir, monkeypatch):
    import pipelines.alert_events

    monkeypatch.setattr(pipelines.alert_events, "PAGE_SIZE", 2)
    resources = alert_resources(hook, data_dir)
    instance.report_runless_asset_event(evaluation("AAPL", False))
    first = tick(instance, resources)
    for symbol in ("MSFT", "GOOGL", "AMZN", "NVDA", "META"):
        instance.report_runless_asset_event(evaluation(symbol, symbol != "AMZN"))
    tick(instance, resources, first.cursor)
    assert [list(a["details"]["symbols"]) for a in hook.received] == [["AAPL"], ["AMZN"]]
