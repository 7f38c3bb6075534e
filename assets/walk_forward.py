"""Evaluation: ``walk_forward``, the out-of-sample record of the retraining procedure.

Each family is refit every ``step`` sessions once ``min_train_years`` of history exist, each
refit seeing only labels that end before its block, and predicts that block (``quant.walk_forward``).
Refits are not registered: one MLflow run per build holds the per-block metrics as series, the
yearly table and the plots; the record itself is this asset's lake table. A block already
computed for the same inputs and configuration is read back from the cache beside the lake, so
a retrain after a nightly adds only the new blocks.
"""

import os
import time
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.metadata import column_schema, frame_version, labeled_panel_ins, md
from assets.training import ANCHORS
from quant.evaluation import plots
from quant.sceptic_baselines import with_sceptic_baselines
from quant.walk_forward import (
    ALL_FAMILIES,
    FAST_FAMILIES,
    Block,
    WalkForwardConfig,
    build_record,
    record_panel,
)
from quant.walk_forward_report import (
    OUTCOMES,
    figures,
    per_block,
    verdict,
    with_outcomes,
    yearly_scores,
)
from resources.atomic import write_parquet_atomic
from resources.lake import ParquetLake
from resources.mlflow_tracking import MlflowTracking
from resources.modeling import ModelingConfig

# MARKET_MODEL_PROFILE=quick (smoke tests) takes yearly refits with tiny models
QUICK = os.environ.get("MARKET_MODEL_PROFILE") == "quick"
CACHE = "_walk_forward_cache"  # beside the lake's assets; the warehouse skips "_" folders


class WalkForwardAssetConfig(dg.Config):
    """Which families, how often they are refit, and their sizes (defaults: the fast families;
    ``make walk-forward`` adds the LSTMs)."""

    models: list[str] = list(FAST_FAMILIES)  # noqa: RUF012 (a pydantic field, copied per config)
    step: int = 252 if QUICK else 63
    min_train_years: float = 3.0
    forest_trees: int = 10 if QUICK else 50
    xgb_rounds: int = 40 if QUICK else 300
    lstm_max_epochs: int = 1 if QUICK else 20
    lstm_hidden: int = 8 if QUICK else 32

    def procedure(self, modeling: ModelingConfig) -> WalkForwardConfig:
        unknown = sorted(set(self.models) - set(ALL_FAMILIES))
        if unknown:
            raise dg.Failure(
                description=f"walk_forward: unknown model(s) {unknown}; known: {list(ALL_FAMILIES)}"
            )
        return WalkForwardConfig(
            step=self.step,
            min_train_years=self.min_train_years,
            horizon=modeling.horizon,
            seed=modeling.seed,
            xgb_rounds=self.xgb_rounds,
            forest_trees=self.forest_trees,
            lstm_hidden=self.lstm_hidden,
            lstm_max_epochs=self.lstm_max_epochs,
        )


RECORD_COLUMNS = {
    "symbol": ("string", "Yahoo ticker"),
    "date": ("date", "session predicted (its features known at that close)"),
    "model": ("string", "family refit in the walk-forward"),
    "refit_date": ("date", "training cutoff of the refit that made the row (< date)"),
    "p_down / p_neutral / p_up": ("float64", "direction models"),
    "vol_forecast": ("float64", "volatility models: annualized vol of the next 20 sessions"),
    "p_bear .. p_highvol": ("float64", "regime model"),
    "label_regime / label_regime_now": ("int8", "regime labels by the thresholds known then"),
    ", ".join(OUTCOMES): ("mixed", "the labels scored (known only after each row's label end)"),
    "prior_down / prior_neutral / prior_up": (
        "float64",
        "class prior of the refit's training rows (pooled over symbols)",
    ),
    "sym_prior_down .. sym_prior_up": (
        "float64",
        "the symbol's own expanding class prior (its labels known by the row's date)",
    ),
    "sym_prior_bear .. sym_prior_highvol": ("float64", "the symbol's own expanding regime prior"),
    "prev_direction": ("int8", "previous session's direction (the naive sign baseline)"),
    "fwd_return_5 / fwd_return_20": ("float64", "log return over the next 5 / 20 sessions"),
    "har_symbol / har_range_symbol": (
        "float64",
        "HAR fitted on the symbol alone at the refit (returns; monthly term from the high-low "
        "range)",
    ),
}


def _cache(lake: ParquetLake):
    folder = Path(lake.base_dir) / CACHE

    def get(key: str) -> pl.DataFrame | None:
        path = folder / f"{key}.parquet"
        return pl.read_parquet(path) if path.exists() else None

    def put(key: str, frame: pl.DataFrame) -> None:
        write_parquet_atomic(frame, folder / f"{key}.parquet")

    return get, put


def _log_build(
    tracking: MlflowTracking,
    context: dg.AssetExecutionContext,
    config: WalkForwardConfig,
    models: list[str],
    scores: pl.DataFrame,
    blocks: pl.DataFrame,
    pictures: dict[str, bytes],
    data_version: str,
) -> str:
    from mlflow.entities import Metric

    tags = {"dagster_run_id": context.run_id, "data_version": data_version}
    with tracking.start_run("walk_forward", "walk_forward", tags) as run:
        tracking.log_params(
            {
                "models": ",".join(models),
                **{k: v for k, v in vars(config).items() if not isinstance(v, dict)},
            }
        )
        now = int(time.time() * 1000)
        series, steps = [], {}
        for row in blocks.iter_rows(named=True):
            step = steps[row["model"]] = steps.get(row["model"], -1) + 1
            if np.isfinite(row["value"]):
                series.append(Metric(f"{row['model']}_block_metric", row["value"], now, step))
            if row["rank_ic"] is not None and np.isfinite(row["rank_ic"]):
                series.append(Metric(f"{row['model']}_block_rank_ic", row["rank_ic"], now, step))
        overall = scores.filter(pl.col("period") == "all")
        for row in overall.iter_rows(named=True):
            for key in ("model_value", "baseline_value"):
                if np.isfinite(row[key]):
                    series.append(Metric(f"{row['model']}_{row['metric']}_{key}", row[key], now, 0))
        tracking.client().log_batch(run.info.run_id, metrics=series)
        tracking.log_table_and_plots("yearly_scores", scores, pictures)
        return tracking.run_url(run.info.experiment_id, run.info.run_id)


@dg.asset(
    ins=labeled_panel_ins(),
    io_manager_key="lake_io_manager",
    group_name="evaluation",
    kinds={"polars", "mlflow"},
    owners=["team:quant-research"],
    tags={"layer": "evaluation"},
    code_version="2",
    metadata={"dagster/column_schema": column_schema(RECORD_COLUMNS)},
    description="The walk-forward record: each family refit every 63 sessions once 3 years of "
    "history exist (qlib's rolling retraining), each refit fitted only on labels that end before "
    "its block and predicting that block; per-year and overall scores beside the baselines "
    "(the symbol's own class prior, naive trailing vol, persistence), rank IC per block; every "
    "row carries the sceptic's per-symbol baselines `model_report` scores it against. "
    "Cached per block: a rebuild computes only blocks whose inputs changed.",
)
def walk_forward(
    context: dg.AssetExecutionContext,
    config: WalkForwardAssetConfig,
    modeling: ModelingConfig,
    lake: ParquetLake,
    mlflow_tracking: MlflowTracking,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
    labels: pl.DataFrame,
) -> pl.DataFrame:
    procedure = config.procedure(modeling)
    panel = record_panel(features, market_context, labels)
    get, put = _cache(lake)
    computed, cached, seconds = [], [], {}

    def heard(model: str, block: Block, from_cache: bool, spent: float) -> None:
        (cached if from_cache else computed).append(model)
        seconds[model] = seconds.get(model, 0.0) + spent

    record = build_record(panel, tuple(config.models), procedure, ANCHORS, get, put, on_block=heard)
    if record.is_empty():
        raise dg.Failure(
            description=f"walk_forward: no block to score ({panel['date'].n_unique()} sessions; "
            f"the first refit needs {procedure.min_train_years} years of history)"
        )
    record = with_sceptic_baselines(with_outcomes(record, panel), panel)
    scores = yearly_scores(record, anchors=ANCHORS)
    blocks = per_block(record, anchors=ANCHORS)
    pictures = figures(scores, blocks)
    version = frame_version(panel.select("symbol", "date", "label_end"))
    run_url = _log_build(
        mlflow_tracking, context, procedure, config.models, scores, blocks, pictures, version
    )
    context.add_output_metadata(
        {
            "dagster/row_count": record.height,
            "verdict": verdict(scores),
            "first_date": str(record["date"].min()),
            "last_date": str(record["date"].max()),
            "years_covered": round((record["date"].max() - record["date"].min()).days / 365.25, 2),
            "refits": record.select("model", "refit_date").unique().height,
            "refits_computed": len(computed),
            "refits_from_cache": len(cached),
            "seconds_per_model": dg.MetadataValue.json(
                {m: round(s, 1) for m, s in seconds.items()}
            ),
            "yearly_scores": md(scores, 4),
            "plots": dg.MetadataValue.md(
                "\n\n".join(plots.markdown_image(png, name) for name, png in pictures.items())
            ),
            "mlflow_run": dg.MetadataValue.url(run_url),
            "config": dg.MetadataValue.json(config.model_dump()),
        }
    )
    return record
