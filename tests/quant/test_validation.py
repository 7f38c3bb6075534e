"""The contract on the real bundled sample and on hand-made edge cases (pure functions, fast)."""

from datetime import date

import polars as pl
import pytest

from quant.universe import load_universe
from quant.validation import ERROR, adjust_prices, validate_bars

UNIVERSE = load_universe()
TODAY = date(2026, 11, 21)


@pytest.fixture(scope="module")
def since_2018(sample_panel):
    return sample_panel.filter(pl.col("date") >= date(2018, 1, 1))


def test_every_symbol_of_the_sample_passes_every_rule(since_2018):
    for instrument in UNIVERSE.instruments:
        report = validate_bars(
            since_2018.filter(pl.col("symbol") == instrument.symbol), instrument, TODAY
        )
        failing = {k: (r.severity, r.summary) for k, r in report.results.items() if not r.passed}
        assert failing == {}, instrument.symbol
        assert report.quarantine.is_empty(), instrument.symbol


def test_real_quirks_are_handled_by_rule(since_2018):
    vix = validate_bars(since_2018.filter(pl.col("symbol") == "^VIX"), UNIVERSE.get("^VIX"), TODAY)
    # bars on three 2026 NYSE holidays carry their own trading: an index's special sessions, kept
    assert vix.results["temporal_integrity"].metadata["special_sessions_kept"] == [
        "2026-05-25",
        "2026-06-19",
        "2026-07-03",
    ]
    # ^VIX rose 116% on 2018-02-05: within the volatility-index threshold, beyond the equity one
    assert vix.results["price_sanity"].metadata["max_abs_return"] == pytest.approx(1.156, abs=1e-3)
    assert vix.results["volume_sanity"].metadata["exempt"] is True
    nsei = validate_bars(
        since_2018.filter(pl.col("symbol") == "^NSEI"), UNIVERSE.get("^NSEI"), TODAY
    )
    assert nsei.results["temporal_integrity"].metadata["special_sessions_kept"] == ["2025-02-01"]
    assert (
        nsei.results["completeness"].metadata["missing_sessions"] == 3
    )  # 2018-01-01, 2019-01-01, ...


def test_nsebank_incomplete_early_history_is_trimmed_not_blocking(sample_panel):
    """Since 2015 ^NSEBANK misses 272 of ~500 sessions in 2015-16 (Yahoo null rows)."""
    bars = sample_panel.filter(
        (pl.col("symbol") == "^NSEBANK") & (pl.col("date") >= date(2015, 1, 1))
    )
    report = validate_bars(bars, UNIVERSE.get("^NSEBANK"), TODAY)
    completeness = report.results["completeness"]
    assert not completeness.passed and completeness.severity == "WARN"
    cut = date.fromisoformat(completeness.metadata["usable_from"])
    assert date(2017, 6, 1) < cut < date(2018, 1, 1)
    assert report.clean["date"].min() == cut
    assert set(report.quarantine["rule"]) == {"completeness"}
    assert report.quarantine.height + report.clean.height == bars.height
    assert not report.blocked


def test_adjustment_carries_the_last_factor_and_leaves_indices_alone(since_2018):
    aapl = adjust_prices(since_2018.filter(pl.col("symbol") == "AAPL"))
    reported = aapl.filter(pl.col("factor_source") == "reported")
    carried = aapl.filter(pl.col("factor_source") == "carried_forward")
    assert reported["date"].max() == date(2025, 10, 8) and carried["date"].min() > date(2025, 10, 8)
    assert carried["adj_factor"].n_unique() == 1
    assert carried["adj_factor"][0] == pytest.approx(reported["adj_factor"][-1])
    row = reported.row(0, named=True)
    assert row["close"] == pytest.approx(row["reported_adj_close"])
    assert row["volume"] == pytest.approx(row["raw_volume"] / row["adj_factor"])
    gspc = adjust_prices(since_2018.filter(pl.col("symbol") == "^GSPC"))
    assert set(gspc["factor_source"]) == {"none"} and set(gspc["adj_factor"]) == {1.0}
    assert gspc["close"].equals(gspc["raw_close"].alias("close"))


def test_an_empty_delivery_blocks_every_rule():
    report = validate_bars(
        pl.DataFrame(
            schema={
                "symbol": pl.String,
                "date": pl.Date,
                "open": pl.Float64,
                "high": pl.Float64,
                "low": pl.Float64,
                "close": pl.Float64,
                "volume": pl.Float64,
            }
        ),
        UNIVERSE.get("AAPL"),
        TODAY,
    )
    assert report.blocked and all(r.severity == ERROR for r in report.results.values())


@pytest.mark.parametrize(
    ("symbol", "volume", "reason"),
    [
        ("^GSPC", -5.0, "negative volume"),
        ("AAPL", -5.0, "negative volume"),
        ("AAPL", 0.0, "no volume on a session"),
    ],
)
def test_impossible_volume_is_quarantined_never_kept(since_2018, symbol, volume, reason):
    bars = since_2018.filter(pl.col("symbol") == symbol)
    day = bars["date"][500]
    bad = bars.with_columns(
        pl.when(pl.col("date") == day).then(volume).otherwise(pl.col("volume")).alias("volume")
    )
    report = validate_bars(bad, UNIVERSE.get(symbol), TODAY)
    assert not report.blocked  # one bad print is isolated
    assert report.results["volume_sanity"].severity == "WARN"
    assert day not in report.clean["date"].to_list()
    row = report.quarantine.row(0, named=True)
    assert (row["date"], row["rule"], row["reason"]) == (day, "volume_sanity", reason)


def test_fewer_complete_sessions_than_a_model_needs_is_an_error(since_2018):
    bars = since_2018.filter(pl.col("symbol") == "MSFT").tail(251)  # gap-free, valid bars
    report = validate_bars(bars, UNIVERSE.get("MSFT"), TODAY)
    assert report.results["completeness"].blocks
    assert "only 251 complete session(s)" in report.results["completeness"].summary
    enough = validate_bars(
        since_2018.filter(pl.col("symbol") == "MSFT").tail(252), UNIVERSE.get("MSFT"), TODAY
    )
    assert not enough.blocked
