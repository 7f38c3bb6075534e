"""The Parquet lake: where assets keep their data, one file per partition.

``data/lake/<asset>/<slug>.parquet`` for symbol-partitioned assets and ``data/lake/<asset>.parquet``
for unpartitioned ones. Every write is atomic (temp file + rename). Polars in, polars out.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path

import dagster as dg
import polars as pl

from quant.universe import symbol_slug
from resources.atomic import write_parquet_atomic


class LakePartitionMissingError(FileNotFoundError):
    """An asset partition was asked for but has never been materialized."""


class ParquetLake(dg.ConfigurableResource):
    """Path logic and atomic reads/writes for the lake, usable from assets and the IO manager."""

    base_dir: str

    def path(self, asset: str | Sequence[str], partition: str | None = None) -> Path:
        """Where ``asset`` (and ``partition``, a symbol) lives in the lake."""
        parts = [asset] if isinstance(asset, str) else list(asset)
        for part in parts:
            if not part.replace("_", "").isalnum():
                raise ValueError(f"asset name {part!r} is not a plain identifier")
        folder = Path(self.base_dir).joinpath(*parts)
        if partition is None:
            return folder.with_suffix(".parquet")
        return folder / f"{symbol_slug(partition)}.parquet"

    def exists(self, asset: str | Sequence[str], partition: str | None = None) -> bool:
        return self.path(asset, partition).exists()

    def read(self, asset: str | Sequence[str], partition: str | None = None) -> pl.DataFrame:
        path = self.path(asset, partition)
        if not path.exists():
            what = f"{asset}[{partition}]" if partition else str(asset)
            raise LakePartitionMissingError(f"{what} has not been materialized (no {path})")
        return pl.read_parquet(path)

    def read_if_exists(
        self, asset: str | Sequence[str], partition: str | None = None
    ) -> pl.DataFrame | None:
        path = self.path(asset, partition)
        return pl.read_parquet(path) if path.exists() else None

    def read_partitions(
        self, asset: str | Sequence[str], partitions: Iterable[str]
    ) -> pl.DataFrame:
        """Several partitions stacked into one frame (columns unioned by name)."""
        keys = list(partitions)
        missing = [k for k in keys if not self.exists(asset, k)]
        if missing:
            raise LakePartitionMissingError(
                f"{asset}: partition(s) {missing} have not been materialized"
            )
        frames = [pl.read_parquet(self.path(asset, k)) for k in keys]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def write(
        self, asset: str | Sequence[str], frame: pl.DataFrame, partition: str | None = None
    ) -> Path:
        return write_parquet_atomic(frame, self.path(asset, partition))


class ParquetLakeIOManager(dg.ConfigurableIOManager):
    """Stores asset outputs as Parquet in the lake.

    A run that covers several partitions in one step (single-run backfill) returns a mapping
    ``{partition_key: frame}``; each frame is written to its own partition file. Loading several
    partitions returns one stacked frame.
    """

    lake: ParquetLake

    def handle_output(self, context: dg.OutputContext, obj: object) -> None:
        if obj is None:
            return
        asset = context.asset_key.path
        if not context.has_asset_partitions:
            self._write_one(context, asset, obj, None)
            return
        keys = list(context.asset_partition_keys)
        if isinstance(obj, Mapping):
            unexpected = sorted(set(obj) - set(keys))
            if unexpected:
                raise ValueError(
                    f"{asset}: output has partitions {unexpected} outside this run's {keys}"
                )
            for key, frame in obj.items():
                self._write_one(context, asset, frame, key)
        elif len(keys) == 1:
            self._write_one(context, asset, obj, keys[0])
        else:
            raise TypeError(
                f"{asset}: a run over {len(keys)} partitions must return a mapping "
                "{partition_key: DataFrame}"
            )

    def _write_one(
        self, context: dg.OutputContext, asset: Sequence[str], frame: object, key: str | None
    ) -> None:
        if not isinstance(frame, pl.DataFrame):
            raise TypeError(
                f"{asset}: the lake stores polars DataFrames, got {type(frame).__name__}"
            )
        path = self.lake.write(asset, frame, key)
        context.log.debug(f"wrote {frame.height} rows to {path}")

    def load_input(self, context: dg.InputContext) -> pl.DataFrame:
        asset = context.asset_key.path
        if not context.has_asset_partitions:
            return self.lake.read(asset)
        keys = list(context.asset_partition_keys)
        if len(keys) == 1:
            return self.lake.read(asset, keys[0])
        return self.lake.read_partitions(asset, keys)
