"""A report scores only the model versions its own run trained.

The run lock and the retrain concurrency limit keep two training runs apart, but a report must
not trust that alone: if another run rewrote a model's predictions while this one was between
training and scoring, the report would score (and log into this run's MLflow runs) versions it
did not train. Before scoring, every model asset this run materialized must still hold this
run's materialization, and the version in the frame must be the one this run recorded.
"""

from collections.abc import Mapping

import dagster as dg
import polars as pl


class ForeignVersionError(RuntimeError):
    """A model's stored predictions belong to another run than the one scoring them."""


def _recorded_version(event: dg.EventLogEntry) -> str | None:
    materialization = event.asset_materialization
    if materialization is None:
        return None
    value = materialization.metadata.get("model_version")
    return None if value is None else str(value.value)


def trained_here(instance: dg.DagsterInstance, run_id: str) -> set[dg.AssetKey]:
    """The assets this run has materialized so far."""
    events = instance.all_logs(run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION)
    return {e.asset_materialization.asset_key for e in events if e.asset_materialization}


def foreign_versions(
    instance: dg.DagsterInstance, run_id: str, frames: Mapping[str, pl.DataFrame]
) -> list[str]:
    """One line per model whose stored predictions are not this run's: the asset was
    materialized in this run but its latest materialization comes from another run, or the
    frame's ``model_version`` is not the version this run recorded. Models this run did not
    train (a report materialized alone) are scored as stored."""
    chosen = trained_here(instance, run_id)
    problems = []
    for name, frame in frames.items():
        key = dg.AssetKey(name)
        if key not in chosen:
            continue
        latest = instance.get_latest_materialization_event(key)
        if latest is None:
            continue
        if latest.run_id != run_id:
            problems.append(
                f"{name}: its predictions were rewritten by run {latest.run_id or '(no run)'} "
                f"after this run {run_id} trained it"
            )
            continue
        recorded = _recorded_version(latest)
        versions = frame["model_version"].unique().to_list() if frame.height else []
        if recorded is not None and versions and versions != [recorded]:
            problems.append(
                f"{name}: the stored predictions are version(s) {', '.join(map(str, versions))}, "
                f"this run trained version {recorded}"
            )
    return problems


def require_own_versions(
    context: dg.AssetExecutionContext, frames: Mapping[str, pl.DataFrame]
) -> None:
    """Refuse to score another run's model versions (names the models and the other run)."""
    problems = foreign_versions(context.instance, context.run_id, frames)
    if problems:
        raise ForeignVersionError(
            "model_report refuses to score versions this run did not train: "
            + "; ".join(problems)
            + ". Another run wrote the same data folder meanwhile; rerun once it has finished."
        )
