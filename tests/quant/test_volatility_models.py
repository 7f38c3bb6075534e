"""GARCH(1,1) and HAR-RV volatility forecasters: fitted on the real sample and on synthetic data.

GARCH: sensible parameters, no refit and no look-ahead, agreement with arch's own forecast, the
long-horizon limit, skipped symbols and pickling. HAR: coefficient recovery, training rows only,
and the trailing realized-vol helper against hand-computed values.
"""

from __future__ import annotations

import math
import pickle
from datetime import date

import numpy as np
import polars as pl
import pytest
from arch import arch_model

from quant.models.garch import GarchForecaster
from quant.models.har import REGRESSORS, HarForecaster, har_regressors, trailing_realized_vol

SYMBOLS = ["AAPL", "^GSPC", "JPM"]
TRAIN_END = date(2022, 12, 30)
CUTOFF = date(2024, 6, 28)  # inside the test period
R = pl.col("log_ret_1")


def qlike(realized: np.ndarray, forecast: np.ndarray) -> float:
    """QLIKE loss on variances: mean(x - log x - 1) with x = realized^2 / forecast^2 (0 if exact)."""
    x = (realized / forecast) ** 2
    return float(np.mean(x - np.log(x) - 1.0))


@pytest.fixture(scope="module")
def returns(sample_panel) -> pl.DataFrame:
    """symbol, date, log_ret_1 from split/dividend-adjusted closes (indices have no adj_close)."""
    factor = (pl.col("adj_close") / pl.col("close")).forward_fill().fill_null(1.0).over("symbol")
    price = pl.col("close") * factor
    return (
        sample_panel.filter(pl.col("symbol").is_in(SYMBOLS) & (pl.col("date") >= date(2018, 1, 1)))
        .sort("symbol", "date")
        .with_columns((price / price.shift(1)).log().over("symbol").alias("log_ret_1"))
        .select("symbol", "date", "log_ret_1")
    )


@pytest.fixture(scope="module")
def garch(returns) -> GarchForecaster:
    return GarchForecaster(horizon=20).fit(returns, TRAIN_END)


@pytest.fixture(scope="module")
def garch_forecast(garch, returns) -> pl.DataFrame:
    return garch.forecast(returns)


# --- GARCH ---------------------------------------------------------------------------------------


def test_garch_params_are_sensible(garch) -> None:
    assert set(garch.params) == set(SYMBOLS)
    assert garch.skipped == {}
    table = garch.params_table()
    assert table.height == len(SYMBOLS)
    for row in table.iter_rows(named=True):
        assert row["omega"] > 0.0, row
        assert 0.0 < row["alpha"] < 1.0, row
        assert 0.0 < row["beta"] < 1.0, row
        assert row["persistence"] < 1.0, row
        assert math.isclose(row["persistence"], row["alpha"] + row["beta"])
        assert math.isfinite(row["loglik"]), row
        assert row["n_train"] >= 1200, row  # 2018..2022, minus the first row
        assert 0.05 < row["unconditional_vol"] < 1.0, row
    assert all(p.converged for p in garch.params.values())


def test_garch_forecast_rows_and_values(garch_forecast, returns) -> None:
    assert garch_forecast.columns == ["symbol", "date", "garch_vol"]
    assert garch_forecast.schema["garch_vol"] == pl.Float64
    assert garch_forecast.select("symbol", "date").equals(returns.select("symbol", "date"))
    first = garch_forecast.with_columns(pl.int_range(pl.len()).over("symbol").alias("n"))
    assert first.filter(pl.col("n") == 0)["garch_vol"].null_count() == len(SYMBOLS)
    later = first.filter(pl.col("n") > 0)["garch_vol"].to_numpy()
    assert np.isfinite(later).all()
    assert (later > 0.0).all()
    assert later.max() < 3.0  # annualized: never above 300 %


def test_garch_has_no_lookahead(garch, garch_forecast, returns) -> None:
    truncated = garch.forecast(returns.filter(pl.col("date") <= CUTOFF))
    full = garch_forecast.filter(pl.col("date") <= CUTOFF)
    assert truncated.select("symbol", "date").equals(full.select("symbol", "date"))
    a, b = truncated["garch_vol"].to_numpy(), full["garch_vol"].to_numpy()
    assert np.allclose(a, b, rtol=1e-10, atol=0.0, equal_nan=True)
    # and forecasts up to the cutoff ignore a wild future entirely
    wild = returns.with_columns(
        pl.when(pl.col("date") > CUTOFF).then(R * 10.0).otherwise(R).alias("log_ret_1")
    )
    c = garch.forecast(wild).filter(pl.col("date") <= CUTOFF)["garch_vol"].to_numpy()
    assert np.allclose(c, b, rtol=1e-10, atol=0.0, equal_nan=True)


def test_garch_fit_reads_training_rows_only(garch, returns) -> None:
    """No refit: appending (even absurd) data after train_end leaves the parameters unchanged."""
    train_only = GarchForecaster().fit(returns.filter(pl.col("date") <= TRAIN_END), TRAIN_END)
    doubled = returns.with_columns(
        pl.when(pl.col("date") > TRAIN_END).then(R * 5.0).otherwise(R).alias("log_ret_1")
    )
    appended = GarchForecaster().fit(doubled, TRAIN_END)
    for other in (train_only, appended):
        assert other.params.keys() == garch.params.keys()
        for symbol, p in garch.params.items():
            assert np.allclose(other.params[symbol].as_arch(), p.as_arch(), rtol=1e-12, atol=0.0)
            assert other.params[symbol].n_train == p.n_train


def test_garch_matches_arch_fixed_forecast(garch, garch_forecast, returns) -> None:
    """After the start-up rows the recursion equals arch's own fix(params).forecast()."""
    for symbol in SYMBOLS:
        r = returns.filter(pl.col("symbol") == symbol)["log_ret_1"].drop_nulls().to_numpy()
        fixed = arch_model(100.0 * r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal").fix(
            garch.params[symbol].as_arch()
        )
        variance = fixed.forecast(horizon=20, start=0, reindex=False).variance.to_numpy()
        expected = np.sqrt(252.0 / 20.0 * variance.sum(axis=1)) / 100.0
        mine = garch_forecast.filter(pl.col("symbol") == symbol)["garch_vol"].drop_nulls()
        assert mine.len() == expected.shape[0]
        # the two differ only in the variance they start from, which decays like beta^t
        assert np.allclose(mine.to_numpy()[500:], expected[500:], rtol=1e-9, atol=0.0)


def test_garch_long_horizon_tends_to_unconditional_vol(garch, returns) -> None:
    long = GarchForecaster(horizon=20_000)
    long.params = garch.params  # same fitted parameters, much longer horizon
    forecast = long.forecast(returns)
    for symbol, p in garch.params.items():
        values = forecast.filter(pl.col("symbol") == symbol)["garch_vol"].drop_nulls().to_numpy()
        target = math.sqrt(252.0 * p.omega / (1.0 - p.alpha - p.beta)) / 100.0
        assert math.isclose(target, p.unconditional_vol)
        deviation = np.abs(values / target - 1.0)
        # the March 2020 spike (variance ~30x its mean for ^GSPC) is still a few % off
        assert deviation.max() < 0.04, symbol
        assert np.median(deviation) < 0.005, symbol


def test_garch_qlike_against_naive_on_gspc(garch_forecast, returns) -> None:
    frame = returns.with_columns(
        trailing_realized_vol(R, 20).alias("naive"),
        trailing_realized_vol(R, 20).shift(-20).over("symbol").alias("fwd_vol_20"),
    ).join(garch_forecast, on=["symbol", "date"])
    test = frame.filter((pl.col("symbol") == "^GSPC") & (pl.col("date") > TRAIN_END)).drop_nulls(
        ["naive", "fwd_vol_20", "garch_vol"]
    )
    realized = test["fwd_vol_20"].to_numpy()
    q_garch = qlike(realized, test["garch_vol"].to_numpy())
    q_naive = qlike(realized, test["naive"].to_numpy())
    print(f"\n^GSPC test QLIKE over {test.height} days: garch {q_garch:.4f}, naive {q_naive:.4f}")
    assert test.height > 500
    assert math.isfinite(q_garch)
    assert math.isfinite(q_naive)


def test_garch_skips_short_and_failed_symbols(returns) -> None:
    tiny = (
        returns.filter(pl.col("symbol") == "JPM")
        .head(120)
        .with_columns(pl.lit("TINY").alias("symbol"))
    )
    flat = (
        returns.filter(pl.col("symbol") == "JPM")
        .head(400)
        .with_columns(pl.lit("FLAT").alias("symbol"), R * 0.0)
    )
    frame = pl.concat([returns, tiny, flat])
    model = GarchForecaster().fit(frame, TRAIN_END)
    assert "119 training returns" in model.skipped["TINY"]
    assert model.skipped["FLAT"]  # constant returns: the optimizer gives up, with its reason
    assert set(model.skipped) == {"TINY", "FLAT"}
    assert set(model.params) == set(SYMBOLS)
    forecast = model.forecast(frame)
    assert set(forecast["symbol"].unique().to_list()) == set(SYMBOLS)
    assert forecast.height == returns.height
    assert set(model.params_table()["symbol"].to_list()) == set(SYMBOLS)


def test_garch_pickle_round_trip(garch, garch_forecast, returns) -> None:
    restored = pickle.loads(pickle.dumps(garch))
    assert restored.params == garch.params
    assert restored.horizon == garch.horizon
    assert restored.forecast(returns).equals(garch_forecast)


# --- HAR -----------------------------------------------------------------------------------------


def synthetic(n: int = 400, seed: int = 7) -> pl.DataFrame:
    """Two symbols of GARCH-like random returns (vol clusters, so the regressors are not collinear)."""
    rng = np.random.default_rng(seed)
    frames = []
    for symbol in ("AAA", "BBB"):
        vol = np.exp(np.cumsum(rng.normal(0.0, 0.1, n)) * 0.3) * 0.01
        r = rng.normal(0.0, 1.0, n) * vol
        frames.append(
            pl.DataFrame(
                {
                    "symbol": [symbol] * n,
                    "date": pl.date_range(date(2020, 1, 1), date(2030, 1, 1), "1d", eager=True)[:n],
                    "log_ret_1": [None, *r[1:].tolist()],
                }
            )
        )
    return pl.concat(frames)


TRUE = {"intercept": 0.02, "rv_1": 0.1, "rv_5": 0.3, "rv_22": 0.5}


def with_linear_target(frame: pl.DataFrame) -> pl.DataFrame:
    regressors = har_regressors(frame)
    target = pl.lit(TRUE["intercept"]) + pl.sum_horizontal(
        pl.col(name) * TRUE[name] for name in REGRESSORS
    )
    complete = pl.all_horizontal(pl.col(name).is_not_null() for name in REGRESSORS)
    return regressors.with_columns(pl.when(complete).then(target).alias("fwd_vol_20")).drop(
        REGRESSORS
    )


def test_har_recovers_linear_coefficients() -> None:
    frame = with_linear_target(synthetic())
    mask = np.ones(frame.height, dtype=bool)
    model = HarForecaster().fit(frame, train_mask=mask)
    assert model.coefficients.keys() == TRUE.keys()
    for name, value in TRUE.items():
        assert math.isclose(model.coefficients[name], value, rel_tol=1e-8), name
    assert model.n_train == 2 * (400 - 22)
    forecast = model.forecast(frame)
    assert forecast.columns == ["symbol", "date", "har_vol"]
    joined = forecast.with_columns(frame["fwd_vol_20"]).drop_nulls()
    assert np.allclose(joined["har_vol"].to_numpy(), joined["fwd_vol_20"].to_numpy(), rtol=1e-9)
    assert forecast["har_vol"].null_count() == 2 * 22
    assert (forecast["har_vol"].drop_nulls() > 0.0).all()


def test_har_uses_training_rows_only() -> None:
    frame = with_linear_target(synthetic())
    mask = (frame["date"] < date(2020, 10, 1)).to_numpy()
    noisy = frame.with_columns(
        pl.when(pl.Series(mask)).then(pl.col("fwd_vol_20")).otherwise(pl.col("fwd_vol_20") * 50.0)
    )
    garbage = frame.with_columns(
        pl.when(pl.Series(mask)).then(pl.col("fwd_vol_20")).otherwise(None),
    )
    a = HarForecaster().fit(frame, train_mask=mask)
    b = HarForecaster().fit(noisy, train_mask=pl.Series(mask))
    c = HarForecaster().fit(garbage, train_mask=mask)
    assert a.coefficients == b.coefficients == c.coefficients
    assert a.forecast(frame).equals(b.forecast(noisy))
    # and the training rows do matter
    d = HarForecaster().fit(noisy, train_mask=~mask)
    assert d.coefficients != a.coefficients


def test_har_pickle_and_unfitted() -> None:
    frame = with_linear_target(synthetic())
    model = HarForecaster().fit(frame, train_mask=np.ones(frame.height, dtype=bool))
    restored = pickle.loads(pickle.dumps(model))
    assert restored.coefficients == model.coefficients
    assert restored.forecast(frame).equals(model.forecast(frame))
    with pytest.raises(RuntimeError):
        HarForecaster().forecast(frame)


def test_har_forecast_is_clipped_positive() -> None:
    frame = with_linear_target(synthetic())
    model = HarForecaster().fit(frame, train_mask=np.ones(frame.height, dtype=bool))
    model.coefficients = {"intercept": -1.0, "rv_1": 0.0, "rv_5": 0.0, "rv_22": 0.0}
    values = model.forecast(frame)["har_vol"].drop_nulls()
    assert values.len() > 0
    assert (values == 1e-4).all()


def test_trailing_realized_vol_by_hand() -> None:
    a = [None, 0.01, -0.02, 0.03, 0.0, -0.01]
    b = [None, 0.05, 0.05, -0.05]
    frame = pl.DataFrame({"symbol": ["A"] * len(a) + ["B"] * len(b), "log_ret_1": a + b})
    out = frame.with_columns(trailing_realized_vol(R, 3).alias("rv"))["rv"].to_list()

    def by_hand(*r: float) -> float:
        return math.sqrt(252.0 * sum(x * x for x in r) / len(r))

    expected = [
        None,
        None,
        None,
        by_hand(0.01, -0.02, 0.03),
        by_hand(-0.02, 0.03, 0.0),
        by_hand(0.03, 0.0, -0.01),
        None,  # B's windows never reach back into A's last returns
        None,
        None,
        by_hand(0.05, 0.05, -0.05),
    ]
    assert [v is None for v in out] == [v is None for v in expected]
    for got, want in zip(out, expected, strict=True):
        if want is not None:
            assert math.isclose(got, want, rel_tol=1e-12)
    one = frame.with_columns(trailing_realized_vol(R, 1).alias("rv"))["rv"].to_list()
    assert one[0] is None and one[6] is None
    assert math.isclose(one[2], math.sqrt(252.0) * 0.02, rel_tol=1e-12)
    with pytest.raises(ValueError):
        trailing_realized_vol(R, 0)


def test_har_regressors_keep_row_order() -> None:
    frame = synthetic(60)
    shuffled = frame.sample(fraction=1.0, shuffle=True, seed=3)
    a = har_regressors(frame)
    b = har_regressors(shuffled)
    assert b.select("symbol", "date").equals(shuffled.select("symbol", "date"))
    assert a.sort("symbol", "date").equals(b.sort("symbol", "date"))
