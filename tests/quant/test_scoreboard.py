"""Honest-scoreboard metrics on hand-made inputs whose answers are known before the code runs."""

from __future__ import annotations

import itertools
import math
from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from scipy import stats
from statsmodels.stats.multitest import multipletests

from quant.evaluation.scoreboard import (
    adjust_pvalues,
    brier_score,
    cross_sectional_ic,
    daily_ic,
    deflated_sharpe,
    excess_sharpe,
    expanding_class_prior,
    expected_calibration_error,
    expected_max_sharpe,
    ic_summary,
    information_ratio,
    mincer_zarnowitz,
    mincer_zarnowitz_by_symbol,
    probabilistic_sharpe,
    reliability_from_classes,
    reliability_table,
)

D0 = date(2024, 1, 1)
NAMES = ["A", "B", "C", "D", "E", "F"]


def _day(i: int) -> date:
    return D0 + timedelta(days=i)


def _panel(target_sign: float, dates: int = 4) -> pl.DataFrame:
    """Six names; the target is an exact linear function of the score on every date."""
    rows = [
        {"symbol": s, "date": _day(d), "score": float(i + d), "fwd": target_sign * 0.01 * (i + d)}
        for d in range(dates)
        for i, s in enumerate(NAMES)
    ]
    return pl.DataFrame(rows)


# --------------------------------------------------------------------------- IC


def test_perfect_and_reversed_rankings_give_ic_of_one_and_minus_one():
    perfect = daily_ic(_panel(1.0), "score", "fwd")
    reversed_ = daily_ic(_panel(-1.0), "score", "fwd")
    assert perfect.columns == ["date", "ic", "rank_ic", "names"]
    assert perfect.height == 4
    assert perfect["ic"].to_list() == pytest.approx([1.0] * 4)
    assert perfect["rank_ic"].to_list() == pytest.approx([1.0] * 4)
    assert reversed_["ic"].to_list() == pytest.approx([-1.0] * 4)
    assert reversed_["rank_ic"].to_list() == pytest.approx([-1.0] * 4)
    assert perfect["names"].to_list() == [6] * 4


def test_a_date_with_too_few_names_is_dropped_and_nulls_do_not_count():
    panel = _panel(1.0)
    thin = pl.DataFrame(
        {"symbol": ["A", "B", "C", "D"], "date": [_day(9)] * 4, "score": [1.0, 2, 3, 4]}
    ).with_columns(fwd=pl.col("score") * 0.01)
    # on day 0 two names lose their target (null, NaN): 4 valid names left, below min_names
    day0 = pl.col("date") == _day(0)
    panel = pl.concat([panel, thin]).with_columns(
        fwd=pl.when(day0 & (pl.col("symbol") == "A"))
        .then(None)
        .when(day0 & (pl.col("symbol") == "B"))
        .then(float("nan"))
        .otherwise(pl.col("fwd"))
    )
    out = daily_ic(panel, "score", "fwd", min_names=5)
    assert out["date"].to_list() == [_day(1), _day(2), _day(3)]
    kept = daily_ic(panel, "score", "fwd", min_names=4)
    assert kept["date"].to_list() == [_day(0), _day(1), _day(2), _day(3), _day(9)]
    assert kept.filter(pl.col("date") == _day(0))["names"].item() == 4


def test_symbols_filter_excludes_a_name_that_would_change_the_answer():
    spoiler = pl.DataFrame(
        {"symbol": ["Z"] * 4, "date": [_day(d) for d in range(4)], "score": [100.0] * 4}
    ).with_columns(fwd=pl.lit(-5.0))  # top score, worst return: breaks the perfect ranking
    panel = pl.concat([_panel(1.0), spoiler])
    everyone = daily_ic(panel, "score", "fwd")
    universe = daily_ic(panel, "score", "fwd", symbols=NAMES)
    assert all(ic < 0.5 for ic in everyone["rank_ic"])
    assert universe["ic"].to_list() == pytest.approx([1.0] * 4)
    assert universe["rank_ic"].to_list() == pytest.approx([1.0] * 4)


def test_ic_summary_icir_and_newey_west_t_by_hand():
    """ICIR = mean / std (ddof=1); the NW variance divides autocovariances by T (ddof=0 at lag
    0), so the lag-0 t-stat is mean / (std_ddof0 / sqrt(T))."""
    ic = [0.10, 0.30, -0.10, 0.20, 0.05]
    daily = pl.DataFrame({"date": [_day(i) for i in range(5)], "ic": ic, "rank_ic": ic[::-1]})
    n = 5
    mean = sum(ic) / n  # 0.11
    dev = [x - mean for x in ic]
    var1 = sum(d * d for d in dev) / (n - 1)
    var0 = sum(d * d for d in dev) / n
    out = ic_summary(daily, lag=0)
    assert out["IC"] == pytest.approx(0.11)
    assert out["ICIR"] == pytest.approx(mean / math.sqrt(var1))
    assert out["IC t (NW)"] == pytest.approx(mean / (math.sqrt(var0) / math.sqrt(n)))
    assert out["Rank IC"] == pytest.approx(0.11)
    assert out["dates"] == 5
    # lag 1: S = gamma0 + 2 * (1 - 1/2) * gamma1, gamma1 = sum(d_t d_{t-1}) / T
    gamma1 = sum(dev[t] * dev[t - 1] for t in range(1, n)) / n
    s = var0 + gamma1
    assert ic_summary(daily, lag=1)["IC t (NW)"] == pytest.approx(mean / math.sqrt(s / n))
    assert list(out) == [
        "IC",
        "ICIR",
        "Rank IC",
        "Rank ICIR",
        "IC t (NW)",
        "Rank IC t (NW)",
        "dates",
    ]


def test_ic_summary_is_nan_when_undefined():
    short = pl.DataFrame({"date": [_day(0), _day(1)], "ic": [0.1, 0.2], "rank_ic": [0.1, 0.2]})
    flat = pl.DataFrame(
        {"date": [_day(i) for i in range(4)], "ic": [0.1] * 4, "rank_ic": [0.1] * 4}
    )
    assert math.isnan(ic_summary(short, 0)["ICIR"]) and math.isnan(ic_summary(short, 0)["IC"])
    assert ic_summary(flat, 0)["IC"] == pytest.approx(0.1)
    assert math.isnan(ic_summary(flat, 0)["ICIR"]) and math.isnan(ic_summary(flat, 0)["IC t (NW)"])


def test_cross_sectional_ic_one_row_per_target_with_lag_horizon_minus_one():
    rng = np.random.default_rng(0)
    rows = [{"symbol": s, "date": _day(d), "score": rng.normal()} for d in range(30) for s in NAMES]
    panel = pl.DataFrame(rows).with_columns(
        fwd_return_1=pl.col("score") + pl.Series(rng.normal(size=180)),
        fwd_return_5=pl.col("score") * 0.5 + pl.Series(rng.normal(size=180)),
    )
    table = cross_sectional_ic(panel, "score", {"fwd_return_1": 1, "fwd_return_5": 5})
    assert table["target"].to_list() == ["fwd_return_1", "fwd_return_5"]
    assert table["horizon"].to_list() == [1, 5]
    five = ic_summary(daily_ic(panel, "score", "fwd_return_5"), lag=4)
    row = table.row(1, named=True)
    for key, value in five.items():
        assert row[key] == pytest.approx(value)


# --------------------------------------------------------------------------- class prior


def test_expanding_class_prior_uses_only_known_labels_of_the_same_symbol():
    a = pl.DataFrame(
        {
            "symbol": ["A"] * 5,
            "date": [_day(i) for i in range(5)],
            "direction": [2, None, 2, 2, 2],
            "label_end": [_day(i + 2) for i in range(5)],  # known two days later
        }
    )
    b = pl.DataFrame(
        {
            "symbol": ["B"] * 3,
            "date": [_day(i) for i in range(3)],
            "direction": [0, 0, 0],
            "label_end": [_day(i) for i in range(3)],  # known the same day
        }
    )
    panel = pl.concat([a, b]).reverse()  # output keeps the input's row order
    out = expanding_class_prior(panel)
    assert out.columns == ["symbol", "date", "prior_down", "prior_neutral", "prior_up"]
    assert out.select("symbol", "date").equals(panel.select("symbol", "date"))
    got = {(r["symbol"], r["date"]): r for r in out.iter_rows(named=True)}

    def check(symbol: str, day: int, expected: tuple[float, float, float]) -> None:
        r = got[(symbol, _day(day))]
        assert (r["prior_down"], r["prior_neutral"], r["prior_up"]) == pytest.approx(expected)

    third = (1 / 3, 1 / 3, 1 / 3)
    check("A", 0, third)  # nothing known yet
    check("A", 1, third)
    check("A", 2, (1 / 4, 1 / 4, 2 / 4))  # day-0 label known on day 2 (exact match counts)
    check("A", 3, (1 / 4, 1 / 4, 2 / 4))  # the day-1 label is null: adds nothing
    check("A", 4, (1 / 5, 1 / 5, 3 / 5))
    check("B", 0, (2 / 4, 1 / 4, 1 / 4))  # B's downs never leak into A
    check("B", 1, (3 / 5, 1 / 5, 1 / 5))
    check("B", 2, (4 / 6, 1 / 6, 1 / 6))
    half = expanding_class_prior(panel, smoothing=0.5).filter(
        (pl.col("symbol") == "A") & (pl.col("date") == _day(4))
    )
    assert half["prior_up"].item() == pytest.approx((2 + 0.5) / (2 + 1.5))


def test_expanding_class_prior_generic_names_and_bad_labels():
    panel = pl.DataFrame(
        {"symbol": ["A", "A"], "date": [_day(0), _day(1)], "y": [1, 0], "k": [_day(0), _day(1)]}
    )
    out = expanding_class_prior(panel, label="y", known_at="k", n_classes=2)
    assert out.columns == ["symbol", "date", "prior_0", "prior_1"]
    assert out.row(1)[2:] == pytest.approx((2 / 4, 2 / 4))
    with pytest.raises(ValueError, match="outside"):
        expanding_class_prior(panel.with_columns(y=pl.lit(3)), label="y", known_at="k")


# --------------------------------------------------------------------------- probabilities


def test_brier_of_perfect_and_uniform_forecasts():
    y = np.array([0, 2, 1, 2])
    assert brier_score(np.eye(3)[y], y) == 0.0
    assert brier_score(np.full((4, 3), 1 / 3), y) == pytest.approx(2 / 3)


def test_reliability_table_bins_and_classes():
    table = reliability_table(np.array([0.05, 0.02, 0.95, 1.0]), np.array([0, 0, 1, 1]), bins=10)
    assert table.columns == ["bin", "p_mean", "hit_rate", "count"]
    assert table["bin"].to_list() == [0, 9]  # empty bins omitted, p = 1 in the last bin
    assert table["count"].to_list() == [2, 2]
    assert table["p_mean"].to_list() == pytest.approx([0.035, 0.975])
    pooled = reliability_from_classes(np.array([[0.7, 0.2, 0.1]]), np.array([0]))
    assert pooled["bin"].to_list() == [1, 2, 7]
    assert pooled["hit_rate"].to_list() == [0.0, 0.0, 1.0]


def test_calibrated_forecast_has_small_ece_and_miscalibrated_larger():
    rng = np.random.default_rng(7)
    p = rng.random(100_000)
    calibrated = rng.random(p.size) < p
    overconfident = rng.random(p.size) < p**2
    good = expected_calibration_error(reliability_table(p, calibrated))
    bad = expected_calibration_error(reliability_table(p, overconfident))
    assert good < 0.02
    assert bad > 0.1 > good  # E|p - p^2| = 1/6 for uniform p


# --------------------------------------------------------------------------- Mincer-Zarnowitz


def test_mz_of_a_perfect_forecast_does_not_reject():
    rng = np.random.default_rng(3)
    f = rng.normal(0.2, 0.05, 500)
    out = mincer_zarnowitz(f, f + rng.normal(0.0, 0.01, 500), lag=4)
    assert out["alpha"] == pytest.approx(0.0, abs=0.01)
    assert out["beta"] == pytest.approx(1.0, abs=0.05)
    assert out["wald_p"] > 0.05
    assert out["n"] == 500
    assert out["r2"] > 0.9


def test_mz_of_a_biased_forecast_rejects():
    rng = np.random.default_rng(4)
    f = rng.normal(0.2, 0.05, 300)
    exact = mincer_zarnowitz(f, 2 * f + 1, lag=2)
    noisy = mincer_zarnowitz(f, 2 * f + 1 + rng.normal(0.0, 0.01, 300), lag=2)
    for out in (exact, noisy):
        assert out["alpha"] == pytest.approx(1.0, abs=0.05)
        assert out["beta"] == pytest.approx(2.0, abs=0.1)
        assert out["wald_p"] < 1e-6


def test_mz_is_nan_safe():
    f = np.array([0.1, 0.2, np.nan, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9, 1.0])
    out = mincer_zarnowitz(f, f, lag=1)  # 10 finite pairs: enough
    assert out["n"] == 10 and out["beta"] == pytest.approx(1.0)
    short = mincer_zarnowitz(f[:9], f[:9], lag=1)
    assert short["n"] == 8 and math.isnan(short["beta"]) and math.isnan(short["wald_p"])


def test_mz_by_symbol_one_row_each():
    rng = np.random.default_rng(5)
    f = rng.normal(0.2, 0.05, 60)
    frame = pl.DataFrame(
        {
            "symbol": ["A"] * 60 + ["B"] * 60,
            "date": [_day(i) for i in range(60)] * 2,
            "fc": np.concatenate([f, f]),
            "real": np.concatenate([f + rng.normal(0, 0.01, 60), 3 * f - 0.2]),
        }
    )
    out = mincer_zarnowitz_by_symbol(frame, "fc", "real", lag=1)
    assert out["symbol"].to_list() == ["A", "B"]
    assert out["beta"].to_list() == pytest.approx([1.0, 3.0], abs=0.15)
    assert out["wald_p"][1] < 1e-6


# --------------------------------------------------------------------------- multiple testing


@pytest.mark.parametrize("method", ["holm", "fdr_bh"])
def test_adjust_pvalues_matches_statsmodels_and_passes_nan(method):
    p = [0.01, 0.04, 0.03, 0.5, 0.002]
    assert adjust_pvalues(p, method) == pytest.approx(multipletests(p, method=method)[1])
    out = adjust_pvalues([0.01, float("nan"), 0.04], method)
    assert math.isnan(out[1])
    assert out[[0, 2]] == pytest.approx(multipletests([0.01, 0.04], method=method)[1])


# --------------------------------------------------------------------------- Sharpe ratios


def test_deflated_sharpe_reproduces_the_papers_numerical_example():
    """Bailey & Lopez de Prado (2014), "The Deflated Sharpe Ratio", numerical example (pp. 9-10
    of the SSRN 2460551 version): the best of N = 100 trials has an annualized SR of 2.5 over
    T = 1250 daily observations (5 years of 250 sessions), skewness -3, kurtosis 10, and the
    trials' annualized SRs have variance 1/2. In per-period units SR = 2.5 / sqrt(250) and
    V = 0.5 / 250 (the Sharpe scales with sqrt(250), its variance with 250). The paper reports
    SR0 = 0.1132 (about 1.79 annualized) and DSR = 0.9004; with N = 46 the DSR would be 0.9505,
    and with normal returns (skew 0, kurtosis 3) N = 88 also gives 0.9505.

    The paper itself could not be read from this machine: the printed figures were confirmed
    from several independent implementations whose tests quote the same values from the paper
    (found with the code search), and agree with the formulas evaluated by hand below. They are
    asserted to the paper's four decimals.
    """
    sr, variance = 2.5 / math.sqrt(250), 0.5 / 250
    sr0 = expected_max_sharpe(variance, 100)
    assert sr0 == pytest.approx(0.1132, abs=5e-5)
    assert sr0 * math.sqrt(250) == pytest.approx(1.79, abs=5e-3)
    assert probabilistic_sharpe(sr, sr0, 1250, -3.0, 10.0) == pytest.approx(0.9004, abs=5e-5)
    dsr46 = probabilistic_sharpe(sr, expected_max_sharpe(variance, 46), 1250, -3.0, 10.0)
    assert dsr46 == pytest.approx(0.9505, abs=5e-5)
    normal88 = probabilistic_sharpe(sr, expected_max_sharpe(variance, 88), 1250, 0.0, 3.0)
    assert normal88 == pytest.approx(0.9505, abs=5e-5)
    # the same chain by hand
    g = 0.5772156649015329
    by_hand = math.sqrt(variance) * (
        (1 - g) * stats.norm.ppf(1 - 1 / 100) + g * stats.norm.ppf(1 - 1 / (100 * math.e))
    )
    z = (sr - by_hand) * math.sqrt(1249) / math.sqrt(1 + 3 * sr + 9 / 4 * sr**2)
    assert sr0 == pytest.approx(by_hand, rel=1e-12)
    assert probabilistic_sharpe(sr, sr0, 1250, -3.0, 10.0) == pytest.approx(
        stats.norm.cdf(z), rel=1e-12
    )


def test_psr_at_the_benchmark_is_half_and_expected_max_grows_with_trials():
    assert probabilistic_sharpe(0.1, 0.1, 500, -1.0, 6.0) == pytest.approx(0.5)
    assert expected_max_sharpe(0.01, 1) == 0.0
    bars = [expected_max_sharpe(0.01, n) for n in (2, 10, 100, 1000, 10_000)]
    assert all(a < b for a, b in itertools.pairwise(bars))


def test_deflated_sharpe_from_returns_wires_the_moments_through():
    rng = np.random.default_rng(11)
    r = rng.standard_t(5, 1000) * 0.01 + 0.001
    out = deflated_sharpe(r, n_trials=20, sr_variance=0.002)
    sr = r.mean() / r.std(ddof=1)
    assert out["sr"] == pytest.approx(sr)
    assert out["skew"] == pytest.approx(stats.skew(r))
    assert out["kurtosis"] == pytest.approx(stats.kurtosis(r, fisher=False))
    assert out["expected_max_sr"] == pytest.approx(expected_max_sharpe(0.002, 20))
    assert out["dsr"] == pytest.approx(
        probabilistic_sharpe(sr, out["expected_max_sr"], 1000, out["skew"], out["kurtosis"])
    )
    assert out["n_obs"] == 1000
    assert math.isnan(deflated_sharpe(np.ones(10), 5, 0.01)["dsr"])


def test_information_ratio_of_a_constant_active_return_with_noise():
    rng = np.random.default_rng(2)
    benchmark = rng.normal(0.0004, 0.01, 5000)
    active = 0.0005 + rng.normal(0.0, 0.002, 5000)
    ir = information_ratio(benchmark + active, benchmark)
    assert ir == pytest.approx(active.mean() / active.std(ddof=1) * math.sqrt(252))
    assert ir == pytest.approx(0.0005 / 0.002 * math.sqrt(252), rel=0.1)  # about 3.97
    assert math.isnan(information_ratio(benchmark + 0.001, benchmark))  # no tracking error


def test_excess_sharpe_with_and_without_cash():
    rng = np.random.default_rng(9)
    r = rng.normal(0.0005, 0.01, 1000)
    plain = r.mean() / r.std(ddof=1) * math.sqrt(252)
    assert excess_sharpe(r) == pytest.approx(plain)
    assert excess_sharpe(r, 0.0252) == pytest.approx(
        (r.mean() - 0.0001) / r.std(ddof=1) * math.sqrt(252)
    )
    assert excess_sharpe(r, 0.05) < plain
