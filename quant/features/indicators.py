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


def rolling_max(x: pl.Expr, n: int) -> pl.Expr:
    return per_symbol(x.rolling_max(window_size=n))


def rolling_min(x: pl.Expr, n: int) -> pl.Expr:
    return per_symbol(x.rolling_min(window_size=n))


def stddev(x: pl.Expr, n: int) -> pl.Expr:
    """Population standard deviation over ``n`` values (TA-Lib STDDEV and Bollinger use ddof=0)."""
    return per_symbol(x.rolling_std(window_size=n, ddof=0))


def roc(x: pl.Expr, n: int) -> pl.Expr:
    """Rate of change in percent over ``n`` sessions (TA-Lib ROC)."""
    return (x / lag(x, n) - 1.0) * 100.0


def momentum(x: pl.Expr, n: int) -> pl.Expr:
    """Difference to ``n`` sessions earlier (TA-Lib MOM)."""
    return x - lag(x, n)


def williams_r(high: pl.Expr, low: pl.Expr, close: pl.Expr, n: int) -> pl.Expr:
    """Williams %R over ``n`` sessions, in [-100, 0] (TA-Lib WILLR)."""
    highest, lowest = rolling_max(high, n), rolling_min(low, n)
    span = highest - lowest
    return pl.when(span > 0).then(-100.0 * (highest - close) / span).when(span == 0).then(0.0)


def stochastic_fast_k(high: pl.Expr, low: pl.Expr, close: pl.Expr, n: int) -> pl.Expr:
    """Raw stochastic %K over ``n`` sessions, in [0, 100]; 0 when the range is empty."""
    highest, lowest = rolling_max(high, n), rolling_min(low, n)
    span = highest - lowest
    return pl.when(span > 0).then(100.0 * (close - lowest) / span).when(span == 0).then(0.0)


def macd(
    close: pl.Expr, fast: int = 12, slow: int = 26, signal: int = 9
) -> tuple[pl.Expr, pl.Expr, pl.Expr]:
    """MACD line, signal and histogram (TA-Lib MACD).

    TA-Lib aligns the fast EMA to the slow one: its seed is the mean of the ``fast`` values
    ending where the slow EMA's seed ends, so early values differ from EMA(12) - EMA(26).
    """
    line = ema(close, fast, first_valid=slow - fast) - ema(close, slow)
    signal_line = ema(line, signal, first_valid=slow - 1)
    line = pl.when(signal_line.is_not_null()).then(line)  # TA-Lib starts all three together
    return line, signal_line, line - signal_line


def on_balance_volume(close: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """OBV: starts at the first day's volume, adds or subtracts each day's volume by the close's
    direction, and adds nothing on unchanged closes (TA-Lib OBV)."""
    direction = per_symbol(close.diff()).sign().fill_null(0.0)
    return per_symbol((direction * volume).cum_sum()) + per_symbol(volume.first())


def accumulation_distribution(
    high: pl.Expr, low: pl.Expr, close: pl.Expr, volume: pl.Expr
) -> pl.Expr:
    """Chaikin accumulation/distribution line (TA-Lib AD); a bar with high == low adds nothing."""
    span = high - low
    flow = pl.when(span > 0).then(((close - low) - (high - close)) / span * volume).otherwise(0.0)
    return per_symbol(flow.cum_sum())


def commodity_channel_index(high: pl.Expr, low: pl.Expr, close: pl.Expr, n: int) -> pl.Expr:
    """CCI over ``n`` sessions (TA-Lib CCI): deviation of the typical price from its mean, over
    0.015 times the mean absolute deviation from that same mean."""
    typical = (high + low + close) / 3.0
    mean = sma(typical, n)
    deviation = pl.sum_horizontal([(lag(typical, k) - mean).abs() for k in range(n)]) / n
    deviation = pl.when(mean.is_not_null()).then(deviation)
    return (
        pl.when(deviation > 0)
        .then((typical - mean) / (0.015 * deviation))
        .when(deviation == 0)
        .then(0.0)
    )
