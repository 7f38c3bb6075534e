"""Promotion in shadow: ``shadow_promotion`` judges each pending challenger beside the champion on
the sessions after the challenger's ``data_as_of`` (neither has fitted on them), once enough of
them have their labels, and moves the ``champion`` alias when the rule says so.

The rule is in ``quant.promotion``; this module finds the versions, predicts the shadow sessions
with both models and records every decision (version tags, metrics in the challenger's MLflow
run, the asset page). A champion pinned by an operator is never replaced automatically.
"""

import math
import time
from dataclasses import dataclass
from datetime import date, timedelta

import dagster as dg
import polars as pl

from assets.metadata import column_schema, labeled_panel_ins, md
from assets.partitions import UNIVERSE
from assets.training import ANCHORS, PENDING
from quant.dataset import KEYS, warm_panel
from quant.models import MODEL_FAMILIES
from quant.monitoring.served_health import reference_level
from quant.promotion import (
    LABEL,
    NEW_CONFIGURATION,
    OUTPUTS,
    REFRESH,
    ShadowDecision,
    decide_shadow,
    first_champion,
    group_metric,
    row_scores,
)
from resources.control import OperatorControl
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking
from resources.modeling import ModelingConfig

# enough calendar days before the shadow window for the sequence models' windows and for the
# GARCH filter to forget its starting variance
HISTORY_DAYS = 400
VOLATILITY_SECTOR = "volatility"


def symbol_groups() -> dict[str, frozenset[str]]:
    """equities (decisive), indices and volatility indices (scored apart, never pooled)."""
    vol = frozenset(i.symbol for i in UNIVERSE.instruments if i.sector == VOLATILITY_SECTOR)
    indices = frozenset(i.symbol for i in UNIVERSE.instruments if i.is_index) - vol
    return {"equities": ANCHORS, "indices": indices, "volatility_indices": vol}


@dataclass
class Candidate:
    version: str
    data_as_of: date
    config_hash: str


def _candidates(tracking: MlflowTracking, name: str) -> list[Candidate]:
    found = tracking.client().search_model_versions(f"name='{name}'")
    pending = [
        Candidate(
            str(v.version), date.fromisoformat(v.tags["data_as_of"]), v.tags.get("config_hash", "")
        )
        for v in found
        if v.tags.get("shadow_status") == PENDING and v.tags.get("data_as_of")
    ]
    return sorted(pending, key=lambda c: int(c.version))


def shadow_rows(panel: pl.DataFrame, family: str, after: date) -> pl.DataFrame:
    """Rows dated after ``after`` whose ``family`` label has arrived."""
    return panel.filter((pl.col("date") > after) & pl.col(LABEL[family]).is_not_null())


def sessions_of(rows: pl.DataFrame) -> int:
    """Distinct sessions among the decisive symbols' rows."""
    anchored = rows.filter(pl.col("symbol").is_in(sorted(ANCHORS)))
    return (anchored if not anchored.is_empty() else rows)["date"].n_unique()


def _scored(model: object, panel: pl.DataFrame, rows: pl.DataFrame, family: str) -> pl.DataFrame:
    start = rows["date"].min() - timedelta(days=HISTORY_DAYS)
    outputs = model.predict_frame(panel.filter(pl.col("date") >= start))
    columns = OUTPUTS[family]
    return rows.join(outputs.select(*KEYS, *columns), on=KEYS, how="inner").drop_nulls(columns)


def judge(
    family: str,
    kind: str,
    rows: pl.DataFrame,
    challenger: object,
    champion: object,
    panel: pl.DataFrame,
    modeling: ModelingConfig,
) -> tuple[ShadowDecision, pl.DataFrame]:
    """Both models on the shadow rows both can score; the decision on the equities, the other
    groups' scores beside it. Also returns the challenger's scored rows (its health reference)."""
    mine = _scored(challenger, panel, rows, family)
    theirs = _scored(champion, panel, rows, family)
    both = mine.join(theirs.select(KEYS), on=KEYS, how="semi").sort(KEYS)
    theirs = theirs.join(both.select(KEYS), on=KEYS, how="semi").sort(KEYS)
    groups = symbol_groups()
    decisive = both.filter(pl.col("symbol").is_in(sorted(groups["equities"])))
    if decisive.is_empty():
        decisive = both
    champion_rows = theirs.join(decisive.select(KEYS), on=KEYS, how="semi").sort(KEYS)
    decision = decide_shadow(
        family,
        kind,
        decisive,
        row_scores(family, decisive),
        row_scores(family, champion_rows),
        modeling.shadow_policy(),
    )
    for group in ("indices", "volatility_indices"):
        members = sorted(groups[group])
        a, b = (f.filter(pl.col("symbol").is_in(members)) for f in (both, theirs))
        if a.height:
            decision.apart[group] = {
                "challenger": group_metric(family, a),
                "champion": group_metric(family, b),
            }
    return decision, mine


def _record(tracking: MlflowTracking, name: str, version: str, decision: ShadowDecision) -> None:
    from mlflow.entities import Metric

    client = tracking.client()
    tags = decision.tags()
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, value)
    run_id = client.get_model_version(name, version).run_id
    now = int(time.time() * 1000)
    values = {
        "shadow_challenger_score": decision.challenger,
        "shadow_champion_score": decision.champion,
        "shadow_p_value": decision.p_value,
        "shadow_sessions": float(decision.sessions),
        "shadow_promoted": float(decision.promote),
    }
    metrics = [
        Metric(k, float(v), now, 0)
        for k, v in values.items()
        if v is not None and math.isfinite(float(v))
    ]
    client.log_batch(run_id, metrics=metrics, tags=[])
    for key, value in tags.items():
        client.set_tag(run_id, key, value)


def promote_in_shadow(
    name: str,
    tracking: MlflowTracking,
    control: OperatorControl,
    panel: pl.DataFrame,
    modeling: ModelingConfig,
) -> dict[str, object]:
    """One model: decide its newest pending challenger that has enough shadow sessions (older
    pending versions are superseded by it), and say where the others stand."""
    family = MODEL_FAMILIES[name]
    policy = modeling.shadow_policy()
    client = tracking.client()
    champion = tracking.version_by_alias(name, CHAMPION)
    pending = _candidates(tracking, name)
    status: dict[str, object] = {
        "model": name,
        "champion": None if champion is None else str(champion.version),
        "challenger": None,
        "status": "no challenger",
        "kind": None,
        "metric": None,
        "challenger_score": None,
        "champion_score": None,
        "p_value": None,
        "shadow_window": None,
        "reason": "",
    }
    if not pending:
        return status
    champion_as_of = (
        date.fromisoformat(champion.tags["data_as_of"])
        if champion is not None and champion.tags.get("data_as_of")
        else None
    )
    counts = {}
    for candidate in pending:
        after = max(candidate.data_as_of, champion_as_of or candidate.data_as_of)
        counts[candidate.version] = sessions_of(shadow_rows(panel, family, after))
    ready = [c for c in pending if counts[c.version] >= policy.sessions]
    newest = pending[-1]
    status["challenger"] = newest.version
    if not ready:
        status["status"] = f"pending: {counts[newest.version]}/{policy.sessions} shadow sessions"
        status["reason"] = f"waiting for labeled sessions after {newest.data_as_of}"
        return status
    chosen = ready[-1]
    pinned = control.pinned(name)
    if pinned is not None:
        status["status"] = f"champion pinned to version {pinned}: decision deferred"
        status["challenger"] = chosen.version
        return status
    after = max(chosen.data_as_of, champion_as_of or chosen.data_as_of)
    rows = shadow_rows(panel, family, after)
    model = tracking.load(name, chosen.version)
    if champion is None:
        decision = first_champion(family)
        scored = _scored(model, panel, rows, family)
    else:
        kind = (
            REFRESH if chosen.config_hash == champion.tags.get("config_hash") else NEW_CONFIGURATION
        )
        decision, scored = judge(
            family, kind, rows, model, tracking.load(name, champion.version), panel, modeling
        )
    _record(tracking, name, chosen.version, decision)
    if decision.promote:
        tracking.set_alias(name, CHAMPION, chosen.version)
        level = reference_level(family, scored, ANCHORS)
        if math.isfinite(level):
            client.set_model_version_tag(name, chosen.version, "health_reference", f"{level:.6g}")
    client.set_model_version_tag(
        name, chosen.version, "shadow_status", "promoted" if decision.promote else "rejected"
    )
    for older in pending:
        if int(older.version) < int(chosen.version):
            client.set_model_version_tag(name, older.version, "shadow_status", "superseded")
            client.set_model_version_tag(
                name, older.version, "promotion", f"superseded by version {chosen.version}"
            )
    later = [c for c in pending if int(c.version) > int(chosen.version)]
    if later:
        tracking.set_alias(name, CHALLENGER, later[-1].version)
    else:
        tracking.delete_alias(name, CHALLENGER)
    status.update(
        {
            "champion": chosen.version if decision.promote else status["champion"],
            "challenger": chosen.version,
            "status": "promoted" if decision.promote else "rejected",
            "kind": decision.kind,
            "metric": decision.metric,
            "challenger_score": decision.challenger,
            "champion_score": decision.champion,
            "p_value": decision.p_value,
            "shadow_window": f"{decision.shadow_start} .. {decision.shadow_end}"
            if decision.shadow_start
            else None,
            "reason": decision.reason,
            "apart": decision.apart,
        }
    )
    return status


DECISION_COLUMNS = {
    "model": ("string", "registered model"),
    "champion": ("string", "champion version after this run"),
    "challenger": ("string", "the version judged (or waiting)"),
    "status": ("string", "promoted, rejected, pending (sessions so far / needed), pinned, none"),
    "kind": ("string", "first, refresh (same configuration) or new configuration"),
    "metric": ("string", "primary metric (per symbol, averaged over equities)"),
    "challenger_score": ("float64", "challenger's metric in shadow"),
    "champion_score": ("float64", "champion's metric on the same rows"),
    "p_value": ("float64", "one-sided paired test (see quant/promotion.py)"),
    "shadow_window": ("string", "sessions judged"),
    "reason": ("string", "the decision in words"),
}


@dg.asset(
    ins=labeled_panel_ins(),
    io_manager_key="lake_io_manager",
    group_name="evaluation",
    kinds={"mlflow", "polars"},
    owners=["team:ml-platform"],
    tags={"layer": "evaluation"},
    code_version="1",
    metadata={"dagster/column_schema": column_schema(DECISION_COLUMNS)},
    description="Promotion in shadow: each pending challenger is scored beside the champion on "
    "the sessions after its data_as_of (neither fitted on them) once 21 of them have labels; a "
    "refresh replaces the champion unless significantly worse (margin), a new configuration "
    "needs a significant win (one-sided paired test on the daily loss differential, equities; "
    "indices scored apart). Decisions go to the model versions' tags and the challenger's run.",
)
def shadow_promotion(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    operator_control: OperatorControl,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
    labels: pl.DataFrame,
) -> pl.DataFrame:
    panel = warm_panel(features, market_context, labels)
    statuses = [
        promote_in_shadow(name, mlflow_tracking, operator_control, panel, modeling)
        for name in MODEL_FAMILIES
    ]
    apart = {s["model"]: s.pop("apart") for s in statuses if "apart" in s}
    table = pl.DataFrame(statuses, schema={n: _dtype(t) for n, (t, _) in DECISION_COLUMNS.items()})
    decided = table.filter(pl.col("status").is_in(["promoted", "rejected"]))
    promoted = decided.filter(pl.col("status") == "promoted")["model"].to_list()
    verdict = (
        f"{len(decided)} decided ({len(promoted)} promoted: {', '.join(promoted) or 'none'}), "
        f"{table.filter(pl.col('status').str.starts_with('pending')).height} pending"
    )
    context.add_output_metadata(
        {
            "verdict": verdict,
            "decisions": md(table.drop("reason"), 4),
            "reasons": dg.MetadataValue.json(
                {s["model"]: s["reason"] for s in statuses if s["reason"]}
            ),
            "scored_apart": dg.MetadataValue.json(apart),
            "shadow_sessions_needed": modeling.shadow_sessions,
            "promoted": promoted,
            "dagster/row_count": table.height,
        }
    )
    return table


def _dtype(kind: str) -> pl.DataType:
    return pl.Float64 if kind == "float64" else pl.String
