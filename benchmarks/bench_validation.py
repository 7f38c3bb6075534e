"""How long the data contract takes on the bundled sample (pure functions, no Dagster).

    .venv/bin/python benchmarks/bench_validation.py

Prints seconds per stage for all 26 symbols; figures are quoted in README.md.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import polars as pl

from quant.universe import load_universe
from quant.validation import validate_bars
from quant.validation.expectations import run_expectations

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    universe = load_universe()
    panel = pl.read_parquet(ROOT / "data/sample/ohlcv_daily.parquet").filter(
        pl.col("date") >= date(2018, 1, 1)
    )
    bars = {s: panel.filter(pl.col("symbol") == s) for s in universe.symbols}
    today = date.today()

    started = time.perf_counter()
    reports = {s: validate_bars(bars[s], universe.get(s), today) for s in universe.symbols}
    cold = time.perf_counter() - started
    started = time.perf_counter()
    for s in universe.symbols:
        validate_bars(bars[s], universe.get(s), today)
    warm = time.perf_counter() - started

    started = time.perf_counter()
    import great_expectations  # noqa: F401

    gx_import = time.perf_counter() - started
    docs = Path("/tmp/bench_gx_docs")
    started = time.perf_counter()
    for s in universe.symbols:
        run_expectations(reports[s].clean, universe.get(s), docs)
    gx = time.perf_counter() - started

    rows = sum(b.height for b in bars.values())
    print(f"rows: {rows:,} ({len(bars)} symbols, since 2018-01-01)")
    print(f"contract, first pass (calendars loaded): {cold:.2f} s")
    print(
        f"contract, warm:                          {warm:.2f} s ({warm / len(bars) * 1000:.0f} ms/symbol)"
    )
    print(f"great_expectations import:               {gx_import:.2f} s")
    print(f"GX suite + Data Docs, 26 symbols:        {gx:.2f} s ({gx / len(bars):.2f} s/symbol)")


if __name__ == "__main__":
    main()
