"""Rebuild the bundled sample (data/sample/) from the curated CSVs in ../shared/data/ohlcv_daily.

The sample is the project's offline default source. Values are copied unchanged (see
PROVENANCE.md); this script only stacks them into compact, zstd-compressed Parquet files.

Usage: python tools/build_sample.py [SOURCE_DIR] [TARGET_DIR]
"""

from __future__ import annotations

import shutil
import sys
from pathlib import Path

import polars as pl

ROOT = Path(__file__).resolve().parents[1]


def build(source: Path, target: Path) -> None:
    """Write ohlcv_daily.parquet, dividends.parquet and PROVENANCE.md into ``target``."""
    target.mkdir(parents=True, exist_ok=True)
    bars = pl.read_parquet(source / "ohlcv_daily.parquet").sort("symbol", "date")
    bars = bars.with_columns(pl.col("volume").cast(pl.Float64))
    bars.write_parquet(
        target / "ohlcv_daily.parquet",
        compression="zstd",
        compression_level=19,
        statistics=True,
        row_group_size=50_000,
    )
    frames = []
    for path in sorted((source / "dividends").glob("*_dividends.csv")):
        symbol = path.name.removesuffix("_dividends.csv")
        frames.append(
            pl.read_csv(path, try_parse_dates=True).select(
                pl.lit(symbol).alias("symbol"), "date", pl.col("dividend").cast(pl.Float64)
            )
        )
    pl.concat(frames).sort("symbol", "date").write_parquet(
        target / "dividends.parquet", compression="zstd", compression_level=19
    )
    shutil.copyfile(source / "PROVENANCE.md", target / "PROVENANCE.md")


if __name__ == "__main__":
    src = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT.parent / "shared/data/ohlcv_daily"
    dst = Path(sys.argv[2]) if len(sys.argv) > 2 else ROOT / "data/sample"
    build(src, dst)
    print(f"sample written to {dst}")
