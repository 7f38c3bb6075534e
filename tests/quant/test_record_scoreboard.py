"""The honest scoreboard on hand-made records with known answers: per-symbol baselines,
cross-sectional IC over the equities only, adjusted p-values, verdicts in plain words."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from quant.record_scoreboard import DECISIVE, headline, scoreboard
from quant.sceptic_baselines import per_symbol_har, with_sceptic_baselines

EQUITIES = [f"EQ{i:02d}" for i in range(20)]
GROUPS = {DECISIVE: frozenset(EQUITIES), "^VIX": frozenset({"^VIX"})}


def sessions(n: int) -> list[date]:
    start = date(2022, 1, 3)
    return [start + timedelta(days=i) for i in range(n)]


def direction_record(signal: float, seed: int = 0, n_dates: int = 250) -> pl.DataFrame:
    """Direction rows of one model for 20 equities and ^VIX: P(up) - P(down) carries
    ``signal`` × the next return's rank; ^VIX is perfectly predicted (it must not count)."""
    rng = np.random.default_rng(seed)
    rows = []
    for d in sessions(n_dates):
        returns = rng.normal(0, 0.01, len(EQUITIES) + 1)
        for i, symbol in enumerate([*EQUITIES, "^VIX"]):
            r = returns[i]
            noise = rng.normal(0, 1)
            tilt = (np.tanh(r * 100) if symbol == "^VIX" else signal * r * 100 + noise) * 0.05
            p_up, p_down = 0.4 + tilt, 0.4 - tilt
            rows.append(
                {
                    "symbol": symbol,
                    "date": d,
                    "model": "direction_xgboost",
                    "refit_date": date(2021, 12, 31),
                    "p_down": p_down,
                    "p_neutral": 0.2,
                    "p_up": p_up,
                    "direction": 2 if r > 0.001 else 0 if r < -0.001 else 1,
                    "fwd_return_1": r,
                    "fwd_return_5": r + rng.normal(0, 0.02),
                    "fwd_return_20": r + rng.normal(0, 0.04),
                    "prev_direction": int(rng.integers(0, 3)),
                    "prior_down": 0.4,
                    "prior_neutral": 0.2,
                    "prior_up": 0.4,
                    "sym_prior_down": 0.4,
                    "sym_prior_neutral": 0.2,
                    "sym_prior_up": 0.4,
                }
            )
    return pl.DataFrame(rows)


def test_a_planted_cross_sectional_signal_beats_the_per_symbol_prior_and_is_named():
    board = scoreboard(direction_record(signal=3.0), GROUPS)
    ic = board.ic.filter(pl.col("horizon") == 1).row(0, named=True)
    assert ic["Rank IC"] > 0.3
    assert ic["p_raw"] < 1e-6
    log_loss = board.scores.filter(
        (pl.col("group") == DECISIVE)
        & (pl.col("metric") == "log_loss")
        & (pl.col("baseline") == "symbol_prior")
    ).row(0, named=True)
    assert log_loss["model_value"] < log_loss["baseline_value"]
    assert log_loss["verdict"] == "beats it (Holm-significant)"
    assert "Beat their per-symbol baseline after Holm: direction_xgboost" in headline(board)


def test_noise_does_not_beat_it_and_the_report_says_so():
    board = scoreboard(direction_record(signal=0.0, seed=1), GROUPS)
    ic = board.ic.filter(pl.col("horizon") == 1).row(0, named=True)
    assert abs(ic["Rank IC"]) < 0.03
    assert ic["p_raw"] > 0.01
    assert "No model beats its per-symbol baseline after the Holm adjustment" in headline(board)


def test_the_headline_ic_is_over_equities_only():
    record = direction_record(signal=0.0, seed=2)
    board = scoreboard(record, GROUPS)
    alone = scoreboard(record.filter(pl.col("symbol") != "^VIX"), GROUPS)
    # ^VIX is predicted perfectly, yet the equities' cross-sectional IC ignores it
    assert board.ic["Rank IC"].to_list() == pytest.approx(alone.ic["Rank IC"].to_list())
    vix = board.scores.filter(pl.col("group") == "^VIX")
    assert set(vix["metric"]) == {"log_loss", "brier", "accuracy"}  # reported on its own


def test_p_values_are_adjusted_over_the_whole_board():
    board = scoreboard(direction_record(signal=0.5, seed=3), GROUPS)
    scores = board.scores.filter(pl.col("p_raw").is_not_null() & pl.col("p_raw").is_not_nan())
    raw = scores["p_raw"].to_numpy()
    assert scores["p_holm"].to_numpy() == pytest.approx(multipletests(raw, method="holm")[1])
    assert scores["p_bh"].to_numpy() == pytest.approx(multipletests(raw, method="fdr_bh")[1])
    assert (scores["p_holm"].to_numpy() >= raw - 1e-12).all()
    # the rank-IC tests are part of the family
    assert scores.filter(pl.col("metric").str.starts_with("Rank IC")).height == 3


def test_probabilistic_models_get_brier_and_a_reliability_diagram():
    board = scoreboard(direction_record(signal=1.0, seed=4), GROUPS)
    row = board.calibration.row(0, named=True)
    assert row["model"] == "direction_xgboost"
    assert 0.0 < row["brier"] < 1.0
    assert 0.0 <= row["ece"] < 0.2
    assert board.figures["reliability_direction_xgboost"].startswith(b"\x89PNG")


def volatility_panel(n: int = 900) -> pl.DataFrame:
    """Two symbols whose vol levels differ fivefold; fwd_vol_20 = trailing vol + noise."""
    rng = np.random.default_rng(5)
    frames = []
    for symbol, level in (("LOW", 0.15), ("HIGH", 0.8)):
        days = sessions(n)
        r = rng.normal(0, level / np.sqrt(252), n)
        frames.append(
            pl.DataFrame(
                {
                    "symbol": symbol,
                    "date": days,
                    "log_ret_1": r,
                    "fwd_vol_20": level * np.exp(rng.normal(0, 0.1, n)),
                    "label_end": [d + timedelta(days=28) for d in days],
                }
            )
        )
    return pl.concat(frames).sort("symbol", "date")


def test_a_per_symbol_har_is_fitted_on_the_symbol_alone_and_only_on_labels_known_at_refit():
    panel = volatility_panel()
    refit = date(2023, 6, 1)
    after = panel.filter(pl.col("date") > refit).select("symbol", "date")
    rows = pl.concat([after.filter(pl.col("symbol") == s).head(20) for s in ("LOW", "HIGH")])
    rows = rows.with_columns(pl.lit(refit).alias("refit_date"))
    har = per_symbol_har(panel, rows, ("rv_1", "rv_5", "rv_22"), "har_symbol")
    low = har.filter(pl.col("symbol") == "LOW")["har_symbol"].mean()
    high = har.filter(pl.col("symbol") == "HIGH")["har_symbol"].mean()
    assert low == pytest.approx(0.15, rel=0.15)  # a pooled fit would sit between the two
    assert high == pytest.approx(0.8, rel=0.15)
    # labels that ended after the refit are never read: changing them changes nothing
    later = panel.with_columns(
        pl.when(pl.col("label_end") > refit)
        .then(pl.col("fwd_vol_20") * 10)
        .otherwise(pl.col("fwd_vol_20"))
        .alias("fwd_vol_20")
    )
    again = per_symbol_har(later, rows, ("rv_1", "rv_5", "rv_22"), "har_symbol")
    assert again.sort("symbol", "date")["har_symbol"].to_list() == pytest.approx(
        har.sort("symbol", "date")["har_symbol"].to_list()
    )


def test_with_sceptic_baselines_attaches_per_symbol_priors_known_by_the_date():
    days = sessions(6)
    panel = pl.DataFrame(
        {
            "symbol": ["A"] * 6 + ["B"] * 6,
            "date": days * 2,
            "direction": [2] * 6 + [0] * 6,
            "regime": [1] * 12,
            "label_end": [d + timedelta(days=1) for d in days] * 2,
            "fwd_return_1": [0.01] * 12,
            "fwd_return_20": [0.05] * 12,
            "prev_direction": [2] * 12,
            "log_ret_1": [0.01] * 12,
            "fwd_vol_20": [0.2] * 12,
            "parkinson_vol_20": [0.2] * 12,
        }
    )
    record = panel.select("symbol", "date").with_columns(
        pl.lit("direction_xgboost").alias("model"), pl.lit(days[0]).alias("refit_date")
    )
    out = with_sceptic_baselines(record, panel).sort("symbol", "date")
    a = out.filter(pl.col("symbol") == "A")
    # day 0 knows nothing (uniform); day 2 knows A's labels of days 0 and 1: (2+1)/(2+3) up
    assert a["sym_prior_up"][0] == pytest.approx(1 / 3)
    assert a["sym_prior_up"][2] == pytest.approx(3 / 5)
    # B's downs never leak into A's prior
    assert a["sym_prior_down"][2] == pytest.approx(1 / 5)
    assert out["fwd_return_5"].drop_nulls().to_list()[0] == pytest.approx(5 * np.log(1.01))
