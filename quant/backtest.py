"""A cost-aware, daily-rebalanced backtest of position signals (vectorized polars).

The position decided at the close of day t (from data up to t) earns the return from that close
to the next one; changing a position costs ``cost_bps + slippage_bps`` per unit traded. The
portfolio holds each traded symbol with equal capital (the mean of the names' daily returns),
so returns are comparable with an equal-weight buy-and-hold of the same names.

Also here: the optional one-session execution lag (:func:`with_lag`: the position decided at
close t earns close t+1 -> t+2), Sharpe ratios in excess of a cash rate and the information
ratio against the equal-weight book (:func:`performance_table`), and the live section's
returns from the served log (:func:`live_signals`: each served position times the realized
next-session return of the adjusted bars).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from quant.evaluation.scoreboard import excess_sharpe, information_ratio

TRADING_DAYS = 252
KEYS = ["symbol", "date"]
EXECUTION_LAGS = (0, 1)  # sessions between the signal's close and the close it is traded at


@dataclass(frozen=True)
class Costs:
    cost_bps: float = 5.0
    slippage_bps: float = 2.0

    @property
    def per_unit(self) -> float:
        return (self.cost_bps + self.slippage_bps) / 10_000


def strategy_returns(frame: pl.DataFrame, costs: Costs) -> pl.DataFrame:
    """Daily portfolio returns of ``frame`` (symbol, date, position, fwd_return_1).

    Per name: gross = position_t × fwd_return_1_t, turnover = |position_t − position_{t−1}|
    (the first day trades in from flat), net = gross − turnover × cost. Per date: the mean over
    the names present. Output: date, gross, net, turnover, names, hit (share of names whose
    non-zero position made money).
    """
    per_name = (
        frame.sort("symbol", "date")
        .with_columns(
            (pl.col("position") - pl.col("position").shift(1).over("symbol").fill_null(0.0))
            .abs()
            .alias("turnover"),
            (pl.col("position") * pl.col("fwd_return_1")).alias("gross"),
        )
        .with_columns((pl.col("gross") - pl.col("turnover") * costs.per_unit).alias("net"))
    )
    active = pl.col("position") != 0
    return (
        per_name.group_by("date")
        .agg(
            pl.col("gross").mean(),
            pl.col("net").mean(),
            pl.col("turnover").mean(),
            pl.len().alias("names"),
            (pl.col("gross").filter(active) > 0).mean().alias("hit"),
        )
        .sort("date")
    )


def performance(
    returns: np.ndarray, turnover: np.ndarray | None = None, cash_rate: float = 0.0
) -> dict[str, float]:
    """Annualized return and volatility, Sharpe in excess of ``cash_rate`` (annual, decimal; 0:
    the Sharpe of the raw returns), max drawdown, hit rate of days, mean daily turnover, total
    return. Returns and volatility are of the raw returns."""
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)]
    if r.size == 0:
        return {}
    equity = np.cumprod(1.0 + r)
    peak = np.maximum.accumulate(equity)
    ann_return = equity[-1] ** (TRADING_DAYS / r.size) - 1.0
    ann_vol = float(np.std(r, ddof=1) * math.sqrt(TRADING_DAYS)) if r.size > 1 else float("nan")
    out = {
        "total_return": float(equity[-1] - 1.0),
        "annual_return": float(ann_return),
        "annual_volatility": ann_vol,
        "sharpe": excess_sharpe(r, cash_rate, TRADING_DAYS),
        "max_drawdown": float(np.min(equity / peak - 1.0)),
        "hit_rate_days": float(np.mean(r > 0)),
        "days": float(r.size),
    }
    if turnover is not None:
        out["mean_daily_turnover"] = float(np.nanmean(turnover))
    return out


def benchmark_returns(frame: pl.DataFrame, symbols: list[str] | None = None) -> pl.DataFrame:
    """Buy-and-hold daily returns: the mean next-day return of ``symbols`` (all by default) per
    date: date, return."""
    chosen = frame if symbols is None else frame.filter(pl.col("symbol").is_in(symbols))
    return chosen.group_by("date").agg(pl.col("fwd_return_1").mean().alias("return")).sort("date")


PORTFOLIOS = {
    "strategy_net": "net",
    "strategy_gross": "gross",
    "sp500_buy_and_hold": "sp500",
    "equal_weight": "equal_weight",
}


def with_benchmarks(
    daily: pl.DataFrame, returns: pl.DataFrame, traded: pl.DataFrame, benchmark: str
) -> pl.DataFrame:
    """The strategy's daily returns beside buy-and-hold of ``benchmark`` (from ``returns``:
    symbol, date, fwd_return_1) and an equal-weight portfolio of the names in ``traded``, on
    the strategy's dates (a missing benchmark day counts as flat)."""
    dates = daily.select("date")
    spx = dates.join(benchmark_returns(returns, [benchmark]), on="date", how="left")["return"]
    equal = dates.join(benchmark_returns(traded), on="date", how="left")["return"]
    return daily.with_columns(
        spx.fill_null(0.0).alias("sp500"), equal.fill_null(0.0).alias("equal_weight")
    )


def performance_table(
    daily: pl.DataFrame, by_year: bool = False, cash_rate: float = 0.0
) -> pl.DataFrame:
    """portfolio | period ("all", or each calendar year) | the ``performance`` figures of the
    strategy (net and gross) and its benchmarks over ``daily`` (``with_benchmarks``' output),
    Sharpe in excess of ``cash_rate`` (annual, decimal), and ``ir_vs_equal_weight``: the
    annualized information ratio of the portfolio's daily returns against the equal-weight
    book's (NaN for the equal-weight row itself)."""
    periods = [("all", daily)]
    if by_year:
        periods += [
            (str(year), part)
            for (year,), part in daily.group_by(pl.col("date").dt.year(), maintain_order=True)
        ]
    rows = []
    for period, part in sorted(periods, key=lambda p: (p[0] == "all", p[0])):
        for portfolio, column in PORTFOLIOS.items():
            turnover = part["turnover"].to_numpy() if portfolio == "strategy_net" else None
            values = part[column].to_numpy()
            ir = (
                information_ratio(values, part["equal_weight"].to_numpy(), TRADING_DAYS)
                if column != "equal_weight"
                else float("nan")
            )
            rows.append(
                {
                    "portfolio": portfolio,
                    "period": period,
                    **performance(values, turnover, cash_rate),
                    "ir_vs_equal_weight": ir,
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None)


# --------------------------------------------------------------------------- execution lag


def lagged_returns(returns: pl.DataFrame, lag: int) -> pl.DataFrame:
    """symbol, date, fwd_return_1: the return a position decided at the close of ``date`` earns
    when it is traded ``lag`` sessions later (0: close t -> t+1; 1: close t+1 -> t+2).

    ``returns`` holds every session of each symbol (symbol, date, fwd_return_1, the return from
    that close to the next); the lagged value is the symbol's own ``fwd_return_1`` ``lag`` rows
    later in date order, never another symbol's. Rows whose later session is not there (the
    symbol's last ``lag`` rows) are dropped: no return is invented.
    """
    if lag not in EXECUTION_LAGS:
        raise ValueError(f"execution lag must be one of {EXECUTION_LAGS} sessions, got {lag!r}")
    panel = (
        returns.select(*KEYS, "fwd_return_1")
        .unique(KEYS, keep="first")
        .sort(KEYS)
        .with_columns(pl.col("fwd_return_1").shift(-lag).over("symbol"))
    )
    return panel if lag == 0 else panel.drop_nulls("fwd_return_1")


def with_lag(signals: pl.DataFrame, returns: pl.DataFrame, lag: int) -> pl.DataFrame:
    """``signals`` (symbol, date, position, ...) earning the ``lag``-session lagged returns of
    ``returns`` (:func:`lagged_returns`); lag 0 leaves them as they are."""
    if lag not in EXECUTION_LAGS:
        raise ValueError(f"execution lag must be one of {EXECUTION_LAGS} sessions, got {lag!r}")
    if lag == 0:
        return signals
    return signals.drop("fwd_return_1", strict=False).join(
        lagged_returns(returns, lag), on=KEYS, how="inner"
    )


# --------------------------------------------------------------------------- live: what was served


def next_session_returns(bars: pl.DataFrame) -> pl.DataFrame:
    """symbol, date, fwd_return_1 from adjusted daily bars (symbol, date, close): each close to
    the symbol's next close; a symbol's last bar (no next session yet) has no row."""
    return (
        bars.select(*KEYS, "close")
        .unique(KEYS, keep="first")
        .sort(KEYS)
        .with_columns((pl.col("close").shift(-1) / pl.col("close") - 1.0).over("symbol"))
        .select(*KEYS, pl.col("close").alias("fwd_return_1"))
        .drop_nulls("fwd_return_1")
        .filter(pl.col("fwd_return_1").is_finite())
    )


def served_positions(served: pl.DataFrame) -> pl.DataFrame:
    """One served position per (symbol, date) from the served log's ``signals``: the first one
    served (a later serving of the same bar, e.g. a stale symbol re-served as HOLD or a rerun,
    does not replace what was served when the bar was new). Columns: symbol, date, signal,
    position, served_at. Empty when nothing was served or the log has no positions."""
    schema = {
        "symbol": pl.String,
        "date": pl.Date,
        "signal": pl.String,
        "position": pl.Float64,
        "served_at": pl.Datetime("us", "UTC"),
    }
    if served.is_empty() or "position" not in served.columns:
        return pl.DataFrame(schema=schema)
    return (
        served.sort("served_at", "symbol", "date")
        .group_by(KEYS, maintain_order=True)
        .first()
        .select(
            pl.col("symbol").cast(pl.String),
            pl.col("date").cast(pl.Date),
            pl.col("signal").cast(pl.String),
            pl.col("position").cast(pl.Float64).fill_null(0.0),
            pl.col("served_at").cast(schema["served_at"]),
        )
        .sort(KEYS)
    )


def live_signals(served: pl.DataFrame, bars: pl.DataFrame, lag: int = 0) -> pl.DataFrame:
    """The served positions (:func:`served_positions`) with the realized return each earned:
    the symbol's adjusted close to its next adjusted close (``lag`` sessions later with an
    execution lag). Only rows whose next session exists in ``bars``; ready for
    :func:`strategy_returns`."""
    positions = served_positions(served)
    realized = lagged_returns(next_session_returns(bars), lag)
    return positions.join(realized, on=KEYS, how="inner").sort(KEYS)
