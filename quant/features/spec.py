"""What a feature is: a named polars expression with the facts a catalog and the checks need."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from enum import StrEnum

import polars as pl


class Family(StrEnum):
    TREND = "trend"
    MOMENTUM = "momentum"
    VOLATILITY = "volatility"
    VOLUME = "volume"
    PATTERN = "pattern"
    STATISTICAL = "statistical"


@dataclass(frozen=True)
class Feature:
    """One output column of ``compute_features``.

    ``warmup``: sessions of a symbol's history before the value is defined (the first defined
    value is at 0-based row ``warmup``). ``reference``: a Python expression over the numpy arrays
    ``open, high, low, close, volume`` and the modules ``talib`` and ``np`` that equals the feature
    after warm-up, where a standard definition exists. ``uses_volume``: undefined for instruments
    that report no volume (indices such as ^VIX).
    """

    name: str
    family: Family
    expr: pl.Expr = field(repr=False, compare=False)
    warmup: int
    description: str
    params: Mapping[str, int | float] = field(default_factory=dict)
    reference: str | None = None
    uses_volume: bool = False

    def catalog_entry(self) -> dict[str, object]:
        return {
            "name": self.name,
            "family": str(self.family),
            "description": self.description,
            "params": dict(self.params),
            "warmup": self.warmup,
            "reference": self.reference,
            "uses_volume": self.uses_volume,
        }


@dataclass(frozen=True)
class Intermediate:
    """A helper column (name starts with ``_``) that several features share: computed once, in
    its own stage, so deep expressions are not re-evaluated inside every feature using them."""

    name: str
    expr: pl.Expr = field(repr=False, compare=False)


def stages(columns: Sequence[tuple[str, pl.Expr]], inputs: set[str]) -> list[dict[str, pl.Expr]]:
    """Group named expressions into evaluation stages: each stage only reads ``inputs`` and the
    columns of earlier stages (found from the expressions' root column names)."""
    level: dict[str, int] = {}
    for name, expr in columns:
        depends = set(expr.meta.root_names()) - inputs
        unknown = depends - set(level)
        if unknown:
            raise ValueError(f"{name} reads {sorted(unknown)}, which are not defined before it")
        level[name] = 1 + max((level[d] for d in depends), default=-1)
    grouped: dict[int, dict[str, pl.Expr]] = {}
    for name, expr in columns:
        grouped.setdefault(level[name], {})[name] = expr
    return [grouped[k] for k in sorted(grouped)]


def by_name(features: Sequence[Feature]) -> Mapping[str, Feature]:
    names = [f.name for f in features]
    duplicates = sorted({n for n in names if names.count(n) > 1})
    if duplicates:
        raise ValueError(f"duplicate feature names: {duplicates}")
    return {f.name: f for f in features}
