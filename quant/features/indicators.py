"""Indicator building blocks as polars expressions over a (symbol, date)-sorted panel.

Every expression is evaluated per symbol (``.over("symbol")``) so one call covers the whole
panel. Smoothing follows TA-Lib's conventions so values can be checked against it: exponential
and Wilder averages are seeded with the simple mean of their first ``n`` valid values, not with
the first value (a plain ``ewm_mean(adjust=False)`` only converges to TA-Lib after hundreds of rows).
"""

from __future__ import annotations

import polars as pl

SYMBOL = "symbol"


def per_symbol(expr: pl.Expr) -> pl.Expr:
    """Evaluate ``expr`` separately for each symbol."""
    return expr.over(SYMBOL)


def row_number() -> pl.Expr:
    """0-based position of each row within its symbol."""
    return per_symbol(pl.int_range(pl.len()))


def lag(x: pl.Expr, periods: int = 1) -> pl.Expr:
    """The value ``periods`` sessions earlier for the same symbol (never a later one)."""
    return per_symbol(x.shift(periods))


def sma(x: pl.Expr, n: int) -> pl.Expr:
    """Simple moving average of the last ``n`` values (TA-Lib SMA)."""
    return per_symbol(x.rolling_mean(window_size=n))


def seeded_smoothing(x: pl.Expr, n: int, alpha: float, first_valid: int = 0) -> pl.Expr:
    """Recursive smoothing y_t = alpha * x_t + (1 - alpha) * y_{t-1}, seeded TA-Lib's way.

    The first output is the simple mean of ``n`` values starting at row ``first_valid`` (where
    ``x`` becomes defined); earlier rows are null.
    """
    seed_row = first_valid + n - 1
    position = row_number()
    seeded = (
        pl.when(position == seed_row)
        .then(per_symbol(x.rolling_mean(window_size=n)))
        .when(position > seed_row)
        .then(x)
    )
    return per_symbol(seeded.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=False))


def ema(x: pl.Expr, n: int, first_valid: int = 0) -> pl.Expr:
    """Exponential moving average, alpha = 2 / (n + 1), seeded with SMA(n) (TA-Lib EMA)."""
    return seeded_smoothing(x, n, 2.0 / (n + 1), first_valid)


def wilder(x: pl.Expr, n: int, first_valid: int = 0) -> pl.Expr:
    """Wilder's smoothing, alpha = 1 / n, seeded with the mean of the first n values."""
    return seeded_smoothing(x, n, 1.0 / n, first_valid)


def true_range(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """max(high, previous close) - min(low, previous close); null on a symbol's first row."""
    previous = lag(close)
    return pl.when(previous.is_not_null()).then(
        pl.max_horizontal(high, previous) - pl.min_horizontal(low, previous)
    )


def rsi(close: pl.Expr, n: int) -> pl.Expr:
    """Relative strength index with Wilder smoothing (TA-Lib RSI)."""
    change = close - lag(close)
    defined = change.is_not_null()
    gain = wilder(pl.when(defined).then(change.clip(lower_bound=0.0)), n, first_valid=1)
    loss = wilder(pl.when(defined).then((-change).clip(lower_bound=0.0)), n, first_valid=1)
    total = gain + loss
    # TA-Lib reports 0 when nothing moved over the window
    return pl.when(total > 0).then(100.0 * gain / total).when(total == 0).then(0.0)


def atr(high: pl.Expr, low: pl.Expr, close: pl.Expr, n: int) -> pl.Expr:
    """Average true range with Wilder smoothing (TA-Lib ATR)."""
    return wilder(true_range(high, low, close), n, first_valid=1)
