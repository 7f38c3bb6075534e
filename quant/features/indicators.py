"""Indicator building blocks as polars expressions over a (symbol, date)-sorted panel.

No per-symbol loops. Exact window operations (shifts, rolling extremes) run once over the whole
sorted column, and a value is kept only where the window lies inside one symbol, which the
position column ``_pos`` (0-based row within the symbol, added by :func:`with_position`) tells.
Everything that accumulates floating-point state (rolling sums, means, deviations, correlations,
EMA and Wilder recursions, cumulative sums) runs per symbol with ``.over()`` on ``_sid``, the
symbol's number: a running sum over the whole column would carry rounding residue from other
symbols and from far history into every value, so truncating the data would change past values
in the 15th digit and the look-ahead proof could not demand bit-identical results.

Smoothing follows TA-Lib's conventions so values can be checked against it: exponential and
Wilder averages are seeded with the simple mean of their first ``n`` valid values, not with the
first value (a plain ``ewm_mean(adjust=False)`` only converges to TA-Lib after hundreds of rows).
"""

from __future__ import annotations

import functools
import math
import operator

import numpy as np
import polars as pl

SYMBOL = "symbol"
GROUP = "_sid"  # the symbol as a small integer: grouping on it is about twice as fast as on text
UNDEFINED = [math.inf, -math.inf, math.nan]
POSITION = "_pos"


def with_position(frame: pl.DataFrame | pl.LazyFrame) -> pl.LazyFrame:
    """Sort by (symbol, date) and add ``_sid`` (symbol number) and ``_pos`` (row within the
    symbol): every expression here relies on them."""
    return (
        frame.lazy()
        .sort(SYMBOL, "date")
        .with_columns(pl.col(SYMBOL).rle_id().alias(GROUP))
        .with_columns(pl.int_range(pl.len(), dtype=pl.Int32).over(GROUP).alias(POSITION))
    )


def position() -> pl.Expr:
    """0-based position of each row within its symbol."""
    return pl.col(POSITION)


def from_row(expr: pl.Expr, row: int) -> pl.Expr:
    """``expr`` where the row is at least ``row`` sessions into its symbol, else null."""
    return pl.when(position() >= row).then(expr)


def ratio(numerator: pl.Expr, denominator: pl.Expr, when_zero: float | None = None) -> pl.Expr:
    """numerator / denominator, ``when_zero`` (default null) where the denominator is 0.

    Never produces inf or NaN, so the 'no infinities' check can only fail on a real bug. Each
    argument is referenced once: polars does not share a repeated subexpression inside one
    expression, so a when/then on the denominator would compute it twice.
    """
    # x / 0 is ±inf, 0 / 0 is NaN (inputs are never NaN). Not fill_nan: it is a when/then that
    # evaluates its input twice.
    return (numerator / denominator).replace(UNDEFINED, when_zero)


def lag(x: pl.Expr, periods: int = 1) -> pl.Expr:
    """The value ``periods`` sessions earlier for the same symbol (never a later one)."""
    return from_row(x.shift(periods), periods)


def sma(x: pl.Expr, n: int) -> pl.Expr:
    """Simple moving average of the last ``n`` values (TA-Lib SMA)."""
    return x.rolling_mean(window_size=n).over(GROUP)


def rolling_sum(x: pl.Expr, n: int) -> pl.Expr:
    """Sum of the last ``n`` values (TA-Lib SUM)."""
    return x.rolling_sum(window_size=n).over(GROUP)


def rolling_max(x: pl.Expr, n: int) -> pl.Expr:
    """Highest of the last ``n`` values (TA-Lib MAX)."""
    return from_row(x.rolling_max(window_size=n), n - 1)


def rolling_min(x: pl.Expr, n: int) -> pl.Expr:
    """Lowest of the last ``n`` values (TA-Lib MIN)."""
    return from_row(x.rolling_min(window_size=n), n - 1)


def stddev(x: pl.Expr, n: int) -> pl.Expr:
    """Population standard deviation over ``n`` values (TA-Lib STDDEV and Bollinger use ddof=0)."""
    return x.rolling_std(window_size=n, ddof=0).over(GROUP)


def rolling_var(x: pl.Expr, n: int, ddof: int = 1) -> pl.Expr:
    return x.rolling_var(window_size=n, ddof=ddof).over(GROUP)


def rolling_corr(a: pl.Expr, b: pl.Expr, n: int) -> pl.Expr:
    """Pearson correlation of ``a`` and ``b`` over the last ``n`` rows; null where either is
    constant over the window."""
    return pl.rolling_corr(a, b, window_size=n).over(GROUP).replace([math.nan], None)


def _age_of_extreme(values: np.ndarray, n: int, highest: bool) -> np.ndarray:
    """For each row, how many rows back the extreme of the ``n`` rows ending there lies.

    A rolling arg-max by doubling: the best row of a window of 2k rows is the better of the best
    rows of its two halves, so ``ceil(log2 n)`` vectorized gathers cover any window. The later
    row wins ties.
    """
    score = np.where(np.isnan(values), -np.inf, values if highest else -values)
    index = np.arange(len(score))
    best, span = index, 1  # best row of the window of `span` rows ending at each row

    def combine(later: np.ndarray, shift: int) -> np.ndarray:
        earlier = np.concatenate(
            [np.zeros(min(shift, len(later)), dtype=index.dtype), later[:-shift]]
        )
        return np.where(score[later] >= score[earlier], later, earlier)

    while span * 2 <= n:
        best = combine(best, span)
        span *= 2
    if span < n:  # window of n = the window of span ending here + the one ending n - span earlier
        best = combine(best, n - span)
    return (index - best).astype(np.float64)


def sessions_since_extreme(x: pl.Expr, n: int, highest: bool) -> pl.Expr:
    """Sessions since the highest (or lowest) of the last ``n`` values; ties go to the most recent
    (TA-Lib AROON's convention). One vectorized pass over the whole column, not per symbol."""
    age = x.cast(pl.Float64).map_batches(
        lambda s: pl.Series(_age_of_extreme(s.to_numpy(), n, highest)),
        return_dtype=pl.Float64,
    )
    return from_row(age, n - 1)


def seeded_smoothing(x: pl.Expr, alpha: float, seed: pl.Expr, seed_row: int) -> pl.Expr:
    """Recursive smoothing y_t = alpha * x_t + (1 - alpha) * y_{t-1}, started at ``seed_row``
    with the value ``seed`` (TA-Lib's way); earlier rows are null."""
    seeded = pl.when(position() == seed_row).then(seed).when(position() > seed_row).then(x)
    return seeded.ewm_mean(alpha=alpha, adjust=False, ignore_nulls=False).over(GROUP)


def ema(x: pl.Expr, n: int, first_valid: int = 0) -> pl.Expr:
    """Exponential moving average, alpha = 2 / (n + 1), seeded with SMA(n) (TA-Lib EMA).

    ``first_valid`` is the first row where ``x`` is defined (for an EMA of a derived series).
    """
    return seeded_smoothing(x, 2.0 / (n + 1), sma(x, n), first_valid + n - 1)


def wilder(x: pl.Expr, n: int, first_valid: int = 0) -> pl.Expr:
    """Wilder's smoothing, alpha = 1 / n, seeded with the mean of the first n values."""
    return seeded_smoothing(x, 1.0 / n, sma(x, n), first_valid + n - 1)


def wilder_sum_ratio(x: pl.Expr, n: int, first_valid: int = 0) -> pl.Expr:
    """Wilder's running *sum* divided by n, as TA-Lib's DM/DI smooth: seeded with the sum of the
    first n - 1 values (one recursive step before the first output)."""
    return seeded_smoothing(x, 1.0 / n, rolling_sum(x, n - 1) / n, first_valid + n - 2)


def true_range(high: pl.Expr, low: pl.Expr, close: pl.Expr) -> pl.Expr:
    """max(high, previous close) - min(low, previous close); null on a symbol's first row."""
    previous = lag(close)
    return pl.when(previous.is_not_null()).then(
        pl.max_horizontal(high, previous) - pl.min_horizontal(low, previous)
    )


def gain(close_change: pl.Expr) -> pl.Expr:
    return close_change.clip(lower_bound=0.0)


def loss(close_change: pl.Expr) -> pl.Expr:
    return (-close_change).clip(lower_bound=0.0)


def rsi_from(avg_gain: pl.Expr, avg_loss: pl.Expr) -> pl.Expr:
    """RSI from Wilder-smoothed gains and losses (TA-Lib RSI); 0 when nothing moved."""
    return ratio(100.0 * avg_gain, avg_gain + avg_loss, when_zero=0.0)


def cmo_from(avg_gain: pl.Expr, avg_loss: pl.Expr) -> pl.Expr:
    """Chande momentum oscillator from the same smoothed gains and losses (TA-Lib CMO)."""
    return ratio(100.0 * (avg_gain - avg_loss), avg_gain + avg_loss, when_zero=0.0)


def directional_movement(high: pl.Expr, low: pl.Expr) -> tuple[pl.Expr, pl.Expr]:
    """+DM and -DM: the larger of today's up-move and down-move, the other set to 0."""
    up = high - lag(high)
    down = lag(low) - low
    plus = pl.when((up > down) & (up > 0)).then(up).otherwise(0.0)
    minus = pl.when((down > up) & (down > 0)).then(down).otherwise(0.0)
    defined = up.is_not_null()
    return pl.when(defined).then(plus), pl.when(defined).then(minus)


def directional_index(smoothed_dm: pl.Expr, smoothed_tr: pl.Expr) -> pl.Expr:
    """+DI or -DI from Wilder sums of DM and TR (TA-Lib PLUS_DI / MINUS_DI)."""
    return ratio(100.0 * smoothed_dm, smoothed_tr, when_zero=0.0)


def directional_movement_index(plus_di: pl.Expr, minus_di: pl.Expr) -> pl.Expr:
    """DX, whose Wilder average is ADX."""
    return ratio(100.0 * (plus_di - minus_di).abs(), plus_di + minus_di, when_zero=0.0)


def aroon(high: pl.Expr, low: pl.Expr, n: int) -> tuple[pl.Expr, pl.Expr]:
    """Aroon up and down over n + 1 sessions (TA-Lib AROON; ties to the most recent extreme)."""
    up = 100.0 * (n - sessions_since_extreme(high, n + 1, highest=True)) / n
    down = 100.0 * (n - sessions_since_extreme(low, n + 1, highest=False)) / n
    return up, down


def roc(x: pl.Expr, n: int) -> pl.Expr:
    """Rate of change in percent over ``n`` sessions (TA-Lib ROC)."""
    return ratio(x, lag(x, n)) * 100.0 - 100.0


def momentum(x: pl.Expr, n: int) -> pl.Expr:
    """Difference to ``n`` sessions earlier (TA-Lib MOM)."""
    return x - lag(x, n)


def williams_r(close: pl.Expr, highest: pl.Expr, lowest: pl.Expr) -> pl.Expr:
    """Williams %R from the window's highest high and lowest low, in [-100, 0] (TA-Lib WILLR)."""
    return ratio(-100.0 * (highest - close), highest - lowest, when_zero=0.0)


def stochastic_fast_k(close: pl.Expr, highest: pl.Expr, lowest: pl.Expr) -> pl.Expr:
    """Raw stochastic %K from the window's extremes, in [0, 100]; 0 when the range is empty."""
    return ratio(100.0 * (close - lowest), highest - lowest, when_zero=0.0)


def on_balance_volume(close: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """OBV: starts at the first day's volume, adds or subtracts each day's volume by the close's
    direction, and adds nothing on unchanged closes (TA-Lib OBV)."""
    direction = (close - lag(close)).sign().fill_null(0.0)
    signed = pl.when(position() == 0).then(volume).otherwise(direction * volume)
    return signed.cum_sum().over(GROUP)


def money_flow_volume(high: pl.Expr, low: pl.Expr, close: pl.Expr, volume: pl.Expr) -> pl.Expr:
    """Chaikin's money-flow volume: the close's place in the day's range times volume."""
    return ratio((close - low) - (high - close), high - low, when_zero=0.0) * volume


def accumulation_distribution(
    high: pl.Expr, low: pl.Expr, close: pl.Expr, volume: pl.Expr
) -> pl.Expr:
    """Chaikin accumulation/distribution line (TA-Lib AD); a bar with high == low adds nothing."""
    return money_flow_volume(high, low, close, volume).cum_sum().over(GROUP)


def chaikin_oscillator(ad_line: pl.Expr, fast: int = 3, slow: int = 10) -> pl.Expr:
    """EMA(fast) - EMA(slow) of the A/D line (TA-Lib ADOSC: both EMAs start at the first value)."""

    def plain_ema(n: int) -> pl.Expr:
        return ad_line.ewm_mean(alpha=2.0 / (n + 1), adjust=False).over(GROUP)

    return from_row(plain_ema(fast) - plain_ema(slow), slow - 1)


def money_flow(typical: pl.Expr, volume: pl.Expr, n: int, positive: bool) -> pl.Expr:
    """Money flow (typical price x volume) of the last ``n`` sessions whose typical price rose
    (``positive``) or fell."""
    change = typical - lag(typical)
    moved = change > 0 if positive else change < 0
    flow = pl.when(moved).then(typical * volume).when(change.is_not_null()).then(0.0)
    return rolling_sum(flow, n)


def money_flow_index(positive_flow: pl.Expr, negative_flow: pl.Expr) -> pl.Expr:
    """MFI (TA-Lib MFI), null when no volume traded in the window (TA-Lib says 0 there, which
    would read as 'deeply oversold'); 0 below one unit of flow, as TA-Lib."""
    total = positive_flow + negative_flow
    return ratio(100.0 * positive_flow, total) * (total >= 1.0).cast(pl.Float64)


def ultimate_oscillator(
    low: pl.Expr,
    close: pl.Expr,
    previous_close: pl.Expr,
    span: pl.Expr,
    periods: tuple[int, int, int] = (7, 14, 28),
) -> pl.Expr:
    """Ultimate oscillator, weights 4:2:1 (TA-Lib ULTOSC); ``span`` is the true range."""
    buying = close - pl.min_horizontal(low, previous_close)
    averages = [ratio(rolling_sum(buying, n), rolling_sum(span, n), when_zero=0.0) for n in periods]
    return 100.0 * (4.0 * averages[0] + 2.0 * averages[1] + averages[2]) / 7.0


def commodity_channel_index(typical: pl.Expr, typical_mean: pl.Expr, n: int) -> pl.Expr:
    """CCI over ``n`` sessions (TA-Lib CCI) from the typical price and its n-day mean (a column:
    it is read n + 1 times): deviation from the mean over 0.015 times the mean absolute
    deviation from that same mean."""
    # a left-to-right chain of additions: pl.sum_horizontal does not add in a fixed order, and a
    # last-bit difference between two runs would break the bit-identical look-ahead proof
    terms = [(typical.shift(k) - typical_mean).abs() for k in range(n)]
    deviation = functools.reduce(operator.add, terms) / n
    return ratio(typical - typical_mean, 0.015 * deviation, when_zero=0.0)


def linear_regression_slope(x: pl.Expr, n: int) -> pl.Expr:
    """Least-squares slope of the last ``n`` values against time (TA-Lib LINEARREG_SLOPE)."""
    t_mean = (n - 1) / 2.0
    weights = [k - t_mean for k in range(n)]  # oldest first, as rolling windows are ordered
    denominator = sum(w * w for w in weights)
    return x.rolling_sum(window_size=n, weights=weights).over(GROUP) / denominator
