"""Volume: participation and money flow (OBV, A/D, Chaikin, VWAP, volume ratios).

Undefined (null) for instruments that report no volume, such as ^VIX: a ratio over a zero
volume has no meaning, and 0 would pretend to know something.
"""

from __future__ import annotations

from quant.features import indicators as ind
from quant.features.base import C, V, col
from quant.features.spec import Family, Feature

VOL = Family.VOLUME


def _obv_slope(n: int) -> Feature:
    return Feature(
        f"obv_slope_{n}",
        VOL,
        ind.ratio(ind.momentum(col("obv"), n), ind.rolling_sum(V, n)),
        warmup=n,
        description=f"change of on-balance volume over {n} days per unit of volume traded, -1..1",
        params={"timeperiod": n},
        reference=f"talib.MOM(talib.OBV(close, volume), timeperiod={n}) / talib.SUM(volume, timeperiod={n})",
        uses_volume=True,
    )


FEATURES: list[Feature] = [
    _obv_slope(20),
    _obv_slope(60),
    Feature(
        "volume_ratio_20",
        VOL,
        ind.ratio(V, col("volume_sma20")),
        warmup=19,
        description="today's volume over its 20-day average",
        params={"timeperiod": 20},
        reference="volume / talib.SMA(volume, timeperiod=20)",
        uses_volume=True,
    ),
    Feature(
        "volume_ratio_5_50",
        VOL,
        ind.ratio(ind.sma(V, 5), ind.sma(V, 50)),
        warmup=49,
        description="5-day over 50-day average volume",
        params={"fast": 5, "slow": 50},
        reference="talib.SMA(volume, timeperiod=5) / talib.SMA(volume, timeperiod=50)",
        uses_volume=True,
    ),
    Feature(
        "volume_zscore_20",
        VOL,
        ind.ratio(V - col("volume_sma20"), ind.stddev(V, 20)),
        warmup=19,
        description="today's volume in standard deviations from its 20-day mean",
        params={"timeperiod": 20},
        reference="(volume - talib.SMA(volume, timeperiod=20)) / talib.STDDEV(volume, timeperiod=20)",
        uses_volume=True,
    ),
    Feature(
        "vwap_dev_20",
        VOL,
        C / ind.ratio(ind.rolling_sum(col("typical") * V, 20), col("volume_sum20")) - 1.0,
        warmup=19,
        description="close relative to the 20-day volume-weighted average typical price",
        params={"timeperiod": 20},
        reference="close / (talib.SUM((high + low + close) / 3 * volume, timeperiod=20) / talib.SUM(volume, timeperiod=20)) - 1",
        uses_volume=True,
    ),
    Feature(
        "cmf_20",
        VOL,
        ind.ratio(ind.rolling_sum(col("mfv"), 20), col("volume_sum20")),
        warmup=19,
        description="Chaikin money flow: 20-day money-flow volume over volume, -1..1",
        params={"timeperiod": 20},
        reference="talib.MOM(talib.AD(high, low, close, volume), timeperiod=20) / talib.SUM(volume, timeperiod=20)",
        uses_volume=True,
    ),
    Feature(
        "chaikin_osc_norm",
        VOL,
        ind.ratio(ind.chaikin_oscillator(col("ad"), 3, 10), ind.sma(V, 10)),
        warmup=9,
        description="Chaikin oscillator (EMA3 - EMA10 of the A/D line) per unit of 10-day average volume",
        params={"fastperiod": 3, "slowperiod": 10},
        reference="talib.ADOSC(high, low, close, volume, fastperiod=3, slowperiod=10) / talib.SMA(volume, timeperiod=10)",
        uses_volume=True,
    ),
    Feature(
        "up_volume_share_20",
        VOL,
        ind.ratio(
            ind.rolling_sum(ind.from_row(V * (col("change") > 0).cast(float), 1), 20),
            ind.rolling_sum(ind.from_row(V, 1), 20),
        ),
        warmup=20,
        description="share of the last 20 days' volume traded on up days",
        params={"timeperiod": 20},
        uses_volume=True,
    ),
    Feature(
        "volume_volatility_corr_20",
        VOL,
        ind.rolling_corr(V, col("ret").abs(), 20),
        warmup=20,
        description="20-day correlation of volume with the absolute daily return",
        params={"timeperiod": 20},
        uses_volume=True,
    ),
]
