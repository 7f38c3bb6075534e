"""Evaluation: ``backtest``, the signals' cost-aware long/short (or long-only) strategy against
buy-and-hold of the S&P 500 and an equal-weight portfolio of the same names, judged on three
stretches of out-of-sample days:

- the walk-forward record (the headline): the signals the served combiner would have made each
  day from the walk-forward predictions, every one by a refit that saw only earlier labels;
  per year and overall, traded at the signal's own close (lag 0) and one session later (lag 1),
  with the deflated Sharpe ratio of the headline strategy against every variant the project
  could have picked on the record plus the Optuna trials behind the models
  (quant/backtest_trials.py);
- the latest models' window (rolling mode: the validation window, by the selection models;
  fixed mode: the test split);
- live: the positions actually served (the served log), each with the realized next-session
  return of the validated, adjusted bars in the ``ohlcv`` lake.

Every Sharpe is in excess of the cash rate (config ``cash_rate``; unset: ``MARKET_CASH_RATE``,
default 0), every information ratio is against the equal-weight book. The strategy trades the
universe's equities (an index such as ^VIX is not investable).
"""

import math

import dagster as dg
import numpy as np
import polars as pl

from assets.evaluation import evaluation_split
from assets.metadata import column_schema, md
from assets.partitions import UNIVERSE
from assets.serving import SignalConfig
from assets.training import training_from_lake
from quant.backtest import (
    EXECUTION_LAGS,
    Costs,
    lagged_returns,
    live_signals,
    next_session_returns,
    performance_table,
    served_positions,
    strategy_returns,
    with_benchmarks,
    with_lag,
)
from quant.backtest_trials import Deflation, deflate, headline_variant, variant_sharpes
from quant.evaluation import plots
from quant.signals import combine, soft_vote
from quant.universe import AssetClass
from quant.walk_forward_report import record_signals
from resources import settings
from resources.lake import ParquetLake
from resources.mlflow_tracking import MlflowTracking
from resources.modeling import ModelingConfig
from resources.optuna_storage import OptunaStorage
from resources.served_log import ServedLog

BENCHMARK = "^GSPC"
RECORD = "walk_forward"
LIVE = "live"
VARIANTS_SHOWN = 10


class BacktestConfig(SignalConfig):
    cost_bps: float = 5.0
    slippage_bps: float = 2.0
    # 0: the position decided at close t earns close t -> t+1; 1: it is traded a session late
    # and earns close t+1 -> t+2. The walk-forward table always shows both.
    execution_lag_sessions: int = 0
    # annual cash rate as a decimal (0.04 = 4 %); None: MARKET_CASH_RATE (default 0.0)
    cash_rate: float | None = None

    def lag(self) -> int:
        if self.execution_lag_sessions not in EXECUTION_LAGS:
            raise dg.Failure(
                description=f"backtest: execution_lag_sessions must be one of {EXECUTION_LAGS}, "
                f"got {self.execution_lag_sessions}"
            )
        return self.execution_lag_sessions

    def annual_cash_rate(self) -> float:
        rate = settings.cash_rate() if self.cash_rate is None else float(self.cash_rate)
        if not (math.isfinite(rate) and abs(rate) < 1.0):
            raise dg.Failure(
                description=f"backtest: cash_rate is an annual decimal (0.04 for 4 %), got {rate}"
            )
        return rate


def cash_note(rate: float) -> str:
    """The cash rate the Sharpe ratios are in excess of, in words."""
    if rate == 0.0:
        return "0 %, i.e. Sharpe of raw returns"
    return f"{rate * 100:.2f} % a year: every Sharpe is of returns in excess of it"


def _equities() -> list[str]:
    return [i.symbol for i in UNIVERSE.instruments if i.asset_class is AssetClass.EQUITY]


def _run_strategy(
    signals: pl.DataFrame, returns: pl.DataFrame, costs: Costs, window: str, lag: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """(daily returns beside the benchmarks tagged with ``window`` and ``lag``, the equities
    traded). ``signals`` carry the returns their positions earn at ``lag``; the benchmarks are
    taken over the same sessions (``returns`` lagged alike)."""
    traded = signals.filter(pl.col("symbol").is_in(_equities()))
    daily = with_benchmarks(
        strategy_returns(traded, costs), lagged_returns(returns, lag), traded, BENCHMARK
    )
    return daily.with_columns(
        pl.lit(window).alias("window"), pl.lit(lag, pl.Int64).alias("lag")
    ), traded


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


def _overall(table: pl.DataFrame) -> dict[str, dict]:
    return {
        r["portfolio"]: r for r in table.filter(pl.col("period") == "all").iter_rows(named=True)
    }


def _verdict(table: pl.DataFrame, what: str, deflation: Deflation | None = None) -> str:
    """One line: net return against the S&P 500 and equal weight, IR, and the DSR."""
    overall = _overall(table)
    net, spx, equal = (overall[k] for k in ("strategy_net", "sp500_buy_and_hold", "equal_weight"))
    line = (
        f"{what}: strategy {net['total_return']:+.1%} net (Sharpe {net['sharpe']:.2f}) against "
        f"{spx['total_return']:+.1%} for the S&P 500 (Sharpe {spx['sharpe']:.2f}) and "
        f"{equal['total_return']:+.1%} for equal weight; IR vs equal weight "
        f"{net['ir_vs_equal_weight']:.2f}"
    )
    if deflation is not None:
        dsr = f"{deflation.dsr:.2f}" if math.isfinite(deflation.dsr) else "undefined"
        line += f"; DSR {dsr} over {deflation.n_trials} trials"
    return line


def _rounded(table: pl.DataFrame, decimals: int = 4) -> pl.DataFrame:
    """A table for the asset page: floats rounded, day counts whole."""
    return table.with_columns(
        pl.col(pl.Float64).exclude("days").round(decimals),
        *([pl.col("days").cast(pl.Int64)] if "days" in table.columns else []),
    )


def _span(daily: pl.DataFrame) -> str:
    return f"{daily['date'].min()} .. {daily['date'].max()}"


def _finite(values: dict[str, object]) -> dict[str, object]:
    """JSON-safe: NaN and infinities become null."""
    return {
        k: (None if isinstance(v, float) and not math.isfinite(v) else v) for k, v in values.items()
    }


def _optuna_trials(storage: OptunaStorage) -> tuple[int | None, str]:
    """(completed Optuna trials across all studies, or None when unreadable; how counted)."""
    try:
        studies = storage.completed_trials()
    except Exception as error:  # an unreachable store must not fail the backtest: say so
        first = str(error).splitlines()[0] if str(error) else type(error).__name__
        return None, f"Optuna storage unreadable ({first}): the variants alone are counted"
    total = sum(studies.values())
    return total, f"{total} completed Optuna trials in {len(studies)} studies"


def _walk_forward(
    walk_forward: pl.DataFrame,
    config: BacktestConfig,
    costs: Costs,
    cash: float,
    optuna_storage: OptunaStorage,
) -> dict[str, object] | None:
    """The record's strategy at both lags, its table, and its deflated Sharpe; None without a
    record carrying every family's predictions and the returns."""
    rule, lag = config.rule(), config.lag()
    past = record_signals(walk_forward, rule) if "fwd_return_1" in walk_forward.columns else None
    if past is None or past.filter(pl.col("symbol").is_in(_equities())).is_empty():
        return None
    record_returns = walk_forward.select("symbol", "date", "fwd_return_1").unique(
        ["symbol", "date"]
    )
    daily, tables, traded = {}, [], {}
    for each in EXECUTION_LAGS:
        daily[each], traded[each] = _run_strategy(
            with_lag(past, record_returns, each), record_returns, costs, RECORD, each
        )
        table = performance_table(daily[each], by_year=True, cash_rate=cash)
        tables.append(table.select(pl.lit(each, pl.Int64).alias("lag"), pl.all()))
    table = pl.concat(tables)
    headline = table.filter(pl.col("lag") == lag).drop("lag")
    chosen = headline_variant(walk_forward, rule, lag)
    trials = variant_sharpes(walk_forward, rule, _equities(), costs, cash, chosen)
    optuna, optuna_note = _optuna_trials(optuna_storage)
    deflation = deflate(daily[lag]["net"].to_numpy(), trials, optuna, cash)
    return {
        "daily": daily,
        "table": table,
        "headline": headline,
        "traded": traded[lag],
        "direction_models": past["direction_models"][0],
        "trials": trials,
        "deflation": deflation,
        "optuna_note": optuna_note,
    }


def _live(
    served_log: ServedLog, lake: ParquetLake, costs: Costs, lag: int
) -> tuple[pl.DataFrame | None, pl.DataFrame | None, str]:
    """(the live daily returns or None, the served equities traded or None, a status line):
    the served positions with their realized next-session returns from the ``ohlcv`` lake."""
    served = served_log.read("signals")
    positions = served_positions(served)
    if positions.is_empty():
        return None, None, "nothing served yet: no live outcome to judge"
    equities = set(_equities())
    symbols = sorted({*(s for s in positions["symbol"].to_list() if s in equities), BENCHMARK})
    frames = [lake.read_if_readable("ohlcv", s) for s in symbols]
    bars = [f.select("symbol", "date", "close") for f in frames if f is not None]
    if not bars:
        return None, None, f"{positions.height} served positions, no ohlcv bars to judge them by"
    bars_frame = pl.concat(bars, how="vertical_relaxed")
    live = live_signals(served, bars_frame, lag)
    if live.filter(pl.col("symbol").is_in(_equities())).is_empty():
        return (
            None,
            None,
            f"nothing served has an outcome yet: {positions.height} served positions "
            f"({_span(positions)}), none of an equity with its next session in the ohlcv lake",
        )
    daily, traded = _run_strategy(live, next_session_returns(bars_frame), costs, LIVE, lag)
    return daily, traded, f"{traded.height} served equity positions with an outcome"


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
                "sp500": ("float64", "S&P 500 return over the same session"),
                "equal_weight": ("float64", "equal-weight return of the same names"),
                "window": (
                    "string",
                    "walk_forward (the record), the latest models' window, or live (served)",
                ),
                "lag": ("int64", "execution lag in sessions: 0 trades at the signal's close"),
            }
        )
    },
    owners=["team:trading"],
    tags={"layer": "evaluation"},
    code_version="3",
    description="Daily-rebalanced long/short (config: long-only) backtest of the signal rule "
    "over the walk-forward record (per year and overall, at execution lag 0 and 1), the latest "
    "models' window and the live served positions, net of costs and slippage (bps per unit "
    "traded), beside buy-and-hold of the S&P 500 and an equal-weight portfolio of the traded "
    "equities: equity curves, annualized return and volatility, Sharpe in excess of the cash "
    "rate, information ratio vs equal weight, max drawdown, turnover, hit rate, and the "
    "deflated Sharpe ratio of the record's strategy over every variant tried.",
)
def backtest(
    context: dg.AssetExecutionContext,
    config: BacktestConfig,
    modeling: ModelingConfig,
    mlflow_tracking: MlflowTracking,
    served_log: ServedLog,
    lake: ParquetLake,
    optuna_storage: OptunaStorage,
    training_set: pl.DataFrame,
    direction_xgboost: pl.DataFrame,
    direction_lstm: pl.DataFrame,
    volatility_garch: pl.DataFrame,
    regime_random_forest: pl.DataFrame,
    walk_forward: pl.DataFrame,
) -> pl.DataFrame:
    window = evaluation_split(modeling)
    costs = Costs(config.cost_bps, config.slippage_bps)
    lag, cash = config.lag(), config.annual_cash_rate()
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
    latest_signals = with_lag(latest_signals, test, lag)
    if latest_signals.filter(pl.col("symbol").is_in(_equities())).is_empty():
        raise dg.Failure(description=f"backtest: no {window} rows with signals for equities")
    latest, latest_traded = _run_strategy(latest_signals, test, costs, window, lag)
    latest_table = performance_table(latest, cash_rate=cash)
    parts, curves = [latest], {"equity_curve_latest": _curve(latest, f"{window} window")}
    metadata: dict[str, object] = {}
    record = _walk_forward(walk_forward, config, costs, cash, optuna_storage)
    if record is not None:
        deflation: Deflation = record["deflation"]
        judged = record["daily"][lag]
        table = record["headline"]
        trials: pl.DataFrame = record["trials"]
        shown = pl.concat([trials.head(VARIANTS_SHOWN), trials.filter(pl.col("chosen"))]).unique(
            "variant", keep="first", maintain_order=True
        )
        metadata.update(
            {
                "verdict": _verdict(table, f"walk-forward record {_span(judged)}", deflation),
                "deflated_sharpe": deflation.verdict(),
                "cash_rate": cash_note(cash),
                "execution_lag_sessions": lag,
                "walk_forward_window": _span(judged),
                "walk_forward_direction_models": record["direction_models"],
                "walk_forward_performance": md(_rounded(record["table"]), 4),
                "walk_forward_hit_rate_positions": _hit_rate(record["traded"]),
                "dsr": deflation.dsr,
                "dsr_sr_annual": deflation.sr_annual,
                "dsr_expected_max_sr_annual": deflation.expected_max_sr * math.sqrt(252),
                "dsr_n_trials": deflation.n_trials,
                "dsr_detail": dg.MetadataValue.json(_finite(deflation.as_dict())),
                "trial_counting": f"{deflation.n_variants} variants replayed on the record + "
                f"{record['optuna_note']} = {deflation.n_trials} trials; sr_variance "
                f"{deflation.sr_variance:.3g} over {deflation.variants_with_sharpe} defined "
                f"Sharpes. Rule: {deflation.counting}",
                "variants": md(
                    _rounded(
                        shown.select("variant", "days", "total_return", "sharpe_annual", "chosen")
                    ),
                    4,
                ),
            }
        )
        parts = [*(record["daily"][each] for each in EXECUTION_LAGS), *parts]
        curves = {
            "equity_curve_walk_forward": _curve(judged, f"walk-forward record (lag {lag})"),
            **curves,
        }
    else:
        table, trials = latest_table, None
        metadata.update(
            {
                "verdict": f"{_verdict(latest_table, f'latest window {_span(latest)}')} "
                "(no walk-forward record with direction, GARCH and forest predictions yet: no "
                "deflated Sharpe)",
                "cash_rate": cash_note(cash),
                "execution_lag_sessions": lag,
            }
        )
    live, live_traded, live_status = _live(served_log, lake, costs, lag)
    live_table = None
    if live is not None and live_traded is not None:
        live_table = performance_table(live, cash_rate=cash)
        parts.append(live)
        curves["equity_curve_live"] = _curve(live, "live (served positions)")
        metadata.update(
            {
                "live": _verdict(live_table, f"live {_span(live)}"),
                "live_status": live_status,
                "live_performance": md(_rounded(live_table), 4),
                "live_hit_rate_positions": _hit_rate(live_traded),
            }
        )
    else:
        metadata["live"] = live_status
    result = pl.concat(parts, how="vertical_relaxed")
    headline = _overall(table)
    net, spx = headline["strategy_net"], headline["sp500_buy_and_hold"]
    run_url = _log_to_mlflow(
        mlflow_tracking,
        context,
        {"": table, "latest_": latest_table, "live_": live_table},
        record,
        curves,
        config,
        cash,
    )
    context.add_output_metadata(
        {
            **metadata,
            "dagster/row_count": result.height,
            "window": window,
            "first_date": str(latest["date"].min()),
            "last_date": str(latest["date"].max()),
            "names_traded": latest_traded["symbol"].n_unique(),
            "sharpe_net": net.get("sharpe", float("nan")),
            "sharpe_sp500": spx.get("sharpe", float("nan")),
            "ir_vs_equal_weight": net.get("ir_vs_equal_weight", float("nan")),
            "hit_rate_positions": _hit_rate(latest_traded),
            "performance": md(_rounded(latest_table), 4),
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
    tables: dict[str, pl.DataFrame | None],
    record: dict[str, object] | None,
    curves: dict[str, bytes],
    config: BacktestConfig,
    cash: float,
) -> str:
    with tracking.start_run("backtest", "backtest", {"dagster_run_id": context.run_id}) as run:
        tracking.log_params({**config.model_dump(), "cash_rate_used": cash})
        for prefix, frame in tables.items():
            if frame is None:
                continue
            for row in frame.filter(pl.col("period") == "all").iter_rows(named=True):
                tracking.log_metrics(
                    {
                        f"{prefix}{row['portfolio']}_{k}": v
                        for k, v in row.items()
                        if isinstance(v, float) and np.isfinite(v)
                    }
                )
        if record is not None:
            deflation: Deflation = record["deflation"]
            tracking.log_metrics(
                {
                    f"dsr_{k}" if k != "dsr" else k: float(v)
                    for k, v in deflation.as_dict().items()
                    if isinstance(v, int | float) and math.isfinite(float(v))
                }
            )
            tracking.log_table_and_plots("variants", record["trials"], {})
        tracking.log_table_and_plots(
            "performance", record["table"] if record is not None else tables[""], curves
        )
        return tracking.run_url(run.info.experiment_id, run.info.run_id)
