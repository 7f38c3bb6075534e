"""Market context: as-of joins that never look ahead, across calendars that do not line up."""

import itertools
import math
from datetime import date

import numpy as np
import polars as pl
import pytest

from quant.features.context import CONTEXT_COLUMNS, ContextSpec, compute_market_context
from quant.universe import AssetClass, load_universe
from quant.validation.calendars import closes_before

BARS = ["symbol", "date", "open", "high", "low", "close", "volume"]


@pytest.fixture(scope="module")
def spec() -> ContextSpec:
    universe = load_universe()
    return ContextSpec(
        volatility_index="^VIX",
        benchmark="^GSPC",
        equities=tuple(
            i.symbol for i in universe.instruments if i.asset_class is AssetClass.EQUITY
        ),
        closes_before_benchmark=frozenset(
            i.symbol for i in universe.instruments if closes_before(i.calendar, "NYSE")
        ),
    )


@pytest.fixture(scope="module")
def bars(sample_panel) -> pl.DataFrame:
    return sample_panel.filter(pl.col("date") >= date(2018, 1, 1)).select(BARS)


@pytest.fixture(scope="module")
def context(bars, spec) -> pl.DataFrame:
    return compute_market_context(bars, spec)


def test_indian_indices_are_the_markets_that_close_before_new_york(spec):
    assert spec.closes_before_benchmark == {"^NSEI", "^NSEBANK"}


def test_one_row_per_symbol_date(bars, context):
    assert context.columns == ["symbol", "date", *CONTEXT_COLUMNS]
    assert context.select("symbol", "date").equals(
        bars.select("symbol", "date").sort("symbol", "date")
    )


def _vix(bars):
    return bars.filter(pl.col("symbol") == "^VIX").select("date", pl.col("close").alias("vix"))


def test_the_volatility_index_is_lagged_one_session_for_us_symbols_but_not_for_itself(
    bars, context
):
    vix = _vix(bars).sort("date")
    aapl = context.filter(pl.col("symbol") == "AAPL").drop_nulls("vix_level").sort("date")
    expected = aapl.select("date").join_asof(
        vix.rename({"date": "vix_date"}),
        left_on="date",
        right_on="vix_date",
        allow_exact_matches=False,
    )
    assert (expected["vix_date"] < aapl["date"]).all()
    assert (aapl["vix_level"] == expected["vix"]).all()

    own = context.filter(pl.col("symbol") == "^VIX").join(vix, on="date", how="inner")
    assert own.height == vix.height
    assert (own["vix_level"] == own["vix"]).all()


def test_nse_sees_only_the_previous_us_session(bars, context):
    vix = _vix(bars).sort("date")
    nsei = context.filter(pl.col("symbol") == "^NSEI").drop_nulls("vix_level").sort("date")
    expected = nsei.select("date").join_asof(
        vix.rename({"date": "vix_date"}),
        left_on="date",
        right_on="vix_date",
        allow_exact_matches=False,
    )
    assert (expected["vix_date"] < nsei["date"]).all()
    assert (nsei["vix_level"] == expected["vix"]).all()


def test_context_never_changes_its_past_when_the_future_is_removed(bars, spec, context):
    for cut in (date(2019, 6, 28), date(2022, 3, 15), date(2024, 11, 29)):
        truncated = compute_market_context(bars.filter(pl.col("date") <= cut), spec)
        assert truncated.equals(context.filter(pl.col("date") <= cut)), cut


def test_values_are_in_range(context):
    for column in ("breadth_50", "breadth_200", "spx_above_sma_50"):
        values = context[column].drop_nulls()
        assert values.min() >= 0 and values.max() <= 1
    gspc = context.filter(pl.col("symbol") == "^GSPC").drop_nulls("beta_60")
    assert gspc["beta_60"].to_numpy() == pytest.approx(1.0)
    assert gspc["corr_60"].to_numpy() == pytest.approx(1.0)
    vix = context.filter(pl.col("symbol") == "^VIX")["corr_60"].drop_nulls()
    assert vix.mean() < -0.5  # the volatility index moves against the market
    nulls = context.filter(pl.col("date") >= date(2019, 1, 1)).null_count()
    assert nulls.select(pl.sum_horizontal(pl.all())).item() == 0


def test_a_missing_benchmark_is_named(bars, spec):
    with pytest.raises(ValueError, match="benchmark '\\^GSPC'"):
        compute_market_context(bars.filter(pl.col("symbol") != "^GSPC"), spec)


# --- synthetic calendars: every close differs every day, so a same-day join cannot hide ---------

SYNTHETIC = ContextSpec(
    volatility_index="^VIX",
    benchmark="^GSPC",
    equities=("AAA", "BBB", "CCC", "DDD"),
    closes_before_benchmark=frozenset({"^NSEI"}),
)


def _us_sessions() -> list[date]:
    """Weekdays from 2024-01-02 with three US holiday-like gaps (no US bar at all)."""
    holidays = {date(2024, 1, 15), date(2024, 2, 19), date(2024, 3, 29)}
    days = pl.date_range(date(2024, 1, 2), date(2024, 6, 28), eager=True)
    return [d for d in days if d.weekday() < 5 and d not in holidays]


def _nse_sessions() -> list[date]:
    """Weekdays with their own gaps: it trades on the US holidays, not on 2024-01-26."""
    days = pl.date_range(date(2024, 1, 2), date(2024, 6, 28), eager=True)
    return [d for d in days if d.weekday() < 5 and d != date(2024, 1, 26)]


def _synthetic_bars() -> pl.DataFrame:
    rng = np.random.default_rng(11)
    us, nse = _us_sessions(), _nse_sessions()
    paths = {
        "^VIX": 15.0 + np.cumsum(rng.uniform(0.05, 0.5, len(us)) * rng.choice([-1, 1], len(us))),
        "^GSPC": 4000.0 * np.exp(np.cumsum(rng.normal(0.0005, 0.01, len(us)))),
        **{s: 100.0 * np.exp(np.cumsum(rng.normal(0, 0.02, len(us)))) for s in SYNTHETIC.equities},
    }
    frames = [
        pl.DataFrame({"symbol": symbol, "date": us, "close": close})
        for symbol, close in paths.items()
    ]
    frames.append(
        pl.DataFrame(
            {
                "symbol": "^NSEI",
                "date": nse,
                "close": 20000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, len(nse)))),
            }
        )
    )
    panel = pl.concat(frames).with_columns(
        pl.col("close").alias("open"),
        pl.col("close").alias("high"),
        pl.col("close").alias("low"),
        pl.lit(1_000_000.0).alias("volume"),
    )
    return panel.select(BARS)


@pytest.fixture(scope="module")
def synthetic() -> tuple[pl.DataFrame, pl.DataFrame]:
    bars = _synthetic_bars()
    return bars, compute_market_context(bars, SYNTHETIC)


def _closes(bars: pl.DataFrame, symbol: str) -> dict[date, float]:
    one = bars.filter(pl.col("symbol") == symbol).sort("date")
    return dict(zip(one["date"], one["close"], strict=True))


def _last_before(dates: list[date], day: date, *, inclusive: bool) -> date | None:
    earlier = [d for d in dates if d < day or (inclusive and d == day)]
    return earlier[-1] if earlier else None


def _rows(context: pl.DataFrame, symbol: str) -> dict[date, dict[str, object]]:
    return {r["date"]: r for r in context.filter(pl.col("symbol") == symbol).iter_rows(named=True)}


def test_a_us_equity_sees_the_vix_of_the_last_vix_session_before_its_date(synthetic):
    bars, context = synthetic
    vix = _closes(bars, "^VIX")
    vix_dates = sorted(vix)
    assert len(set(vix.values())) == len(vix)  # a same-day join would show
    own = _rows(context, "^VIX")
    checked = 0
    for day, row in _rows(context, "AAA").items():
        previous = _last_before(vix_dates, day, inclusive=False)
        if previous is None:
            assert row["vix_level"] is None
            continue
        assert row["vix_level"] == vix[previous], day
        before = _last_before(vix_dates, previous, inclusive=False)
        if before is not None:
            assert row["vix_change_1"] == pytest.approx(math.log(vix[previous] / vix[before]))
        for column in ("vix_level", "vix_change_1", "vix_change_5", "vix_sma_dist_20"):
            assert row[column] == own[previous][column], (day, column)
        checked += 1
    assert checked == len(vix_dates) - 1
    # across the holiday-like gap the lag is the last session before it, not a calendar day
    after_gap = _rows(context, "AAA")[date(2024, 1, 16)]
    assert after_gap["vix_level"] == vix[date(2024, 1, 12)]


def test_the_volatility_index_sees_its_own_close(synthetic):
    bars, context = synthetic
    vix = _closes(bars, "^VIX")
    own = _rows(context, "^VIX")
    dates = sorted(vix)
    for previous, day in itertools.pairwise(dates):
        assert own[day]["vix_level"] == vix[day]
        assert own[day]["vix_change_1"] == pytest.approx(math.log(vix[day] / vix[previous]))


def _expected_breadth(bars: pl.DataFrame, n: int) -> dict[date, float]:
    above: dict[date, list[float]] = {}
    for symbol in SYNTHETIC.equities:
        closes = _closes(bars, symbol)
        dates, values = list(closes), np.array(list(closes.values()))
        for i in range(n - 1, len(values)):
            above.setdefault(dates[i], []).append(
                float(values[i] > values[i - n + 1 : i + 1].mean())
            )
    return {d: float(np.mean(v)) for d, v in above.items()}


def test_benchmark_and_breadth_stay_same_session_for_a_us_equity(synthetic):
    bars, context = synthetic
    gspc = _closes(bars, "^GSPC")
    dates = sorted(gspc)
    rows = _rows(context, "AAA")
    for i in range(20, len(dates)):
        day = dates[i]
        assert rows[day]["spx_ret_20"] == pytest.approx(math.log(gspc[day] / gspc[dates[i - 20]]))
    for i in range(49, len(dates)):
        day = dates[i]
        sma = np.mean([gspc[d] for d in dates[i - 49 : i + 1]])
        assert rows[day]["spx_sma_dist_50"] == pytest.approx(gspc[day] / sma - 1.0)
    breadth = _expected_breadth(bars, 50)
    # it moves from session to session, so a one-session-lagged join would show
    moves = [b for a, b in itertools.pairwise(sorted(breadth)) if breadth[a] != breadth[b]]
    assert len(moves) > 5
    for day, value in breadth.items():
        assert rows[day]["breadth_50"] == pytest.approx(value), day


def test_an_nse_index_sees_only_the_previous_us_session_for_vix_and_benchmark(synthetic):
    bars, context = synthetic
    vix, gspc = _closes(bars, "^VIX"), _closes(bars, "^GSPC")
    us_dates = sorted(gspc)
    spx = {d: r["spx_ret_20"] for d, r in _rows(context, "^GSPC").items()}
    nse = _rows(context, "^NSEI")
    assert date(2024, 1, 15) in nse and date(2024, 1, 15) not in gspc  # a US holiday, NSE open
    for day, row in nse.items():
        previous = _last_before(us_dates, day, inclusive=False)
        if previous is None:
            assert row["vix_level"] is None and row["spx_ret_20"] is None
            continue
        assert row["vix_level"] == vix[previous], day  # one US session back, never two
        assert row["spx_ret_20"] == spx[previous], day
    # the day after the US holiday: the previous US session is still the one before the holiday
    assert nse[date(2024, 1, 16)]["vix_level"] == vix[date(2024, 1, 12)]
    assert nse[date(2024, 1, 15)]["vix_level"] == vix[date(2024, 1, 12)]
