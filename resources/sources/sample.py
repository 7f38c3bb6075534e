"""The bundled sample: real Yahoo daily bars shipped in ``data/sample/`` (see PROVENANCE.md).

Works offline. ``as_of`` replays history as it would have been known on that date, so nightly
runs, drift and retraining can be exercised without a network.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date
from functools import cached_property
from pathlib import Path

import polars as pl

from quant.bars import conform_bars
from quant.universe import validate_symbol
from resources.sources.base import Delivery, DeliveryMode, EmptyResponseError, SourceError

SAMPLE_BARS_FILE = "ohlcv_daily.parquet"


class SampleSource:
    """Serve bars for ``[start, as_of]`` from the bundled Parquet file."""

    name = "sample"

    def __init__(self, sample_dir: Path, start: date | None = None, as_of: date | None = None):
        self.sample_dir = Path(sample_dir)
        self.start = start
        self.as_of = as_of
        if start and as_of and start > as_of:
            raise ValueError(f"sample source: start {start} is after as_of {as_of}")

    @cached_property
    def _panel(self) -> pl.DataFrame:
        path = self.sample_dir / SAMPLE_BARS_FILE
        if not path.exists():
            raise FileNotFoundError(f"bundled sample not found: {path} (see data/sample/)")
        query = pl.scan_parquet(path)
        if self.start:
            query = query.filter(pl.col("date") >= self.start)
        if self.as_of:
            query = query.filter(pl.col("date") <= self.as_of)
        return query.collect()

    def default_as_of(self, equities: Iterable[str]) -> date:
        """The run date of a sample run without ``as_of``: the last session of the sample's
        ``equities`` (of every symbol, where none of them is in the sample).

        Why: the sample is a frozen snapshot, so "today" would make every symbol look months
        old. Its equities end together; measured against their last session the US indices are
        current and the series that end earlier (^DJI, ^NSEI, ^NSEBANK) are stale, as they are.
        """
        if self.as_of is not None:
            return self.as_of
        path = self.sample_dir / SAMPLE_BARS_FILE
        if not path.exists():
            raise FileNotFoundError(f"bundled sample not found: {path} (see data/sample/)")
        dates = pl.scan_parquet(path).select("symbol", "date")
        wanted = sorted(set(equities))
        last = dates.filter(pl.col("symbol").is_in(wanted)).select(pl.col("date").max()).collect()
        value = last.item()
        if value is None:
            value = dates.select(pl.col("date").max()).collect().item()
        return value

    @cached_property
    def symbols(self) -> set[str]:
        """Every symbol the sample holds, whatever the date window."""
        path = self.sample_dir / SAMPLE_BARS_FILE
        return set(pl.scan_parquet(path).select("symbol").unique().collect().to_series())

    def fetch(self, symbol: str, last_stored: date | None = None) -> Delivery:
        validate_symbol(symbol)
        if symbol not in self.symbols:
            raise SourceError(symbol, f"not in the bundled sample ({self.sample_dir})")
        bars = self._panel.filter(pl.col("symbol") == symbol)
        if bars.is_empty():
            raise EmptyResponseError(
                symbol, f"no sample bars between {self.start} and {self.as_of}"
            )
        return Delivery(
            symbol=symbol,
            bars=conform_bars(bars),
            source=self.name,
            mode=DeliveryMode.SNAPSHOT,
            requested_start=self.start,
            requested_end=self.as_of,
        )
