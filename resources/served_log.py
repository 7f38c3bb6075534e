"""The served log: an append-only record of every prediction and signal the pipeline served.

``<lake>/served_predictions/`` (one row per symbol x session x champion model, with the model's
registered version) and ``<lake>/served_signals/`` (the signals frame as served, with whether
trading was halted and the champions' versions) are folders of Parquet files, so the DuckDB
warehouse shows them as the views ``served_predictions`` and ``served_signals``.

Each serving run adds one new file per kind, named
``<served_at %Y%m%dT%H%M%S%fZ>-<run id[:8]>-<content hash[:12]>.parquet``; a file is created
through a temporary file and a hard link, so an existing file is never replaced or modified
(a clash raises ``FileExistsError``). What was served yesterday stays answerable after the
champions, the features or the rule have changed.
"""

from __future__ import annotations

import hashlib
import os
import re
import tempfile
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
import polars as pl

KINDS = {"predictions": "served_predictions", "signals": "served_signals"}
LOG_COLUMNS = {"served_at": pl.Datetime("us", "UTC"), "dagster_run_id": pl.String}
PREDICTION_OUTPUTS = [
    "p_down",
    "p_neutral",
    "p_up",
    "vol_forecast",
    "p_bear",
    "p_sideways",
    "p_bull",
    "p_highvol",
]
PREDICTION_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "date": pl.Date(),
    "model": pl.String(),
    "family": pl.String(),
    "version": pl.String(),
    **{c: pl.Float64() for c in PREDICTION_OUTPUTS},
}
SIGNAL_KEYS: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "date": pl.Date(),
    "signal": pl.String(),
    "halted": pl.Boolean(),
    "model_versions": pl.String(),
}
_RUN_ID = re.compile(r"[A-Za-z0-9_-]+")


def prediction_rows(model: str, family: str, version: str, outputs: pl.DataFrame) -> pl.DataFrame:
    """One model's outputs in the long ``predictions`` schema (outputs it lacks are null).

    ``outputs`` is a ``predict_frame`` result (symbol, date and the family's output columns).
    """
    present = set(outputs.columns)
    return outputs.select(
        pl.col("symbol").cast(pl.String),
        pl.col("date").cast(pl.Date),
        pl.lit(model, pl.String).alias("model"),
        pl.lit(family, pl.String).alias("family"),
        pl.lit(str(version), pl.String).alias("version"),
        *[
            (pl.col(c) if c in present else pl.lit(None)).cast(pl.Float64).alias(c)
            for c in PREDICTION_OUTPUTS
        ],
    )


def _conform(kind: str, frame: pl.DataFrame) -> pl.DataFrame:
    """The frame checked (and, for predictions, cast) to its kind's schema."""
    reserved = sorted(set(frame.columns) & set(LOG_COLUMNS))
    if reserved:
        raise ValueError(f"served log: {reserved} are added by the log, not by the caller")
    required = [
        "symbol",
        "date",
        *(["model", "family", "version"] if kind == "predictions" else []),
    ]
    missing = [c for c in required if c not in frame.columns]
    if missing:
        raise ValueError(f"served log: a {kind!r} frame needs the columns {missing}")
    if kind == "predictions":
        present = set(frame.columns)
        return frame.select(
            (pl.col(c) if c in present else pl.lit(None)).cast(dtype).alias(c)
            for c, dtype in PREDICTION_SCHEMA.items()
        )
    return frame


def _short_hash(frame: pl.DataFrame) -> str:
    """12 hex digits of a SHA-256 over the schema and a canonical CSV rendering of ``frame``."""
    digest = hashlib.sha256()
    digest.update(",".join(f"{k}:{v}" for k, v in frame.schema.items()).encode())
    digest.update(frame.write_csv(float_precision=None).encode())
    return digest.hexdigest()[:12]


def _utc(moment: datetime) -> datetime:
    """``moment`` in UTC (a naive datetime is taken to be UTC already)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


class ServedLog(dg.ConfigurableResource):
    """Append-only Parquet log of served predictions and signals, under the lake."""

    lake_dir: str

    def folder(self, kind: str) -> Path:
        """The folder of one kind (``predictions`` or ``signals``); ValueError for any other."""
        if kind not in KINDS:
            raise ValueError(f"served log: unknown kind {kind!r}; expected one of {sorted(KINDS)}")
        return Path(self.lake_dir) / KINDS[kind]

    def append(
        self, kind: str, frame: pl.DataFrame, served_at: datetime, run_id: str
    ) -> Path | None:
        """Write ``frame`` as one new file of ``kind``, stamped with ``served_at`` and ``run_id``.

        Returns the new file, or None for an empty frame (nothing is written). Never replaces or
        touches an existing file: if the name is taken (same instant, run and content), raises
        FileExistsError.
        """
        folder = self.folder(kind)
        if not _RUN_ID.fullmatch(run_id or ""):
            raise ValueError(f"served log: run id {run_id!r} is not a plain identifier")
        if frame.is_empty():
            return None
        moment = _utc(served_at)
        record = _conform(kind, frame).with_columns(
            pl.lit(moment).cast(LOG_COLUMNS["served_at"]).alias("served_at"),
            pl.lit(run_id, pl.String).alias("dagster_run_id"),
        )
        name = f"{moment.strftime('%Y%m%dT%H%M%S%fZ')}-{run_id[:8]}-{_short_hash(record)}.parquet"
        path = folder / name
        folder.mkdir(parents=True, exist_ok=True)
        if path.exists():  # checked early for a clear message; os.link below is the real guard
            raise FileExistsError(f"served log: {path} already exists; it is never overwritten")
        fd, tmp_name = tempfile.mkstemp(prefix=f".{name}.", suffix=".tmp", dir=folder)
        os.close(fd)
        tmp = Path(tmp_name)
        try:
            record.write_parquet(tmp, compression="zstd")
            try:
                os.link(tmp, path)  # fails if ``path`` exists, even in a race: no overwrite
            except FileExistsError:
                raise FileExistsError(
                    f"served log: {path} already exists; it is never overwritten"
                ) from None
        finally:
            tmp.unlink(missing_ok=True)
        return path

    def files(self, kind: str) -> list[Path]:
        """The log files of ``kind``, oldest first (names start with the serving instant)."""
        folder = self.folder(kind)
        return sorted(folder.glob("*.parquet")) if folder.exists() else []

    def read(self, kind: str) -> pl.DataFrame:
        """Everything logged of ``kind``, sorted by served_at, symbol, date.

        Nothing logged yet: an empty frame with the kind's key columns.
        """
        files = self.files(kind)
        if not files:
            keys = PREDICTION_SCHEMA if kind == "predictions" else SIGNAL_KEYS
            return pl.DataFrame(schema={**keys, **LOG_COLUMNS})
        frames = [pl.read_parquet(p) for p in files]
        return pl.concat(frames, how="diagonal_relaxed").sort("served_at", "symbol", "date")
