"""Metadata helpers shared by the asset modules: tables and images for the asset pages."""

from __future__ import annotations

import hashlib

import dagster as dg
import polars as pl


def markdown_table(frame: pl.DataFrame, digits: int = 4) -> str:
    """A small frame as a markdown table for the asset page."""

    def cell(value: object) -> str:
        return f"{value:.{digits}g}" if isinstance(value, float) else str(value)

    header = "| " + " | ".join(frame.columns) + " |"
    rule = "|" + "---|" * frame.width
    rows = ["| " + " | ".join(cell(v) for v in row) + " |" for row in frame.iter_rows()]
    return "\n".join([header, rule, *rows])


def md(frame: pl.DataFrame, digits: int = 4) -> dg.MetadataValue:
    return dg.MetadataValue.md(markdown_table(frame, digits))


def frame_version(frame: pl.DataFrame) -> str:
    """A short content hash of a frame: the data version tagged on every model run."""
    digest = hashlib.sha256(",".join(f"{k}:{v}" for k, v in frame.schema.items()).encode())
    digest.update(frame.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def date_range(frame: pl.DataFrame) -> dict[str, str]:
    return {"first_date": str(frame["date"].min()), "last_date": str(frame["date"].max())}


def column_schema(columns: dict[str, tuple[str, str]]) -> dg.TableSchema:
    """A column schema for the asset page: ``{name: (type, description)}``."""
    return dg.TableSchema(
        columns=[dg.TableColumn(n, t, description=d) for n, (t, d) in columns.items()]
    )


KEY_COLUMNS = {"symbol": ("string", "Yahoo ticker"), "date": ("date", "session date")}
BAR_SCHEMA = {
    **KEY_COLUMNS,
    "open": ("float64", "opening price"),
    "high": ("float64", "session high"),
    "low": ("float64", "session low"),
    "close": ("float64", "closing price"),
    "volume": ("float64", "shares (0 for indices that report none)"),
}


def labeled_panel_ins() -> dict[str, dg.AssetIn]:
    """The inputs of an asset that reads the whole labeled panel (features, market context,
    labels), every partition at once."""
    return {name: dg.AssetIn(name) for name in ("features", "market_context", "labels")}
