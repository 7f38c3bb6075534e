"""The pattern oracle: each event detector on a tiny hand-made series with a known answer, and
the event-study engine finding a planted pattern, staying quiet on random walks, correcting
for multiplicity like statsmodels, and refusing to judge too few events."""

from datetime import date

import numpy as np
import polars as pl
import pytest
from statsmodels.stats.multitest import multipletests

from quant.patterns.events import EVENTS, EventSpec, detect_events, spec_from_universe
from quant.patterns.study import INSIGHT_SCHEMA, StudyConfig, benjamini_hochberg, study
from quant.universe import load_universe
from quant.validation.calendars import exchange_sessions

SESSIONS = exchange_sessions("NYSE", date(2012, 1, 3), date(2025, 12, 31))
EQUITY = EventSpec(equities=frozenset({"X"}), calendars={"X": "NYSE"})


def make_bars(
    closes,
    symbol: str = "X",
    opens=None,
    volumes=None,
    dates: pl.Series | None = None,
) -> pl.DataFrame:
    """Bars on consecutive NYSE sessions from 2012-01-03 (or on ``dates``)."""
    closes = np.asarray(closes, dtype=float)
    n = closes.size
    opens = np.concatenate([[closes[0]], closes[:-1]]) if opens is None else np.asarray(opens)
    return pl.DataFrame(
        {
            "symbol": [symbol] * n,
            "date": (SESSIONS if dates is None else dates)[:n],
            "open": opens.astype(float),
            "high": np.maximum(opens, closes) * 1.001,
            "low": np.minimum(opens, closes) * 0.999,
            "close": closes,
            "volume": np.full(n, 1000.0) if volumes is None else np.asarray(volumes, float),
        }
    )


def fired(events: pl.DataFrame, event: str, symbol: str = "X") -> list[int]:
    """The row numbers (within ``symbol``'s bars, from 2012-01-03) where ``event`` fired."""
    position = {d: i for i, d in enumerate(SESSIONS.to_list())}
    dates = events.filter((pl.col("event") == event) & (pl.col("symbol") == symbol))["date"]
    return sorted(position[d] for d in dates.to_list())


def test_every_event_has_a_label_and_the_universe_gives_the_roles():
    assert len(EVENTS) == 37 and all(EVENTS.values())
    spec = spec_from_universe(load_universe())
    assert spec.volatility_index == "^VIX"
    assert "AAPL" in spec.equities and "^GSPC" not in spec.equities
    assert spec.calendars["^NSEI"] == "NSE"


def test_streaks_fire_once_at_exactly_each_length_and_a_flat_close_breaks_them():
    #          0   1   2   3   4   5   6   7   8   9  10  11  12
    closes = [10, 11, 12, 13, 14, 13, 13, 14, 15, 14, 13, 12, 11]
    events = detect_events(make_bars(closes), EQUITY)
    assert fired(events, "up_streak_2") == [2, 8]
    assert fired(events, "up_streak_3") == [3]
    assert fired(events, "up_streak_4") == [4]
    assert fired(events, "up_streak_5") == []
    # row 5 is one lower close, row 6 flat (breaks it), rows 9..12 four lower closes
    assert fired(events, "down_streak_2") == [10]
    assert fired(events, "down_streak_3") == [11]
    assert fired(events, "down_streak_4") == [12]


def test_gaps_need_more_than_one_percent():
    closes = [100.0] * 6
    opens = [100.0, 101.5, 100.5, 98.5, 99.5, 100.0]
    events = detect_events(make_bars(closes, opens=opens), EQUITY)
    assert fired(events, "gap_up") == [1]
    assert fired(events, "gap_down") == [3]


def test_52_week_breakout_needs_252_previous_closes():
    closes = np.full(510, 100.0)  # flat: never above its max nor below its min
    closes[250] = 103.0  # the highest so far, but only 250 closes before it: no event
    closes[253] = 102.9  # below the 103 in its window
    closes[503] = 102.95  # its window (rows 251..502) holds the 102.9 but no longer the 103
    closes[505] = 95.0  # below the lowest of the previous 252
    events = detect_events(make_bars(closes), EQUITY)
    assert fired(events, "high_52w_breakout") == [503]
    assert fired(events, "low_52w_breakout") == [505]
    edge = np.full(300, 100.0)
    edge[251] = 101.0  # 251 closes before it: too early
    edge[252] = 101.5  # the first row with 252 closes before it
    assert fired(detect_events(make_bars(edge), EQUITY), "high_52w_breakout") == [252]


def test_two_sigma_moves_against_the_previous_20_returns():
    returns = np.array([0.0] + [0.01 * (-1) ** i for i in range(1, 40)])
    returns[8] = 0.05  # only 7 earlier returns: no sigma yet
    returns[30] = 0.03  # > 2 x std of the 20 before (about 0.0103)
    returns[31] = -0.015  # the 0.03 is now in its window: std ~ 0.0116, 2 sigma ~ 0.023
    returns[35] = -0.04
    events = detect_events(make_bars(100 * np.exp(np.cumsum(returns))), EQUITY)
    assert fired(events, "move_2sigma_up") == [30]
    assert fired(events, "move_2sigma_down") == [35]


def test_volume_spike_is_over_twice_the_previous_20_sessions_and_equities_only():
    volumes = np.full(30, 1000.0)
    volumes[25] = 2100.0  # mean of the 20 before: 1000
    volumes[26] = 2100.0  # mean now (19 x 1000 + 2100) / 20 = 1055: 2 x 1055 = 2110
    volumes[3] = 5000.0  # fewer than 20 sessions before it
    closes = np.full(30, 100.0)
    both = pl.concat([make_bars(closes, volumes=volumes), make_bars(closes, "^IDX", None, volumes)])
    spec = EventSpec(equities=frozenset({"X"}), calendars={"X": "NYSE", "^IDX": "NYSE"})
    events = detect_events(both, spec)
    assert fired(events, "volume_spike") == [25]
    assert fired(events, "volume_spike", "^IDX") == []


def test_rsi_zone_entries_match_talib():
    talib = pytest.importorskip("talib")
    rng = np.random.default_rng(3)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.02, 600)))
    rsi = talib.RSI(closes, timeperiod=14)
    previous = np.concatenate([[np.nan], rsi[:-1]])
    below = np.flatnonzero((rsi < 30) & (previous >= 30)).tolist()
    above = np.flatnonzero((rsi > 70) & (previous <= 70)).tolist()
    events = detect_events(make_bars(closes), EQUITY)
    assert below and above
    assert fired(events, "rsi_below_30") == below
    assert fired(events, "rsi_above_70") == above


def test_holidays_around_independence_day_2024_from_the_calendar():
    days = exchange_sessions("NYSE", date(2024, 6, 24), date(2024, 7, 12))
    bars = make_bars(np.full(days.len(), 100.0), dates=days)
    events = detect_events(bars, EQUITY)
    by_event = {
        e: events.filter(pl.col("event") == e)["date"].to_list()
        for e in ("pre_holiday", "post_holiday")
    }
    assert by_event == {"pre_holiday": [date(2024, 7, 3)], "post_holiday": [date(2024, 7, 5)]}
    calendar = events.filter(pl.col("event").str.starts_with("dow_"))
    assert calendar.height == days.len()  # one weekday event per session
    assert events.filter(pl.col("date") == date(2024, 7, 5))["event"].to_list() == [
        "dow_fri",
        "month_jul",
        "post_holiday",
    ]


def test_vix_spike_uses_the_previous_vix_close_never_the_same_day():
    vix = np.full(30, 15.0)
    vix[22] = 25.0  # > 1.2 x the mean of the 20 sessions before it (15)
    bars = pl.concat([make_bars(np.full(30, 100.0)), make_bars(vix, "^VOL")])
    spec = EventSpec(equities=frozenset({"X"}), calendars={"X": "NYSE"}, volatility_index="^VOL")
    events = detect_events(bars, spec)
    assert fired(events, "vix_spike") == [23]  # the session after the VIX spike, not on it
    assert fired(events, "vix_spike", "^VOL") == []


def test_events_use_only_data_up_to_their_close():
    rng = np.random.default_rng(5)
    closes = 100 * np.exp(np.cumsum(rng.normal(0, 0.015, 700)))
    volumes = rng.lognormal(8, 0.6, 700)
    opens = closes * np.exp(rng.normal(0, 0.01, 700))
    full = detect_events(make_bars(closes, opens=opens, volumes=volumes), EQUITY)
    cut = 400
    short = detect_events(make_bars(closes[:cut], opens=opens[:cut], volumes=volumes[:cut]), EQUITY)
    last = SESSIONS[cut - 1]
    # pre_holiday looks at the calendar (known in advance), not at later bars
    assert short.equals(full.filter(pl.col("date") <= last))


def planted_walks(seed: int, symbols: int, sessions: int, drift: float = 0.0) -> pl.DataFrame:
    """Random walks (1 % daily); after exactly 3 higher closes the next return gains ``drift``."""
    rng = np.random.default_rng(seed)
    frames = []
    for k in range(symbols):
        noise = rng.normal(0.0, 0.01, sessions)
        returns = np.zeros(sessions)
        streak = 0
        for i in range(1, sessions):  # path-dependent: the drift depends on the streak
            returns[i] = noise[i] + (drift if streak == 3 else 0.0)
            streak = streak + 1 if returns[i] > 0 else 0
        frames.append(make_bars(100 * np.exp(np.cumsum(returns)), f"S{k}"))
    return pl.concat(frames)


def walk_spec(bars: pl.DataFrame) -> tuple[EventSpec, tuple[str, ...]]:
    symbols = tuple(sorted(bars["symbol"].unique()))
    return EventSpec(equities=frozenset(symbols), calendars=dict.fromkeys(symbols, "NYSE")), symbols


def test_the_engine_finds_a_planted_pattern_that_persists():
    bars = planted_walks(seed=1, symbols=3, sessions=2500, drift=0.005)
    spec, symbols = walk_spec(bars)
    events = detect_events(bars, spec)
    table = study(bars, events, StudyConfig(horizons=(1,), equities=symbols, resamples=200))
    assert table.schema == pl.Schema(INSIGHT_SCHEMA)
    planted = table.filter(pl.col("event") == "up_streak_3")
    assert planted.height == 4  # three symbols and the pooled cell
    assert planted["insight"].all() and planted["persists"].all()
    assert (planted["q_value"] < 0.05).all()
    assert planted["verdict"].str.starts_with("insight: continuation").all()
    pooled = planted.filter(pl.col("scope") == "equities").row(0, named=True)
    assert pooled["symbol"] == "EQUITIES"
    assert pooled["ci_low"] > pooled["baseline_mean"]
    assert pooled["ci_low"] < pooled["mean_return"] < pooled["ci_high"]
    assert 0.003 < pooled["mean_return"] - pooled["baseline_mean"] < 0.007
    # nothing else is called an insight on these walks
    assert table.filter(pl.col("insight") & (pl.col("event") != "up_streak_3")).height <= 1


def test_random_walks_stay_within_the_false_discovery_rate():
    # Under a complete null, BH at 5 % keeps P(any discovery) <= 5 %, and an insight must also
    # persist out of sample, so the expected share of insight cells is far below 5 %: a margin
    # of 1 point over 10 seeds (~3,000 cells) allows for the cells' correlation. The raw
    # p-values must be calibrated too: about 5 % below 0.05.
    shares, raw = [], []
    for seed in range(10):
        bars = planted_walks(seed=100 + seed, symbols=3, sessions=1500)
        spec, symbols = walk_spec(bars)
        config = StudyConfig(horizons=(1, 5), equities=symbols, resamples=50, seed=seed)
        table = study(bars, detect_events(bars, spec), config)
        tested = table.drop_nulls("p_value")
        shares.append(table["insight"].mean())
        raw.append((tested["p_value"] < 0.05).mean())
    assert np.mean(shares) <= 0.05 + 0.01
    assert 0.02 <= np.mean(raw) <= 0.08


def test_q_values_equal_statsmodels_fdr_bh():
    rng = np.random.default_rng(0)
    p = rng.uniform(0, 1, 300) ** 3
    p[::17] = np.nan
    q = benjamini_hochberg(p)
    tested = ~np.isnan(p)
    expected = multipletests(p[tested], alpha=0.05, method="fdr_bh")[1]
    np.testing.assert_allclose(q[tested], expected, rtol=1e-12)
    assert np.isnan(q[~tested]).all()


def test_the_table_q_values_are_bh_over_every_tested_cell():
    bars = planted_walks(seed=2, symbols=2, sessions=900, drift=0.004)
    spec, symbols = walk_spec(bars)
    table = study(bars, detect_events(bars, spec), StudyConfig(equities=symbols, resamples=30))
    tested = table.drop_nulls("p_value")
    assert set(tested["scope"]) == {"symbol", "equities"} and set(tested["horizon"]) == {1, 5, 20}
    expected = multipletests(tested["p_value"].to_numpy(), method="fdr_bh")[1]
    np.testing.assert_allclose(tested["q_value"].to_numpy(), expected, rtol=1e-12)


def test_too_few_events_give_no_p_value_and_no_clear_pattern():
    bars = planted_walks(seed=3, symbols=1, sessions=80)
    spec, symbols = walk_spec(bars)
    table = study(bars, detect_events(bars, spec), StudyConfig(equities=symbols, resamples=30))
    few = table.filter(pl.col("n_events") < 20)
    assert few.height > 0
    assert few["p_value"].is_null().all() and few["q_value"].is_null().all()
    assert few["ci_low"].is_null().all() and few["ci_high"].is_null().all()
    assert not few["insight"].any()
    assert set(few["verdict"]) == {"no clear pattern (too few events)"}
    assert (table["split_date"] == SESSIONS[56]).all()  # floor(0.7 x 80): the last 30 % held out
