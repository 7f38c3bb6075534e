"""Monitoring: ``feature_drift`` (recent inputs vs the training reference) and ``model_health``
(the champions' realized performance now that labels have arrived). The drift sensor in
``pipelines.automation`` reads their metadata (``drift_share``, ``decayed``)."""

from datetime import date, timedelta

import dagster as dg
import numpy as np
import polars as pl

from assets.metadata import column_schema, md
from assets.training import ANCHORS
from quant.dataset import KEYS, MODEL_FEATURES
from quant.evaluation import plots
from quant.monitoring import drift as drift_stats
from quant.monitoring.health import HealthTolerances, decay_test
from quant.monitoring.served_health import (
    HEALTH_METRIC,
    daily_losses,
    health_row_loss,
    in_group,
    latest_served,
    scorable,
)
from quant.splits import resolve_windows
from resources.mlflow_tracking import CHAMPION, Champion, MlflowTracking, load_champions
from resources.modeling import ModelingConfig
from resources.served_log import ServedLog

OWNERS = ["team:ml-platform"]
REFERENCE_MODEL = "direction_xgboost"


class DriftConfig(dg.Config):
    """Windows compared: the last ``window`` sessions up to ``current_end`` (default: the latest
    data) against the reference period (default: the window the champions were trained on,
    from their MLflow tags; with no champion yet, everything before the current window)."""

    window: int = 63
    current_end: str | None = None
    reference_start: str | None = None
    reference_end: str | None = None
    psi_threshold: float = 0.2
    ks_alpha: float = 0.05
    calibration_quantile: float = 0.95


def champion_window(tracking: MlflowTracking) -> tuple[date, date] | None:
    """The training window (train start .. validation end) of the direction champion, the
    rows the models in service learned from."""
    found = tracking.version_by_alias(REFERENCE_MODEL, CHAMPION)
    if found is None or not found.tags.get("train_start"):
        return None
    return (
        date.fromisoformat(found.tags["train_start"]),
        date.fromisoformat(found.tags["validation_end"]),
    )


def _drift_verdict(share: float, retrain: float | None, severe: float | None) -> str:
    share = float(np.nan_to_num(share))
    if retrain is None:
        return f"drift share {share:.3f} (thresholds not calibrated)"
    if severe is not None and share >= severe:
        return f"severe: drift share {share:.3f} >= {severe:.3f} (beyond the reference's own range)"
    if share >= retrain:
        return f"drifted: drift share {share:.3f} >= {retrain:.3f} (rarer than 95 % of reference windows)"
    return f"usual churn: drift share {share:.3f} < {retrain:.3f}"


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
    code_version="2",
    description="Drift of the recent feature window (default: last 63 sessions) against the "
    "champions' training window, pooled over symbols: PSI on reference quantile bins and a KS "
    "test with a Benjamini–Hochberg correction across features; a feature drifted when PSI >= "
    "0.2 and the adjusted KS p < 0.05. `drift_share` (share of drifted features) drives the "
    "retrain sensor, against thresholds calibrated on the reference's own windows "
    "(`retrain_threshold` = their 95th percentile, `severe_threshold`).",
)
def feature_drift(
    context: dg.AssetExecutionContext,
    config: DriftConfig,
    mlflow_tracking: MlflowTracking,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
) -> pl.DataFrame:
    panel = _panel(features, market_context)
    names = [c for c in MODEL_FEATURES if c in panel.columns]
    current = drift_stats.current_window(panel, config.window, _day(config.current_end))
    trained = champion_window(mlflow_tracking)
    if config.reference_end or config.reference_start:
        source = "run config"
        start, end = _day(config.reference_start), _day(config.reference_end)
    elif trained is not None:
        source = f"{REFERENCE_MODEL} champion's training window"
        start, end = trained
    else:
        source = "no champion yet: everything before the current window"
        start, end = None, current["date"].min() - timedelta(days=1) if current.height else None
    reference = panel.filter(pl.col("date") <= end) if end else panel
    if start:
        reference = reference.filter(pl.col("date") >= start)
    if current.is_empty() or reference.is_empty():
        raise dg.Failure(
            description=f"feature_drift: empty window (reference rows {reference.height}, "
            f"current rows {current.height}); check current_end / reference dates"
        )
    thresholds = drift_stats.DriftThresholds(psi=config.psi_threshold, ks_alpha=config.ks_alpha)
    report = drift_stats.feature_drift(reference, current, names, thresholds)
    null = drift_stats.reference_drift_shares(reference, names, config.window, None, thresholds)
    try:
        retrain_at, severe_at = drift_stats.calibrated_thresholds(
            null["drift_share"].to_numpy(), config.calibration_quantile
        )
        calibration = (
            f"{null.height} reference windows of {config.window} sessions: drift share median "
            f"{null['drift_share'].median():.3f}, q{config.calibration_quantile * 100:.0f} "
            f"{retrain_at:.3f}, max {null['drift_share'].max():.3f}"
        )
    except ValueError as exc:
        retrain_at = severe_at = None
        calibration = f"not calibrated: {exc}"
    by_symbol = drift_stats.drift_by_symbol(reference, current, names, thresholds)
    top = report.top(15)
    context.add_output_metadata(
        {
            "drift_share": float(np.nan_to_num(report.drift_share)),
            **({} if retrain_at is None else {"retrain_threshold": retrain_at}),
            **({} if severe_at is None else {"severe_threshold": severe_at}),
            "calibration": calibration,
            "reference_source": source,
            "verdict": _drift_verdict(report.drift_share, retrain_at, severe_at),
            "reference_shares": md(null, 3),
            "drifted_features": report.drifted_count,
            "features_tested": report.features_tested,
            "current_start": str(current["date"].min()),
            "current_end": str(current["date"].max()),
            # the sensor's one clock: the last session in the lake when the reading was made
            "data_date": str(panel["date"].max()),
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
    """Which served sessions are judged and how much worse than its reference a champion may
    get (in loss units: nats of log loss, QLIKE) before a significant excess counts as decay."""

    window: int = 63
    min_sessions: int = 21
    alpha: float = 0.01
    log_loss_tolerance: float = HealthTolerances.log_loss
    qlike_tolerance: float = HealthTolerances.qlike
    regime_log_loss_tolerance: float = HealthTolerances.regime_log_loss

    def tolerance(self, family: str) -> float:
        return {
            "direction": self.log_loss_tolerance,
            "volatility": self.qlike_tolerance,
            "regime": self.regime_log_loss_tolerance,
        }[family]


def labeled_through(labels: pl.DataFrame, modeling: ModelingConfig) -> str | None:
    """The anchor symbols' last fully labeled session: where a retrain now would end its
    validation window (None with too little history)."""
    try:
        return resolve_windows(labels, modeling.split_config(), ANCHORS).validation_end.isoformat()
    except ValueError:
        return None


def _served_health(
    name: str,
    champion: Champion,
    served: pl.DataFrame,
    labels: pl.DataFrame,
    config: HealthConfig,
    lag: int,
) -> tuple[dict[str, object], pl.DataFrame]:
    family = champion.family
    logged = latest_served(served, name, champion.version)
    rows = scorable(family, logged.join(labels, on=KEYS, how="inner"))
    rows = rows.sort(KEYS).group_by("symbol", maintain_order=True).tail(config.window)
    reference = float(champion.tags.get("health_reference", "nan"))
    decisive = in_group(rows, ANCHORS)
    daily = daily_losses(family, decisive)
    test = decay_test(
        daily["loss"].to_numpy(),
        reference,
        config.tolerance(family),
        lag,
        alpha=config.alpha,
        min_sessions=config.min_sessions,
        metric=HEALTH_METRIC[family],
    )
    per_symbol = (
        rows.with_columns(
            pl.Series("loss", health_row_loss(family, rows))
            if rows.height
            else pl.lit(None, pl.Float64).alias("loss")
        )
        .group_by("symbol")
        .agg(
            pl.len().alias("served_sessions"),
            pl.col("date").min().alias("first"),
            pl.col("date").max().alias("last"),
            pl.col("loss").mean().alias("mean_loss"),
        )
        .with_columns(pl.lit(name).alias("model"))
        .sort("symbol")
    )
    result = {
        "model": name,
        "family": family,
        "version": champion.version,
        "metric": HEALTH_METRIC[family],
        "served_sessions": test.sessions,
        "symbols": rows["symbol"].n_unique(),
        "recent_loss": test.mean_loss,
        "reference": test.reference,
        "tolerance": test.tolerance,
        "p_value": test.p_value,
        "decayed": test.decayed,
        "reason": test.reason,
    }
    return result, per_symbol


@dg.asset(
    ins={"labels": dg.AssetIn("labels")},
    io_manager_key="lake_io_manager",
    group_name="monitoring",
    kinds={"mlflow", "polars"},
    metadata={
        "dagster/column_schema": column_schema(
            {
                "model": ("string", "champion"),
                "version": ("string", "its registered version"),
                "served_sessions": ("int64", "served sessions with labels, judged"),
                "recent_loss": ("float64", "mean daily loss of what was served (equities)"),
                "reference": ("float64", "the champion's out-of-sample level when promoted"),
                "p_value": ("float64", "one-sided test: loss > reference + tolerance"),
                "decayed": ("bool", "p < alpha"),
            }
        )
    },
    owners=OWNERS,
    tags={"layer": "monitoring"},
    code_version="2",
    description="Champion health from the served log: the losses of the predictions each "
    "champion actually served (each symbol's latest 63 served sessions whose labels have "
    "arrived; equities decide, per-symbol table beside) against the champion's own reference "
    "level (its shadow score, or for a first champion its selection model's validation loss), "
    "with a one-sided Newey–West test (false-alarm rate stated in docs/AUTOMATION.md). "
    "`decayed` drives the retrain sensor; `labeled_through` its calendar.",
)
def model_health(
    context: dg.AssetExecutionContext,
    config: HealthConfig,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    served_log: ServedLog,
    labels: pl.DataFrame,
) -> pl.DataFrame:
    through = labeled_through(labels, modeling)
    champions = load_champions(mlflow_tracking)
    served = served_log.read("predictions")
    # ``data_date``: the sensor's one clock, the lake's last session (labels end 20 earlier)
    base = {
        "labeled_through": through or "",
        "current_end": through or "",
        "data_date": str(labels["date"].max()) if labels.height else "",
    }
    if not champions or served.is_empty():
        context.add_output_metadata(
            {
                **base,
                "decayed": False,
                "champions": len(champions),
                "status": "nothing to judge yet: no champion or nothing served",
            }
        )
        return pl.DataFrame(schema={"model": pl.String, "decayed": pl.Boolean})
    policy = modeling.shadow_policy()
    results, tables = [], []
    for name, champion in champions.items():
        result, per_symbol = _served_health(
            name, champion, served, labels, config, policy.lag(champion.family)
        )
        results.append(result)
        tables.append(per_symbol)
    table = pl.DataFrame(results, infer_schema_length=None)
    decayed = [r["model"] for r in results if r["decayed"]]
    context.add_output_metadata(
        {
            **base,
            "decayed": bool(decayed),
            "decayed_models": decayed,
            "verdict": f"decayed: {', '.join(decayed)}" if decayed else "no champion decayed",
            "champions": len(champions),
            "served_rows_logged": served.height,
            "health": md(table.drop("reason"), 4),
            "per_symbol": md(pl.concat(tables, how="diagonal_relaxed"), 4),
            "reasons": dg.MetadataValue.json({r["model"]: r["reason"] for r in results}),
            "dagster/row_count": table.height,
        }
    )
    return table
