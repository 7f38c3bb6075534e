"""Pattern: support/resistance, breakouts, candle anatomy, candlestick patterns, streaks."""

from __future__ import annotations

import polars as pl

from quant.features import indicators as ind
from quant.features.base import C, H, L, O, col
from quant.features.spec import Family, Feature

P = Family.PATTERN
PREVIOUS = "np.concatenate([[np.nan], {}[:-1]])"  # the reference's one-session lag


def _as_float(condition: pl.Expr) -> pl.Expr:
    return condition.cast(pl.Float64)


def _streak(step_up: bool) -> pl.Expr:
    """Consecutive sessions closing up (or down), ending today; 0 when today broke the run."""
    moved = col("change") > 0 if step_up else col("change") < 0
    row = ind.position()
    # the row where the current run started: the last row that did not continue it. A symbol's
    # first row never continues a run, so the forward fill cannot cross into another symbol.
    breaks = pl.when(~moved.fill_null(False)).then(row).forward_fill()
    return ind.from_row((row - breaks).cast(pl.Float64), 1)


def _candle_color() -> pl.Expr:
    return pl.when(C >= O).then(1.0).otherwise(-1.0)  # TA-Lib: white (1) when close >= open


def _doji() -> pl.Expr:
    """TA-Lib CDLDOJI: real body no larger than 10% of the mean range of the previous 10 candles."""
    mean_range = ind.lag(ind.sma(H - L, 10), 1)
    return ind.from_row(_as_float((C - O).abs() <= 0.1 * mean_range), 10)


def _engulfing() -> pl.Expr:
    """TA-Lib CDLENGULFING: today's real body engulfs yesterday's of the opposite colour;
    +1 bullish / -1 bearish, ±0.8 when one end only touches."""
    po, pc = ind.lag(O), ind.lag(C)
    color, previous_color = _candle_color(), ind.lag(_candle_color())
    bullish = (
        (color == 1) & (previous_color == -1) & (((po <= C) & (pc > O)) | ((po < C) & (pc >= O)))
    )
    bearish = (
        (color == -1) & (previous_color == 1) & (((pc <= O) & (po > C)) | ((pc < O) & (po >= C)))
    )
    strength = pl.when((pc != O) & (po != C)).then(1.0).otherwise(0.8)
    return ind.from_row(pl.when(bullish | bearish).then(color * strength).otherwise(0.0), 1)


def _divergence() -> pl.Expr:
    """+1 when price fell over 10 days while RSI(14) rose (bullish), -1 for the reverse."""
    price = (C - ind.lag(C, 10)).sign()
    strength = (col("rsi14") - ind.lag(col("rsi14"), 10)).sign()
    return (strength - price) / 2.0


_range = H - L

FEATURES: list[Feature] = [
    Feature(
        "support_dist_20",
        P,
        C / col("low20") - 1.0,
        warmup=19,
        description="close above the 20-day lowest low (support), relative",
        params={"timeperiod": 20},
        reference="close / talib.MIN(low, timeperiod=20) - 1",
    ),
    Feature(
        "resistance_dist_20",
        P,
        C / col("high20") - 1.0,
        warmup=19,
        description="close below the 20-day highest high (resistance), relative",
        params={"timeperiod": 20},
        reference="close / talib.MAX(high, timeperiod=20) - 1",
    ),
    Feature(
        "breakout_up_20",
        P,
        _as_float(ind.lag(col("high20")) < C),
        warmup=20,
        description="1 when the close breaks above the previous 20 days' highest high",
        params={"timeperiod": 20},
        reference="(close > "
        + PREVIOUS.format("talib.MAX(high, timeperiod=20)")
        + ").astype(float)",
    ),
    Feature(
        "breakout_down_20",
        P,
        _as_float(ind.lag(col("low20")) > C),
        warmup=20,
        description="1 when the close breaks below the previous 20 days' lowest low",
        params={"timeperiod": 20},
        reference="(close < "
        + PREVIOUS.format("talib.MIN(low, timeperiod=20)")
        + ").astype(float)",
    ),
    Feature(
        "higher_highs_10",
        P,
        ind.rolling_sum(_as_float(ind.lag(H) < H), 10),
        warmup=10,
        description="sessions out of the last 10 whose high exceeded the previous high",
        params={"timeperiod": 10},
        reference="talib.SUM(np.concatenate([[np.nan], (high[1:] > high[:-1]).astype(float)]), timeperiod=10)",
    ),
    Feature(
        "lower_lows_10",
        P,
        ind.rolling_sum(_as_float(ind.lag(L) > L), 10),
        warmup=10,
        description="sessions out of the last 10 whose low fell below the previous low",
        params={"timeperiod": 10},
        reference="talib.SUM(np.concatenate([[np.nan], (low[1:] < low[:-1]).astype(float)]), timeperiod=10)",
    ),
    Feature(
        "gap_pct",
        P,
        O / col("prev_close") - 1.0,
        warmup=1,
        description="opening gap: open relative to the previous close",
        reference="open / " + PREVIOUS.format("close") + " - 1",
    ),
    Feature(
        "body_ratio",
        P,
        ind.ratio(C - O, _range, when_zero=0.0),
        warmup=0,
        description="signed real body over the day's range (balance of power), -1..1",
        reference="talib.BOP(open, high, low, close)",
    ),
    Feature(
        "upper_shadow_ratio",
        P,
        ind.ratio(H - pl.max_horizontal(O, C), _range, when_zero=0.0),
        warmup=0,
        description="upper shadow over the day's range, 0..1",
        reference="np.where(high > low, (high - np.maximum(open, close)) / np.where(high > low, high - low, 1), 0.0)",
    ),
    Feature(
        "lower_shadow_ratio",
        P,
        ind.ratio(pl.min_horizontal(O, C) - L, _range, when_zero=0.0),
        warmup=0,
        description="lower shadow over the day's range, 0..1",
        reference="np.where(high > low, (np.minimum(open, close) - low) / np.where(high > low, high - low, 1), 0.0)",
    ),
    Feature(
        "doji",
        P,
        _doji(),
        warmup=10,
        description="doji candle (TA-Lib CDLDOJI): 1 when the real body is tiny against recent ranges",
        params={"average_period": 10, "body_factor": 0.1},
        reference="talib.CDLDOJI(open, high, low, close) / 100",
    ),
    Feature(
        "engulfing",
        P,
        _engulfing(),
        warmup=1,
        description="engulfing pattern (TA-Lib CDLENGULFING): +1 bullish, -1 bearish, ±0.8 touching",
        reference="talib.CDLENGULFING(open, high, low, close) / 100",
    ),
    Feature(
        "up_streak",
        P,
        _streak(step_up=True),
        warmup=1,
        description="consecutive sessions closing higher, ending today",
    ),
    Feature(
        "down_streak",
        P,
        _streak(step_up=False),
        warmup=1,
        description="consecutive sessions closing lower, ending today",
    ),
    Feature(
        "rsi_divergence_14",
        P,
        _divergence(),
        warmup=24,
        description="RSI/price divergence over 10 days: +1 price down & RSI(14) up, -1 the reverse",
        params={"rsi": 14, "lookback": 10},
    ),
]
