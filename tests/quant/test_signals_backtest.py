"""Signals and backtest on hand-made inputs with known outcomes."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant.backtest import Costs, benchmark_returns, performance, strategy_returns
from quant.signals import BUY, HOLD, SELL, SignalRule, combine, halt_all, soft_vote

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
