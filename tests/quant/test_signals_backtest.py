"""Signals and backtest on hand-made inputs with known outcomes."""

from datetime import UTC, date, datetime, timedelta

import numpy as np
import polars as pl
import pytest

from quant.backtest import (
    Costs,
    benchmark_returns,
    lagged_returns,
    live_signals,
    performance,
    performance_table,
    strategy_returns,
    with_lag,
)
from quant.backtest_trials import (
    deflate,
    headline_variant,
    trial_count,
    variant_sharpes,
    variants,
)
from quant.signals import BUY, HOLD, SELL, SignalRule, combine, halt_all, soft_vote
from quant.walk_forward_report import record_signals
from resources import settings
from resources.optuna_storage import OptunaStorage
from resources.served_log import ServedLog

D = date(2024, 7, 1)


def outputs(edges: list[float], regimes: list[int], vol: float = 0.3):
    n = len(edges)
    keys = {"symbol": ["AAA"] * n, "date": [D + timedelta(days=i) for i in range(n)]}
    up = 0.45 + np.array(edges) / 2
    down = 0.45 - np.array(edges) / 2
    direction = pl.DataFrame({**keys, "p_down": down, "p_neutral": 1 - up - down, "p_up": up})
    volatility = pl.DataFrame({**keys, "vol_forecast": [vol] * n})
    regime = pl.DataFrame(
        {
            **keys,
            **{
                c: [1.0 if r == k else 0.0 for r in regimes]
                for k, c in enumerate(["p_bear", "p_sideways", "p_bull", "p_highvol"])
            },
        }
    )
    return direction, volatility, regime


def test_edge_threshold_regime_gate_and_volatility_sizing():
    # sideways: 0.06 trades, 0.04 holds; against the regime or in HighVol 0.06 holds, 0.12 trades
    edges = [0.06, 0.04, -0.06, 0.06, 0.12, -0.06, 0.06, 0.12]
    regimes = [1, 1, 1, 0, 0, 2, 3, 3]
    frame = combine(*outputs(edges, regimes, vol=0.3))
    assert frame["signal"].to_list() == [BUY, HOLD, SELL, HOLD, BUY, HOLD, HOLD, BUY]
    assert frame["position"].to_list()[0] == pytest.approx(0.15 / 0.3)
    assert frame["position"].to_list()[2] == pytest.approx(-0.5)
    assert frame["regime"].to_list()[:4] == ["Sideways", "Sideways", "Sideways", "Bear"]
    calm = combine(*outputs([0.06], [1], vol=0.05))
    assert calm["position"][0] == 1.0  # never levered above 1
    long_only = combine(*outputs(edges, regimes), SignalRule(long_only=True))
    assert SELL not in long_only["signal"].to_list()


def test_soft_vote_averages_models_and_needs_all_of_them():
    a, _, _ = outputs([0.2, 0.0], [1, 1])
    b, _, _ = outputs([0.0, 0.0], [1, 1])
    voted = soft_vote([a, b.head(1)]).sort("date")
    assert voted.height == 1
    assert voted["p_up"][0] == pytest.approx((a["p_up"][0] + b["p_up"][0]) / 2)


def panel(returns: list[float], positions: list[float], symbol: str = "AAA") -> pl.DataFrame:
    n = len(returns)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": [D + timedelta(days=i) for i in range(n)],
            "position": positions,
            "fwd_return_1": returns,
        }
    )


def test_perfect_foresight_earns_the_absolute_moves_minus_costs():
    rng = np.random.default_rng(3)
    r = rng.normal(0, 0.01, 250)
    perfect = panel(list(r), list(np.sign(r)))
    costs = Costs(cost_bps=5, slippage_bps=2)
    daily = strategy_returns(perfect, costs)
    turnover = np.abs(np.diff(np.r_[0.0, np.sign(r)]))
    np.testing.assert_allclose(daily["gross"].to_numpy(), np.abs(r))
    np.testing.assert_allclose(daily["net"].to_numpy(), np.abs(r) - turnover * 0.0007)
    assert (daily["hit"] == 1.0).all()


def test_costs_reduce_returns_monotonically_and_flat_costs_nothing():
    rng = np.random.default_rng(4)
    frame = panel(list(rng.normal(0, 0.01, 200)), list(rng.choice([-1.0, 0.0, 1.0], 200)))
    totals = [
        performance(strategy_returns(frame, Costs(c, 0))["net"].to_numpy())["total_return"]
        for c in (0, 5, 20, 50)
    ]
    assert totals == sorted(totals, reverse=True) and totals[0] > totals[-1]
    flat = panel([0.01] * 10, [0.0] * 10)
    assert (strategy_returns(flat, Costs(100, 100))["net"] == 0).all()


def test_a_position_at_t_earns_only_the_return_after_t():
    # a signal that appears on the last day earns nothing from earlier days
    frame = panel([0.05, -0.05, 0.02], [0.0, 0.0, 1.0])
    daily = strategy_returns(frame, Costs(0, 0))
    assert daily["gross"].to_list() == [0.0, 0.0, 0.02]


def test_performance_on_known_series():
    stats = performance(np.array([0.01, -0.02, 0.03]))
    assert stats["total_return"] == pytest.approx(1.01 * 0.98 * 1.03 - 1)
    assert stats["max_drawdown"] == pytest.approx(-0.02)
    assert stats["hit_rate_days"] == pytest.approx(2 / 3)
    two = pl.concat([panel([0.01, 0.03], [1, 1], "A"), panel([0.03, 0.01], [1, 1], "B")])
    assert benchmark_returns(two)["return"].to_list() == pytest.approx([0.02, 0.02])


def test_halt_all_holds_everything_and_keeps_the_model_outputs():
    frame = combine(*outputs([0.3, -0.3, 0.01], [1, 1, 1]))
    assert frame["signal"].to_list() == [BUY, SELL, HOLD]
    halted = halt_all(frame)
    assert halted["signal"].to_list() == [HOLD] * 3
    assert halted["position"].to_list() == [0.0] * 3
    assert halted["halted"].to_list() == [True] * 3
    kept = [c for c in frame.columns if c not in ("signal", "position")]
    assert halted.select(kept).equals(frame.select(kept))


# --------------------------------------------------------------------------- the sceptic's backtest


def returns_panel(series: dict[str, list[float]]) -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": [s for s, r in series.items() for _ in r],
            "date": [D + timedelta(days=i) for r in series.values() for i in range(len(r))],
            "fwd_return_1": [x for r in series.values() for x in r],
        }
    )


def test_execution_lag_shifts_returns_exactly_one_session_per_symbol():
    returns = returns_panel({"AAA": [0.01, 0.02, 0.03, 0.04], "BBB": [-0.1, -0.2, -0.3]})
    assert lagged_returns(returns, 0).equals(returns.sort("symbol", "date"))
    lagged = lagged_returns(returns, 1)
    # each symbol's own next session; its last session has no row (never BBB's first return)
    assert lagged.filter(pl.col("symbol") == "AAA")["fwd_return_1"].to_list() == [0.02, 0.03, 0.04]
    assert lagged.filter(pl.col("symbol") == "BBB")["fwd_return_1"].to_list() == [-0.2, -0.3]
    assert lagged["date"].max() == D + timedelta(days=2)
    # a signal missing on D+1 still earns the session after its own close, from the returns panel
    signals = returns.filter(
        (pl.col("symbol") == "AAA") & (pl.col("date") != D + timedelta(days=1))
    ).with_columns(pl.lit(1.0).alias("position"))
    late = with_lag(signals, returns, 1)
    assert late["fwd_return_1"].to_list() == [0.02, 0.04]  # D -> D+1..D+2, D+2 -> D+3..D+4
    assert with_lag(signals, returns, 0).equals(signals)
    daily = strategy_returns(late, Costs(0, 0))
    assert daily["gross"].to_list() == [0.02, 0.04]
    with pytest.raises(ValueError, match="execution lag"):
        lagged_returns(returns, 2)


def daily_frame(net: np.ndarray, equal: np.ndarray) -> pl.DataFrame:
    n = net.size
    return pl.DataFrame(
        {
            "date": [D + timedelta(days=i) for i in range(n)],
            "gross": net,
            "net": net,
            "turnover": np.zeros(n),
            "sp500": equal,
            "equal_weight": equal,
        }
    )


def test_information_ratio_of_benchmark_plus_a_constant_is_close_to_the_expected_value():
    rng = np.random.default_rng(7)
    n, alpha, noise = 10_080, 0.0004, 0.002
    equal = rng.normal(0.0003, 0.01, n)
    strategy = equal + alpha + rng.normal(0, noise, n)
    table = performance_table(daily_frame(strategy, equal))
    net = table.filter(pl.col("portfolio") == "strategy_net").row(0, named=True)
    expected = alpha / noise * np.sqrt(252)  # 3.17; its standard error here is about 0.16
    assert net["ir_vs_equal_weight"] > 0
    assert net["ir_vs_equal_weight"] == pytest.approx(expected, abs=0.4)
    ew = table.filter(pl.col("portfolio") == "equal_weight")["ir_vs_equal_weight"][0]
    assert np.isnan(ew)  # the benchmark against itself has no tracking error


def test_cash_rate_lowers_the_sharpe_by_rate_over_volatility():
    # a constant mean return with a fixed wiggle (a constant series has no Sharpe: zero risk)
    r = 0.001 + 0.01 * np.tile([1.0, -1.0], 126)
    raw, rate = performance(r), 0.05
    excess = performance(r, cash_rate=rate)
    vol = np.std(r, ddof=1) * np.sqrt(252)
    assert excess["sharpe"] == pytest.approx(raw["sharpe"] - rate / vol, rel=1e-12)
    assert raw["sharpe"] == pytest.approx(0.001 / np.std(r, ddof=1) * np.sqrt(252))
    assert excess["total_return"] == raw["total_return"]  # returns stay raw
    table = performance_table(daily_frame(r, r), cash_rate=rate)
    assert table.filter(pl.col("portfolio") == "strategy_net")["sharpe"][0] == pytest.approx(
        excess["sharpe"]
    )


def test_cash_rate_setting(monkeypatch):
    monkeypatch.delenv("MARKET_CASH_RATE", raising=False)
    assert settings.cash_rate() == 0.0
    monkeypatch.setenv("MARKET_CASH_RATE", "0.04")
    assert settings.cash_rate() == 0.04
    for bad in ("4", "four", "nan"):
        monkeypatch.setenv("MARKET_CASH_RATE", bad)
        with pytest.raises(ValueError, match="MARKET_CASH_RATE"):
            settings.cash_rate()


def test_live_section_is_served_positions_times_next_session_returns_minus_costs(tmp_path):
    log = ServedLog(lake_dir=str(tmp_path))
    d0, d1, d2 = D, D + timedelta(days=1), D + timedelta(days=2)
    night = datetime(2024, 7, 1, 22, tzinfo=UTC)

    def serve(rows: list[tuple], hours: int) -> None:
        frame = pl.DataFrame(
            rows, schema=["symbol", "date", "signal", "position", "stale"], orient="row"
        ).with_columns(pl.lit(False).alias("halted"))
        log.append("signals", frame, night + timedelta(hours=hours), "run1")

    serve([("AAA", d0, BUY, 0.5, False), ("BBB", d0, SELL, -1.0, False)], 0)
    # the next night: BBB's old bar re-served as stale HOLD must not replace what was served
    serve([("AAA", d1, HOLD, 0.0, False), ("BBB", d1, BUY, 1.0, False)], 24)
    serve([("BBB", d0, HOLD, 0.0, True)], 25)
    serve([("AAA", d2, BUY, 1.0, False)], 48)  # the latest bar: no next session yet
    bars = pl.DataFrame(
        {
            "symbol": ["AAA"] * 3 + ["BBB"] * 3,
            "date": [d0, d1, d2] * 2,
            "close": [100.0, 102.0, 101.0, 50.0, 49.0, 50.5],
        }
    )
    live = live_signals(log.read("signals"), bars)
    assert live.select("symbol", "date", "position").rows() == [
        ("AAA", d0, 0.5),
        ("AAA", d1, 0.0),
        ("BBB", d0, -1.0),
        ("BBB", d1, 1.0),
    ]
    daily = strategy_returns(live, Costs(5, 2))
    c = 0.0007
    aaa = [0.5 * (102 / 100 - 1) - 0.5 * c, 0.0 * (101 / 102 - 1) - 0.5 * c]
    bbb = [-1.0 * (49 / 50 - 1) - 1.0 * c, 1.0 * (50.5 / 49 - 1) - 2.0 * c]
    np.testing.assert_allclose(
        daily["net"].to_numpy(), [(a + b) / 2 for a, b in zip(aaa, bbb, strict=True)]
    )
    # only the last bar served: nothing has an outcome yet (an empty frame, no failure)
    assert live_signals(log.read("signals").filter(pl.col("date") == d2), bars).is_empty()
    assert live_signals(ServedLog(lake_dir=str(tmp_path / "none")).read("signals"), bars).is_empty()


def toy_record(days: int = 400, skill: float = 0.25) -> pl.DataFrame:
    """A walk-forward record of two direction models, GARCH and the forest on three equities:
    the direction models see a noisy version of the next return (``skill``)."""
    rng = np.random.default_rng(11)
    frames = []
    for symbol in ("AAA", "BBB", "CCC"):
        z = rng.normal(0, 1, days)
        keys = {
            "symbol": [symbol] * days,
            "date": [D + timedelta(days=i) for i in range(days)],
            "fwd_return_1": 0.01 * z,
        }
        for model in ("direction_xgboost", "direction_lstm"):
            edge = np.clip(skill * np.tanh(z + rng.normal(0, 2.0, days)), -0.4, 0.4)
            up, down = 0.4 + edge / 2, 0.4 - edge / 2
            frames.append(
                pl.DataFrame(
                    {**keys, "model": model, "p_down": down, "p_neutral": 1 - up - down, "p_up": up}
                )
            )
        frames.append(
            pl.DataFrame(
                {**keys, "model": "volatility_garch", "vol_forecast": rng.uniform(0.1, 0.4, days)}
            )
        )
        regime = rng.integers(0, 4, days)
        frames.append(
            pl.DataFrame(
                {
                    **keys,
                    "model": "regime_random_forest",
                    **{
                        c: (regime == k).astype(float)
                        for k, c in enumerate(["p_bear", "p_sideways", "p_bull", "p_highvol"])
                    },
                }
            )
        )
    return pl.concat(frames, how="diagonal")


def test_deflated_sharpe_of_the_record_strategy_is_a_probability_that_falls_with_trials():
    record, rule, symbols, costs = toy_record(), SignalRule(), ["AAA", "BBB", "CCC"], Costs()
    chosen = headline_variant(record, rule, 0)
    table = variant_sharpes(record, rule, symbols, costs, chosen=chosen)
    # 3 direction choices (each alone, the vote) x 1 volatility x 12 rules x 2 lags
    assert table.height == len(variants(record, rule)) == 72
    assert table["chosen"].sum() == 1
    # the chosen variant is exactly what the backtest replays (record_signals)
    headline = strategy_returns(record_signals(record, rule), costs)["net"].to_numpy()
    mine = table.filter(pl.col("chosen")).row(0, named=True)
    assert mine["sharpe"] == pytest.approx(headline.mean() / headline.std(ddof=1), rel=1e-9)
    dsr = [deflate(headline, table, trials).dsr for trials in (0, 20, 200)]
    assert all(0.0 <= d <= 1.0 for d in dsr)
    assert dsr[0] > dsr[1] > dsr[2]
    first = deflate(headline, table, None)
    assert first.n_trials == 72 and first.optuna_trials is None
    assert deflate(headline, table, 28).n_trials == 100 == trial_count(72, 28)
    assert first.sr_variance == pytest.approx(
        np.var(table["sharpe"].drop_nans().to_numpy(), ddof=1)
    )
    assert first.verdict().startswith(f"DSR {first.dsr:.2f}: the Sharpe")
    # a cash rate lowers the Sharpe being deflated, never raises the DSR
    assert deflate(headline, table, 0, cash_rate=0.05).dsr <= dsr[0]


def test_completed_optuna_trials_are_counted_without_creating_a_store(tmp_path):
    import optuna

    missing = OptunaStorage(url=f"sqlite:///{tmp_path / 'none' / 'optuna.db'}")
    assert missing.completed_trials() == {}
    assert not (tmp_path / "none").exists()
    storage = OptunaStorage(url=f"sqlite:///{tmp_path / 'optuna.db'}")
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    study = storage.study("a", seed=0)
    study.optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=3)
    study.enqueue_trial({"x": 0.5})
    storage.study("b", seed=0).optimize(lambda t: t.suggest_float("x", 0, 1), n_trials=2)
    assert storage.completed_trials() == {"a": 3, "b": 2}
