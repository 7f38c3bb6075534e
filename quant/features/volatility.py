"""Volatility: ranges and bands (ATR, Bollinger, Keltner, Donchian) and return-based estimators."""

from __future__ import annotations

import math

from quant.features import indicators as ind
from quant.features.base import C, H, L, O, col
from quant.features.spec import Family, Feature

V_ = Family.VOLATILITY
ANNUAL = math.sqrt(252.0)
BB = "talib.BBANDS(close, timeperiod=20, nbdevup=2, nbdevdn=2, matype=0)"
LOG_RETURN = "np.log(talib.ROCR(close, timeperiod=1))"

_bb_upper = col("bb_mid20") + 2.0 * col("bb_std20")
_bb_lower = col("bb_mid20") - 2.0 * col("bb_std20")
_high55, _low55 = col("high55"), col("low55")
_log_hl = (H / L).log()
_log_co = (C / O).log()

FEATURES: list[Feature] = [
    Feature(
        "natr_14",
        V_,
        100.0 * col("atr14") / C,
        warmup=14,
        description="average true range (Wilder, 14 days) as a percent of the close",
        params={"timeperiod": 14},
        reference="talib.NATR(high, low, close, timeperiod=14)",
    ),
    Feature(
        "atr_ratio_5_20",
        V_,
        ind.ratio(col("atr5"), col("atr20")),
        warmup=20,
        description="short over long average true range: > 1 when ranges are expanding",
        params={"fast": 5, "slow": 20},
        reference="talib.ATR(high, low, close, timeperiod=5) / talib.ATR(high, low, close, timeperiod=20)",
    ),
    Feature(
        "bb_pctb_20",
        V_,
        ind.ratio(C - _bb_lower, _bb_upper - _bb_lower),
        warmup=19,
        description="Bollinger %B: the close's place between the bands (20 days, 2 sd); 0..1 inside",
        params={"timeperiod": 20, "nbdev": 2},
        reference=f"(close - {BB}[2]) / ({BB}[0] - {BB}[2])",
    ),
    Feature(
        "bb_width_20",
        V_,
        ind.ratio(_bb_upper - _bb_lower, col("bb_mid20")),
        warmup=19,
        description="Bollinger band width relative to the middle band",
        params={"timeperiod": 20, "nbdev": 2},
        reference=f"({BB}[0] - {BB}[2]) / {BB}[1]",
    ),
    Feature(
        "keltner_pos_20",
        V_,
        ind.ratio(C - col("ema20"), 2.0 * col("atr10")),
        warmup=19,
        description="Keltner channel position: (close - EMA20) / (2 ATR10); ±1 at the bands",
        params={"ema": 20, "atr": 10, "multiplier": 2},
        reference="(close - talib.EMA(close, timeperiod=20)) / (2 * talib.ATR(high, low, close, timeperiod=10))",
    ),
    Feature(
        "keltner_width_20",
        V_,
        4.0 * col("atr10") / col("ema20"),
        warmup=19,
        description="Keltner channel width (4 ATR10) relative to EMA20",
        params={"ema": 20, "atr": 10, "multiplier": 2},
        reference="4 * talib.ATR(high, low, close, timeperiod=10) / talib.EMA(close, timeperiod=20)",
    ),
    Feature(
        "donchian_pos_55",
        V_,
        ind.ratio(C - _low55, _high55 - _low55),
        warmup=54,
        description="the close's place in the 55-day Donchian channel (lowest low .. highest high)",
        params={"timeperiod": 55},
        reference="(close - talib.MIN(low, timeperiod=55)) / (talib.MAX(high, timeperiod=55) - talib.MIN(low, timeperiod=55))",
    ),
    Feature(
        "donchian_width_20",
        V_,
        (col("high20") - col("low20")) / C,
        warmup=19,
        description="20-day Donchian channel width relative to the close",
        params={"timeperiod": 20},
        reference="(talib.MAX(high, timeperiod=20) - talib.MIN(low, timeperiod=20)) / close",
    ),
    Feature(
        "parkinson_vol_20",
        V_,
        (ind.sma(_log_hl.pow(2), 20) / (4.0 * math.log(2.0))).clip(lower_bound=0.0).sqrt() * ANNUAL,
        warmup=19,
        description="Parkinson high-low volatility estimator over 20 days, annualized",
        params={"timeperiod": 20},
        reference="np.sqrt(talib.SMA(np.log(high / low) ** 2, timeperiod=20) / (4 * np.log(2)) * 252)",
    ),
    Feature(
        "garman_klass_vol_20",
        V_,
        ind.sma(0.5 * _log_hl.pow(2) - (2.0 * math.log(2.0) - 1.0) * _log_co.pow(2), 20)
        .clip(lower_bound=0.0)  # a running mean of zeros can end at -1e-20
        .sqrt()
        * ANNUAL,
        warmup=19,
        description="Garman-Klass open-high-low-close volatility estimator over 20 days, annualized",
        params={"timeperiod": 20},
        reference="np.sqrt(talib.SMA(0.5 * np.log(high / low) ** 2 - (2 * np.log(2) - 1) * np.log(close / open) ** 2, timeperiod=20) * 252)",
    ),
    *[
        Feature(
            f"realized_vol_{n}",
            V_,
            ind.stddev(col("ret"), n) * ANNUAL,
            warmup=n,
            description=f"standard deviation of daily log returns over {n} days, annualized",
            params={"timeperiod": n},
            reference=f"talib.STDDEV({LOG_RETURN}, timeperiod={n}) * np.sqrt(252)",
        )
        for n in (5, 20, 60)
    ],
]
