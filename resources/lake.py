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


class LakeReadError(OSError):
    """A stored asset (partition) cannot be read: missing or corrupt. The message names the
    asset, the symbol, the file and what to do."""


class LakePartitionMissingError(LakeReadError, FileNotFoundError):
    """An asset partition was asked for but has never been materialized."""


class CorruptPartitionError(LakeReadError):
    """A stored file exists but is not readable Parquet (truncated, overwritten, bad disk)."""


def remedy(asset: str, partition: str | None) -> str:
    """What an operator does about an unreadable file of ``asset``."""
    if asset == "raw_ohlcv" and partition:
        return (
            f"restore it from the raw landing (`market restore {partition}`) or fetch it again "
            f"(`market materialize --symbols {partition}`)"
        )
    if partition:
        return f"re-materialize that symbol (`market materialize --symbols {partition}`)"
    return f"re-materialize `{asset}` (`market materialize`, or from the web UI)"


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
        """The stored frame; a missing or unreadable file raises ``LakeReadError`` naming the
        asset, the symbol, the file and the remedy."""
        path = self.path(asset, partition)
        name = asset if isinstance(asset, str) else "/".join(asset)
        what = f"{name}[{partition}]" if partition else name
        if not path.exists():
            raise LakePartitionMissingError(f"{what} has not been materialized (no {path})")
        try:
            return pl.read_parquet(path)
        except (pl.exceptions.PolarsError, OSError, ValueError) as cause:
            raise CorruptPartitionError(
                f"{what}: the stored file {path} cannot be read ({str(cause).splitlines()[0]}); "
                f"{remedy(name, partition)}"
            ) from cause

    def read_if_exists(
        self, asset: str | Sequence[str], partition: str | None = None
    ) -> pl.DataFrame | None:
        """The stored frame, or None when it was never written (a corrupt file still raises)."""
        return self.read(asset, partition) if self.path(asset, partition).exists() else None

    def read_if_readable(
        self, asset: str | Sequence[str], partition: str | None = None
    ) -> pl.DataFrame | None:
        """The stored frame, or None when it is missing or unreadable (for reporting only)."""
        try:
            return self.read(asset, partition)
        except LakeReadError:
            return None

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
        frames = [self.read(asset, k) for k in keys]
        return pl.concat(frames, how="diagonal_relaxed") if frames else pl.DataFrame()

    def read_available(
        self, asset: str | Sequence[str], partitions: Iterable[str]
    ) -> tuple[pl.DataFrame, list[str]]:
        """The readable partitions of ``partitions``, stacked, and why each other one is left
        out (a symbol blocked before its first validation has no partition yet; a corrupt file
        is named with its remedy), so one bad symbol does not stop a range."""
        keys = list(partitions)
        frames, left_out = [], []
        for key in keys:
            try:
                frames.append(self.read(asset, key))
            except LakeReadError as error:
                left_out.append(f"{key} ({error})")
        if not frames:
            raise LakePartitionMissingError(
                f"{asset}: no readable partition among {keys}: {left_out}"
            )
        return pl.concat(frames, how="diagonal_relaxed"), left_out

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
        """One partition, or several stacked. Over several, a partition never stored (a symbol
        blocked before its first validation) is left out with a warning, so one bad symbol does
        not stop the rest of a range run; the consumer sees which symbols its frame holds."""
        asset = context.asset_key.path
        if not context.has_asset_partitions:
            return self.lake.read(asset)
        keys = list(context.asset_partition_keys)
        if len(keys) == 1:
            return self.lake.read(asset, keys[0])
        frame, left_out = self.lake.read_available(asset, keys)
        if left_out:
            context.log.warning(
                f"{'/'.join(asset)}: left out {len(left_out)} partition(s), the run goes on "
                "without them: " + "; ".join(left_out)
            )
        return frame
