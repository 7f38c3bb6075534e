"""Drift thresholds calibrated on the reference: the drift share's null on the real sample.

    .venv/bin/python benchmarks/bench_drift_calibration.py

The panel is what the ``feature_drift`` asset sees: all 26 symbols of the bundled sample since
2018, ``compute_features`` per symbol plus the model's columns of ``compute_market_context``
(ContextSpec of the default universe, as ``assets.features.context_spec`` builds it), warm-up
rows included (their nulls are left out feature by feature). For two reference periods it
prints the null distribution of the drift share (non-overlapping 63-session windows, each
against the rest of the reference), the calibrated thresholds, the time taken and a check
against ``feature_drift`` window by window; then the drift share of three current windows.
Pure functions, no Dagster.
"""

from __future__ import annotations

import time
from datetime import date
from pathlib import Path

import numpy as np
import polars as pl

from quant.dataset import KEYS, MODEL_FEATURES
from quant.features import compute_features
from quant.features.context import ContextSpec, compute_market_context
from quant.monitoring.drift import (
    calibrated_thresholds,
    current_window,
    feature_drift,
    reference_drift_shares,
)
from quant.universe import AssetClass, load_universe
from quant.validation.adjust import adjust_prices
from quant.validation.calendars import closes_before

ROOT = Path(__file__).resolve().parents[1]
START = date(2018, 1, 1)
WINDOW = 63
REFERENCES = {
    "R1: start .. 2023-12-31": (None, date(2023, 12, 31)),
    "R2: 2019-01-01 .. 2025-10-31": (date(2019, 1, 1), date(2025, 10, 31)),
}
CURRENT_ENDS = [date(2020, 4, 15), date(2024, 11, 13), date(2025, 4, 30)]


def context_spec() -> ContextSpec:
    """The default universe's roles, as ``assets.features.context_spec`` derives them."""
    universe = load_universe()
    instruments = universe.instruments
    volatility = [i.symbol for i in instruments if i.sector == "volatility"]
    reference = universe.get("^GSPC").calendar
    return ContextSpec(
        volatility_index=volatility[0],
        benchmark="^GSPC",
        equities=tuple(i.symbol for i in instruments if i.asset_class is AssetClass.EQUITY),
        closes_before_benchmark=frozenset(
            i.symbol for i in instruments if closes_before(i.calendar, reference)
        ),
    )


def build_panel() -> tuple[pl.DataFrame, list[str]]:
    raw = pl.read_parquet(ROOT / "data/sample/ohlcv_daily.parquet").filter(pl.col("date") >= START)
    bars = adjust_prices(raw).select("symbol", "date", "open", "high", "low", "close", "volume")
    features = compute_features(bars)
    context = compute_market_context(bars, context_spec())
    columns = [c for c in MODEL_FEATURES if c in context.columns and c not in features.columns]
    panel = features.join(context.select(*KEYS, *columns), on=KEYS, how="left")
    return panel, [c for c in MODEL_FEATURES if c in panel.columns]


def reference_of(panel: pl.DataFrame, start: date | None, end: date) -> pl.DataFrame:
    frame = panel.filter(pl.col("date") <= end)
    return frame.filter(pl.col("date") >= start) if start else frame


def loop_shares(reference: pl.DataFrame, names: list[str], n_windows: int) -> list[float]:
    """The definition: ``feature_drift`` of each window against the rest, one by one."""
    dates = reference.get_column("date").unique().sort()
    out = []
    for i in range(n_windows):
        days = dates[i * WINDOW : (i + 1) * WINDOW].implode()
        rest = reference.filter(~pl.col("date").is_in(days))
        out.append(
            feature_drift(rest, reference.filter(pl.col("date").is_in(days)), names).drift_share
        )
    return out


def main() -> None:
    started = time.perf_counter()
    panel, names = build_panel()
    built = time.perf_counter() - started
    print(
        f"panel: {panel.height:,} rows, {panel['symbol'].n_unique()} symbols, "
        f"{panel['date'].min()} .. {panel['date'].max()}, {len(names)} features "
        f"(built in {built:.1f} s)\n"
    )

    print(
        "| reference | rows | windows | min | median | q95 | max | retrain | severe "
        "| time (s) | loop (s) | = loop |"
    )
    print("|---|---|---|---|---|---|---|---|---|---|---|---|")
    calibrated, largest = {}, {}
    for label, (start, end) in REFERENCES.items():
        reference = reference_of(panel, start, end)
        times = []
        for _ in range(3):
            t0 = time.perf_counter()
            null = reference_drift_shares(reference, names, WINDOW)
            times.append(time.perf_counter() - t0)
        shares = null.get_column("drift_share").to_numpy()
        retrain, severe = calibrated_thresholds(shares)
        calibrated[label] = (reference, shares, retrain, severe)
        largest[label] = null.sort("drift_share", descending=True).head(3)
        t0 = time.perf_counter()
        same = loop_shares(reference, names, null.height) == shares.tolist()
        loop = time.perf_counter() - t0
        q = np.quantile(shares, [0.0, 0.5, 0.95, 1.0])
        print(
            f"| {label} | {reference.height:,} | {null.height} | {q[0]:.3f} | {q[1]:.3f} "
            f"| {q[2]:.3f} | {q[3]:.3f} | {retrain:.3f} | {severe:.3f} "
            f"| {min(times):.2f} (first {times[0]:.2f}) | {loop:.1f} | {'yes' if same else 'NO'} |"
        )

    for label, top in largest.items():
        windows = ", ".join(
            f"{r['window_start']} .. {r['window_end']}: {r['drift_share']:.3f}"
            for r in top.iter_rows(named=True)
        )
        print(f"\nlargest null windows, {label}: {windows}")

    label = next(iter(REFERENCES))
    reference, shares, retrain, severe = calibrated[label]
    print(f"\ncurrent windows ({WINDOW} sessions per symbol) against {label}:\n")
    print(
        "| window end | window | drift share | drifted / tested | share of reference windows "
        "below | verdict | leave-out share |"
    )
    print("|---|---|---|---|---|---|---|")
    for end in CURRENT_ENDS:
        current = current_window(panel, WINDOW, end)
        report = feature_drift(reference, current, names)
        share = report.drift_share
        verdict = "severe" if share >= severe else "retrain" if share >= retrain else "normal"
        leave_out = "-"
        inside = current["date"].min() <= reference["date"].max()
        if inside:  # the window is part of the reference: judge it as the null does
            days = current.get_column("date").unique().implode()
            rest = reference.filter(~pl.col("date").is_in(days))
            leave_out = f"{feature_drift(rest, current, names).drift_share:.3f}"
        print(
            f"| {end} | {current['date'].min()} .. {current['date'].max()} | {share:.3f} "
            f"| {report.drifted_count} / {report.features_tested} "
            f"| {np.mean(shares < share):.0%} | {verdict} | {leave_out} |"
        )
    print(
        f"\n(verdict: share >= retrain {retrain:.3f} -> retrain, >= severe {severe:.3f} -> "
        "severe; leave-out share: for a window inside the reference, against the reference "
        "without the window's dates, as its null windows are judged)"
    )


if __name__ == "__main__":
    main()
