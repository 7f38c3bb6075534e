"""Market events per (symbol, date), each known at the close of its date from data up to that
close: streaks, volume spikes, gaps, RSI zone entries, 52-week breakouts, 2-sigma moves, the
calendar (weekday, month, exchange holidays) and a spike of the volatility index.

Everything is one vectorized polars pass over the whole (symbol, date)-sorted panel, with the
windows kept inside a symbol by the helpers of :mod:`quant.features.indicators`. Holidays come
from each instrument's exchange calendar (pandas_market_calendars), never from a hand list.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta

import polars as pl

from quant.features import indicators as ind
from quant.universe import AssetClass, Universe
from quant.validation.calendars import exchange_sessions

STREAK_LENGTHS = (2, 3, 4, 5)
RSI_PERIOD = 14
RSI_LOW, RSI_HIGH = 30.0, 70.0
GAP = 0.01
VOLUME_WINDOW, VOLUME_MULTIPLE = 20, 2.0
BREAKOUT_WINDOW = 252
SIGMA_WINDOW, SIGMA_MULTIPLE = 20, 2.0
VIX_WINDOW, VIX_MULTIPLE = 20, 1.2
# a ^VIX close older than this is not "the previous session" (a gap in its data): no event
VIX_STALE_DAYS = 7

WEEKDAYS = ("mon", "tue", "wed", "thu", "fri")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
_WEEKDAY_NAMES = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday")
_MONTH_NAMES = (
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
)

EVENTS: dict[str, str] = {
    **{f"up_streak_{n}": f"{n}th consecutive higher close" for n in STREAK_LENGTHS},
    **{f"down_streak_{n}": f"{n}th consecutive lower close" for n in STREAK_LENGTHS},
    "volume_spike": "volume above 2x its 20-session mean",
    "gap_up": "opens more than 1 % above the previous close",
    "gap_down": "opens more than 1 % below the previous close",
    "rsi_below_30": "RSI(14) falls below 30",
    "rsi_above_70": "RSI(14) rises above 70",
    "high_52w_breakout": "closes above the highest of the previous 252 closes",
    "low_52w_breakout": "closes below the lowest of the previous 252 closes",
    "move_2sigma_up": "daily return above +2 sigma of the last 20 sessions",
    "move_2sigma_down": "daily return below -2 sigma of the last 20 sessions",
    **{f"dow_{d}": f"a {name}" for d, name in zip(WEEKDAYS, _WEEKDAY_NAMES, strict=True)},
    **{f"month_{m}": f"a session in {name}" for m, name in zip(MONTHS, _MONTH_NAMES, strict=True)},
    "pre_holiday": "the session before an exchange holiday",
    "post_holiday": "the session after an exchange holiday",
    "vix_spike": "the previous VIX close is above 1.2x its 20-session mean",
}
"""Event id -> readable label: every event :func:`detect_events` can emit."""

EVENT_DIRECTION: dict[str, int] = {
    **{f"up_streak_{n}": 1 for n in STREAK_LENGTHS},
    **{f"down_streak_{n}": -1 for n in STREAK_LENGTHS},
    "gap_up": 1,
    "gap_down": -1,
    "rsi_below_30": -1,
    "rsi_above_70": 1,
    "high_52w_breakout": 1,
    "low_52w_breakout": -1,
    "move_2sigma_up": 1,
    "move_2sigma_down": -1,
    # a VIX spike follows a falling market: a down event (a rise afterwards is a reversal)
    "vix_spike": -1,
}
"""+1 for an up move, -1 for a down move; events absent here (calendar, volume) have no
direction, so no reversal share."""

EVENT_SCHEMA = {"symbol": pl.String(), "date": pl.Date(), "event": pl.String()}


@dataclass(frozen=True)
class EventSpec:
    """The instrument roles the events depend on: which symbols are equities (volume spikes),
    each symbol's exchange calendar (holidays), and the volatility index (``vix_spike``)."""

    equities: frozenset[str] = frozenset()
    calendars: Mapping[str, str] = field(default_factory=dict)
    volatility_index: str | None = None


def spec_from_universe(universe: Universe) -> EventSpec:
    """Roles from the universe file: equities by asset class, calendars per instrument, the
    volatility index by its sector ("volatility"), never by a ticker's name."""
    volatility = [i.symbol for i in universe.instruments if i.sector == "volatility"]
    return EventSpec(
        equities=frozenset(i.symbol for i in universe.of_class(AssetClass.EQUITY)),
        calendars={i.symbol: i.calendar for i in universe.instruments},
        volatility_index=volatility[0] if volatility else None,
    )


def _streak(flag: pl.Expr) -> pl.Expr:
    """Length of the run of consecutive ``flag`` rows ending at each row (0 where not flagged)."""
    count = flag.cast(pl.Int32).cum_sum().over(ind.GROUP)
    at_reset = pl.when(~flag).then(count).forward_fill().over(ind.GROUP).fill_null(0)
    return count - at_reset


def _price_flags(bars: pl.DataFrame, equities: frozenset[str]) -> pl.LazyFrame:
    """Boolean columns, one per price/volume event, over the sorted panel."""
    c, o, v = pl.col("close"), pl.col("open"), pl.col("volume")
    panel = ind.with_position(bars).with_columns(
        ind.lag(c).alias("_prev"), pl.col("symbol").is_in(list(equities)).alias("_equity")
    )
    panel = panel.with_columns(
        (c - pl.col("_prev")).alias("_change"),
        ind.ratio(c, pl.col("_prev")).log().alias("_ret"),
    )
    change = pl.col("_change")
    panel = panel.with_columns(
        _streak((change > 0).fill_null(False)).alias("_up_run"),
        _streak((change < 0).fill_null(False)).alias("_down_run"),
        ind.wilder(ind.gain(change), RSI_PERIOD, first_valid=1).alias("_avg_gain"),
        ind.wilder(ind.loss(change), RSI_PERIOD, first_valid=1).alias("_avg_loss"),
        ind.lag(pl.col("_ret")).rolling_std(SIGMA_WINDOW).over(ind.GROUP).alias("_sigma"),
        ind.lag(v).rolling_mean(VOLUME_WINDOW).over(ind.GROUP).alias("_vol_mean"),
        ind.rolling_max(ind.lag(c), BREAKOUT_WINDOW).alias("_prev_high"),
        ind.rolling_min(ind.lag(c), BREAKOUT_WINDOW).alias("_prev_low"),
    )
    panel = panel.with_columns(
        ind.rsi_from(pl.col("_avg_gain"), pl.col("_avg_loss")).alias("_rsi")
    ).with_columns(ind.lag(pl.col("_rsi")).alias("_rsi_prev"))
    rsi, rsi_prev, ret, sigma = (pl.col(n) for n in ("_rsi", "_rsi_prev", "_ret", "_sigma"))
    gap = o / pl.col("_prev") - 1.0
    weekday, month = pl.col("date").dt.weekday(), pl.col("date").dt.month()
    flags = {
        **{f"up_streak_{n}": pl.col("_up_run") == n for n in STREAK_LENGTHS},
        **{f"down_streak_{n}": pl.col("_down_run") == n for n in STREAK_LENGTHS},
        "volume_spike": pl.col("_equity")
        & (pl.col("_vol_mean") > 0)
        & (v > VOLUME_MULTIPLE * pl.col("_vol_mean")),
        "gap_up": gap > GAP,
        "gap_down": gap < -GAP,
        "rsi_below_30": (rsi < RSI_LOW) & (rsi_prev >= RSI_LOW),
        "rsi_above_70": (rsi > RSI_HIGH) & (rsi_prev <= RSI_HIGH),
        "high_52w_breakout": c > pl.col("_prev_high"),
        "low_52w_breakout": c < pl.col("_prev_low"),
        "move_2sigma_up": ret > SIGMA_MULTIPLE * sigma,
        "move_2sigma_down": ret < -SIGMA_MULTIPLE * sigma,
        **{f"dow_{d}": weekday == i for i, d in enumerate(WEEKDAYS, start=1)},
        **{f"month_{m}": month == i for i, m in enumerate(MONTHS, start=1)},
    }
    return panel.select(
        "symbol", "date", *[e.fill_null(False).alias(name) for name, e in flags.items()]
    )


def _weekday_step(day: pl.Expr, forward: bool) -> pl.Expr:
    """The next (``forward``) or previous weekday of each date."""
    weekday = day.dt.weekday()  # 1 = Monday
    if forward:
        days = pl.when(weekday == 5).then(3).when(weekday == 6).then(2).otherwise(1)
        return day + pl.duration(days=days)
    days = pl.when(weekday == 1).then(3).when(weekday == 7).then(2).otherwise(1)
    return day - pl.duration(days=days)


def _holiday_flags(bars: pl.DataFrame, calendars: Mapping[str, str]) -> pl.DataFrame:
    """``pre_holiday`` / ``post_holiday`` per bar: a session of the symbol's calendar whose next
    (previous) weekday is not a session of that calendar. Symbols without a calendar: none."""
    keys = bars.select("symbol", "date").join(
        pl.DataFrame(
            {"symbol": list(calendars), "calendar": list(calendars.values())},
            schema={"symbol": pl.String(), "calendar": pl.String()},
        ),
        on="symbol",
        how="left",
    )
    spans = (
        keys.drop_nulls("calendar")
        .group_by("calendar")
        .agg(pl.col("date").min().alias("start"), pl.col("date").max().alias("end"))
    )
    sessions = pl.concat(
        [
            exchange_sessions(name, start - timedelta(days=10), end + timedelta(days=10))
            .to_frame("date")
            .with_columns(pl.lit(name).alias("calendar"), pl.lit(True).alias("_session"))
            for name, start, end in spans.iter_rows()
        ]
        or [pl.DataFrame(schema={"date": pl.Date, "calendar": pl.String, "_session": pl.Boolean})]
    )

    frame = keys.with_columns(
        _weekday_step(pl.col("date"), forward=True).alias("_next"),
        _weekday_step(pl.col("date"), forward=False).alias("_before"),
    )
    for column, flag in (("date", "_today"), ("_next", "_next_open"), ("_before", "_before_open")):
        frame = frame.join(
            sessions.rename({"date": column, "_session": flag}), on=["calendar", column], how="left"
        )
    known = pl.col("calendar").is_not_null() & pl.col("_today").fill_null(False)
    return frame.select(
        "symbol",
        "date",
        (known & pl.col("_next_open").is_null()).alias("pre_holiday"),
        (known & pl.col("_before_open").is_null()).alias("post_holiday"),
    )


def _vix_flags(bars: pl.DataFrame, volatility_index: str | None) -> pl.DataFrame:
    """``vix_spike`` per bar of every symbol but the volatility index: the volatility index's
    latest close strictly before this date (it prints at 4:15 pm ET, after the equity close, so
    the same session's close would be look-ahead) is above 1.2x the mean of its 20 sessions
    before it."""
    keys = bars.select("symbol", "date").sort("date")
    if volatility_index is None or volatility_index not in set(bars["symbol"].unique()):
        return keys.with_columns(pl.lit(False).alias("vix_spike"))
    vix = (
        ind.with_position(bars.filter(pl.col("symbol") == volatility_index))
        .with_columns(ind.lag(pl.col("close")).rolling_mean(VIX_WINDOW).over(ind.GROUP).alias("m"))
        .select(
            # known from the next calendar day on: the as-of join below never sees it same-day
            (pl.col("date") + pl.duration(days=1)).alias("known_from"),
            (pl.col("close") > VIX_MULTIPLE * pl.col("m")).fill_null(False).alias("_spike"),
        )
        .collect()
        .sort("known_from")
    )
    joined = keys.join_asof(
        vix,
        left_on="date",
        right_on="known_from",
        strategy="backward",
        tolerance=timedelta(days=VIX_STALE_DAYS),
    )
    spike = pl.col("_spike").fill_null(False) & (pl.col("symbol") != volatility_index)
    return joined.select("symbol", "date", spike.alias("vix_spike"))


def event_flags(bars: pl.DataFrame, spec: EventSpec) -> pl.DataFrame:
    """One row per bar with a boolean column per event of :data:`EVENTS` (wide form)."""
    prices = _price_flags(bars, spec.equities).collect()
    return (
        prices.join(_holiday_flags(bars, spec.calendars), on=["symbol", "date"], how="left")
        .join(_vix_flags(bars, spec.volatility_index), on=["symbol", "date"], how="left")
        .with_columns(pl.col("pre_holiday", "post_holiday", "vix_spike").fill_null(False))
        .select("symbol", "date", *EVENTS)
    )


def detect_events(bars: pl.DataFrame, spec: EventSpec) -> pl.DataFrame:
    """Every event of every bar, long form: (symbol, date, event), sorted.

    ``bars``: the validated, adjusted daily bars (symbol, date, open, close, volume; one row per
    symbol and session). Each event uses only that symbol's bars up to the date's close (and,
    for ``vix_spike``, the volatility index's close of an earlier session).
    """
    if bars.is_empty():
        return pl.DataFrame(schema=EVENT_SCHEMA)
    wide = event_flags(bars.sort("symbol", "date"), spec)
    return (
        wide.unpivot(index=["symbol", "date"], variable_name="event", value_name="_fired")
        .filter(pl.col("_fired"))
        .select("symbol", "date", "event")
        .sort("symbol", "date", "event")
    )
