"""Every strategy the project could have picked on the walk-forward record, and the deflated
Sharpe ratio (Bailey & López de Prado 2014) of the one it did pick.

A Sharpe ratio reported after choices were made is the best of several attempts, and the best
of N noise strategies has a positive Sharpe by luck alone. The deflated Sharpe ratio (DSR) is
the probability that the chosen strategy's true Sharpe exceeds the expected maximum Sharpe of
``n_trials`` zero-skill attempts whose Sharpes vary as much as the attempts actually made.

**The variants** (:func:`variants`) are the choices that exist in the code and its config, each
replayed on the record with the same costs, universe and cash rate:

- direction: each direction model of the record alone, and their soft vote (the served choice);
- volatility sizing: each volatility model of the record alone, and their mean (serving's
  forecast combination); the record's headline uses GARCH, as ``record_signals`` does;
- the signal rule (``quant.signals.SignalRule``, every threshold a config option): ``min_edge``
  at half, the configured value and double; the regime gate on (``gate_multiplier`` as
  configured, 2 when it is 1) or off (1); long/short or long-only (``target_vol`` only scales
  positions and is kept as configured);
- the execution lag: 0 or 1 session.

**The count** (:func:`deflate`): ``n_trials = max(V, V + T)`` where V is the number of variants
enumerated (all of them, including those that never trade) and T the completed Optuna trials
across every study of the Optuna storage (the hyperparameter searches behind the models), when
it can be read; ``sr_variance`` is the sample variance (ddof=1) of the variants' per-period
Sharpe ratios (variants whose Sharpe is undefined, e.g. never trading, are counted as trials but
add nothing to the variance). Every Sharpe here is per session and in excess of the cash rate.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
import polars as pl

from quant.backtest import (
    EXECUTION_LAGS,
    KEYS,
    TRADING_DAYS,
    Costs,
    lagged_returns,
    strategy_returns,
)
from quant.evaluation.scoreboard import deflated_sharpe, excess_sharpe
from quant.signals import SignalRule, combine, soft_vote
from quant.walk_forward import FAMILY_OF
from quant.walk_forward_report import SIGNAL_MODELS

DIRECTION_MODELS: tuple[str, ...] = tuple(SIGNAL_MODELS["direction"])
VOLATILITY_MODELS: tuple[str, ...] = tuple(m for m, f in FAMILY_OF.items() if f == "volatility")
HEADLINE_VOLATILITY: str = SIGNAL_MODELS["volatility"]
REGIME_MODEL: str = SIGNAL_MODELS["regime"]
DSR_CONFIDENCE = 0.95
COUNTING = (
    "n_trials = max(V, V + T): V variants replayed on the record (each direction model alone "
    "and their soft vote x each volatility model alone and their mean x min_edge at 1/2, 1 "
    "and 2 times the configured value x regime gate on/off x long/short or long-only x "
    "execution lag 0/1), T the completed Optuna trials across all studies of the Optuna "
    "storage; sr_variance = sample variance (ddof=1) of the variants' per-session Sharpes in "
    "excess of cash (undefined Sharpes, e.g. never trading, count as trials only)"
)


def _short(model: str) -> str:
    return model.split("_", 1)[-1]


@dataclass(frozen=True)
class Variant:
    """One strategy the project could have picked: which direction models vote, which
    volatility forecasts size, the rule, and the execution lag."""

    direction: tuple[str, ...]
    volatility: tuple[str, ...]
    rule: SignalRule
    lag: int

    @property
    def name(self) -> str:
        side = "long-only" if self.rule.long_only else "long/short"
        return (
            f"{'+'.join(map(_short, self.direction))} · {'+'.join(map(_short, self.volatility))}"
            f" · edge {self.rule.min_edge:g}, gate {self.rule.gate_multiplier:g}, {side}"
            f" · lag {self.lag}"
        )


def rule_grid(rule: SignalRule) -> list[SignalRule]:
    """The rule's neighbourhood that exists as config options: ``min_edge`` x 1/2, 1, 2; the
    regime gate off (1) or on (the configured multiplier, 2 when that is 1); long/short or
    long-only. Includes ``rule`` itself."""
    edges = sorted({rule.min_edge / 2, rule.min_edge, rule.min_edge * 2})
    gates = sorted({1.0, rule.gate_multiplier if rule.gate_multiplier != 1.0 else 2.0})
    return [
        SignalRule(edge, gate, rule.target_vol, long_only)
        for edge in edges
        for gate in gates
        for long_only in (False, True)
    ]


def _choices(models: list[str]) -> list[tuple[str, ...]]:
    """Each model alone, and all of them together when there are several."""
    return [(m,) for m in models] + ([tuple(models)] if len(models) > 1 else [])


def _present(record: pl.DataFrame) -> set[str]:
    return set(record["model"].unique().to_list()) if not record.is_empty() else set()


def headline_variant(record: pl.DataFrame, rule: SignalRule, lag: int) -> Variant | None:
    """The strategy the backtest reports: the soft vote of the record's direction models, GARCH
    sizing, the configured rule and lag (what ``record_signals`` replays); None when the record
    lacks a family."""
    present = _present(record)
    directions = tuple(m for m in DIRECTION_MODELS if m in present)
    if not directions or not {HEADLINE_VOLATILITY, REGIME_MODEL} <= present:
        return None
    return Variant(directions, (HEADLINE_VOLATILITY,), rule, lag)


def variants(record: pl.DataFrame, rule: SignalRule) -> list[Variant]:
    """Every variant the record can replay (module docstring); empty when it has no direction,
    volatility or regime model."""
    present = _present(record)
    directions = [m for m in DIRECTION_MODELS if m in present]
    volatilities = [m for m in VOLATILITY_MODELS if m in present]
    if not directions or not volatilities or REGIME_MODEL not in present:
        return []
    return [
        Variant(direction, volatility, candidate, lag)
        for direction in _choices(directions)
        for volatility in _choices(volatilities)
        for candidate in rule_grid(rule)
        for lag in EXECUTION_LAGS
    ]


def _volatility(record: pl.DataFrame, models: tuple[str, ...]) -> pl.DataFrame:
    """One model's forecasts, or the mean of several where all of them forecast."""
    rows = [record.filter(pl.col("model") == m).select(*KEYS, "vol_forecast") for m in models]
    if len(rows) == 1:
        return rows[0]
    return (
        pl.concat(rows)
        .drop_nulls("vol_forecast")
        .group_by(KEYS)
        .agg(pl.col("vol_forecast").mean(), pl.len().alias("_n"))
        .filter(pl.col("_n") == len(rows))
        .drop("_n")
    )


class _Replay:
    """Replays variants on one record, each input frame built once."""

    def __init__(self, record: pl.DataFrame, symbols: list[str]) -> None:
        record = record.filter(pl.col("symbol").is_in(symbols))  # only the traded names
        self.record = record
        self.symbols = symbols
        self.returns = {
            lag: lagged_returns(record.select(*KEYS, "fwd_return_1"), lag) for lag in EXECUTION_LAGS
        }
        self.regime = record.filter(pl.col("model") == REGIME_MODEL)
        self._direction: dict[tuple[str, ...], pl.DataFrame] = {}
        self._vol: dict[tuple[str, ...], pl.DataFrame] = {}

    def signals(self, variant: Variant) -> pl.DataFrame:
        if variant.direction not in self._direction:
            self._direction[variant.direction] = soft_vote(
                [self.record.filter(pl.col("model") == m) for m in variant.direction]
            )
        if variant.volatility not in self._vol:
            self._vol[variant.volatility] = _volatility(self.record, variant.volatility)
        signals = combine(
            self._direction[variant.direction],
            self._vol[variant.volatility],
            self.regime,
            variant.rule,
        )
        return signals

    def daily(self, signals: pl.DataFrame, lag: int, costs: Costs) -> pl.DataFrame:
        return strategy_returns(signals.join(self.returns[lag], on=KEYS, how="inner"), costs)


def variant_sharpes(
    record: pl.DataFrame,
    rule: SignalRule,
    symbols: list[str],
    costs: Costs,
    cash_rate: float = 0.0,
    chosen: Variant | None = None,
) -> pl.DataFrame:
    """One row per variant (:func:`variants`) replayed on ``record`` (the walk-forward record
    with ``fwd_return_1``) over ``symbols``, net of ``costs``: variant (its name), direction,
    volatility, min_edge, gate_multiplier, long_only, lag, days, total_return (net), sharpe (per
    session, in excess of ``cash_rate``), sharpe_annual, chosen (the headline variant). Sorted by
    Sharpe, best first (undefined last)."""
    replay = _Replay(record, symbols)
    rows = []
    cache: dict[tuple, pl.DataFrame] = {}
    for variant in variants(record, rule):
        key = (variant.direction, variant.volatility, variant.rule)
        if key not in cache:
            cache[key] = replay.signals(variant)
        net = replay.daily(cache[key], variant.lag, costs)["net"].to_numpy()
        annual = excess_sharpe(net, cash_rate, TRADING_DAYS)
        rows.append(
            {
                "variant": variant.name,
                "direction": "+".join(variant.direction),
                "volatility": "+".join(variant.volatility),
                "min_edge": variant.rule.min_edge,
                "gate_multiplier": variant.rule.gate_multiplier,
                "long_only": variant.rule.long_only,
                "lag": variant.lag,
                "days": int(net.size),
                "total_return": float(np.prod(1.0 + net) - 1.0) if net.size else math.nan,
                "sharpe": annual / math.sqrt(TRADING_DAYS),
                "sharpe_annual": annual,
                "chosen": variant == chosen,
            }
        )
    schema = {
        "variant": pl.String,
        "direction": pl.String,
        "volatility": pl.String,
        "min_edge": pl.Float64,
        "gate_multiplier": pl.Float64,
        "long_only": pl.Boolean,
        "lag": pl.Int64,
        "days": pl.Int64,
        "total_return": pl.Float64,
        "sharpe": pl.Float64,
        "sharpe_annual": pl.Float64,
        "chosen": pl.Boolean,
    }
    table = pl.DataFrame(rows, schema=schema)
    return table.sort(pl.col("sharpe").fill_nan(None), descending=True, nulls_last=True)


@dataclass(frozen=True)
class Deflation:
    """The deflated Sharpe ratio of the chosen strategy and how its trials were counted."""

    sr: float  # per session, in excess of cash
    sr_annual: float
    expected_max_sr: float  # per session: the best of n_trials noise strategies
    dsr: float
    n_trials: int
    n_variants: int
    optuna_trials: int | None  # None: the Optuna storage could not be read
    sr_variance: float
    variants_with_sharpe: int
    n_obs: int
    skew: float
    kurtosis: float
    counting: str = COUNTING

    def verdict(self) -> str:
        """One line, e.g. "DSR 0.31: the Sharpe is not distinguishable from the best of 48 noise
        strategies"."""
        if not math.isfinite(self.dsr):
            return (
                f"DSR undefined ({self.n_obs} sessions, constant or too few returns): nothing "
                f"to tell from the best of {self.n_trials} noise strategies"
            )
        if self.dsr >= DSR_CONFIDENCE:
            return (
                f"DSR {self.dsr:.2f}: the Sharpe beats the best of {self.n_trials} noise "
                f"strategies at {DSR_CONFIDENCE:.0%} confidence"
            )
        return (
            f"DSR {self.dsr:.2f}: the Sharpe is not distinguishable from the best of "
            f"{self.n_trials} noise strategies"
        )

    def as_dict(self) -> dict[str, object]:
        return {
            "sr": self.sr,
            "sr_annual": self.sr_annual,
            "expected_max_sr": self.expected_max_sr,
            "expected_max_sr_annual": self.expected_max_sr * math.sqrt(TRADING_DAYS),
            "dsr": self.dsr,
            "n_trials": self.n_trials,
            "n_variants": self.n_variants,
            "optuna_trials": self.optuna_trials,
            "sr_variance": self.sr_variance,
            "variants_with_sharpe": self.variants_with_sharpe,
            "n_obs": self.n_obs,
            "skew": self.skew,
            "kurtosis": self.kurtosis,
            "counting": self.counting,
        }


def trial_count(n_variants: int, optuna_trials: int | None) -> int:
    """max(V, V + T): the variants, plus the completed Optuna trials when they are known."""
    return max(n_variants, n_variants + (optuna_trials or 0))


def deflate(
    returns: np.ndarray,
    table: pl.DataFrame,
    optuna_trials: int | None,
    cash_rate: float = 0.0,
    n_trials: int | None = None,
) -> Deflation:
    """The DSR of the chosen strategy's daily net ``returns`` (raw; the cash rate is taken off
    here) against the variants of ``table`` (:func:`variant_sharpes`) and ``optuna_trials``
    completed Optuna trials (None: unknown, the variants alone are counted). ``n_trials``
    overrides the count (for sensitivity, never in the asset)."""
    n_variants = table.height
    count = trial_count(n_variants, optuna_trials) if n_trials is None else n_trials
    sharpes = table["sharpe"].cast(pl.Float64).fill_null(math.nan).to_numpy()
    sharpes = sharpes[np.isfinite(sharpes)]
    variance = float(np.var(sharpes, ddof=1)) if sharpes.size >= 2 else 0.0
    r = np.asarray(returns, dtype=float)
    r = r[np.isfinite(r)] - cash_rate / TRADING_DAYS
    result = deflated_sharpe(r, max(count, 1), variance)
    return Deflation(
        sr=result["sr"],
        sr_annual=result["sr"] * math.sqrt(TRADING_DAYS),
        expected_max_sr=result["expected_max_sr"],
        dsr=result["dsr"],
        n_trials=max(count, 1),
        n_variants=n_variants,
        optuna_trials=optuna_trials,
        sr_variance=variance,
        variants_with_sharpe=int(sharpes.size),
        n_obs=int(result["n_obs"]),
        skew=result["skew"],
        kurtosis=result["kurtosis"],
    )
