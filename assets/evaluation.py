"""Evaluation: ``model_report`` scores every model out of sample beside its baselines and logs
the scores and plots to each model's MLflow run. It chooses nothing: champions are decided in
shadow (``shadow_promotion``), on sessions that arrive after a model's data.

The headline is the walk-forward record (``walk_forward``): years of out-of-sample predictions
of the retraining procedure, scored per year and overall beside the baselines with a paired
test of each gap. Beside it, the latest models on one window: in the default rolling mode the validation window, by the *selection* models
(fitted on the training window only; their early stopping read these rows, so the scores are
slightly optimistic for the models that stop early); in fixed mode the test split, by the refit
models. The work is in ``quant.report`` (scores, bootstrap and Diebold–Mariano tests, plots);
this module aligns predictions with labels and talks to MLflow.
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.metadata import column_schema, frame_version, md
from assets.own_versions import require_own_versions
from assets.partitions import UNIVERSE
from assets.training import ANCHORS, training_from_lake
from quant.dataset import TrainingSet
from quant.evaluation import plots
from quant.models import MODEL_FAMILIES
from quant.models.direction import PROBA_COLUMNS as DIRECTION_COLUMNS
from quant.models.regime import PROBA_COLUMNS as REGIME_COLUMNS
from quant.models.volatility import OUTPUT as VOL_COLUMN
from quant.models.volatility import har_baseline
from quant.record_scoreboard import DECISIVE, Scoreboard, headline, mz_summary, scoreboard
from quant.report import Evaluation, evaluate_direction, evaluate_regime, evaluate_volatility
from quant.sceptic_baselines import BASELINE_COLUMNS
from quant.splits import FIXED, TEST, TRAIN, VALIDATION
from quant.walk_forward_report import figures as record_figures
from quant.walk_forward_report import per_block, verdict, yearly_scores
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking
from resources.modeling import ModelingConfig

KEYS = ["symbol", "date"]
OUTPUTS = {"direction": DIRECTION_COLUMNS, "volatility": [VOL_COLUMN], "regime": REGIME_COLUMNS}
VOLATILITY_PLOT_SYMBOL = "^GSPC"


def aligned(test: pl.DataFrame, predictions: pl.DataFrame, family: str) -> pl.DataFrame:
    """Test rows joined with a model's outputs, keeping rows where the model has a prediction."""
    columns = OUTPUTS[family]
    return test.join(predictions.select(*KEYS, *columns), on=KEYS, how="inner").drop_nulls(columns)


def evaluation_split(modeling: ModelingConfig) -> str:
    """The split the report (and the backtest) score: test in fixed mode, else validation."""
    return TEST if modeling.split_mode == FIXED else VALIDATION


@dataclass
class ModelOutcome:
    name: str
    family: str
    version: str
    run_id: str
    evaluation: Evaluation


def _evaluate(
    name: str,
    family: str,
    training: TrainingSet,
    test: pl.DataFrame,
    predictions: pl.DataFrame,
    har: pl.DataFrame,
    modeling: ModelingConfig,
) -> Evaluation:
    rows = aligned(test, predictions, family)
    values = rows.select(OUTPUTS[family]).to_numpy()
    n_boot, seed = modeling.bootstrap_samples, modeling.seed
    if family == "direction":
        train = training.rows(TRAIN)
        return evaluate_direction(
            name,
            rows,
            values,
            train["direction"].to_numpy().astype(int),
            train["prev_direction"].to_numpy().astype(int),
            n_boot=n_boot,
            seed=seed,
        )
    if family == "volatility":
        har_aligned = rows.join(har, on=KEYS, how="left")["har_vol"].to_numpy()
        return evaluate_volatility(
            name,
            rows,
            values[:, 0],
            har_aligned,
            modeling.horizon,
            n_boot=n_boot,
            seed=seed,
            plot_symbol=VOLATILITY_PLOT_SYMBOL,
        )
    return evaluate_regime(name, rows, values, n_boot=n_boot, seed=seed)


def roles(tracking: MlflowTracking, outcome: ModelOutcome) -> dict[str, object]:
    """Where the scored version stands in the registry (the report decides none of it)."""
    champion = tracking.version_by_alias(outcome.name, CHAMPION)
    challenger = tracking.version_by_alias(outcome.name, CHALLENGER)
    mine = tracking.client().get_model_version(outcome.name, outcome.version)
    return {
        "model": outcome.name,
        "version": outcome.version,
        "champion": None if champion is None else str(champion.version),
        "challenger": None if challenger is None else str(challenger.version),
        "status": mine.tags.get("shadow_status", ""),
        "data_as_of": mine.tags.get("data_as_of", ""),
        "note": mine.tags.get("promotion", "judged in shadow after data_as_of"),
    }


def _log_to_run(tracking: MlflowTracking, outcome: ModelOutcome) -> None:
    """Test metrics (model and baselines), comparisons and plots into the model's own run."""
    from mlflow.entities import Metric

    evaluation = outcome.evaluation
    now = int(time.time() * 1000)
    values: dict[str, float] = {f"test_{k}": v for k, v in evaluation.metrics.items()}
    for baseline, scores in evaluation.baselines.items():
        values.update({f"baseline_{baseline}_{k}": v for k, v in scores.items()})
    for comparison in evaluation.comparisons:
        slug = comparison.metric.replace(" ", "_")
        values[f"diff_{slug}"] = comparison.difference
        values[f"p_value_{slug}"] = comparison.p_value
    for test_name, result in evaluation.tests.items():
        values[f"{test_name}_statistic"] = result["statistic"]
        values[f"{test_name}_p_value"] = result["p_value"]
    metrics = [Metric(key, float(v), now, 0) for key, v in values.items() if np.isfinite(float(v))]
    client = tracking.client()
    client.log_batch(outcome.run_id, metrics=metrics)
    with tempfile.TemporaryDirectory() as tmp:
        for plot_name, png in evaluation.plots.items():
            path = Path(tmp) / f"{plot_name}.png"
            path.write_bytes(png)
            client.log_artifact(outcome.run_id, str(path), artifact_path="plots")


def _comparison_table(evaluation: Evaluation) -> pl.DataFrame:
    return pl.DataFrame(
        [
            {
                "comparison": c.metric,
                "model": c.model,
                "baseline": c.baseline,
                "difference": c.difference,
                "diff_ci_low": c.difference_ci[0],
                "diff_ci_high": c.difference_ci[1],
                "p_value": c.p_value,
            }
            for c in evaluation.comparisons
        ]
    )


def _importance_plot(tracking: MlflowTracking, outcome: ModelOutcome) -> bytes | None:
    if outcome.name not in ("direction_xgboost", "regime_random_forest"):
        return None
    model = tracking.load(outcome.name, outcome.version)
    scores = model.classifier.importance() if hasattr(model, "classifier") else model.importance()
    names = list(scores)
    return plots.feature_importance_png(
        names, np.array([scores[n] for n in names]), f"{outcome.name}: feature importance"
    )


LATEST, RECORD = "latest_window", "walk_forward"
TABLE_SCHEMA = {
    "scope": pl.String,
    "period": pl.String,
    "model": pl.String,
    "family": pl.String,
    "version": pl.String,
    "source": pl.String,
    "metric": pl.String,
    "value": pl.Float64,
    "group": pl.String,
}
SCOREBOARD = "scoreboard"


def long_table(outcomes: list[ModelOutcome]) -> pl.DataFrame:
    """The latest models' window: scope | period ("all") | model | family | version | source
    (the model or a baseline) | metric | value."""
    records = []
    for o in outcomes:
        sources = {o.name: o.evaluation.metrics, **o.evaluation.baselines}
        for source, scores in sources.items():
            for metric, value in scores.items():
                records.append(
                    {
                        "scope": LATEST,
                        "period": "all",
                        "model": o.name,
                        "family": o.family,
                        "version": o.version,
                        "source": source,
                        "metric": metric,
                        "value": float(value),
                    }
                )
    return pl.DataFrame(records, schema=TABLE_SCHEMA)


def record_table(scores: pl.DataFrame) -> pl.DataFrame:
    """The walk-forward record's scores (``yearly_scores``) in the report's long form: per
    model and period, the model's and the baseline's primary metric, the gap's p-value and,
    for direction, the rank IC."""
    records = []
    for row in scores.iter_rows(named=True):
        common = {
            "scope": RECORD,
            "period": row["period"],
            "model": row["model"],
            "family": row["family"],
            "version": RECORD,
        }
        values = [
            (row["model"], row["metric"], row["model_value"]),
            (row["baseline"], row["metric"], row["baseline_value"]),
            (row["model"], "p_value_vs_baseline", row["p_value"]),
        ]
        if row["rank_ic"] is not None:
            values.append((row["model"], "rank_ic", row["rank_ic"]))
        for source, metric, value in values:
            records.append({**common, "source": source, "metric": metric, "value": float(value)})
    return pl.DataFrame(records, schema=TABLE_SCHEMA)


def instrument_groups() -> dict[str, frozenset[str]]:
    """Like instruments scored together: the equities (which decide), each volatility index on
    its own, and the other indices."""
    volatility = {i.symbol for i in UNIVERSE.instruments if i.sector == "volatility"}
    indices = {i.symbol for i in UNIVERSE.instruments if i.is_index} - volatility
    return {
        DECISIVE: frozenset(ANCHORS),
        **{symbol: frozenset({symbol}) for symbol in sorted(volatility)},
        "indices": frozenset(indices),
    }


def scoreboard_table(board: Scoreboard) -> pl.DataFrame:
    """The scoreboard in the report's long form (scope ``scoreboard``): per model, group and
    metric, the model's and the baseline's value and the raw, Holm and BH p-values."""
    records = []
    for row in board.scores.iter_rows(named=True):
        common = {
            "scope": SCOREBOARD,
            "period": "all",
            "model": row["model"],
            "family": row["family"],
            "version": RECORD,
            "group": row["group"],
        }
        baseline = row["baseline"]
        values = [
            (row["model"], row["metric"], row["model_value"]),
            (baseline, row["metric"], row["baseline_value"]),
            *[
                (row["model"], f"{row['metric']}:{kind}_vs_{baseline}", row[kind])
                for kind in ("p_raw", "p_holm", "p_bh")
            ],
        ]
        for source, metric, value in values:
            value = None if value is None or not np.isfinite(value) else float(value)
            records.append({**common, "source": source, "metric": metric, "value": value})
    for row in board.ic.iter_rows(named=True):
        for name in IC_FIELDS:
            value = row[name]
            records.append(
                {
                    "scope": SCOREBOARD,
                    "period": "all",
                    "model": row["model"],
                    "family": "direction",
                    "version": RECORD,
                    "group": DECISIVE,
                    "source": row["model"],
                    "metric": f"{name} {row['horizon']}d",
                    "value": None if value is None or not np.isfinite(value) else float(value),
                }
            )
    return pl.DataFrame(records, schema=TABLE_SCHEMA)


IC_FIELDS = ("IC", "ICIR", "Rank ICIR", "Rank IC t (NW)")  # Rank IC itself is a scored row


def _rounded(frame: pl.DataFrame, digits: int = 4) -> pl.DataFrame:
    return frame.with_columns(pl.col(pl.Float64).round(digits))


def scoreboard_metadata(record: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, object]]:
    """The honest scoreboard of the record (per symbol, per group, beside the sceptic's
    baselines, adjusted p-values, calibration): its long table and metadata."""
    if not set(BASELINE_COLUMNS) <= set(record.columns):
        note = "the walk-forward record carries no per-symbol baselines: re-materialize it"
        return pl.DataFrame(schema=TABLE_SCHEMA), {"scoreboard__headline": note}
    board = scoreboard(record, instrument_groups())
    scores = board.scores.sort(
        pl.col("group") != DECISIVE, "group", "family", "model", "metric", "baseline"
    )
    pictures = board.figures
    meta = {
        "scoreboard__headline": headline(board),
        "scoreboard__cross_sectional_ic": md(_rounded(board.ic), 4),
        "scoreboard__scores": md(
            _rounded(
                scores.select(
                    "model",
                    "group",
                    "metric",
                    "baseline",
                    "model_value",
                    "baseline_value",
                    "p_raw",
                    "p_holm",
                    "p_bh",
                    "verdict",
                )
            ),
            4,
        ),
        "scoreboard__mincer_zarnowitz": md(_rounded(mz_summary(board.mincer_zarnowitz)), 4),
        "scoreboard__calibration": md(_rounded(board.calibration), 4),
        "scoreboard__plots": dg.MetadataValue.md(
            "\n\n".join(plots.markdown_image(png, name) for name, png in pictures.items())
        ),
        "scoreboard__limits": LIMITS,
    }
    return scoreboard_table(board), meta


# what the data cannot tell, stated on every report
LIMITS = (
    "Survivorship: the universe is today's large caps, so the record never holds a name that "
    "was delisted or fell out of the index; every equity score is conditional on survival. "
    "Dividends: equities' adjusted closes end 2025-10-08 in the bundled data; later sessions "
    "use raw closes, so an ex-dividend drop after that date stays in returns and labels (a "
    "one-day move of about the dividend yield, under 1 % for these names: it lands in the "
    "neutral or down class of that one session and slightly lowers 20-session returns)."
)


def record_metadata(record: pl.DataFrame) -> tuple[pl.DataFrame, dict[str, object]]:
    """The walk-forward record judged: its long table and the report's metadata for it (the
    per-year table with p-values, the verdict, IC per block and cumulative gain plots)."""
    if record.is_empty() or "fwd_vol_20" not in record.columns:
        note = "no walk-forward record yet (materialize `walk_forward`)"
        return pl.DataFrame(schema=TABLE_SCHEMA), {"walk_forward__verdict": note}
    scores = yearly_scores(record, anchors=ANCHORS)
    pictures = record_figures(scores, per_block(record, anchors=ANCHORS))
    span = f"{record['date'].min()} .. {record['date'].max()}"
    meta = {
        "walk_forward__window": span,
        "walk_forward__refits": record.select("model", "refit_date").unique().height,
        "walk_forward__verdict": verdict(scores),
        "walk_forward__scores": md(scores, 4),
        "walk_forward__plots": dg.MetadataValue.md(
            "\n\n".join(plots.markdown_image(png, name) for name, png in pictures.items())
        ),
    }
    board_table, board_meta = scoreboard_metadata(record)
    return pl.concat([record_table(scores), board_table]), {**board_meta, **meta}


MODEL_INPUTS = list(MODEL_FAMILIES)
MIN_TEST_ROWS = 250


@dg.asset(
    ins={
        "training_set": dg.AssetIn("training_set"),
        "walk_forward": dg.AssetIn("walk_forward"),
        **{n: dg.AssetIn(n) for n in MODEL_INPUTS},
    },
    io_manager_key="lake_io_manager",
    group_name="evaluation",
    kinds={"mlflow", "polars"},
    metadata={
        "dagster/column_schema": column_schema(
            {
                "scope": (
                    "string",
                    "scoreboard (the record, per group), walk_forward (the record per year) "
                    "or latest_window",
                ),
                "period": ("string", "a calendar year of the record, or all"),
                "model": ("string", "registered model"),
                "family": ("string", "direction, volatility or regime"),
                "version": ("string", "model version scored (walk_forward: the procedure)"),
                "source": ("string", "the model itself or a baseline"),
                "metric": ("string", "out-of-sample metric (validation window or test split)"),
                "value": ("float64", "its value"),
                "group": (
                    "string",
                    "scoreboard: equities, a volatility index alone, or the other indices",
                ),
            }
        )
    },
    owners=["team:quant-research"],
    tags={"layer": "evaluation"},
    code_version="3",
    description="Out-of-sample report, headed by the honest scoreboard of the walk-forward "
    "record: the cross-sectional rank IC per date over the equities (1, 5, 20 sessions; IC, "
    "ICIR, Rank IC, Rank ICIR), every model per symbol and per group of like instruments beside "
    "per-symbol baselines, raw and Holm/BH-adjusted p-values, Mincer–Zarnowitz per symbol, "
    "reliability diagrams. Then the record per year and overall (each model beside its baseline "
    "with a paired test), then the latest models: every model beside its baselines (majority class and "
    "previous-day sign; naive trailing vol and HAR; regime persistence) with block-bootstrap "
    "confidence intervals, paired tests and Diebold–Mariano; plots. Rolling mode scores the "
    "validation window with the selection models, fixed mode the test split. It chooses "
    "nothing: champions are decided in shadow (`shadow_promotion`).",
)
def model_report(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
    walk_forward: pl.DataFrame,
    **predictions: pl.DataFrame,
) -> pl.DataFrame:
    training = training_from_lake(training_set, modeling)
    scored_split = evaluation_split(modeling)
    test = training.rows(scored_split)
    judged, record_meta = record_metadata(walk_forward)
    require_own_versions(context, predictions)
    if test.height < MIN_TEST_ROWS:
        # replaying history before the test window has labels: nothing honest to score yet
        context.add_output_metadata(
            {
                "status": f"{scored_split} split has {test.height} labeled rows "
                f"(< {MIN_TEST_ROWS}): no evaluation of the latest models",
                "scored_rows": test.height,
                "dagster/row_count": judged.height,
                **record_meta,
            }
        )
        return judged
    har = har_baseline(training)
    outcomes = []
    metadata: dict[str, object] = {"data_version": frame_version(training.frame)}
    for name in MODEL_INPUTS:
        frame = predictions[name].filter(pl.col("split") == scored_split)
        family = MODEL_FAMILIES[name]
        evaluation = _evaluate(name, family, training, test, frame, har, modeling)
        outcome = ModelOutcome(
            name,
            family,
            str(frame["model_version"][0]),
            str(frame["mlflow_run_id"][0]),
            evaluation,
        )
        importance = _importance_plot(mlflow_tracking, outcome)
        if importance is not None:
            evaluation.plots["feature_importance"] = importance
        _log_to_run(mlflow_tracking, outcome)
        outcomes.append(outcome)
        metadata[f"{name}__metrics"] = md(evaluation.table())
        if evaluation.comparisons:
            metadata[f"{name}__comparisons"] = md(_comparison_table(evaluation), 3)
        if evaluation.tests:
            metadata[f"{name}__tests"] = dg.MetadataValue.json(evaluation.tests)
        metadata[f"{name}__plots"] = dg.MetadataValue.md(
            "\n\n".join(plots.markdown_image(png, p) for p, png in evaluation.plots.items())
        )
    promotion = pl.DataFrame([roles(mlflow_tracking, o) for o in outcomes])
    latest = long_table(outcomes)
    table = pl.concat([judged, latest])
    headline = latest.filter(
        pl.col("metric").is_in(["log_loss", "balanced_accuracy", "qlike", "accuracy", "rank_ic"])
    ).pivot(on="source", index=["model", "metric"], values="value")
    context.add_output_metadata(
        {
            "dagster/row_count": table.height,
            **record_meta,
            "scored_split": scored_split,
            "scored_by": "selection models (fitted on train only)"
            if scored_split == VALIDATION
            else "refit models",
            "scored_rows": test.height,
            "scored_window": f"{test['date'].min()} .. {test['date'].max()}",
            **training.windows.tags(),
            "latest_window_headline": md(headline),
            "promotion": md(promotion),
            "mlflow_runs": dg.MetadataValue.json(
                {
                    o.name: mlflow_tracking.run_url(_experiment(mlflow_tracking, o), o.run_id)
                    for o in outcomes
                }
            ),
            **metadata,
        }
    )
    return table


def _experiment(tracking: MlflowTracking, outcome: ModelOutcome) -> str:
    return tracking.experiment_id(outcome.family)
