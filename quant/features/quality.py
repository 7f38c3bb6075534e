"""Sanity of the feature panel: nulls after warm-up, infinities, constant columns.

A feature that is mostly null, infinite somewhere or constant is a bug (a wrong window, a division
by zero, a mask inverted), not a modelling choice.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass

import polars as pl

from quant.features.spec import Feature

MAX_NULL_SHARE = 0.05  # after warm-up, per feature
MIN_VARIANCE = 1e-12  # a constant feature carries no information and usually hides a bug


@dataclass(frozen=True)
class FeatureQuality:
    """Per feature: null share after warm-up, infinite values, variance."""

    table: pl.DataFrame  # name, family, rows_after_warmup, null_share, infinite, variance

    def failing(self, rule: str) -> pl.DataFrame:
        condition = {
            "null_share": pl.col("null_share") >= MAX_NULL_SHARE,
            "no_infinities": pl.col("infinite") > 0,
            "variance": pl.col("variance").is_null() | (pl.col("variance") <= MIN_VARIANCE),
        }[rule]
        return self.table.filter(condition)


def assess_features(
    features: pl.DataFrame,
    catalog: Sequence[Feature],
    symbols_without_volume: Collection[str] = (),
) -> FeatureQuality:
    """Measure each feature over the rows after its warm-up.

    Volume features are judged only on instruments that report volume: for an index such as ^VIX
    they are undefined by design (null), which is not a defect.
    """
    position = pl.int_range(pl.len()).over("symbol")
    frame = features.sort("symbol", "date").with_columns(position.alias("_pos"))
    no_volume = pl.col("symbol").is_in(
        pl.Series(list(symbols_without_volume), dtype=pl.String).implode()
    )
    rows = []
    for feature in catalog:
        scope = pl.col("_pos") >= feature.warmup
        if feature.uses_volume:
            scope = scope & ~no_volume
        column = pl.col(feature.name)
        rows.append(
            frame.filter(scope).select(
                pl.lit(feature.name).alias("name"),
                pl.lit(str(feature.family)).alias("family"),
                pl.len().alias("rows_after_warmup"),
                (column.is_null().sum() / pl.len().clip(lower_bound=1)).alias("null_share"),
                column.is_infinite().sum().alias("infinite"),
                column.filter(column.is_finite()).var().alias("variance"),
            )
        )
    return FeatureQuality(pl.concat(rows))
