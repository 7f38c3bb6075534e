"""Alert sensors: they tell someone (resources/alerts.py); they never launch a run.

- ``run_failure_alert``: every failed run of the code location → one ``run_failed`` alert with
  the job, the run id, each failed step with the first line of its error, the blocking checks
  that failed, and the run's page in the Dagster UI.
- ``data_alerts_sensor`` (every 60 s): what was recorded since its cursor, at most one alert
  per kind per tick, listing the symbols or models:

  - ``symbol_blocked``: failed ERROR verdicts of the checks on ``raw_ohlcv`` (the five contract
    rules and ``delivery``), per symbol partition;
  - ``symbol_stale``: failed ``ohlcv_freshness`` verdicts (WARN), with data date and sessions
    behind;
  - ``champion_changed``: ``shadow_promotion`` materializations that promoted a model (versions
    from the lake's ``shadow_promotion`` table), and operator pins / rollbacks that moved a
    champion (the audit log of resources/control.py).

  Only a symbol's latest verdict per check counts (a symbol fixed by a later run in the same
  tick is not reported). Verdicts of a run still in progress wait until it finishes (up to an
  hour), so a nightly, however many steps it has, gives one alert per kind. The cursor is JSON:
  ``checks`` (the last check-execution row reported), ``promotions`` (the last
  ``shadow_promotion`` storage id), ``audit`` (audit lines read); a sensor without a cursor
  reports the last 24 hours. What is read, and how: pipelines/alert_events.py.
"""

import json
import time

import dagster as dg
from dagster._core.storage.asset_check_execution_record import AssetCheckExecutionRecordStatus

from pipelines.alert_events import (
    LOOKBACK_SECONDS,
    blocked_symbols,
    check_records,
    first_line,
    latest_verdicts,
    operator_changes,
    promoted_models,
    promotion_records,
    settled,
    stale_symbols,
)
from resources.alerts import CHAMPION_CHANGED, RUN_FAILED, SYMBOL_BLOCKED, SYMBOL_STALE, Alerts
from resources.control import OperatorControl
from resources.lake import ParquetLake

# ---- run failures -------------------------------------------------------------------------------


def root_message(error: object) -> str:
    """The first line of the innermost cause of a step's error (the user's exception, not
    Dagster's "Error occurred while executing op" wrapper)."""
    if error is None:
        return ""
    while getattr(error, "cause", None) is not None:
        error = error.cause
    return first_line(getattr(error, "message", str(error)))


def failed_blocking_checks(instance: dg.DagsterInstance, run_id: str) -> list[str]:
    """``asset:check`` of each blocking check that failed in the run."""
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION, limit=10_000
    ).records
    names = []
    for record in records:
        evaluation = record.event_log_entry.dagster_event.event_specific_data
        if not evaluation.passed and evaluation.blocking:
            names.append(f"{evaluation.asset_key.to_user_string()}:{evaluation.check_name}")
    return sorted(set(names))


@dg.run_failure_sensor(
    name="run_failure_alert",
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends a run_failed alert (log line, webhook, e-mail: resources/alerts.py) for "
    "every failed run: job, run id, failed steps with their errors, failed blocking checks, "
    "and the link to the run.",
)
def run_failure_alert(context: dg.RunFailureSensorContext, alerts: Alerts) -> None:
    run = context.dagster_run
    steps = [
        {"step": event.step_key, "error": root_message(event.event_specific_data.error)}
        for event in context.get_step_failure_events()
    ]
    checks = failed_blocking_checks(context.instance, run.run_id)
    url = alerts.run_url(run.run_id)
    parts = [f"{s['step']}: {s['error']}" for s in steps] or [
        first_line(context.failure_event.message)
    ]
    if checks:
        parts.append(f"failed blocking checks: {', '.join(checks)}")
    alerts.send(
        RUN_FAILED,
        f"{run.job_name} run {run.run_id[:8]} failed",
        f"{'; '.join(parts)} ({url})",
        {
            "job": run.job_name,
            "run_id": run.run_id,
            "steps": steps,
            "failed_checks": checks,
            "run_error": first_line(context.failure_event.message),
            "url": url,
            "tags": dict(run.tags),
        },
    )


# ---- data: the alerts ---------------------------------------------------------------------------


def blocked_alert(alerts: Alerts, blocked: dict[str, list[dict]]) -> None:
    """One ``symbol_blocked`` alert listing every blocked symbol and its failed rules."""
    symbols = list(blocked)
    alerts.send(
        SYMBOL_BLOCKED,
        f"{len(symbols)} symbol(s) blocked: {', '.join(symbols)}",
        "; ".join(
            f"{s}: " + ", ".join(f"{c['check']} ({c['why']})" for c in checks)
            for s, checks in blocked.items()
        ),
        {"symbols": blocked},
    )


def stale_alert(alerts: Alerts, stale: dict[str, dict]) -> None:
    """One ``symbol_stale`` alert listing every stale symbol, its last bar and its lag."""
    symbols = list(stale)
    alerts.send(
        SYMBOL_STALE,
        f"{len(symbols)} symbol(s) stale: {', '.join(symbols)}",
        "; ".join(
            f"{s}: last bar {v['data_date']}, {v['sessions_behind']} sessions behind "
            f"{v['run_date']} (signal held)"
            for s, v in stale.items()
        ),
        {"symbols": stale},
    )


def champion_alert(alerts: Alerts, changes: list[dict]) -> None:
    """One ``champion_changed`` alert listing every model whose champion moved, and why."""

    def version(change: dict) -> str:
        return f"v{change['version']}" if change.get("version") else "a new version"

    def why(change: dict) -> str:
        extra = [change["by"]]
        if change.get("kind"):
            extra.append(str(change["kind"]))
        if change.get("p_value") is not None:
            extra.append(f"p={change['p_value']:.3g}")
        if change.get("previous_version"):
            extra.append(f"from v{change['previous_version']}")
        if change.get("reason"):
            extra.append(change["reason"])
        return ", ".join(extra)

    alerts.send(
        CHAMPION_CHANGED,
        "champion changed: " + ", ".join(f"{c['model']} {version(c)}" for c in changes),
        "; ".join(f"{c['model']} → {version(c)} ({why(c)})" for c in changes),
        {"changes": changes},
    )


@dg.sensor(
    name="data_alerts_sensor",
    minimum_interval_seconds=60,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Sends symbol_blocked, symbol_stale and champion_changed alerts (one per kind "
    "per tick, listing the symbols or models) from new check verdicts, shadow promotions and "
    "operator pins / rollbacks. Never launches a run.",
)
def data_alerts_sensor(
    context: dg.SensorEvaluationContext,
    alerts: Alerts,
    lake: ParquetLake,
    operator_control: OperatorControl,
) -> dg.SensorResult:
    cursor = json.loads(context.cursor) if context.cursor else {}
    now = time.time()
    since = now - LOOKBACK_SECONDS
    records, waiting = settled(
        context.instance, check_records(context.instance, cursor.get("checks"), since), now
    )
    verdicts = latest_verdicts(records)
    promotions = promotion_records(context.instance, cursor.get("promotions"), since)
    audit_changes, audit_lines = operator_changes(operator_control, cursor.get("audit"), since)
    changes = promoted_models(promotions, lake) + audit_changes

    sent = []
    blocked, stale = blocked_symbols(verdicts), stale_symbols(verdicts)
    if blocked:
        blocked_alert(alerts, blocked)
        sent.append(f"{SYMBOL_BLOCKED} ({', '.join(blocked)})")
    if stale:
        stale_alert(alerts, stale)
        sent.append(f"{SYMBOL_STALE} ({', '.join(stale)})")
    if changes:
        champion_alert(alerts, changes)
        sent.append(f"{CHAMPION_CHANGED} ({', '.join(str(c['model']) for c in changes)})")

    after = dict(cursor, audit=audit_lines)
    if records:
        after["checks"] = records[-1].id
    if promotions:
        after["promotions"] = promotions[-1].storage_id
    reason = f"sent {'; '.join(sent)}" if sent else "nothing to alert"
    evaluated = sum(r.status != AssetCheckExecutionRecordStatus.PLANNED for r in records)
    reason += f" ({evaluated} new check result(s), {len(promotions)} shadow promotion(s))"
    if waiting:
        reason += f"; verdicts of run {waiting[:8]} wait until it finishes"
    return dg.SensorResult(skip_reason=dg.SkipReason(reason), cursor=json.dumps(after))


ALERT_SENSORS = [run_failure_alert, data_alerts_sensor]
