"""Helper columns shared by several features (true range, smoothed gains, EMAs, A/D line ...).

Each is computed once per panel in its own stage; features read them with ``pl.col("_name")``.
"""

from __future__ import annotations

import polars as pl

from quant.features import indicators as ind
from quant.features.spec import Intermediate

O, H, L, C, V = (pl.col(c) for c in ("open", "high", "low", "close", "volume"))  # noqa: E741 (the usual OHLCV letters)


def col(name: str) -> pl.Expr:
    return pl.col(f"_{name}")


def _smoothed(prefix: str, source: str, periods: tuple[int, ...]) -> list[Intermediate]:
    return [
        Intermediate(f"_{prefix}{n}", ind.wilder(col(source), n, first_valid=1)) for n in periods
    ]


RSI_PERIODS = (7, 14, 21)
ATR_PERIODS = (5, 10, 14, 20)
EMA_PERIODS = (10, 20, 50)

INTERMEDIATES: list[Intermediate] = [
    Intermediate("_prev_close", ind.lag(C)),
    Intermediate("_change", C - col("prev_close")),
    Intermediate("_ret", ind.ratio(C, col("prev_close")).log()),
    Intermediate("_typical", (H + L + C) / 3.0),
    Intermediate("_typical_sma20", ind.sma(col("typical"), 20)),
    Intermediate("_tr", ind.true_range(H, L, C)),
    Intermediate("_up", ind.gain(col("change"))),
    Intermediate("_down", ind.loss(col("change"))),
    *_smoothed("gain", "up", RSI_PERIODS),
    *_smoothed("loss", "down", RSI_PERIODS),
    Intermediate("_rsi14", ind.rsi_from(col("gain14"), col("loss14"))),
    *_smoothed("atr", "tr", ATR_PERIODS),
    Intermediate("_plus_dm", ind.directional_movement(H, L)[0]),
    Intermediate("_minus_dm", ind.directional_movement(H, L)[1]),
    Intermediate("_tr_sum14", ind.wilder_sum_ratio(col("tr"), 14, first_valid=1)),
    Intermediate("_plus_dm_sum14", ind.wilder_sum_ratio(col("plus_dm"), 14, first_valid=1)),
    Intermediate("_minus_dm_sum14", ind.wilder_sum_ratio(col("minus_dm"), 14, first_valid=1)),
    # the Wilder sums hold their seed (n - 1 values) at row 13; TA-Lib's first DI is at row 14
    Intermediate(
        "_plus_di14",
        ind.from_row(ind.directional_index(col("plus_dm_sum14"), col("tr_sum14")), 14),
    ),
    Intermediate(
        "_minus_di14",
        ind.from_row(ind.directional_index(col("minus_dm_sum14"), col("tr_sum14")), 14),
    ),
    Intermediate("_dx14", ind.directional_movement_index(col("plus_di14"), col("minus_di14"))),
    Intermediate("_adx14", ind.wilder(col("dx14"), 14, first_valid=14)),
    *[Intermediate(f"_ema{n}", ind.ema(C, n)) for n in EMA_PERIODS],
    # MACD (12, 26, 9): TA-Lib seeds the fast EMA so that it starts where the slow one starts
    Intermediate("_ema12_aligned", ind.ema(C, 12, first_valid=26 - 12)),
    Intermediate("_ema26", ind.ema(C, 26)),
    Intermediate("_macd_raw", col("ema12_aligned") - col("ema26")),
    Intermediate("_macd_signal", ind.ema(col("macd_raw"), 9, first_valid=25)),
    Intermediate("_macd", pl.when(col("macd_signal").is_not_null()).then(col("macd_raw"))),
    # TRIX(15): EMA of EMA of EMA, each seeded where its input starts
    Intermediate("_trix_ema1", ind.ema(C, 15)),
    Intermediate("_trix_ema2", ind.ema(col("trix_ema1"), 15, first_valid=14)),
    Intermediate("_trix_ema3", ind.ema(col("trix_ema2"), 15, first_valid=28)),
    Intermediate("_obv", ind.on_balance_volume(C, V)),
    Intermediate("_mfv", ind.money_flow_volume(H, L, C, V)),
    Intermediate("_ad", col("mfv").cum_sum().over(ind.GROUP)),
    Intermediate("_volume_sum20", ind.rolling_sum(V, 20)),
    Intermediate("_volume_sma20", ind.sma(V, 20)),
    Intermediate("_bb_mid20", ind.sma(C, 20)),
    Intermediate("_bb_std20", ind.stddev(C, 20)),
    Intermediate("_high20", ind.rolling_max(H, 20)),
    Intermediate("_low20", ind.rolling_min(L, 20)),
    Intermediate("_high14", ind.rolling_max(H, 14)),
    Intermediate("_low14", ind.rolling_min(L, 14)),
    Intermediate("_high55", ind.rolling_max(H, 55)),
    Intermediate("_low55", ind.rolling_min(L, 55)),
    Intermediate("_stochf14", ind.stochastic_fast_k(C, col("high14"), col("low14"))),
    Intermediate("_stoch_k14", ind.sma(col("stochf14"), 3)),
    Intermediate("_rsi14_high5", ind.rolling_max(col("rsi14"), 5)),
    Intermediate("_rsi14_low5", ind.rolling_min(col("rsi14"), 5)),
    Intermediate(
        "_stochrsi_k", ind.stochastic_fast_k(col("rsi14"), col("rsi14_high5"), col("rsi14_low5"))
    ),
    Intermediate("_money_in14", ind.money_flow(col("typical"), V, 14, positive=True)),
    Intermediate("_money_out14", ind.money_flow(col("typical"), V, 14, positive=False)),
    # raw moments of daily log returns over 60 sessions (skewness, kurtosis)
    *[Intermediate(f"_ret_m{k}_60", ind.sma(col("ret").pow(k), 60)) for k in (1, 2, 3, 4)],
    Intermediate("_share_up20", ind.sma(ind.from_row((col("change") > 0).cast(pl.Float64), 1), 20)),
]
