"""Drift monitoring on samples with known answers: PSI, KS + Benjamini-Hochberg, windows."""

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal

from quant.monitoring import (
    DriftReport,
    DriftThresholds,
    current_window,
    drift_by_symbol,
    feature_drift,
    psi,
)


def _panel(rng: np.random.Generator, n: int, shifts: list[float], symbol: str = "AAA"):
    """``len(shifts)`` N(shift, 1) features f00, f01, ... over ``n`` rows of one symbol."""
    data = {f"f{i:02d}": rng.normal(s, 1.0, n) for i, s in enumerate(shifts)}
    return pl.DataFrame({"symbol": [symbol] * n, **data})


# --- psi ---------------------------------------------------------------------------------------


def test_psi_identical_samples_is_zero():
    x = np.random.default_rng(0).normal(size=1_000)
    assert psi(x, x) == pytest.approx(0.0, abs=1e-3)
    assert psi(x, x.copy()[::-1]) == pytest.approx(0.0, abs=1e-3)


def test_psi_same_distribution_is_small_and_shift_is_large():
    rng = np.random.default_rng(1)
    ref = rng.normal(0, 1, 5_000)
    assert psi(ref, rng.normal(0, 1, 5_000)) < 0.02
    assert psi(ref, rng.normal(1, 1, 5_000)) > 0.5


def test_psi_counts_values_beyond_the_reference_range_in_end_bins():
    rng = np.random.default_rng(2)
    ref = rng.uniform(0, 1, 1_000)
    above = psi(ref, np.full(500, 5.0))  # everything beyond the top edge: all in the last bin
    below = psi(ref, np.full(500, -5.0))
    assert math.isfinite(above) and above > 1.0
    # one bin with share 1 vs 0.1, nine floored at 1e-4 vs 0.1
    expected = (1 - 0.1) * math.log(1 / 0.1) + 9 * (1e-4 - 0.1) * math.log(1e-4 / 0.1)
    assert above == pytest.approx(expected, rel=1e-2)
    assert below == pytest.approx(expected, rel=1e-2)


def test_psi_undefined_cases_and_non_finite_values():
    rng = np.random.default_rng(3)
    x = rng.normal(size=200)
    assert math.isnan(psi(np.full(200, 1.5), x))  # constant reference
    assert math.isnan(psi(x, x[:19]))  # fewer than 2 * bins current values
    assert math.isnan(psi(x[:19], x))
    dirty = np.concatenate([x, [np.nan, np.inf, -np.inf]])
    assert psi(dirty, x) == pytest.approx(0.0, abs=1e-12)
    with pytest.raises(ValueError):
        psi(x, x, bins=1)


# --- feature_drift -----------------------------------------------------------------------------


def test_feature_drift_flags_exactly_the_shifted_features():
    rng = np.random.default_rng(4)
    shifts = [1.0 if i in (2, 5, 11, 16, 19) else 0.0 for i in range(20)]
    ref = _panel(rng, 2_000, [0.0] * 20)
    cur = _panel(rng, 2_000, shifts)
    features = [f"f{i:02d}" for i in range(20)]
    report = feature_drift(ref, cur, features)
    assert isinstance(report, DriftReport)
    assert report.table.height == 20
    drifted = set(report.table.filter("drifted").get_column("feature"))
    assert drifted == {"f02", "f05", "f11", "f16", "f19"}
    assert report.drifted_count == 5
    assert report.features_tested == 20
    assert report.drift_share == pytest.approx(0.25)
    assert set(report.top(5).get_column("feature")) == drifted
    psis = report.top(20).get_column("psi").to_list()
    assert psis == sorted(psis, reverse=True)
    # BH-adjusted p-values are never below the raw ones
    t = report.table
    assert (t.get_column("ks_p_adjusted") >= t.get_column("ks_p_value") - 1e-15).all()
    shifted = t.filter(pl.col("feature") == "f02").row(0, named=True)
    assert shifted["current_mean"] - shifted["reference_mean"] == pytest.approx(1.0, abs=0.1)
    assert shifted["reference_rows"] == shifted["current_rows"] == 2_000


def test_small_window_psi_noise_is_not_flagged_without_significant_ks():
    """30 current rows: PSI on 10 bins is ~0.3 from noise alone, but KS after BH is not."""
    rng = np.random.default_rng(5)
    ref = _panel(rng, 5_000, [0.0] * 10)
    cur = _panel(rng, 30, [0.2] * 10)  # modest shift, far too few rows to tell
    features = [f"f{i:02d}" for i in range(10)]
    report = feature_drift(ref, cur, features, DriftThresholds(min_rows=30))
    t = report.table
    assert report.features_tested == 10
    noisy = t.filter(pl.col("psi") >= 0.2)
    assert noisy.height > 0  # PSI alone would raise alarms ...
    assert (noisy.get_column("ks_p_adjusted") >= 0.05).all()  # ... KS says it is noise
    assert report.drifted_count == 0
    assert report.drift_share == 0.0


def test_drift_rule_needs_both_psi_and_adjusted_ks():
    """The rule on hand-made samples: a large-but-noisy PSI and a tiny-but-significant shift."""
    rng = np.random.default_rng(6)
    n = 40_000
    ref = pl.DataFrame({"tiny": rng.normal(0, 1, n), "big": rng.normal(0, 1, n)})
    cur = pl.DataFrame({"tiny": rng.normal(0.1, 1, n), "big": rng.normal(1.0, 1, n)})
    t = feature_drift(ref, cur, ["tiny", "big"]).table
    tiny = t.filter(pl.col("feature") == "tiny").row(0, named=True)
    big = t.filter(pl.col("feature") == "big").row(0, named=True)
    assert tiny["ks_p_adjusted"] < 1e-10 and tiny["psi"] < 0.2 and not tiny["drifted"]
    assert big["ks_p_adjusted"] < 1e-10 and big["psi"] >= 0.2 and big["drifted"]


def test_features_with_too_few_rows_are_not_tested():
    rng = np.random.default_rng(7)
    ref = _panel(rng, 500, [0.0, 0.0, 0.0])
    cur = _panel(rng, 500, [1.0, 1.0, 1.0]).with_columns(
        # f01: only 40 finite values in the current window; f02: none at all
        pl.when(pl.int_range(pl.len()) < 40).then(pl.col("f01")).otherwise(None).alias("f01"),
        pl.lit(float("nan")).alias("f02"),
    )
    report = feature_drift(ref, cur, ["f00", "f01", "f02"])
    assert report.features_tested == 1
    assert report.drifted_count == 1
    assert report.drift_share == 1.0
    skipped = report.table.filter(pl.col("feature").is_in(["f01", "f02"]))
    for column in ("psi", "ks_statistic", "ks_p_value", "ks_p_adjusted"):
        assert skipped.get_column(column).null_count() == 2
    assert not skipped.get_column("drifted").any()
    assert skipped.get_column("current_rows").to_list() == [40, 0]
    # untested features sort after the tested ones
    assert report.top(3).get_column("feature").to_list()[0] == "f00"


def test_feature_drift_with_nothing_tested_and_missing_columns():
    rng = np.random.default_rng(8)
    ref = _panel(rng, 10, [0.0])
    report = feature_drift(ref, ref, ["f00"])
    assert report.features_tested == 0 and report.drifted_count == 0
    assert math.isnan(report.drift_share)
    with pytest.raises(ValueError, match="nope"):
        feature_drift(ref, ref, ["f00", "nope"])
    with pytest.raises(ValueError):
        DriftThresholds(min_rows=10)  # below 2 * bins: PSI would be undefined


def test_identical_seeds_give_identical_reports():
    def build() -> DriftReport:
        rng = np.random.default_rng(9)
        ref = _panel(rng, 1_000, [0.0] * 5)
        cur = _panel(rng, 1_000, [0.0, 0.5, 0.0, 1.0, 0.0])
        return feature_drift(ref, cur, [f"f{i:02d}" for i in range(5)])

    a, b = build(), build()
    assert_frame_equal(a.table, b.table)
    assert (a.drift_share, a.drifted_count, a.features_tested) == (
        b.drift_share,
        b.drifted_count,
        b.features_tested,
    )


# --- drift_by_symbol ---------------------------------------------------------------------------


def test_drift_by_symbol_finds_the_shifted_symbol():
    rng = np.random.default_rng(10)
    names = ["AAA", "BBB", "CCC", "DDD", "EEE"]
    ref = pl.concat([_panel(rng, 1_000, [0.0] * 4, s) for s in names])
    cur = pl.concat(
        [_panel(rng, 100, [1.5] * 4 if s == "CCC" else [0.0] * 4, s) for s in names]
        + [_panel(rng, 10, [3.0] * 4, "FFF")]  # too few rows to judge
    )
    features = ["f00", "f01", "f02", "f03"]
    out = drift_by_symbol(ref, cur, features, DriftThresholds())
    assert out.columns == ["symbol", "features_tested", "drifted_share", "max_psi", "most_drifted"]
    assert out.height == 6
    top = out.row(0, named=True)
    assert top["symbol"] == "CCC"
    assert top["features_tested"] == 4 and top["drifted_share"] == 1.0
    assert top["most_drifted"] in features
    others = out.filter(pl.col("symbol").is_in(["AAA", "BBB", "DDD", "EEE"]))
    assert (others.get_column("drifted_share") == 0.0).all()
    short = out.filter(pl.col("symbol") == "FFF").row(0, named=True)
    assert short == {
        "symbol": "FFF",
        "features_tested": 0,
        "drifted_share": None,
        "max_psi": None,
        "most_drifted": None,
    }
    assert out.get_column("symbol").to_list()[-1] == "FFF"
    # each symbol's PSI is psi() of its rows against the pooled reference
    rows = cur.filter(pl.col("symbol") == "CCC")
    expected = max(
        psi(ref.get_column(f).to_numpy(), rows.get_column(f).to_numpy()) for f in features
    )
    assert top["max_psi"] == pytest.approx(expected, rel=1e-12)


# --- current_window ----------------------------------------------------------------------------


def test_current_window_takes_the_last_sessions_per_symbol_up_to_end():
    start = date(2024, 1, 1)
    frames = []
    for symbol, n_days, step in [("AAA", 30, 1), ("BBB", 12, 2), ("CCC", 3, 1)]:
        dates = [start + timedelta(days=step * i) for i in range(n_days)]
        frames.append(pl.DataFrame({"symbol": symbol, "date": dates, "x": range(n_days)}))
    frame = pl.concat(frames).sample(fraction=1.0, shuffle=True, seed=0)  # order must not matter
    end = date(2024, 1, 20)
    out = current_window(frame, sessions=5, end=end)

    for symbol, group in out.group_by("symbol"):
        eligible = frame.filter((pl.col("symbol") == symbol[0]) & (pl.col("date") <= end))
        expected = eligible.sort("date").tail(5)
        assert_frame_equal(group.sort("date"), expected)
    assert out.group_by("symbol").len().sort("symbol").get_column("len").to_list() == [5, 5, 3]
    assert out.get_column("date").max() <= end
    assert out.filter(pl.col("symbol") == "AAA").get_column("date").min() == date(2024, 1, 16)
    assert out.filter(pl.col("symbol") == "BBB").get_column("date").min() == date(2024, 1, 11)
    assert out.select("symbol", "date").equals(out.select("symbol", "date").sort("symbol", "date"))

    everything = current_window(frame, sessions=2)
    assert everything.filter(pl.col("symbol") == "AAA").get_column("date").to_list() == [
        date(2024, 1, 29),
        date(2024, 1, 30),
    ]
    with pytest.raises(ValueError):
        current_window(frame, sessions=0)
