"""Evaluation: ``backtest``, the signals' cost-aware long/short (or long-only) strategy against
buy-and-hold of the S&P 500 and an equal-weight portfolio of the same names, judged on two
stretches of out-of-sample days:

- the walk-forward record (the headline): the signals the served combiner would have made each
  day from the walk-forward predictions, every one by a refit that saw only earlier labels;
  per year and overall;
- the latest models' window (rolling mode: the validation window, by the selection models;
  fixed mode: the test split).

The strategy trades the universe's equities (an index such as ^VIX is not investable).
"""

import dagster as dg
import numpy as np
import polars as pl

from assets.evaluation import evaluation_split
from assets.metadata import column_schema, md
from assets.partitions import UNIVERSE
from assets.serving import SignalConfig
from assets.training import training_from_lake
from quant.backtest import Costs, performance_table, strategy_returns, with_benchmarks
from quant.evaluation import plots
from quant.signals import combine, soft_vote
from quant.universe import AssetClass
from quant.walk_forward_report import record_signals
from resources.mlflow_tracking import MlflowTracking
from resources.modeling import ModelingConfig

BENCHMARK = "^GSPC"
RECORD = "walk_forward"


class BacktestConfig(SignalConfig):
    cost_bps: float = 5.0
    slippage_bps: float = 2.0


def _equities() -> list[str]:
    return [i.symbol for i in UNIVERSE.instruments if i.asset_class is AssetClass.EQUITY]


def _run_strategy(
    signals: pl.DataFrame, returns: pl.DataFrame, costs: Costs, window: str
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(daily returns beside the benchmarks tagged with ``window``, the equities traded)."""
    traded = signals.filter(pl.col("symbol").is_in(_equities()))
    daily = with_benchmarks(strategy_returns(traded, costs), returns, traded, BENCHMARK)
    return daily.with_columns(pl.lit(window).alias("window")), traded


def _curve(daily: pl.DataFrame, title: str) -> bytes:
    dates = np.array(daily["date"].to_list(), dtype="datetime64[D]")
    return plots.line_png(
        dates,
        {
            "strategy (net)": np.cumprod(1 + daily["net"].to_numpy()),
            "strategy (gross)": np.cumprod(1 + daily["gross"].to_numpy()),
            "S&P 500": np.cumprod(1 + daily["sp500"].to_numpy()),
            "equal weight": np.cumprod(1 + daily["equal_weight"].to_numpy()),
        },
        title,
        "growth of 1",
    )


def _hit_rate(traded: pl.DataFrame) -> float:
    value = (
        traded.filter(pl.col("position") != 0)
        .select(((pl.col("position") * pl.col("fwd_return_1")) > 0).mean())
        .item()
    )
    return float("nan") if value is None else float(value)


def _verdict(table: pl.DataFrame) -> str:
    overall = {
        r["portfolio"]: r for r in table.filter(pl.col("period") == "all").iter_rows(named=True)
    }
    net, spx = overall["strategy_net"], overall["sp500_buy_and_hold"]
    return (
        f"strategy {net['total_return']:+.1%} net (Sharpe {net['sharpe']:.2f}) against "
        f"{spx['total_return']:+.1%} for the S&P 500 (Sharpe {spx['sharpe']:.2f})"
    )


@dg.asset(
    ins={
        "training_set": dg.AssetIn("training_set"),
        "direction_xgboost": dg.AssetIn("direction_xgboost"),
        "direction_lstm": dg.AssetIn("direction_lstm"),
        "volatility_garch": dg.AssetIn("volatility_garch"),
        "regime_random_forest": dg.AssetIn("regime_random_forest"),
        "walk_forward": dg.AssetIn("walk_forward"),
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
                "window": ("string", "walk_forward (the record) or the latest models' window"),
            }
        )
    },
    owners=["team:trading"],
    tags={"layer": "evaluation"},
    code_version="2",
    description="Daily-rebalanced long/short (config: long-only) backtest of the signal rule "
    "over the walk-forward record (per year and overall) and the latest models' window, net of "
    "costs and slippage (bps per unit traded), beside buy-and-hold "
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
    walk_forward: pl.DataFrame,
) -> pl.DataFrame:
    window = evaluation_split(modeling)
    costs = Costs(config.cost_bps, config.slippage_bps)
    test = (
        training_from_lake(training_set, modeling)
        .rows(window)
        .select("symbol", "date", "fwd_return_1")
    )
    frames = [direction_xgboost, direction_lstm, volatility_garch, regime_random_forest]
    xgb, lstm, garch, forest = (f.filter(pl.col("split") == window) for f in frames)
    latest_signals = combine(soft_vote([xgb, lstm]), garch, forest, config.rule()).join(
        test, on=["symbol", "date"]
    )
    if latest_signals.filter(pl.col("symbol").is_in(_equities())).is_empty():
        raise dg.Failure(description=f"backtest: no {window} rows with signals for equities")
    latest, latest_traded = _run_strategy(latest_signals, test, costs, window)
    latest_table = performance_table(latest)
    metadata: dict[str, object] = {}
    parts, curves = [latest], {"equity_curve_latest": _curve(latest, f"{window} window")}
    past = (
        record_signals(walk_forward, config.rule())
        if "fwd_return_1" in walk_forward.columns
        else None
    )
    if past is not None and not past.filter(pl.col("symbol").is_in(_equities())).is_empty():
        record_returns = walk_forward.select("symbol", "date", "fwd_return_1").unique(
            ["symbol", "date"]
        )
        judged, traded = _run_strategy(past, record_returns, costs, RECORD)
        table = performance_table(judged, by_year=True)
        curves = {"equity_curve_walk_forward": _curve(judged, "walk-forward record"), **curves}
        parts.insert(0, judged)
        metadata.update(
            {
                "verdict": _verdict(table),
                "walk_forward_window": f"{judged['date'].min()} .. {judged['date'].max()}",
                "walk_forward_direction_models": past["direction_models"][0],
                "walk_forward_performance": md(table, 3),
                "walk_forward_hit_rate_positions": _hit_rate(traded),
            }
        )
    else:
        table = latest_table
        metadata["verdict"] = (
            f"{_verdict(latest_table)} on the latest window only (no walk-forward record with "
            "direction, GARCH and forest predictions yet)"
        )
    result = pl.concat(parts)
    headline = table.filter(pl.col("period") == "all")
    net = headline.filter(pl.col("portfolio") == "strategy_net").row(0, named=True)
    spx = headline.filter(pl.col("portfolio") == "sp500_buy_and_hold").row(0, named=True)
    run_url = _log_to_mlflow(mlflow_tracking, context, table, latest_table, curves, config)
    context.add_output_metadata(
        {
            "dagster/row_count": result.height,
            **metadata,
            "window": window,
            "first_date": str(latest["date"].min()),
            "last_date": str(latest["date"].max()),
            "names_traded": latest_traded["symbol"].n_unique(),
            "sharpe_net": net.get("sharpe", float("nan")),
            "sharpe_sp500": spx.get("sharpe", float("nan")),
            "hit_rate_positions": _hit_rate(latest_traded),
            "performance": md(latest_table, 3),
            "equity_curve": dg.MetadataValue.md(
                "\n\n".join(plots.markdown_image(png, name) for name, png in curves.items())
            ),
            "signal_mix": dg.MetadataValue.json(
                {s: int(n) for s, n in latest_traded.group_by("signal").len().iter_rows()}
            ),
            "mlflow_run": dg.MetadataValue.url(run_url),
            "costs_bps": config.cost_bps + config.slippage_bps,
        }
    )
    return result


def _log_to_mlflow(
    tracking: MlflowTracking,
    context: dg.AssetExecutionContext,
    table: pl.DataFrame,
    latest: pl.DataFrame,
    curves: dict[str, bytes],
    config: BacktestConfig,
) -> str:
    import mlflow

    with tracking.start_run("backtest", "backtest", {"dagster_run_id": context.run_id}) as run:
        mlflow.log_params(config.model_dump())
        for prefix, frame in (("", table.filter(pl.col("period") == "all")), ("latest_", latest)):
            for row in frame.iter_rows(named=True):
                mlflow.log_metrics(
                    {
                        f"{prefix}{row['portfolio']}_{k}": v
                        for k, v in row.items()
                        if isinstance(v, float) and np.isfinite(v)
                    }
                )
        tracking.log_table_and_plots("performance", table, curves)
        return tracking.run_url(run.info.experiment_id, run.info.run_id)
