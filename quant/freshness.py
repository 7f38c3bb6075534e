"""Is a symbol's data current? Its last bar against its own exchange calendar and a run date.

Definitions (one symbol, its calendar ``C``, its last bar ``data_date``, the run date ``R``):

- ``expected_date``: the last session of ``C`` on or before ``R`` — the bar a fully up-to-date
  source would end on.
- ``sessions_behind``: the number of sessions of ``C`` strictly after ``data_date`` and on or
  before ``R``. 0 when the last bar is the expected session (or later: a symbol whose data run
  past ``R`` is never behind); a weekend or an exchange holiday adds nothing, because they are
  not sessions.
- ``stale``: ``sessions_behind > max_sessions_behind`` (exactly ``max_sessions_behind`` behind is
  still fresh). A symbol without any bar is stale with ``sessions_behind`` null.

The default threshold, :data:`DEFAULT_MAX_SESSIONS_BEHIND` = 2, allows for a run that starts
before the run date's own session has closed or been published (1 behind is normal then) plus
one session of vendor lag; a third missing session means the signal would be made from bars at
least three trading days old, which no daily strategy should trade on.

One calendar lookup per exchange calendar, whatever the number of symbols.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import date, timedelta

import polars as pl

from quant.validation.calendars import exchange_sessions

DEFAULT_MAX_SESSIONS_BEHIND = 2
# How far before the run date to look for its last session (no exchange closes this long).
_EXPECTED_LOOKBACK = timedelta(days=30)

FRESHNESS_SCHEMA: dict[str, pl.DataType] = {
    "symbol": pl.String(),
    "calendar": pl.String(),
    "data_date": pl.Date(),
    "expected_date": pl.Date(),
    "sessions_behind": pl.Int64(),
    "stale": pl.Boolean(),
}


def last_bar_dates(bars: pl.DataFrame) -> pl.DataFrame:
    """Each symbol's last bar date (``symbol``, ``data_date``) from a frame of bars.

    Why: freshness is judged on the newest bar a symbol actually has, not on a run's clock.
    """
    return bars.group_by("symbol").agg(pl.col("date").max().alias("data_date")).sort("symbol")


def _one_calendar(part: pl.DataFrame, calendar: str, run_date: date) -> pl.DataFrame:
    """Freshness of the symbols of one calendar (one session lookup for all of them)."""
    known = part["data_date"].drop_nulls()
    start = min([run_date - _EXPECTED_LOOKBACK, *([known.min()] if len(known) else [])])
    sessions = exchange_sessions(calendar, start, run_date)
    expected = sessions[-1] if len(sessions) else None
    # sessions are sorted: those after data_date are the ones past its right insertion point
    after = pl.Series(sessions.search_sorted(part["data_date"].fill_null(start), side="right"))
    behind = pl.Series("sessions_behind", len(sessions) - after, dtype=pl.Int64)
    return part.with_columns(
        pl.lit(calendar, pl.String).alias("calendar"),
        pl.lit(expected, pl.Date).alias("expected_date"),
        behind,
    ).with_columns(pl.when(pl.col("data_date").is_not_null()).then(pl.col("sessions_behind")))


def freshness(
    last_dates: pl.DataFrame,
    calendars: Mapping[str, str],
    run_date: date,
    max_sessions_behind: int = DEFAULT_MAX_SESSIONS_BEHIND,
) -> pl.DataFrame:
    """Per symbol: calendar, data_date, expected_date, sessions_behind and stale (see the module
    docstring for the definitions), sorted by symbol.

    ``last_dates`` has ``symbol`` and ``data_date`` (see :func:`last_bar_dates`); ``calendars``
    maps each symbol to its ``pandas_market_calendars`` name (the universe's ``calendar``). Why:
    a signal made from a bar that is sessions old must not be served as today's.
    """
    if max_sessions_behind < 0:
        raise ValueError(f"max_sessions_behind must be >= 0, got {max_sessions_behind}")
    unknown = sorted(set(last_dates["symbol"]) - set(calendars))
    if unknown:
        raise KeyError(f"no exchange calendar for {unknown}: are they in the universe?")
    frame = last_dates.select(
        pl.col("symbol").cast(pl.String), pl.col("data_date").cast(pl.Date)
    ).with_columns(pl.col("symbol").replace_strict(dict(calendars)).alias("_calendar"))
    parts = [
        _one_calendar(part.drop("_calendar"), calendar, run_date)
        for (calendar,), part in frame.group_by("_calendar", maintain_order=True)
    ]
    if not parts:
        return pl.DataFrame(schema=FRESHNESS_SCHEMA)
    return (
        pl.concat(parts)
        .with_columns(
            (
                pl.col("sessions_behind").is_null()
                | (pl.col("sessions_behind") > max_sessions_behind)
            ).alias("stale")
        )
        .select(list(FRESHNESS_SCHEMA))
        .sort("symbol")
    )


def stale_note(row: Mapping[str, object], run_date: date, action: str = "") -> str:
    """One line a person can act on, e.g. ``^DJI: data is stale — last bar 2025-07-11, 222 NYSE
    sessions behind the run date 2026-05-29; signal held (HOLD)`` (``action`` is the last part).
    """
    if row.get("data_date") is None:
        text = f"{row['symbol']}: data is stale — no bars at all (run date {run_date})"
    else:
        text = (
            f"{row['symbol']}: data is stale — last bar {row['data_date']}, "
            f"{row['sessions_behind']} {row['calendar']} sessions behind the run date {run_date}"
        )
    return f"{text}; {action}" if action else text
