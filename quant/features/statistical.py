"""Statistical: returns, z-scores, higher moments, serial dependence, entropy, drawdowns.

Every statistic is over a trailing window: nothing is standardized with full-sample moments,
which would leak the future into the past (the look-ahead check exists to catch exactly that).
"""

from __future__ import annotations

import math

import polars as pl

from quant.features import indicators as ind
from quant.features.base import C, col
from quant.features.spec import Family, Feature

S = Family.STATISTICAL
LOG_RETURN = "np.log(talib.ROCR(close, timeperiod=1))"
R = col("ret")


def _log_return(n: int) -> pl.Expr:
    return ind.ratio(C, ind.lag(C, n)).log()


def _central_moment_ratio(order: int) -> pl.Expr:
    """Skewness (order 3) or excess kurtosis (order 4) of daily returns over 60 days, from the
    raw moments (population moments, as pandas' ``bias=True``)."""
    m1, m2, m3, m4 = (col(f"ret_m{k}_60") for k in (1, 2, 3, 4))
    variance = m2 - m1.pow(2)
    if order == 3:
        return ind.ratio(m3 - 3 * m1 * m2 + 2 * m1.pow(3), variance.pow(1.5))
    fourth = m4 - 4 * m1 * m3 + 6 * m1.pow(2) * m2 - 3 * m1.pow(4)
    return ind.ratio(fourth, variance.pow(2)) - 3.0


def _binary_entropy() -> pl.Expr:
    """Entropy (bits) of the up/down mix of the last 20 daily moves: 1 = coin toss, 0 = one-way."""
    share_up = col("share_up20")
    up, down = ((p * p.log(2)).replace([math.nan], 0.0) for p in (share_up, 1.0 - share_up))
    return -(up + down)  # 0 log 0 = 0; null stays null during warm-up


def _variance_ratio(k: int, n: int) -> pl.Expr:
    """Lo-MacKinlay variance ratio: var of k-day returns over k times the var of daily returns."""
    return ind.ratio(ind.rolling_var(_log_return(k), n), k * ind.rolling_var(R, n))


FEATURES: list[Feature] = [
    *[
        Feature(
            f"log_ret_{n}",
            S,
            _log_return(n),
            warmup=n,
            description=f"log return over the last {n} session(s)",
            params={"timeperiod": n},
            reference=f"np.log(talib.ROCR(close, timeperiod={n}))",
        )
        for n in (1, 5, 20)
    ],
    *[
        Feature(
            f"zscore_{n}",
            S,
            ind.ratio(C - ind.sma(C, n), ind.stddev(C, n)),
            warmup=n - 1,
            description=f"close in standard deviations from its trailing {n}-day mean",
            params={"timeperiod": n},
            reference=f"(close - talib.SMA(close, timeperiod={n})) / talib.STDDEV(close, timeperiod={n})",
        )
        for n in (20, 60)
    ],
    Feature(
        "skew_60",
        S,
        _central_moment_ratio(3),
        warmup=60,
        description="skewness of daily log returns over 60 days",
        params={"timeperiod": 60},
    ),
    Feature(
        "kurtosis_60",
        S,
        _central_moment_ratio(4),
        warmup=60,
        description="excess kurtosis of daily log returns over 60 days",
        params={"timeperiod": 60},
    ),
    Feature(
        "autocorr_1_60",
        S,
        ind.rolling_corr(R, ind.lag(R), 60),
        warmup=61,
        description="first-order autocorrelation of daily log returns over 60 days",
        params={"timeperiod": 60, "lag": 1},
        reference=f"talib.CORREL({LOG_RETURN}, np.concatenate([[np.nan], {LOG_RETURN}[:-1]]), timeperiod=60)",
    ),
    Feature(
        "variance_ratio_5_60",
        S,
        _variance_ratio(5, 60),
        warmup=64,
        description="variance ratio of 5-day to daily returns over 60 days: > 1 trending, < 1 mean-reverting",
        params={"k": 5, "timeperiod": 60},
    ),
    Feature(
        "entropy_20",
        S,
        _binary_entropy(),
        warmup=20,
        description="entropy of the up/down sequence over 20 days (1 = coin toss, 0 = one-way)",
        params={"timeperiod": 20},
    ),
    Feature(
        "drawdown_126",
        S,
        C / ind.rolling_max(C, 126) - 1.0,
        warmup=125,
        description="drawdown of the close from its 126-day (half-year) high",
        params={"timeperiod": 126},
        reference="close / talib.MAX(close, timeperiod=126) - 1",
    ),
    Feature(
        "days_since_high_60",
        S,
        ind.sessions_since_extreme(C, 60, highest=True),
        warmup=59,
        description="sessions since the highest close of the last 60 (ties: the most recent, as AROON)",
        params={"timeperiod": 60},
        reference="59 - talib.AROON(close, close, timeperiod=59)[1] * 59 / 100",
    ),
    Feature(
        "days_since_low_60",
        S,
        ind.sessions_since_extreme(C, 60, highest=False),
        warmup=59,
        description="sessions since the lowest close of the last 60 (ties: the most recent, as AROON)",
        params={"timeperiod": 60},
        reference="59 - talib.AROON(close, close, timeperiod=59)[0] * 59 / 100",
    ),
    Feature(
        "sharpe_20",
        S,
        ind.ratio(_log_return(20), ind.stddev(R, 20) * math.sqrt(20.0)),
        warmup=20,
        description="20-day log return over the volatility expected in 20 days (trend quality)",
        params={"timeperiod": 20},
        reference=f"np.log(talib.ROCR(close, timeperiod=20)) / (talib.STDDEV({LOG_RETURN}, timeperiod=20) * np.sqrt(20))",
    ),
    Feature(
        "max_ret_20",
        S,
        ind.rolling_max(R, 20),
        warmup=20,
        description="largest daily log return of the last 20 days (lottery-like behaviour)",
        params={"timeperiod": 20},
        reference=f"talib.MAX({LOG_RETURN}, timeperiod=20)",
    ),
]
