"""Monitoring: ``feature_drift`` (recent inputs vs the training reference) and ``model_health``
(the champions' realized performance now that labels have arrived). The drift sensor in
``pipelines.automation`` reads their metadata (``drift_share``, ``decayed``)."""

from datetime import date

import dagster as dg
import numpy as np
import polars as pl

from assets.metadata import column_schema, md
from quant.dataset import KEYS, MODEL_FEATURES, build_training_set
from quant.evaluation import plots
from quant.monitoring import drift as drift_stats
from quant.monitoring.health import HealthTolerances, assess
from resources.mlflow_tracking import MlflowTracking, load_champions
from resources.modeling import ModelingConfig

OWNERS = ["team:ml-platform"]


class DriftConfig(dg.Config):
    """Windows compared: the last ``window`` sessions up to ``current_end`` (default: the latest
    data) against the reference period (default: the training split's dates)."""

    window: int = 63
    current_end: str | None = None
    reference_start: str | None = None
    reference_end: str | None = None
    psi_threshold: float = 0.2
    ks_alpha: float = 0.05


def _day(text: str | None) -> date | None:
    return date.fromisoformat(text) if text else None


def _panel(features: pl.DataFrame, market_context: pl.DataFrame) -> pl.DataFrame:
    columns = [
        c for c in MODEL_FEATURES if c in market_context.columns and c not in features.columns
    ]
    return features.join(market_context.select(*KEYS, *columns), on=KEYS, how="left")


@dg.asset(
    ins={"features": dg.AssetIn("features"), "market_context": dg.AssetIn("market_context")},
    io_manager_key="lake_io_manager",
    group_name="monitoring",
    kinds={"polars", "scipy"},
    metadata={
        "dagster/column_schema": column_schema(
            {
                "feature": ("string", "model input"),
                "psi": ("float64", "population stability index on reference quantile bins"),
                "ks_statistic": ("float64", "two-sample KS statistic"),
                "ks_p_adjusted": ("float64", "Benjamini-Hochberg adjusted KS p-value"),
                "drifted": ("bool", "psi >= 0.2 and adjusted p < 0.05"),
            }
        )
    },
    owners=OWNERS,
    tags={"layer": "monitoring"},
    code_version="1",
    description="Drift of the recent feature window (default: last 63 sessions) against the "
    "training reference, pooled over symbols: PSI on reference quantile bins and a KS test with "
    "a Benjamini–Hochberg correction across features; a feature drifted when PSI >= 0.2 and the "
    "adjusted KS p < 0.05. `drift_share` (share of drifted features) drives the retrain sensor.",
)
def feature_drift(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    modeling: ModelingConfig,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
) -> pl.DataFrame:
    panel = _panel(features, market_context)
    names = [c for c in MODEL_FEATURES if c in panel.columns]
    reference_end = _day(config.reference_end) or date.fromisoformat(modeling.train_end)
    reference = panel.filter(pl.col("date") <= reference_end)
    if config.reference_start:
        reference = reference.filter(pl.col("date") >= _day(config.reference_start))
    current = drift_stats.current_window(panel, config.window, _day(config.current_end))
    if current.is_empty() or reference.is_empty():
        raise dg.Failure(
            description=f"feature_drift: empty window (reference rows {reference.height}, "
            f"current rows {current.height}); check current_end / reference dates"
        )
    thresholds = drift_stats.DriftThresholds(psi=config.psi_threshold, ks_alpha=config.ks_alpha)
    report = drift_stats.feature_drift(reference, current, names, thresholds)
    by_symbol = drift_stats.drift_by_symbol(reference, current, names, thresholds)
    top = report.top(15)
    context.add_output_metadata(
        {
            "drift_share": float(np.nan_to_num(report.drift_share)),
            "drifted_features": report.drifted_count,
            "features_tested": report.features_tested,
            "current_start": str(current["date"].min()),
            "current_end": str(current["date"].max()),
            "reference_start": str(reference["date"].min()),
            "reference_end": str(reference["date"].max()),
            "current_rows": current.height,
            "reference_rows": reference.height,
            "most_drifted": md(
                top.select("feature", "psi", "ks_statistic", "ks_p_adjusted", "drifted"), 3
            ),
            "by_symbol": md(by_symbol, 3),
            "psi_plot": dg.MetadataValue.md(
                plots.markdown_image(
                    plots.feature_importance_png(
                        top["feature"].to_list(),
                        np.nan_to_num(top["psi"].to_numpy()),
                        f"PSI, {current['date'].min()} .. {current['date'].max()} vs reference",
                    ),
                    "most drifted features",
                )
            ),
            "dagster/row_count": report.table.height,
        }
    )
    return report.table


class HealthConfig(dg.Config):
    """The recent window judged, and how much worse than before counts as decay."""

    window: int = 63
    log_loss_tolerance: float = 0.02
    qlike_tolerance: float = 0.15
    balanced_accuracy_tolerance: float = 0.08


@dg.asset(
    ins={
        "features": dg.AssetIn("features"),
        "market_context": dg.AssetIn("market_context"),
        "labels": dg.AssetIn("labels"),
    },
    io_manager_key="lake_io_manager",
    group_name="monitoring",
    kinds={"mlflow", "polars"},
    metadata={
        "dagster/column_schema": column_schema(
            {
                "model": ("string", "champion"),
                "version": ("string", "its registered version"),
                "recent_*": ("float64", "metrics on the latest labeled window"),
                "before_*": ("float64", "the same before the window (out of sample)"),
                "decayed": ("bool", "worse than before by more than the tolerance"),
            }
        )
    },
    owners=OWNERS,
    tags={"layer": "monitoring"},
    code_version="1",
    description="The champions' realized performance on the latest labeled sessions (default "
    "63) against their own level over the earlier out-of-sample rows: log loss / accuracy / "
    "rank IC for direction, QLIKE for volatility, balanced accuracy for regime. `decayed` "
    "drives the retrain sensor.",
)
def model_health(
    context: dg.AssetExecutionContext,
    config: HealthConfig,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
    labels: pl.DataFrame,
) -> pl.DataFrame:
    split = modeling.split_config()
    labeled = build_training_set(features, market_context, labels, split).frame
    champions = load_champions(mlflow_tracking)
    dates = labeled["date"].unique().sort()
    if not champions or dates.len() <= config.window:
        context.add_output_metadata(
            {"decayed": False, "champions": len(champions), "status": "nothing to judge yet"}
        )
        return pl.DataFrame(schema={"model": pl.String, "decayed": pl.Boolean})
    recent_start = dates[-config.window]
    tolerances = HealthTolerances(
        config.log_loss_tolerance, config.qlike_tolerance, config.balanced_accuracy_tolerance
    )
    results = [
        assess(
            name,
            champion.family,
            labeled,
            champion.model.predict_frame(labeled),
            recent_start,
            split.validation_end,
            tolerances,
        )
        for name, champion in champions.items()
    ]
    table = pl.DataFrame(
        [
            {
                "model": r.model,
                "family": r.family,
                "version": champions[r.model].version,
                "recent_rows": r.recent_rows,
                "reference_rows": r.reference_rows,
                **{f"recent_{k}": v for k, v in r.recent.items()},
                **{f"before_{k}": v for k, v in r.reference.items()},
                "decayed": r.decayed,
                "reason": r.reason,
            }
            for r in results
        ],
        infer_schema_length=None,
    )
    decayed = [r.model for r in results if r.decayed]
    context.add_output_metadata(
        {
            "decayed": bool(decayed),
            "decayed_models": decayed,
            "recent_start": str(recent_start),
            "recent_end": str(dates[-1]),
            # the sensor's cool-down reads the data date of a reading
            "current_end": str(dates[-1]),
            "champions": len(champions),
            "health": md(table.drop("reason"), 4),
            "reasons": dg.MetadataValue.json({r.model: r.reason for r in results}),
            "dagster/row_count": table.height,
        }
    )
    return table
