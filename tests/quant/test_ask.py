"""``market ask``: fixed-rule parsing of a question into (symbol, event, horizon), hostile input
refused cleanly, and answers that carry the numbers of the insights table."""

from __future__ import annotations

import math
from datetime import date

import polars as pl
import pytest

from quant.patterns.ask import (
    EVENT_PHRASES,
    EXAMPLE_QUESTIONS,
    MOMENTUM_REVERSAL,
    QUESTION_FORMS,
    InsightsSchemaError,
    Query,
    UnknownSymbol,
    UnparsableQuestion,
    answer,
    fmt_q,
    parse,
    pct,
)
from quant.universe import DEFAULT_UNIVERSE_PATH, load_universe

UNIVERSE = load_universe(DEFAULT_UNIVERSE_PATH)
NAMES = {i.symbol: i.name for i in UNIVERSE.instruments}


def ask(question: str) -> Query:
    return parse(question, UNIVERSE.symbols, names=NAMES, source=UNIVERSE.source)


PHRASINGS = [
    # the issue's three
    ("What happens to AAPL after three consecutive green candles?", "AAPL", "up_streak_3", None),
    ("What's the average move after a volume spike?", None, "volume_spike", None),
    ("When does momentum typically reverse?", None, MOMENTUM_REVERSAL, None),
    # streaks: synonyms, digits and words, "in a row" / "straight" / "consecutive"
    ("what happens to aapl after 3 up days?", "AAPL", "up_streak_3", None),
    ("MSFT after two straight losing days, next week?", "MSFT", "down_streak_2", 5),
    ("After 4 red candles in a row, what does NVDA do tomorrow?", "NVDA", "down_streak_4", 1),
    ("5 consecutive rising closes in Apple over the next month", "AAPL", "up_streak_5", 20),
    ("What follows 3 gains in a row for Microsoft?", "MSFT", "up_streak_3", None),
    ("JPM after four straight down days", "JPM", "down_streak_4", None),
    ("up 3 days in a row, then what for ^GSPC?", "^GSPC", "up_streak_3", None),
    ("GSPC after a 2 day losing streak", "^GSPC", "down_streak_2", None),
    ("Stocks after 2 up closes in 5 days", None, "up_streak_2", 5),
    ("WHAT HAPPENS TO AAPL AFTER THREE GREEN CANDLES?", "AAPL", "up_streak_3", None),
    ("Visa after 3 days of gains", "V", "up_streak_3", None),
    ("Microsoft after 4 consecutive declines over 4 weeks", "MSFT", "down_streak_4", 20),
    # other events
    ("Does high volume predict anything for XOM?", "XOM", "volume_spike", None),
    ("unusual volume in Chevron: the next 20 days?", "CVX", "volume_spike", 20),
    ("How does MSFT move the next week after a gap up?", "MSFT", "gap_up", 5),
    ("What if Pfizer opens higher?", "PFE", "gap_up", None),
    ("After AAPL gaps down, what happens the next day?", "AAPL", "gap_down", 1),
    ("Is it worth buying Walmart when it is oversold?", "WMT", "rsi_below_30", None),
    ("What happens after RSI drops below 30?", None, "rsi_below_30", None),
    ("JPMorgan after RSI > 70 over the next 5 days", "JPM", "rsi_above_70", 5),
    ("overbought NVDA, next week", "NVDA", "rsi_above_70", 5),
    ("What does NVDA do after a new 52-week high?", "NVDA", "high_52w_breakout", None),
    ("Does a breakout in Home Depot last a month?", "HD", "high_52w_breakout", 20),
    ("What does McDonald's do after a new low?", "MCD", "low_52w_breakout", None),
    ("S&P 500 after a 52 week low", "^GSPC", "low_52w_breakout", None),
    ("What follows a big move up in Nike?", "NKE", "move_2sigma_up", None),
    ("after a 2 sigma move down in the S&P 500", "^GSPC", "move_2sigma_down", None),
    ("two standard deviations moves in Goldman Sachs", "GS", "move_2sigma_up", None),
    ("after a big drop in nvda", "NVDA", "move_2sigma_down", None),
    # the calendar
    ("How do stocks do on Mondays?", None, "dow_mon", None),
    ("What does the VIX do on Fridays?", "^VIX", "dow_fri", None),
    ("How does Apple perform in January?", "AAPL", "month_jan", None),
    ("What happens in May?", None, "month_may", None),
    ("Dow Jones in December, next month", "^DJI", "month_dec", 20),
    ("What happens to JPM the day before a holiday?", "JPM", "pre_holiday", None),
    ("How do equities trade after a holiday?", None, "post_holiday", None),
    # the volatility index
    ("What do equities do over the next month after a VIX spike?", None, "vix_spike", 20),
    ("What does Bank of America do after a fear spike?", "BAC", "vix_spike", None),
    # momentum
    ("when does momentum reverse for AAPL over the next week?", "AAPL", MOMENTUM_REVERSAL, 5),
    ("When do streaks end for Exxon Mobil?", "XOM", MOMENTUM_REVERSAL, None),
]


@pytest.mark.parametrize(("question", "symbol", "event", "horizon"), PHRASINGS)
def test_phrasings_parse_to_one_query(question, symbol, event, horizon):
    assert ask(question) == Query(symbol=symbol, event=event, horizon=horizon)


def test_every_example_of_the_forms_parses_and_every_event_is_reachable():
    for example in EXAMPLE_QUESTIONS:
        ask(example)
    assert len(PHRASINGS) >= 30
    reached = {event for _, _, event, _ in PHRASINGS}
    assert {"up_streak_3", "down_streak_4", "gap_down", "pre_holiday"} <= reached


def test_the_parser_knows_exactly_the_events_of_the_study():
    events = pytest.importorskip("quant.patterns.events")
    assert set(EVENT_PHRASES) == set(events.EVENTS)


@pytest.mark.parametrize(
    "question",
    [
        "",
        "   ",
        "../../etc/passwd",
        "AAPL'; DROP TABLE pattern_insights; --",
        "x" * 10_000,
        "AAPL " * 2_000 + "after a gap up",
        "Что будет с акциями после гэпа?",
        "🚀🚀🚀 to the moon",
        "\x00\x1b[31mred\x1b[0m",
        "What is the meaning of life?",
        "after consecutive up days",  # how many?
        "after 7 up days in a row",  # streaks are 2 to 5
        "AAPL after a gap up over the next 10 days",  # horizons are 1, 5, 20
        "AAPL and MSFT after a gap up",  # one symbol at a time
        "a gap up on Mondays",  # one pattern at a time
    ],
)
def test_hostile_or_unreadable_questions_are_refused_with_the_forms(question):
    with pytest.raises(UnparsableQuestion) as refused:
        ask(question)
    message = str(refused.value)
    assert QUESTION_FORMS[0] in message and EXAMPLE_QUESTIONS[2] in message
    assert "passwd" not in message and "DROP" not in message and "xxxx" not in message


@pytest.mark.parametrize(
    ("question", "token"),
    [
        ("What happens to TSLA after a gap up?", "'TSLA'"),
        ("$GME after 3 up days", "'GME'"),
        ("^FOO on Mondays", "'^FOO'"),
        ("AAPL'; DROP TABLE x; -- after a gap up", "'TABLE'"),
        ("What happens to АAPL after a gap up?", r"'\u0410APL'"),  # a Cyrillic А
    ],
)
def test_a_ticker_outside_the_universe_is_named_with_the_universe_file(question, token):
    with pytest.raises(UnknownSymbol) as refused:
        ask(question)
    message = str(refused.value)
    assert message.startswith(f"{token} is not a symbol of the universe ({UNIVERSE.source})")
    assert "\n" not in message and "after" not in message


def test_names_default_to_the_universe_file(monkeypatch):
    monkeypatch.setenv("MARKET_UNIVERSE", str(DEFAULT_UNIVERSE_PATH))
    assert parse("Apple after a gap up", UNIVERSE.symbols).symbol == "AAPL"


# --- answers -----------------------------------------------------------------------------------


def log(pct_move: float) -> float:
    return math.log1p(pct_move / 100)


def cell(**values) -> dict:
    row = {
        "scope": "symbol",
        "symbol": "AAPL",
        "event": "up_streak_3",
        "label": "3th consecutive higher close",
        "horizon": 1,
        "n_events": 212,
        "mean_return": log(0.12),
        "median_return": log(0.10),
        "ci_low": log(-0.05),
        "ci_high": log(0.29),
        "p_up": 0.53,
        "p_reversal": 0.47,
        "mean_abs_return": log(1.1),
        "baseline_mean": log(0.08),
        "p_value": 0.2,
        "q_value": 0.81,
        "discovery_mean": log(0.15),
        "discovery_p": 0.1,
        "holdout_mean": log(0.01),
        "holdout_p": 0.7,
        "holdout_n": 60,
        "persists": False,
        "insight": False,
        "verdict": "no clear pattern",
        "first_date": date(2018, 1, 2),
        "last_date": date(2024, 12, 31),
        "split_date": date(2023, 1, 3),
    }
    row.update(values)
    return row


EQUITIES = {"scope": "equities", "symbol": "EQUITIES"}
INSIGHTS = pl.DataFrame(
    [
        cell(),
        cell(horizon=5, mean_return=log(0.40), q_value=0.52),
        cell(horizon=20, mean_return=log(1.10), q_value=0.0042, verdict="insight: drifts up"),
        cell(event="up_streak_4", p_reversal=0.61, n_events=90),
        cell(
            event="down_streak_3",
            n_events=150,
            mean_return=log(0.35),
            ci_low=log(0.10),
            ci_high=log(0.60),
            p_up=0.58,
            p_reversal=0.58,
            q_value=0.0004,
            persists=True,
            insight=True,
            verdict="insight: tends to bounce back",
        ),
        cell(
            symbol="MSFT",
            event="down_streak_5",
            n_events=6,
            mean_return=None,
            verdict="too few events",
        ),
        cell(
            **EQUITIES,
            event="volume_spike",
            n_events=4120,
            mean_return=log(-0.21),
            ci_low=log(-0.33),
            ci_high=log(-0.09),
            p_up=0.46,
            p_reversal=None,
            baseline_mean=log(0.05),
            q_value=0.004,
            holdout_n=900,
            persists=True,
            insight=True,
            verdict="insight: tends to fall",
        ),
        cell(**EQUITIES, event="up_streak_2", p_reversal=0.52, q_value=0.4),
        cell(**EQUITIES, event="down_streak_2", p_reversal=0.55, q_value=0.3),
    ]
)


def test_numbers_are_simple_percent_with_a_typographic_minus():
    assert pct(log(0.12)) == "+0.12 %"
    assert pct(log(-0.05)) == "−0.05 %"
    assert pct(math.log(1.5)) == "+50.00 %"  # exp(x) - 1, not x
    assert pct(None) == "n/a"
    assert (fmt_q(0.81), fmt_q(0.0042), fmt_q(0.00001), fmt_q(None)) == (
        "q = 0.81",
        "q = 0.004",
        "q < 0.001",
        "q n/a",
    )


def test_no_clear_pattern_reads_as_the_issue_sentence():
    reply = answer(Query("AAPL", "up_streak_3", 1), INSIGHTS)
    assert reply.text == (
        "After 3 consecutive up closes, AAPL's next session averaged +0.12 % (95 % CI −0.05 % "
        "to +0.29 %; up 53 % of 212 times) against its usual +0.08 %: no clear pattern "
        "(q = 0.81; the holdout did not confirm it)."
    )
    assert len(reply.rows) == 1 and reply.rows[0]["horizon"] == 1
    assert reply.rows[0]["first_date"] == "2018-01-02"  # JSON-ready


def test_an_insight_of_the_pooled_equities_carries_its_verdict():
    reply = answer(Query(None, "volume_spike", 1), INSIGHTS)
    assert reply.text == (
        "After a volume spike, the pooled equities' next session averaged −0.21 % (95 % CI "
        "−0.33 % to −0.09 %; up 46 % of 4120 times) against their usual +0.05 %: insight: "
        "tends to fall (q = 0.004; the holdout confirmed it)."
    )


def test_no_horizon_answers_the_next_session_and_lists_all_three():
    reply = answer(Query("AAPL", "up_streak_3", None), INSIGHTS)
    first, second = reply.text.split(". ", 1)
    assert first.startswith("After 3 consecutive up closes, AAPL's next session averaged +0.12 %")
    assert second == (
        "Over the next 5 sessions: +0.40 % (no clear pattern, q = 0.52); over the next 20 "
        "sessions: +1.10 % (insight: drifts up, q = 0.004)."
    )
    assert [r["horizon"] for r in reply.rows] == [1, 5, 20]


def test_too_few_events_and_a_missing_cell_are_said_plainly():
    few = answer(Query("MSFT", "down_streak_5", 1), INSIGHTS)
    assert few.text == (
        "After 5 consecutive down closes, MSFT's next session: too few events to judge "
        "(6 in the table)."
    )
    missing = answer(Query("NVDA", "gap_up", 5), INSIGHTS)
    assert missing.text == (
        "The pattern_insights table has no row for NVDA after a gap up over the next 5 sessions."
    )
    assert missing.rows == []
    anywhere = answer(Query("NVDA", "gap_up", None), INSIGHTS)
    assert anywhere.text.endswith("NVDA after a gap up at any horizon.")


def test_momentum_names_the_streak_that_reverses_most_among_the_significant():
    reply = answer(Query("AAPL", MOMENTUM_REVERSAL, None), INSIGHTS)
    # up_streak_4 reverses more often (61 %) but is no insight; down_streak_3 is
    assert reply.text == (
        "For AAPL, momentum most often reverses after 3 consecutive down closes: the next "
        "session went the other way 58 % of 150 times (average +0.35 %, 95 % CI +0.10 % to "
        "+0.60 %; q < 0.001; the holdout confirmed it): insight: tends to bounce back."
    )
    assert {r["event"] for r in reply.rows} == {"up_streak_3", "up_streak_4", "down_streak_3"}


def test_momentum_without_a_significant_streak_says_no_clear_pattern():
    reply = answer(Query(None, MOMENTUM_REVERSAL, 1), INSIGHTS)
    assert reply.text == (
        "For the pooled equities, no up or down streak of 2 to 5 closes reverses reliably over "
        "the next session: no clear pattern (the highest reversal share, 55 % of 212 times "
        "after 2 consecutive down closes, has q = 0.30)."
    )
    nothing = answer(Query("NVDA", MOMENTUM_REVERSAL, 1), INSIGHTS)
    assert nothing.text.startswith("The pattern_insights table has no row for NVDA")


def test_a_table_without_the_needed_columns_is_refused():
    with pytest.raises(InsightsSchemaError, match="q_value"):
        answer(Query("AAPL", "up_streak_3", 1), INSIGHTS.drop("q_value"))
