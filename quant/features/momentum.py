"""Momentum: oscillators and rates of change (RSI, stochastics, Williams %R, ROC, MFI, CMO ...)."""

from __future__ import annotations

from quant.features import indicators as ind
from quant.features.base import RSI_PERIODS, C, L, col
from quant.features.spec import Family, Feature

M = Family.MOMENTUM

FEATURES: list[Feature] = [
    *[
        Feature(
            f"rsi_{n}",
            M,
            ind.rsi_from(col(f"gain{n}"), col(f"loss{n}")),
            warmup=n,
            description=f"relative strength index over {n} days (Wilder smoothing), 0..100",
            params={"timeperiod": n},
            reference=f"talib.RSI(close, timeperiod={n})",
        )
        for n in RSI_PERIODS
    ],
    Feature(
        "stoch_k_14",
        M,
        col("stoch_k14"),
        warmup=15,
        description="slow stochastic %K: 3-day mean of the close's place in the 14-day range",
        params={"fastk_period": 14, "slowk_period": 3},
        reference="talib.STOCH(high, low, close, fastk_period=14, slowk_period=3, slowk_matype=0, slowd_period=3, slowd_matype=0)[0]",
    ),
    Feature(
        "stoch_d_14",
        M,
        ind.sma(col("stoch_k14"), 3),
        warmup=17,
        description="slow stochastic %D: 3-day mean of slow %K",
        params={"fastk_period": 14, "slowk_period": 3, "slowd_period": 3},
        reference="talib.STOCH(high, low, close, fastk_period=14, slowk_period=3, slowk_matype=0, slowd_period=3, slowd_matype=0)[1]",
    ),
    Feature(
        "stochf_k_14",
        M,
        col("stochf14"),
        warmup=13,
        description="fast stochastic %K: the close's place in the 14-day high-low range, 0..100",
        params={"fastk_period": 14},
        reference="talib.STOCHF(high, low, close, fastk_period=14, fastd_period=1, fastd_matype=0)[0]",
    ),
    Feature(
        "willr_14",
        M,
        ind.williams_r(C, col("high14"), col("low14")),
        warmup=13,
        description="Williams %R: distance of the close below the 14-day high, -100..0",
        params={"timeperiod": 14},
        reference="talib.WILLR(high, low, close, timeperiod=14)",
    ),
    *[
        Feature(
            f"roc_{n}",
            M,
            ind.roc(C, n),
            warmup=n,
            description=f"rate of change over {n} days, in percent",
            params={"timeperiod": n},
            reference=f"talib.ROC(close, timeperiod={n})",
        )
        for n in (10, 60, 120)
    ],
    Feature(
        "mfi_14",
        M,
        ind.money_flow_index(col("money_in14"), col("money_out14")),
        warmup=14,
        description="money flow index: volume-weighted RSI of the typical price, 0..100",
        params={"timeperiod": 14},
        reference="talib.MFI(high, low, close, volume, timeperiod=14)",
        uses_volume=True,
    ),
    Feature(
        "cmo_14",
        M,
        ind.cmo_from(col("gain14"), col("loss14")),
        warmup=14,
        description="Chande momentum oscillator: smoothed gains minus losses over their sum, -100..100",
        params={"timeperiod": 14},
        reference="talib.CMO(close, timeperiod=14)",
    ),
    Feature(
        "ultosc",
        M,
        ind.ultimate_oscillator(L, C, col("prev_close"), col("tr"), (7, 14, 28)),
        warmup=28,
        description="ultimate oscillator: buying pressure over 7, 14 and 28 days weighted 4:2:1",
        params={"timeperiod1": 7, "timeperiod2": 14, "timeperiod3": 28},
        reference="talib.ULTOSC(high, low, close, timeperiod1=7, timeperiod2=14, timeperiod3=28)",
    ),
    Feature(
        "ppo_12_26",
        M,
        ind.ratio(100.0 * (ind.sma(C, 12) - ind.sma(C, 26)), ind.sma(C, 26), when_zero=0.0),
        warmup=25,
        description="percentage price oscillator: (SMA12 - SMA26) / SMA26 in percent",
        params={"fastperiod": 12, "slowperiod": 26},
        reference="talib.PPO(close, fastperiod=12, slowperiod=26, matype=0)",
    ),
    Feature(
        "stochrsi_k",
        M,
        col("stochrsi_k"),
        warmup=18,
        description="stochastic RSI %K: RSI(14)'s place in its own 5-day range, 0..100",
        params={"timeperiod": 14, "fastk_period": 5},
        reference="talib.STOCHRSI(close, timeperiod=14, fastk_period=5, fastd_period=3, fastd_matype=0)[0]",
    ),
    Feature(
        "stochrsi_d",
        M,
        ind.sma(col("stochrsi_k"), 3),
        warmup=20,
        description="stochastic RSI %D: 3-day mean of stochastic RSI %K",
        params={"timeperiod": 14, "fastk_period": 5, "fastd_period": 3},
        reference="talib.STOCHRSI(close, timeperiod=14, fastk_period=5, fastd_period=3, fastd_matype=0)[1]",
    ),
]
