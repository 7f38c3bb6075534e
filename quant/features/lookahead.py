"""Proof of no look-ahead: recompute on history truncated at cut dates and compare.

A feature that reads the future (a shift the wrong way, a centred window, a z-score over the
whole sample, a rank over all dates) changes its past values when the future is removed; an
honest one cannot. Values at or before each cut must be identical, bit for bit.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from datetime import date

import polars as pl

FeatureFunction = Callable[[pl.DataFrame], pl.DataFrame]


@dataclass(frozen=True)
class LookaheadReport:
    """Which features changed their past when the future was removed, and where first."""

    cuts: tuple[date, ...]
    rows_compared: int
    leaking: dict[str, dict[str, object]] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return not self.leaking


def default_cut_dates(dates: pl.Series, count: int = 4) -> list[date]:
    """``count`` cut dates spread over the sample (never the last date: nothing after it)."""
    unique = dates.unique().sort()
    if unique.len() < 2:
        return []
    positions = [round((unique.len() - 1) * k / (count + 1)) for k in range(1, count + 1)]
    return sorted({unique[p] for p in positions if p < unique.len() - 1})


def find_lookahead(
    bars: pl.DataFrame,
    compute: FeatureFunction,
    full: pl.DataFrame | None = None,
    cuts: Sequence[date] | None = None,
) -> LookaheadReport:
    """Compare ``compute`` on the full ``bars`` (or the given ``full`` result) with ``compute`` on
    ``bars`` truncated after each cut; report every feature whose value at or before a cut moved."""
    full = compute(bars) if full is None else full
    cuts = list(cuts) if cuts is not None else default_cut_dates(bars["date"])
    keys = ["symbol", "date"]
    features = [c for c in full.columns if c not in keys]
    leaking: dict[str, dict[str, object]] = {}
    compared = 0
    for cut in cuts:
        truncated = compute(bars.filter(pl.col("date") <= cut)).sort(keys)
        before = full.filter(pl.col("date") <= cut).sort(keys)
        if truncated.select(keys).equals(before.select(keys)) is False:
            raise ValueError(f"truncating at {cut} changed the (symbol, date) rows themselves")
        compared += before.height
        for name in features:
            if name in leaking:
                continue
            changed = _changed_rows(before, truncated, name)
            if changed.height:
                first = changed.row(0, named=True)
                leaking[name] = {
                    "cut": str(cut),
                    "rows_changed": changed.height,
                    "first_symbol": first["symbol"],
                    "first_date": str(first["date"]),
                    "full_value": first["full"],
                    "truncated_value": first["truncated"],
                }
    return LookaheadReport(tuple(cuts), compared, leaking)


def _changed_rows(before: pl.DataFrame, truncated: pl.DataFrame, name: str) -> pl.DataFrame:
    """Rows where the two values differ (null vs value, or any numeric difference; NaN == NaN)."""
    pair = pl.DataFrame(
        {
            "symbol": before["symbol"],
            "date": before["date"],
            "full": before[name],
            "truncated": truncated[name],
        }
    )
    same = pl.col("full").eq_missing(pl.col("truncated")) | (
        pl.col("full").is_nan() & pl.col("truncated").is_nan()
    ).fill_null(False)
    return pair.filter(~same)
