"""Evaluation: ``backtest``, the signals' cost-aware long/short (or long-only) strategy over the
report's out-of-sample window (rolling mode: the validation window, by the selection models;
fixed mode: the test split), against buy-and-hold of the S&P 500 and an equal-weight portfolio
of the same names.

Signals are rebuilt for every session of that window from the latest trained models'
out-of-sample predictions with the same combiner as ``signals``; the strategy trades the
universe's equities (an index such as ^VIX is not investable).
"""

import tempfile
from pathlib import Path

import dagster as dg
import numpy as np
import polars as pl

from assets.evaluation import evaluation_split
from assets.metadata import column_schema, md
from assets.partitions import UNIVERSE
from assets.serving import SignalConfig
from assets.training import training_from_lake
from quant.backtest import Costs, benchmark_returns, performance, strategy_returns
from quant.evaluation import plots
from quant.signals import combine, soft_vote
from quant.universe import AssetClass
from resources.mlflow_tracking import MlflowTracking
from resources.modeling import ModelingConfig

BENCHMARK = "^GSPC"


class BacktestConfig(SignalConfig):
    cost_bps: float = 5.0
    slippage_bps: float = 2.0


@dg.asset(
    ins={
        "training_set": dg.AssetIn("training_set"),
        "direction_xgboost": dg.AssetIn("direction_xgboost"),
        "direction_lstm": dg.AssetIn("direction_lstm"),
        "volatility_garch": dg.AssetIn("volatility_garch"),
        "regime_random_forest": dg.AssetIn("regime_random_forest"),
    },
    io_manager_key="lake_io_manager",
    group_name="evaluation",
    kinds={"polars", "mlflow"},
    metadata={
        "dagster/column_schema": column_schema(
            {
                "date": ("date", "session (positions set at its close)"),
                "gross": ("float64", "strategy return before costs"),
                "net": ("float64", "strategy return after costs and slippage"),
                "turnover": ("float64", "mean |position change| per name"),
                "names": ("int64", "names traded that day"),
                "hit": ("float64", "share of open positions that made money"),
                "sp500": ("float64", "S&P 500 next-day return"),
                "equal_weight": ("float64", "equal-weight next-day return of the same names"),
            }
        )
    },
    owners=["team:trading"],
    tags={"layer": "evaluation"},
    code_version="1",
    description="Daily-rebalanced long/short (config: long-only) backtest of the signal rule "
    "over the report's out-of-sample window, net of costs and slippage (bps per unit traded), beside buy-and-hold "
    "of the S&P 500 and an equal-weight portfolio of the traded equities: equity curves, "
    "annualized return and volatility, Sharpe, max drawdown, turnover, hit rate.",
)
def backtest(
    context: dg.AssetExecutionContext,
    config: BacktestConfig,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    training_set: pl.DataFrame,
    direction_xgboost: pl.DataFrame,
    direction_lstm: pl.DataFrame,
    volatility_garch: pl.DataFrame,
    regime_random_forest: pl.DataFrame,
) -> pl.DataFrame:
    window = evaluation_split(modeling)
    test = (
        training_from_lake(training_set, modeling)
        .rows(window)
        .select("symbol", "date", "fwd_return_1")
    )
    equities = [i.symbol for i in UNIVERSE.instruments if i.asset_class is AssetClass.EQUITY]
    frames = [direction_xgboost, direction_lstm, volatility_garch, regime_random_forest]
    xgb, lstm, garch, forest = (f.filter(pl.col("split") == window) for f in frames)
    direction = soft_vote([xgb, lstm])
    history = combine(direction, garch, forest, config.rule())
    traded = history.join(test, on=["symbol", "date"]).filter(pl.col("symbol").is_in(equities))
    if traded.is_empty():
        raise dg.Failure(description=f"backtest: no {window} rows with signals for equities")
    costs = Costs(config.cost_bps, config.slippage_bps)
    daily = strategy_returns(traded, costs)
    dates = daily.select("date")
    spx = dates.join(benchmark_returns(test, [BENCHMARK]), on="date", how="left")["return"]
    equal = dates.join(benchmark_returns(traded), on="date", how="left")["return"]
    result = daily.with_columns(
        spx.fill_null(0.0).alias("sp500"), equal.fill_null(0.0).alias("equal_weight")
    )
    table = {
        "strategy_net": performance(result["net"].to_numpy(), result["turnover"].to_numpy()),
        "strategy_gross": performance(result["gross"].to_numpy()),
        "sp500_buy_and_hold": performance(result["sp500"].to_numpy()),
        "equal_weight": performance(result["equal_weight"].to_numpy()),
    }
    metrics = pl.DataFrame(
        [{"portfolio": name, **values} for name, values in table.items()],
        infer_schema_length=None,
    )
    hit = float(
        traded.filter(pl.col("position") != 0)
        .select(((pl.col("position") * pl.col("fwd_return_1")) > 0).mean())
        .item()
        or float("nan")
    )
    curve = plots.line_png(
        np.arange(result.height),
        {
            "strategy (net)": np.cumprod(1 + result["net"].to_numpy()),
            "strategy (gross)": np.cumprod(1 + result["gross"].to_numpy()),
            "S&P 500": np.cumprod(1 + result["sp500"].to_numpy()),
            "equal weight": np.cumprod(1 + result["equal_weight"].to_numpy()),
        },
        f"{window} window {result['date'].min()} .. {result['date'].max()}",
        "growth of 1",
    )
    run_url = _log_to_mlflow(mlflow_tracking, context, table, hit, curve, config)
    context.add_output_metadata(
        {
            "dagster/row_count": result.height,
            "window": window,
            "first_date": str(result["date"].min()),
            "last_date": str(result["date"].max()),
            "names_traded": traded["symbol"].n_unique(),
            "sharpe_net": table["strategy_net"].get("sharpe", float("nan")),
            "sharpe_sp500": table["sp500_buy_and_hold"].get("sharpe", float("nan")),
            "hit_rate_positions": hit,
            "performance": md(metrics, 3),
            "equity_curve": dg.MetadataValue.md(plots.markdown_image(curve, "equity curves")),
            "signal_mix": dg.MetadataValue.json(
                {s: int(n) for s, n in traded.group_by("signal").len().iter_rows()}
            ),
            "mlflow_run": dg.MetadataValue.url(run_url),
            "costs_bps": config.cost_bps + config.slippage_bps,
        }
    )
    return result


def _log_to_mlflow(
    tracking: MlflowTracking,
    context: dg.AssetExecutionContext,
    table: dict[str, dict[str, float]],
    hit: float,
    curve: bytes,
    config: BacktestConfig,
) -> str:
    import mlflow

    with tracking.start_run("backtest", "backtest", {"dagster_run_id": context.run_id}) as run:
        mlflow.log_params(config.model_dump())
        for portfolio, values in table.items():
            mlflow.log_metrics({f"{portfolio}_{k}": v for k, v in values.items() if np.isfinite(v)})
        if np.isfinite(hit):
            mlflow.log_metric("hit_rate_positions", hit)
        with tempfile.TemporaryDirectory() as tmp:
            path = Path(tmp) / "equity_curve.png"
            path.write_bytes(curve)
            mlflow.log_artifact(str(path), artifact_path="plots")
        return tracking.run_url(run.info.experiment_id, run.info.run_id)
