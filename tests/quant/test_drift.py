"""Drift monitoring on samples with known answers: PSI, KS + Benjamini-Hochberg, windows, and
the drift share's null distribution inside the reference (calibrated thresholds)."""

import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from polars.testing import assert_frame_equal
from scipy import stats

from quant.monitoring import (
    DriftReport,
    DriftThresholds,
    current_window,
    drift_by_symbol,
    feature_drift,
    psi,
)
from quant.monitoring import drift as drift_module
from quant.monitoring.drift import calibrated_thresholds, reference_drift_shares


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


# --- reference_drift_shares / calibrated_thresholds --------------------------------------------


def _sessions(n: int, start: date = date(2020, 1, 6)) -> list[date]:
    """``n`` weekdays from ``start``."""
    days, day = [], start
    while len(days) < n:
        if day.weekday() < 5:
            days.append(day)
        day += timedelta(days=1)
    return days


def _dated_panel(
    rng: np.random.Generator, n_dates: int, n_symbols: int, n_features: int, shift=None
) -> pl.DataFrame:
    """N(0, 1) features f00.. for every (symbol, date); ``shift(date_index, feature_index)``
    (vectorised over date indices) is added when given."""
    dates = _sessions(n_dates)
    day = np.repeat(np.arange(n_dates), n_symbols)
    data = {}
    for j in range(n_features):
        x = rng.normal(0.0, 1.0, day.size)
        data[f"f{j:02d}"] = x + (shift(day, j) if shift else 0.0)
    return pl.DataFrame(
        {
            "symbol": np.tile([f"S{i:02d}" for i in range(n_symbols)], n_dates),
            "date": [dates[d] for d in day],
            **data,
        }
    )


def _loop_shares(reference: pl.DataFrame, features: list[str], starts, window, thresholds):
    """The definition, window by window with ``feature_drift``: (drift_share, drifted)."""
    dates = reference.get_column("date").unique().sort()
    out = []
    for s in starts:
        days = dates[s : s + window].implode()
        report = feature_drift(
            reference.filter(~pl.col("date").is_in(days)),
            reference.filter(pl.col("date").is_in(days)),
            features,
            thresholds,
        )
        out.append((report.drift_share, report.drifted_count))
    return out


def _assert_same_as_loop(shares: pl.DataFrame, expected: list[tuple[float, int]]) -> None:
    assert shares.height == len(expected)
    for row, (share, count) in zip(shares.iter_rows(named=True), expected, strict=True):
        assert row["drifted_features"] == count
        if math.isnan(share):
            assert math.isnan(row["drift_share"])
        else:
            assert row["drift_share"] == share


def test_reference_drift_shares_equal_feature_drift_window_by_window_small_samples():
    """Small panel (scipy's exact KS path): ties, missing values, a constant and a shift."""
    rng = np.random.default_rng(20)
    n_dates, n_symbols = 150, 8
    panel = _dated_panel(rng, n_dates, n_symbols, 3, lambda d, j: 1.5 * ((j == 1) & (d >= 60)))
    day = np.repeat(np.arange(n_dates), n_symbols)
    panel = panel.with_columns(
        pl.Series("ties", rng.integers(0, 4, day.size).astype(float)),  # discrete: tied values
        pl.Series("warmup", np.where(day < 40, np.nan, rng.normal(size=day.size))),
        pl.lit(2.0).alias("constant"),  # PSI undefined, KS still tested
    ).sample(fraction=1.0, shuffle=True, seed=1)  # row order must not matter
    features = ["f00", "f01", "f02", "ties", "warmup", "constant"]
    thresholds = DriftThresholds(min_rows=50)
    shares = reference_drift_shares(panel, features, window=30, thresholds=thresholds)
    expected = _loop_shares(panel, features, range(0, 150, 30), 30, thresholds)
    _assert_same_as_loop(shares, expected)
    assert shares.get_column("drifted_features").max() >= 1  # the shift at date 60 is seen


def test_reference_drift_shares_equal_feature_drift_on_large_samples():
    """Over 10,000 rows a side scipy switches to the asymptotic KS p-value (and the bounds)."""
    rng = np.random.default_rng(21)
    shift = lambda d, j: np.where(d // 40 == j, 0.6, 0.0) + 0.004 * d * (j == 4)  # noqa: E731
    panel = _dated_panel(rng, 240, 60, 5, shift)
    features = [f"f{j:02d}" for j in range(5)]
    shares = reference_drift_shares(panel, features, window=40)
    expected = _loop_shares(panel, features, range(0, 240, 40), 40, DriftThresholds())
    _assert_same_as_loop(shares, expected)
    assert [c for _, c in expected] != [0] * 6


def test_drift_decisions_from_bounds_equal_those_from_exact_p_values(monkeypatch):
    """BH decisions read off p-value bounds (refined where the bounds disagree) are exactly the
    decisions from every p-value computed."""
    rng = np.random.default_rng(22)
    n_windows, n_features = 300, 8
    en = np.full((n_windows, n_features), 2_000.0)
    d = np.sqrt(rng.uniform(0.5, 8.0, en.shape) / en)  # n D^2 in [0.5, 8]: p ~ 1e-7 .. 0.9
    psi_values = rng.uniform(0.0, 0.4, en.shape)
    d[rng.random(en.shape) < 0.1] = np.nan  # untested features
    window_stats = drift_module._WindowStats(psi_values, d, en, np.full(en.shape, np.nan))
    thresholds = DriftThresholds()
    monkeypatch.setattr(drift_module, "KS_BOUND_NDD", 0.0)  # every p-value starts as a bound
    calls = []
    real = drift_module._bh_drifted
    monkeypatch.setattr(drift_module, "_bh_drifted", lambda *a: calls.append(1) or real(*a))
    got = drift_module._drift_decisions(window_stats, thresholds)
    assert len(calls) > 2 * n_windows  # some windows needed their exact p-values
    for w in range(n_windows):
        cols = np.isfinite(d[w])
        p = np.clip(stats.kstwo.sf(d[w, cols], en[w, cols]), 0, 1)
        adjusted = stats.false_discovery_control(p, method="bh")
        expected = (psi_values[w, cols] >= 0.2) & (adjusted < 0.05)
        assert got[w, cols].tolist() == expected.tolist()
        assert not got[w, ~cols].any()


def test_reference_windows_arithmetic():
    rng = np.random.default_rng(23)
    panel = _dated_panel(rng, 130, 3, 1)
    dates = _sessions(130)

    out = reference_drift_shares(panel, ["f00"], window=20)  # 6 x 20 + 10: the 10 are dropped
    assert out.columns == ["window_start", "window_end", "drift_share", "drifted_features"]
    assert out.get_column("window_start").to_list() == [dates[i] for i in range(0, 101, 20)]
    assert out.get_column("window_end").to_list() == [dates[i + 19] for i in range(0, 101, 20)]

    overlapping = reference_drift_shares(panel, ["f00"], window=20, step=15)
    assert overlapping.height == (130 - 20) // 15 + 1 == 8
    assert overlapping.get_column("window_start").to_list() == [dates[i] for i in range(0, 106, 15)]
    assert overlapping.get_column("window_end").to_list() == [
        dates[i + 19] for i in range(0, 106, 15)
    ]

    assert reference_drift_shares(panel, ["f00"], window=130).height == 1
    empty = reference_drift_shares(panel, ["f00"], window=131)
    assert empty.height == 0 and empty.columns == out.columns
    # evenly spaced subset: first, middle and last of the 111 one-step windows
    spaced = reference_drift_shares(panel, ["f00"], window=20, step=1, max_windows=3)
    assert spaced.get_column("window_start").to_list() == [dates[0], dates[55], dates[110]]
    assert spaced.get_column("window_end").to_list() == [dates[19], dates[74], dates[129]]
    for bad in ({"window": 0}, {"step": 0}, {"max_windows": 0}):
        with pytest.raises(ValueError):
            reference_drift_shares(panel, ["f00"], **bad)
    with pytest.raises(ValueError, match="nope"):
        reference_drift_shares(panel, ["nope"])


def test_stationary_reference_has_a_small_null_and_a_shift_exceeds_it():
    rng = np.random.default_rng(24)
    features = [f"f{j:02d}" for j in range(20)]
    reference = _dated_panel(rng, 630, 20, 20)
    null = reference_drift_shares(reference, features)
    assert null.height == 10
    shares = null.get_column("drift_share").to_numpy()
    assert shares.max() <= 0.05  # no feature moves: at most the odd chance rejection
    retrain, severe = calibrated_thresholds(shares)
    assert 0 < retrain <= 0.05
    assert severe == pytest.approx(retrain + 0.1, abs=1e-5)  # the floor gap above it
    # a quarter in which 6 of the 20 features moved by one standard deviation
    current = _dated_panel(rng, 63, 20, 20, lambda d, j: 1.0 * (j < 6))
    share = feature_drift(reference, current, features).drift_share
    assert share == pytest.approx(0.3)
    assert share >= retrain


def test_regime_change_inside_the_reference_raises_the_threshold():
    """Half the features shift by 2 sd midway: every window drifts against the rest."""
    rng = np.random.default_rng(25)
    features = [f"f{j:02d}" for j in range(20)]
    calm = _dated_panel(rng, 630, 20, 20)
    regimes = _dated_panel(rng, 630, 20, 20, lambda d, j: 2.0 * ((j < 10) & (d >= 315)))
    calm_shares = reference_drift_shares(calm, features).get_column("drift_share").to_numpy()
    regime_shares = reference_drift_shares(regimes, features).get_column("drift_share").to_numpy()
    assert np.median(regime_shares) >= 0.4 > np.max(calm_shares)
    calm_retrain, _ = calibrated_thresholds(calm_shares)
    regime_retrain, regime_severe = calibrated_thresholds(regime_shares)
    assert regime_retrain >= calm_retrain + 0.3
    assert regime_severe >= regime_retrain + 0.1
    # a quarter like the reference's late regime: severe against the calm reference, routine
    # (no more drift than the reference's own quarters) against the one that lived through it
    current = _dated_panel(rng, 63, 20, 20, lambda d, j: 2.0 * (j < 10))
    calm_share = feature_drift(calm, current, features).drift_share
    regime_share = feature_drift(regimes, current, features).drift_share
    assert calm_share >= calibrated_thresholds(calm_shares)[1]
    assert regime_share <= regime_shares.max()


def test_calibrated_thresholds_quantiles_floor_gap_and_clipping():
    shares = np.linspace(0.0, 0.19, 20)
    retrain, severe = calibrated_thresholds(shares)
    assert retrain == pytest.approx(np.quantile(shares, 0.95))  # 0.1805
    assert severe == pytest.approx(retrain + 0.1)  # the max (0.19) is closer than the gap
    wide = np.array([0.1, 0.2, 0.3, 0.4, 0.9])
    retrain, severe = calibrated_thresholds(wide, quantile=0.5)
    assert (retrain, severe) == pytest.approx((0.3, 0.9))
    assert calibrated_thresholds(wide, 0.5, severe_quantile=0.75) == pytest.approx((0.3, 0.4))
    zeros = calibrated_thresholds(np.zeros(10))
    assert 0 < zeros[0] <= 1e-6 and zeros[1] == pytest.approx(0.1)
    assert calibrated_thresholds(np.ones(10)) == (1.0, 1.0)
    assert calibrated_thresholds(np.array([0.9, 0.95, 0.97, 0.99]))[1] == 1.0
    # non-finite shares are ignored, and fewer than 4 left is too little history
    assert calibrated_thresholds(np.array([0.1, np.nan, 0.2, 0.3, 0.4]))[0] == pytest.approx(0.385)
    with pytest.raises(ValueError, match="too little history"):
        calibrated_thresholds(np.array([0.1, 0.2, 0.3, np.nan]))
    with pytest.raises(ValueError, match="too little history"):
        calibrated_thresholds(np.array([]))
    for bad in ({"quantile": 0.0}, {"quantile": 1.5}, {"severe_quantile": 0.0}):
        with pytest.raises(ValueError):
            calibrated_thresholds(shares, **bad)
    with pytest.raises(ValueError):
        calibrated_thresholds(shares, severe_floor_gap=-0.1)
