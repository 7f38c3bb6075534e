"""What the data alerts are made of: the check verdicts, shadow promotions and operator actions
recorded after the alert sensor's cursor (pipelines/alerts.py sends them).

Reads only: the check-execution rows of the watched checks (the contract rules and ``delivery``
on ``raw_ohlcv``, ``ohlcv_freshness`` on ``ohlcv``), ``shadow_promotion`` materializations with
the lake's ``shadow_promotion`` table, and the operator audit log.
"""

from collections.abc import Sequence
from datetime import datetime

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation
from dagster._core.storage.asset_check_execution_record import (
    AssetCheckExecutionRecord,
    AssetCheckExecutionRecordStatus,
)

from assets.freshness import CHECK_NAME as FRESHNESS_CHECK
from assets.ingestion import DELIVERY_CHECK
from quant.validation import RULES
from resources.control import OperatorControl
from resources.lake import ParquetLake

BLOCKING_CHECKS = tuple(
    dg.AssetCheckKey(dg.AssetKey("raw_ohlcv"), name) for name in (*RULES, DELIVERY_CHECK)
)
STALE_CHECK = dg.AssetCheckKey(dg.AssetKey("ohlcv"), FRESHNESS_CHECK)
PROMOTION = dg.AssetKey("shadow_promotion")
LOOKBACK_SECONDS = 24 * 3600  # what a sensor without a cursor reports
HOLD_BACK_SECONDS = 3600  # a run "in progress" longer than this was killed: report it anyway
PAGE_SIZE = 100  # check-execution rows read per query
FETCH_LIMIT = 1000  # at most this many new rows per check and tick (26 symbols a night)
CHAMPION_ACTIONS = ("pin", "rollback")


def first_line(text: str | None) -> str:
    """The first non-empty line of ``text`` (an error message, a check description)."""
    return next((line.strip() for line in str(text or "").splitlines() if line.strip()), "")


# ---- check verdicts -----------------------------------------------------------------------


def new_rows(
    instance: dg.DagsterInstance, key: dg.AssetCheckKey, after_id: int | None, since: float
) -> list[AssetCheckExecutionRecord]:
    """One check's execution rows after ``after_id`` (without one: created since ``since``),
    read newest first a page at a time until the old ones begin (at most ``FETCH_LIMIT``)."""

    def is_new(row: AssetCheckExecutionRecord) -> bool:
        return row.id > after_id if after_id is not None else row.create_timestamp >= since

    rows: list[AssetCheckExecutionRecord] = []
    page_cursor = None
    while True:
        page = instance.event_log_storage.get_asset_check_execution_history(
            key, PAGE_SIZE, cursor=page_cursor
        )
        fresh = [row for row in page if is_new(row)]
        rows.extend(fresh)
        if len(fresh) < PAGE_SIZE or len(rows) >= FETCH_LIMIT:
            return rows
        page_cursor = page[-1].id


def check_records(
    instance: dg.DagsterInstance, after_id: int | None, since: float
) -> list[AssetCheckExecutionRecord]:
    """The watched checks' new execution rows, oldest first. Planned rows are included: they
    mark a run still in progress."""
    found = [
        row
        for key in (*BLOCKING_CHECKS, STALE_CHECK)
        for row in new_rows(instance, key, after_id, since)
    ]
    return sorted(found, key=lambda r: r.id)


def settled(
    instance: dg.DagsterInstance, records: Sequence[AssetCheckExecutionRecord], now: float
) -> tuple[list[AssetCheckExecutionRecord], str | None]:
    """The rows that can be reported now, oldest first, up to the first row of a run still in
    progress (held back with everything after it), and that run's id (None: nothing held)."""
    done: dict[str, bool] = {}
    for i, record in enumerate(records):
        if not record.run_id:  # a runless verdict
            continue
        if record.run_id not in done:
            run = instance.get_run_by_id(record.run_id)
            done[record.run_id] = run is None or run.is_finished
        if not done[record.run_id] and now - record.create_timestamp < HOLD_BACK_SECONDS:
            return list(records[:i]), record.run_id
    return list(records), None


def latest_verdicts(
    records: Sequence[AssetCheckExecutionRecord],
) -> dict[tuple[dg.AssetCheckKey, str], tuple[AssetCheckEvaluation, str]]:
    """Each (check, symbol)'s latest verdict among ``records`` (oldest first), with its run id."""
    latest = {}
    for record in records:
        if record.status == AssetCheckExecutionRecordStatus.PLANNED or record.event is None:
            continue  # planned and never evaluated (a skipped check)
        evaluation = record.event.dagster_event.event_specific_data
        symbol = evaluation.partition or record.partition
        if symbol:
            latest[(record.key, symbol)] = (evaluation, record.run_id)
    return latest


def blocked_symbols(verdicts: dict) -> dict[str, list[dict]]:
    """Symbols whose latest verdict on a ``raw_ohlcv`` check is a failed ERROR, with the rules."""
    found: dict[str, list[dict]] = {}
    for (key, symbol), (evaluation, run_id) in sorted(verdicts.items(), key=lambda i: i[0][1]):
        if key not in BLOCKING_CHECKS or evaluation.passed:
            continue
        if evaluation.severity != dg.AssetCheckSeverity.ERROR:
            continue
        found.setdefault(symbol, []).append(
            {"check": key.name, "why": first_line(evaluation.description), "run_id": run_id}
        )
    return found


def stale_symbols(verdicts: dict) -> dict[str, dict]:
    """Symbols whose latest ``ohlcv_freshness`` verdict failed, with data date and lag."""
    found = {}
    for (key, symbol), (evaluation, run_id) in sorted(verdicts.items(), key=lambda i: i[0][1]):
        if key != STALE_CHECK or evaluation.passed:
            continue
        meta = {k: v.value for k, v in evaluation.metadata.items()}
        found[symbol] = {
            "data_date": meta.get("data_date"),
            "run_date": meta.get("run_date"),
            "sessions_behind": meta.get("sessions_behind"),
            "why": first_line(evaluation.description),
            "run_id": run_id,
        }
    return found


# ---- champions ----------------------------------------------------------------------------


def promotion_records(
    instance: dg.DagsterInstance, after: int | None, since: float
) -> list[dg.EventLogRecord]:
    """``shadow_promotion`` materializations after storage id ``after`` (without one: since
    ``since``), oldest first."""
    records_filter = (
        dg.AssetRecordsFilter(asset_key=PROMOTION, after_storage_id=after)
        if after is not None
        else dg.AssetRecordsFilter(asset_key=PROMOTION, after_timestamp=since)
    )
    return list(instance.fetch_materializations(records_filter, limit=100, ascending=True).records)


def promoted_models(records: Sequence[dg.EventLogRecord], lake: ParquetLake) -> list[dict]:
    """The models each materialization says it promoted (its ``promoted`` metadata); for the
    newest one, the version, kind and p-value from the lake's ``shadow_promotion`` table."""
    changes: list[dict] = []
    for i, record in enumerate(records):
        value = record.asset_materialization.metadata.get("promoted")
        names = list(value.value or []) if value is not None else []
        table = lake.read_if_readable("shadow_promotion") if i == len(records) - 1 else None
        rows = {}
        if names and table is not None and "model" in table.columns:
            rows = {r["model"]: r for r in table.iter_rows(named=True)}
        for name in names:
            row = rows.get(name, {})
            changes.append(
                {
                    "model": name,
                    "version": row.get("champion"),
                    "by": "shadow promotion",
                    "kind": row.get("kind"),
                    "p_value": row.get("p_value"),
                    "run_id": record.run_id,
                }
            )
    return changes


def operator_changes(
    control: OperatorControl, seen: int | None, since: float
) -> tuple[list[dict], int]:
    """Pins and rollbacks that moved a champion, from the audit lines after the first ``seen``
    (without a count, or when the file was replaced by a shorter one: those since ``since``),
    and the number of lines read."""
    entries = control.audit()
    if seen is None or seen > len(entries):
        new = [e for e in entries if datetime.fromisoformat(e["at"]).timestamp() >= since]
    else:
        new = entries[seen:]
    changes = [
        {
            "model": e.get("model"),
            "version": e.get("version"),
            "previous_version": e.get("previous_version"),
            "by": f"{e['action']} by {e.get('user')}",
            "reason": e.get("reason") or "",
        }
        for e in new
        if e.get("action") in CHAMPION_ACTIONS and e.get("version") != e.get("previous_version")
    ]
    return changes, len(entries)
