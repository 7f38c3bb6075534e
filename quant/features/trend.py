"""Trend: where price stands against its moving averages, and how strong the trend is.

Price-level indicators are divided by the close so that one model can pool all symbols.
"""

from __future__ import annotations

from quant.features import indicators as ind
from quant.features.base import EMA_PERIODS, C, H, L, col
from quant.features.spec import Family, Feature

T = Family.TREND
MACD_ARGS = "fastperiod=12, slowperiod=26, signalperiod=9"

FEATURES: list[Feature] = [
    *[
        Feature(
            f"sma_dist_{n}",
            T,
            C / ind.sma(C, n) - 1.0,
            warmup=n - 1,
            description=f"close relative to its {n}-day simple moving average",
            params={"timeperiod": n},
            reference=f"close / talib.SMA(close, timeperiod={n}) - 1",
        )
        for n in (5, 10, 20, 50, 200)
    ],
    *[
        Feature(
            f"ema_dist_{n}",
            T,
            C / col(f"ema{n}") - 1.0,
            warmup=n - 1,
            description=f"close relative to its {n}-day exponential moving average",
            params={"timeperiod": n},
            reference=f"close / talib.EMA(close, timeperiod={n}) - 1",
        )
        for n in EMA_PERIODS
    ],
    Feature(
        "sma_cross_5_20",
        T,
        ind.sma(C, 5) / ind.sma(C, 20) - 1.0,
        warmup=19,
        description="fast over slow moving average (5 vs 20 days): a crossover is a sign change",
        params={"fast": 5, "slow": 20},
        reference="talib.SMA(close, timeperiod=5) / talib.SMA(close, timeperiod=20) - 1",
    ),
    Feature(
        "sma_cross_50_200",
        T,
        ind.sma(C, 50) / ind.sma(C, 200) - 1.0,
        warmup=199,
        description="50-day over 200-day moving average (golden / death cross when it changes sign)",
        params={"fast": 50, "slow": 200},
        reference="talib.SMA(close, timeperiod=50) / talib.SMA(close, timeperiod=200) - 1",
    ),
    Feature(
        "macd_norm",
        T,
        col("macd") / C,
        warmup=33,
        description="MACD line (EMA12 - EMA26) divided by the close",
        params={"fast": 12, "slow": 26, "signal": 9},
        reference=f"talib.MACD(close, {MACD_ARGS})[0] / close",
    ),
    Feature(
        "macd_signal_norm",
        T,
        col("macd_signal") / C,
        warmup=33,
        description="MACD signal line (EMA9 of MACD) divided by the close",
        params={"fast": 12, "slow": 26, "signal": 9},
        reference=f"talib.MACD(close, {MACD_ARGS})[1] / close",
    ),
    Feature(
        "macd_hist_norm",
        T,
        (col("macd") - col("macd_signal")) / C,
        warmup=33,
        description="MACD histogram (line - signal) divided by the close",
        params={"fast": 12, "slow": 26, "signal": 9},
        reference=f"talib.MACD(close, {MACD_ARGS})[2] / close",
    ),
    Feature(
        "adx_14",
        T,
        col("adx14"),
        warmup=27,
        description="average directional index: trend strength regardless of direction (Wilder)",
        params={"timeperiod": 14},
        reference="talib.ADX(high, low, close, timeperiod=14)",
    ),
    Feature(
        "plus_di_14",
        T,
        col("plus_di14"),
        warmup=14,
        description="+DI: share of the true range made by up-moves (Wilder)",
        params={"timeperiod": 14},
        reference="talib.PLUS_DI(high, low, close, timeperiod=14)",
    ),
    Feature(
        "minus_di_14",
        T,
        col("minus_di14"),
        warmup=14,
        description="-DI: share of the true range made by down-moves (Wilder)",
        params={"timeperiod": 14},
        reference="talib.MINUS_DI(high, low, close, timeperiod=14)",
    ),
    Feature(
        "aroon_up_25",
        T,
        ind.aroon(H, L, 25)[0],
        warmup=25,
        description="Aroon up: 100 when the 25-day high is today, falling as it ages",
        params={"timeperiod": 25},
        reference="talib.AROON(high, low, timeperiod=25)[1]",
    ),
    Feature(
        "aroon_down_25",
        T,
        ind.aroon(H, L, 25)[1],
        warmup=25,
        description="Aroon down: 100 when the 25-day low is today, falling as it ages",
        params={"timeperiod": 25},
        reference="talib.AROON(high, low, timeperiod=25)[0]",
    ),
    Feature(
        "cci_20",
        T,
        ind.commodity_channel_index(col("typical"), col("typical_sma20"), 20),
        warmup=19,
        description="commodity channel index: typical price vs its mean, in mean deviations",
        params={"timeperiod": 20},
        reference="talib.CCI(high, low, close, timeperiod=20)",
    ),
    Feature(
        "trix_15",
        T,
        ind.roc(col("trix_ema3"), 1),
        warmup=43,
        description="TRIX: daily % change of a triple-smoothed 15-day EMA",
        params={"timeperiod": 15},
        reference="talib.TRIX(close, timeperiod=15)",
    ),
    Feature(
        "linreg_slope_20",
        T,
        ind.linear_regression_slope(C, 20) / C,
        warmup=19,
        description="least-squares slope of the last 20 closes, per day, relative to the close",
        params={"timeperiod": 20},
        reference="talib.LINEARREG_SLOPE(close, timeperiod=20) / close",
    ),
]
