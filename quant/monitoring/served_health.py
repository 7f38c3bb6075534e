"""Champion health from what was actually served: per-row losses of logged predictions, their
daily means, and the reference level a champion is judged against.

The served log holds, for every signal served, each champion's prediction for that (symbol,
session) with the model version. Once the labels of those sessions arrive, the losses of the
served predictions are the live track record: no history is re-predicted by today's model.
Losses are proper scores, lower is better: log loss (direction and regime probabilities) and
QLIKE (volatility). A champion's reference level is its own loss out of sample when it took
office: in shadow, or for a first champion the selection model's validation loss.
"""

from __future__ import annotations

import math

import numpy as np
import polars as pl

from quant.evaluation import qlike_loss
from quant.promotion import OUTPUTS

KEYS = ["symbol", "date"]
EPS = 1e-7
HEALTH_METRIC = {"direction": "log_loss", "volatility": "qlike", "regime": "regime_log_loss"}
LABEL = {"direction": "direction", "volatility": "fwd_vol_20", "regime": "regime"}


def _log_loss_rows(y: np.ndarray, p: np.ndarray) -> np.ndarray:
    p = np.clip(p.astype(float), EPS, 1.0)
    p = p / p.sum(axis=1, keepdims=True)
    return -np.log(p[np.arange(y.size), y])


def health_row_loss(family: str, rows: pl.DataFrame) -> np.ndarray:
    """Per-row loss of a family's outputs in ``rows`` (outputs and labels joined)."""
    if family == "volatility":
        return qlike_loss(rows["fwd_vol_20"].to_numpy(), rows["vol_forecast"].to_numpy())
    y = rows[LABEL[family]].to_numpy().astype(int)
    return _log_loss_rows(y, rows.select(OUTPUTS[family]).to_numpy())


def scorable(family: str, rows: pl.DataFrame) -> pl.DataFrame:
    """The rows whose label and outputs are all present."""
    return rows.drop_nulls([LABEL[family], *OUTPUTS[family]])


def daily_losses(family: str, rows: pl.DataFrame) -> pl.DataFrame:
    """date | loss (mean over the rows of that date) | names, sorted by date."""
    rows = scorable(family, rows)
    if rows.is_empty():
        return pl.DataFrame(schema={"date": pl.Date, "loss": pl.Float64, "names": pl.UInt32})
    losses = rows.select("date").with_columns(pl.Series("loss", health_row_loss(family, rows)))
    return (
        losses.filter(pl.col("loss").is_finite())
        .group_by("date")
        .agg(pl.col("loss").mean(), pl.len().alias("names"))
        .sort("date")
    )


def in_group(rows: pl.DataFrame, symbols: frozenset[str] | None) -> pl.DataFrame:
    """``rows`` of ``symbols`` (all rows when none of them is present)."""
    if not symbols:
        return rows
    chosen = rows.filter(pl.col("symbol").is_in(sorted(symbols)))
    return chosen if not chosen.is_empty() else rows


def reference_level(
    family: str, rows: pl.DataFrame, symbols: frozenset[str] | None = None
) -> float:
    """Mean of the daily mean loss over ``rows`` of ``symbols`` (NaN when nothing scores)."""
    daily = daily_losses(family, in_group(rows, symbols))
    return float(daily["loss"].mean()) if daily.height else math.nan


def latest_served(served: pl.DataFrame, model: str, version: str) -> pl.DataFrame:
    """The predictions ``model`` version ``version`` served, one per (symbol, session): the last
    one served when a session was served more than once."""
    rows = served.filter((pl.col("model") == model) & (pl.col("version") == str(version)))
    return rows.sort("served_at").unique(KEYS, keep="last").sort(KEYS)
