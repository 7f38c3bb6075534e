"""A cost-aware, daily-rebalanced backtest of position signals (vectorized polars).

The position decided at the close of day t (from data up to t) earns the return from that close
to the next one; changing a position costs ``cost_bps + slippage_bps`` per unit traded. The
portfolio holds each traded symbol with equal capital (the mean of the names' daily returns),
so returns are comparable with an equal-weight buy-and-hold of the same names.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

TRADING_DAYS = 252


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


def performance(returns: np.ndarray, turnover: np.ndarray | None = None) -> dict[str, float]:
    """Annualized return and volatility, Sharpe (zero risk-free rate), max drawdown, hit rate of
    days, mean daily turnover, total return."""
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
        "sharpe": float(np.mean(r) / np.std(r, ddof=1) * math.sqrt(TRADING_DAYS))
        if r.size > 1 and np.std(r, ddof=1) > 0
        else float("nan"),
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


def performance_table(daily: pl.DataFrame, by_year: bool = False) -> pl.DataFrame:
    """portfolio | period ("all", or each calendar year) | the ``performance`` figures of the
    strategy (net and gross) and its benchmarks over ``daily`` (``with_benchmarks``' output)."""
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
            rows.append(
                {
                    "portfolio": portfolio,
                    "period": period,
                    **performance(part[column].to_numpy(), turnover),
                }
            )
    return pl.DataFrame(rows, infer_schema_length=None)
