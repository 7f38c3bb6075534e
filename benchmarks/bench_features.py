"""Feature engine speed and memory against TA-Lib in a per-symbol loop.

    .venv/bin/python benchmarks/bench_features.py            # the whole table (a few minutes)
    .venv/bin/python benchmarks/bench_features.py 500        # only the 500-symbol panel

Each measurement runs in a fresh process so its peak resident memory (ru_maxrss) is its own;
the import-only baseline of such a process is printed too. Panels: the real sample (26 symbols,
from 2018, as the pipeline uses it) and synthetic random-walk panels of N symbols x 1,260
sessions. "TA-Lib" evaluates the catalog's reference expressions, exactly as written, symbol by
symbol: the same definitions the tests check our values against. Figures are quoted in README.md.
"""

from __future__ import annotations

import json
import resource
import subprocess
import sys
import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

ROOT = Path(__file__).resolve().parents[1]
SESSIONS = 1_260
PANELS = ["sample", "500", "2000"]


def panel(name: str) -> pl.DataFrame:
    if name == "sample":
        bars = pl.read_parquet(ROOT / "data/sample/ohlcv_daily.parquet")
        return bars.filter(pl.col("date") >= date(2018, 1, 1))
    symbols = int(name)
    rng = np.random.default_rng(symbols)
    close = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, (symbols, SESSIONS)), axis=1)).ravel()
    open_ = close * np.exp(rng.normal(0, 0.005, close.size))
    spread = np.exp(np.abs(rng.normal(0, 0.008, (2, close.size))))
    start = date(2020, 1, 1)
    return pl.DataFrame(
        {
            "symbol": np.repeat([f"S{i:05d}" for i in range(symbols)], SESSIONS),
            "date": np.tile(
                pl.date_range(start, date(2030, 1, 1), eager=True)[:SESSIONS].to_numpy(), symbols
            ),
            "open": open_,
            "high": np.maximum(open_, close) * spread[0],
            "low": np.minimum(open_, close) / spread[1],
            "close": close,
            "volume": rng.uniform(1e5, 1e7, close.size),
        }
    )


def measure(kind: str, name: str) -> dict[str, float]:
    """One timing in this process (called in a child process by the driver)."""
    from quant.features import FEATURES, compute_features

    bars = panel(name).sort("symbol", "date")
    rows = bars.height
    if kind == "baseline":
        seconds = 0.0
    elif kind == "ours":
        compute_features(bars.head(5_000))  # warm the code paths, not the data
        started = time.perf_counter()
        compute_features(bars)
        seconds = time.perf_counter() - started
    else:
        import talib

        references = [compile(f.reference, f.name, "eval") for f in FEATURES if f.reference]
        per_symbol = [
            {c: part[c].to_numpy() for c in ("open", "high", "low", "close", "volume")}
            for part in bars.partition_by("symbol", maintain_order=True)
        ]
        started = time.perf_counter()
        with np.errstate(all="ignore"):
            for arrays in per_symbol:
                for code in references:
                    eval(code, {"talib": talib, "np": np}, arrays)
        seconds = time.perf_counter() - started
    peak_gb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1e6
    return {"rows": rows, "seconds": seconds, "peak_gb": peak_gb}


def child(kind: str, name: str) -> dict[str, float]:
    output = subprocess.run(
        [sys.executable, __file__, "--measure", kind, name],
        check=True,
        capture_output=True,
        text=True,
        cwd=ROOT,
    ).stdout
    return json.loads(output.strip().splitlines()[-1])


def main(names: list[str]) -> None:
    from quant.features import FEATURES

    referenced = sum(1 for f in FEATURES if f.reference)
    print(
        f"| panel | rows | ours: {len(FEATURES)} features (s) | TA-Lib: {referenced} references, "
        "per-symbol loop (s) | TA-Lib / ours | peak memory, ours (GB) | peak memory, TA-Lib (GB) |"
    )
    print("|---|---:|---:|---:|---:|---:|---:|")
    for name in names:
        ours, talib_loop = child("ours", name), child("talib", name)
        label = "real sample, 26 symbols" if name == "sample" else f"synthetic, {name} x {SESSIONS}"
        print(
            f"| {label} | {ours['rows']:,} | {ours['seconds']:.2f} | {talib_loop['seconds']:.2f} | "
            f"{talib_loop['seconds'] / ours['seconds']:.2f} | {ours['peak_gb']:.2f} | "
            f"{talib_loop['peak_gb']:.2f} |",
            flush=True,
        )
    baseline = child("baseline", "sample")
    print(f"\nimport-only process with the sample loaded: {baseline['peak_gb']:.2f} GB peak")


if __name__ == "__main__":
    if sys.argv[1:2] == ["--measure"]:
        print(json.dumps(measure(sys.argv[2], sys.argv[3])))
    else:
        main(sys.argv[1:] or PANELS)
