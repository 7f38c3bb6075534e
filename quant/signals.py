"""Turning model outputs into BUY / SELL / HOLD with a confidence and a position size.

The combiner is a small, transparent mixture of experts:

1. **Direction (soft vote).** P(Down), P(Neutral), P(Up) are the mean of the direction models'
   probabilities; the *edge* is P(Up) − P(Down), the *confidence* its absolute value.
2. **Regime gate.** A trade needs |edge| ≥ ``min_edge``. Against the predicted regime (a BUY in a
   predicted Bear, a SELL in a predicted Bull) or in a predicted HighVol regime it needs twice
   that: the regime model can veto a weak direction call, never create one.
3. **Volatility sizing.** The position is ``sign × min(1, target_vol / forecast_vol)``: the same
   expected risk per name, never levered above 1. HOLD is a position of 0.
4. **Stale data.** A symbol whose last bar is behind its exchange calendar (quant.freshness) is
   held: :func:`hold_stale`, like an operator halt (:func:`halt_all`) for one symbol.

Every input of a signal at date t is a model output at date t, which only reads data up to t.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass

import polars as pl

from quant.labels import REGIME_NAMES, Regime

DIRECTION = ["p_down", "p_neutral", "p_up"]
REGIME = ["p_bear", "p_sideways", "p_bull", "p_highvol"]
BUY, SELL, HOLD = "BUY", "SELL", "HOLD"


@dataclass(frozen=True)
class SignalRule:
    """The combiner's parameters (documented in the module docstring)."""

    min_edge: float = 0.05
    gate_multiplier: float = 2.0
    target_vol: float = 0.15
    long_only: bool = False


def soft_vote(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """Mean direction probabilities of several models, per (symbol, date) all of them scored."""
    if not frames:
        raise ValueError("soft_vote needs at least one direction model's outputs")
    stacked = pl.concat([f.select("symbol", "date", *DIRECTION) for f in frames])
    return (
        stacked.drop_nulls(DIRECTION)
        .group_by("symbol", "date")
        .agg(pl.col(DIRECTION).mean(), pl.len().alias("direction_models"))
        .filter(pl.col("direction_models") == len(frames))
        .drop("direction_models")
    )


def combine(
    direction: pl.DataFrame,
    volatility: pl.DataFrame,
    regime: pl.DataFrame,
    rule: SignalRule | None = None,
) -> pl.DataFrame:
    """Signals from the three families' outputs, joined on (symbol, date).

    ``direction``: symbol, date, p_down, p_neutral, p_up; ``volatility``: symbol, date,
    vol_forecast; ``regime``: symbol, date, p_bear .. p_highvol. Output adds edge, confidence,
    regime (name), signal, position.
    """
    rule = rule or SignalRule()
    regime_code = pl.concat_list(REGIME).list.arg_max()
    frame = (
        direction.join(volatility.select("symbol", "date", "vol_forecast"), on=["symbol", "date"])
        .join(regime.select("symbol", "date", *REGIME), on=["symbol", "date"])
        .with_columns(
            (pl.col("p_up") - pl.col("p_down")).alias("edge"),
            regime_code.alias("_regime"),
        )
    )
    edge, code = pl.col("edge"), pl.col("_regime")
    strong = edge.abs() >= rule.min_edge * rule.gate_multiplier
    against = ((edge > 0) & (code == Regime.BEAR.value)) | (
        (edge < 0) & (code == Regime.BULL.value)
    )
    gated = against | (code == Regime.HIGH_VOL.value)
    tradable = (edge.abs() >= rule.min_edge) & (~gated | strong)
    if rule.long_only:
        tradable = tradable & (edge > 0)
    signal = (
        pl.when(tradable & (edge > 0))
        .then(pl.lit(BUY))
        .when(tradable & (edge < 0))
        .then(pl.lit(SELL))
        .otherwise(pl.lit(HOLD))
    )
    size = pl.min_horizontal(pl.lit(1.0), rule.target_vol / pl.col("vol_forecast"))
    return (
        frame.with_columns(signal.alias("signal"), edge.abs().alias("confidence"))
        .with_columns(
            pl.when(pl.col("signal") == BUY)
            .then(size)
            .when(pl.col("signal") == SELL)
            .then(-size)
            .otherwise(0.0)
            .alias("position"),
            code.replace_strict(dict(enumerate(REGIME_NAMES)), return_dtype=pl.String).alias(
                "regime"
            ),
        )
        .drop("_regime")
        .sort("symbol", "date")
    )


def latest(signals: pl.DataFrame) -> pl.DataFrame:
    """Each symbol's most recent signal."""
    return signals.sort("symbol", "date").group_by("symbol", maintain_order=True).last()


def halt_all(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame``'s signals as served under an operator halt: every signal HOLD, position 0.

    The model outputs (probabilities, volatility, regime, edge) are kept, so what the models
    said during a halt stays visible; ``halted`` is set to True on every row.
    """
    return frame.with_columns(
        pl.lit(HOLD, pl.String).alias("signal"),
        pl.lit(0.0, pl.Float64).alias("position"),
        pl.lit(True, pl.Boolean).alias("halted"),
    )


def hold_stale(frame: pl.DataFrame, stale_symbols: Iterable[str]) -> pl.DataFrame:
    """``frame``'s signals with every row of ``stale_symbols`` turned into HOLD, position 0.

    Why: a signal made from a bar sessions older than the run date (quant.freshness) is not
    today's signal and must not be traded. As under a halt, the model outputs are kept; ``stale``
    is set to True on those rows and False on the others.
    """
    stale = pl.col("symbol").is_in(sorted(set(stale_symbols)))
    return frame.with_columns(
        pl.when(stale).then(pl.lit(HOLD, pl.String)).otherwise(pl.col("signal")).alias("signal"),
        pl.when(stale).then(0.0).otherwise(pl.col("position")).cast(pl.Float64).alias("position"),
        stale.alias("stale"),
    )
