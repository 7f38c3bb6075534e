"""Exchange sessions from a maintained calendar library (pandas_market_calendars)."""

from __future__ import annotations

from datetime import date
from functools import lru_cache

import polars as pl


@lru_cache(maxsize=32)
def _sessions(calendar: str, start: date, end: date) -> tuple[date, ...]:
    import pandas_market_calendars as mcal

    days = mcal.get_calendar(calendar).valid_days(start_date=start, end_date=end)
    return tuple(d.date() for d in days)


def exchange_sessions(calendar: str, start: date, end: date) -> pl.Series:
    """Trading sessions of ``calendar`` (e.g. ``NYSE``, ``NSE``) between two dates, inclusive."""
    if end < start:
        return pl.Series("date", [], dtype=pl.Date)
    return pl.Series("date", _sessions(calendar, start, end), dtype=pl.Date)


@lru_cache(maxsize=32)
def closes_before(calendar: str, reference: str) -> bool:
    """Whether ``calendar``'s session ends before ``reference``'s on the same date (NSE closes at
    10:00 UTC, NYSE at 20:00 or 21:00 UTC): such a market cannot know the reference's close of
    that date when its own session ends."""
    import pandas_market_calendars as mcal

    def close_utc(name: str):
        schedule = mcal.get_calendar(name).schedule("2024-06-03", "2024-06-07")
        return schedule["market_close"].iloc[0].time()

    return close_utc(calendar) < close_utc(reference)
