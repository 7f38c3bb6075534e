"""quant.freshness: sessions behind the run date on each symbol's own exchange calendar."""

from __future__ import annotations

from datetime import date

import polars as pl
import pytest

import quant.freshness as freshness_module
from quant.freshness import freshness, last_bar_dates, stale_note
from quant.signals import HOLD, hold_stale

CALENDARS = {"AAPL": "NYSE", "MSFT": "NYSE", "^NSEI": "NSE", "^DJI": "NYSE"}


def last(**dates: date | None) -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": list(dates), "data_date": list(dates.values())},
        schema={"symbol": pl.String, "data_date": pl.Date},
    )


def behind(frame: pl.DataFrame) -> dict[str, int | None]:
    return dict(frame.select("symbol", "sessions_behind").iter_rows())


def test_a_weekend_and_the_july_4th_holiday_are_not_sessions():
    # Thu 2025-07-03; Fri 07-04 is an NYSE holiday, then a weekend; Mon 07-07 is one session
    result = freshness(last(AAPL=date(2025, 7, 3)), CALENDARS, date(2025, 7, 7))
    row = result.row(0, named=True)
    assert row["sessions_behind"] == 1 and row["expected_date"] == date(2025, 7, 7)
    assert row["calendar"] == "NYSE" and not row["stale"]
    # on the Sunday the expected session is still Thursday's: nothing is missing
    sunday = freshness(last(AAPL=date(2025, 7, 3)), CALENDARS, date(2025, 7, 6))
    assert sunday.row(0, named=True)["sessions_behind"] == 0
    assert sunday["expected_date"][0] == date(2025, 7, 3)


def test_thanksgiving_week_counts_the_half_day_but_not_the_holiday():
    # after Tue 2025-11-25: Wed 26, (Thu 27 closed), Fri 28 (half day), Mon 12-01
    result = freshness(last(AAPL=date(2025, 11, 25)), CALENDARS, date(2025, 12, 1))
    assert behind(result) == {"AAPL": 3}


def test_each_symbol_is_measured_on_its_own_exchange_calendar():
    # Fri 2025-08-15 is India's Independence Day (NSE closed) but an NYSE session
    result = freshness(
        last(AAPL=date(2025, 8, 14), **{"^NSEI": date(2025, 8, 14)}), CALENDARS, date(2025, 8, 18)
    )
    assert behind(result) == {"AAPL": 2, "^NSEI": 1}
    assert dict(result.select("symbol", "calendar").iter_rows()) == {"AAPL": "NYSE", "^NSEI": "NSE"}


def test_exactly_the_threshold_is_fresh_one_more_is_stale():
    # 2025-07-07 .. 07-11 are five NYSE sessions: 07-09 is 2 behind 07-11, 07-08 is 3 behind
    frame = last(AAPL=date(2025, 7, 9), MSFT=date(2025, 7, 8))
    result = freshness(frame, CALENDARS, date(2025, 7, 11), max_sessions_behind=2)
    assert behind(result) == {"AAPL": 2, "MSFT": 3}
    assert dict(result.select("symbol", "stale").iter_rows()) == {"AAPL": False, "MSFT": True}
    zero = freshness(frame, CALENDARS, date(2025, 7, 11), max_sessions_behind=3)
    assert not zero["stale"].any()


def test_a_symbol_ahead_of_the_run_date_is_not_behind():
    result = freshness(last(AAPL=date(2026, 8, 21)), CALENDARS, date(2026, 5, 29))
    assert behind(result) == {"AAPL": 0} and not result["stale"][0]


def test_no_bars_is_stale_and_an_unknown_symbol_is_refused():
    result = freshness(last(AAPL=None), CALENDARS, date(2026, 5, 29))
    assert result["sessions_behind"][0] is None and result["stale"][0]
    with pytest.raises(KeyError, match="NOPE"):
        freshness(last(NOPE=date(2026, 5, 29)), CALENDARS, date(2026, 5, 29))
    with pytest.raises(ValueError, match=">= 0"):
        freshness(last(AAPL=date(2026, 5, 29)), CALENDARS, date(2026, 5, 29), -1)


def test_one_calendar_lookup_per_exchange(monkeypatch):
    calls: list[str] = []
    real = freshness_module.exchange_sessions

    def counting(calendar, start, end):
        calls.append(calendar)
        return real(calendar, start, end)

    monkeypatch.setattr(freshness_module, "exchange_sessions", counting)
    frame = last(
        AAPL=date(2026, 5, 29),
        MSFT=date(2026, 5, 1),
        **{"^DJI": date(2025, 7, 11), "^NSEI": date(2026, 4, 10)},
    )
    result = freshness(frame, CALENDARS, date(2026, 5, 29))
    assert sorted(calls) == ["NSE", "NYSE"]
    assert result["symbol"].to_list() == sorted(CALENDARS)


def test_the_bundled_sample_at_its_equities_last_session(sample_panel):
    calendars = {s: ("NSE" if s.startswith("^NSE") else "NYSE") for s in sample_panel["symbol"]}
    result = freshness(last_bar_dates(sample_panel), calendars, date(2026, 5, 29))
    assert sorted(result.filter("stale")["symbol"]) == ["^DJI", "^NSEBANK", "^NSEI"]
    dji = result.filter(pl.col("symbol") == "^DJI").row(0, named=True)
    assert dji["data_date"] == date(2025, 7, 11) and dji["sessions_behind"] == 222
    note = stale_note(dji, date(2026, 5, 29), "signal held (HOLD)")
    assert note == (
        "^DJI: data is stale — last bar 2025-07-11, 222 NYSE sessions behind the run date "
        "2026-05-29; signal held (HOLD)"
    )


def test_hold_stale_holds_only_the_stale_symbols_and_keeps_the_model_outputs():
    frame = pl.DataFrame(
        {
            "symbol": ["AAPL", "^DJI"],
            "date": [date(2026, 5, 29), date(2025, 7, 11)],
            "p_up": [0.7, 0.8],
            "signal": ["BUY", "BUY"],
            "position": [0.5, 1.0],
        }
    )
    held = hold_stale(frame, ["^DJI"])
    assert held["signal"].to_list() == ["BUY", HOLD]
    assert held["position"].to_list() == [0.5, 0.0]
    assert held["stale"].to_list() == [False, True]
    assert held["p_up"].to_list() == [0.7, 0.8]
    assert hold_stale(frame, [])["signal"].to_list() == ["BUY", "BUY"]
