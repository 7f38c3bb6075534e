"""Evaluation: ``model_report`` scores every model on the test split beside its baselines,
logs the scores and plots to each model's MLflow run, and decides champion / challenger.

The work is in ``quant.report`` (scores, bootstrap and Diebold–Mariano tests, plots) and
``quant.promotion`` (the rule); this module aligns predictions with labels and talks to MLflow.
"""

import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.metadata import column_schema, frame_version, md
from assets.training import load_training_set
from quant.dataset import TrainingSet
from quant.evaluation import plots
from quant.models import MODEL_FAMILIES
from quant.models.direction import PROBA_COLUMNS as DIRECTION_COLUMNS
from quant.models.regime import PROBA_COLUMNS as REGIME_COLUMNS
from quant.models.volatility import OUTPUT as VOL_COLUMN
from quant.models.volatility import har_baseline
from quant.monitoring.health import family_scores
from quant.promotion import PRIMARY_METRIC, PromotionDecision, decide_promotion
from quant.report import Evaluation, evaluate_direction, evaluate_regime, evaluate_volatility
from quant.splits import TEST, TRAIN
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking
from resources.modeling import ModelingConfig

KEYS = ["symbol", "date"]
OUTPUTS = {"direction": DIRECTION_COLUMNS, "volatility": [VOL_COLUMN], "regime": REGIME_COLUMNS}
VOLATILITY_PLOT_SYMBOL = "^GSPC"


def aligned(test: pl.DataFrame, predictions: pl.DataFrame, family: str) -> pl.DataFrame:
    """Test rows joined with a model's outputs, keeping rows where the model has a prediction."""
    columns = OUTPUTS[family]
    return test.join(predictions.select(*KEYS, *columns), on=KEYS, how="inner").drop_nulls(columns)


def primary_score(family: str, test: pl.DataFrame, outputs: pl.DataFrame) -> float:
    """The family's promotion metric for ``outputs`` on ``test`` rows (no bootstrap)."""
    rows = aligned(test, outputs, family)
    return family_scores(family, rows).get(PRIMARY_METRIC[family][0], float("nan"))


@dataclass
class ModelOutcome:
    name: str
    family: str
    version: str
    run_id: str
    evaluation: Evaluation
    decision: PromotionDecision | None = None


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


def _promote(
    outcome: ModelOutcome,
    tracking: MlflowTracking,
    training: TrainingSet,
    test: pl.DataFrame,
    predictions: pl.DataFrame,
) -> PromotionDecision:
    """Champion/challenger on the same test rows: re-score the champion now, then decide."""
    name, family = outcome.name, outcome.family
    champion = tracking.version_by_alias(name, CHAMPION)
    challenger_score = primary_score(family, test, predictions)
    if champion is not None and str(champion.version) == outcome.version:
        metric, _ = PRIMARY_METRIC[family]
        return PromotionDecision(
            True, "already champion", metric, challenger_score, challenger_score
        )
    champion_score = None
    if champion is not None:
        model = tracking.load(name, CHAMPION)
        champion_outputs = model.predict_frame(training.frame)
        # score both on the rows both can predict
        common = aligned(test, champion_outputs, family).select(KEYS)
        shared = test.join(common, on=KEYS, how="semi")
        champion_score = primary_score(family, shared, champion_outputs)
        challenger_score = primary_score(family, shared, predictions)
    decision = decide_promotion(family, challenger_score, champion_score)
    if decision.promote:
        tracking.set_alias(name, CHAMPION, outcome.version)
        tracking.delete_alias(name, CHALLENGER)
    else:
        tracking.set_alias(name, CHALLENGER, outcome.version)
    client = tracking.client()
    client.set_model_version_tag(name, outcome.version, "promotion", decision.reason)
    return decision


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


def long_table(outcomes: list[ModelOutcome]) -> pl.DataFrame:
    """model | family | version | source (the model or a baseline) | metric | value."""
    records = []
    for o in outcomes:
        sources = {o.name: o.evaluation.metrics, **o.evaluation.baselines}
        for source, scores in sources.items():
            for metric, value in scores.items():
                records.append(
                    {
                        "model": o.name,
                        "family": o.family,
                        "version": o.version,
                        "source": source,
                        "metric": metric,
                        "value": float(value),
                    }
                )
    schema = {
        "model": pl.String,
        "family": pl.String,
        "version": pl.String,
        "source": pl.String,
        "metric": pl.String,
        "value": pl.Float64,
    }
    return pl.DataFrame(records, schema=schema)


MODEL_INPUTS = list(MODEL_FAMILIES)
MIN_TEST_ROWS = 250


@dg.asset(
    ins={"training_set": dg.AssetIn("training_set"), **{n: dg.AssetIn(n) for n in MODEL_INPUTS}},
    io_manager_key="lake_io_manager",
    group_name="evaluation",
    kinds={"mlflow", "polars"},
    metadata={
        "dagster/column_schema": column_schema(
            {
                "model": ("string", "registered model"),
                "family": ("string", "direction, volatility or regime"),
                "version": ("string", "model version scored"),
                "source": ("string", "the model itself or a baseline"),
                "metric": ("string", "test-split metric"),
                "value": ("float64", "its value"),
            }
        )
    },
    owners=["team:quant-research"],
    tags={"layer": "evaluation"},
    code_version="1",
    description="Out-of-sample report on the test split: every model beside its baselines "
    "(majority class and previous-day sign; naive trailing vol and HAR; regime persistence) with "
    "block-bootstrap confidence intervals, paired tests and Diebold–Mariano; plots; and the "
    "champion/challenger decision per registered model on the same test window.",
)
def model_report(
    context: dg.AssetExecutionContext,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
    **predictions: pl.DataFrame,
) -> pl.DataFrame:
    training = load_training_set(training_set)
    test = training.rows(TEST)
    if test.height < MIN_TEST_ROWS:
        # replaying history before the test window has labels: nothing honest to score yet
        context.add_output_metadata(
            {
                "status": f"test split has {test.height} labeled rows (< {MIN_TEST_ROWS}): "
                "no evaluation, no promotion; champions unchanged",
                "test_rows": test.height,
                "dagster/row_count": 0,
            }
        )
        return long_table([])
    har = har_baseline(training)
    outcomes = []
    metadata: dict[str, object] = {"data_version": frame_version(training.frame)}
    for name in MODEL_INPUTS:
        frame = predictions[name]
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
        outcome.decision = _promote(outcome, mlflow_tracking, training, test, frame)
        outcomes.append(outcome)
        metadata[f"{name}__metrics"] = md(evaluation.table())
        if evaluation.comparisons:
            metadata[f"{name}__comparisons"] = md(_comparison_table(evaluation), 3)
        if evaluation.tests:
            metadata[f"{name}__tests"] = dg.MetadataValue.json(evaluation.tests)
        metadata[f"{name}__plots"] = dg.MetadataValue.md(
            "\n\n".join(plots.markdown_image(png, p) for p, png in evaluation.plots.items())
        )
    promotion = pl.DataFrame(
        [
            {
                "model": o.name,
                "version": o.version,
                "metric": o.decision.metric,
                "challenger": o.decision.challenger,
                "champion": o.decision.champion,
                "promoted": o.decision.promote,
                "reason": o.decision.reason,
            }
            for o in outcomes
        ]
    )
    table = long_table(outcomes)
    headline = table.filter(
        pl.col("metric").is_in(["log_loss", "balanced_accuracy", "qlike", "accuracy", "rank_ic"])
    ).pivot(on="source", index=["model", "metric"], values="value")
    context.add_output_metadata(
        {
            "dagster/row_count": table.height,
            "test_rows": test.height,
            "test_window": f"{test['date'].min()} .. {test['date'].max()}",
            "headline": md(headline),
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
