"""``market ask``: a plain-English question about a market pattern, answered from the numbers of
the ``pattern_insights`` table.

:func:`parse` turns a question into a :class:`Query` (symbol, event, horizon) with fixed rules:
regular expressions over a short vocabulary, no model and no network, so the same question always
gets the same reading, and a question it cannot read is refused with the forms it does read
(:data:`QUESTION_FORMS`). :func:`answer` looks the cell up and says what it holds: the average
move, its 95 % interval, how often the price rose, how many events, the q-value and the verdict.

The question is only ever matched against patterns: it never reaches a file path or a query, and
a word that looks like a ticker but is not one of the universe is refused (:class:`UnknownSymbol`).
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

import polars as pl

from quant.universe import load_universe, universe_path

MAX_QUESTION_CHARS = 500
HORIZONS = (1, 5, 20)
STREAK_LENGTHS = (2, 3, 4, 5)
MOMENTUM_REVERSAL = "momentum_reversal"
"""The pseudo-event of "when does momentum reverse": the reversal shares of the streak events."""

STREAK_EVENTS = tuple(f"{side}_streak_{n}" for side in ("up", "down") for n in STREAK_LENGTHS)
WEEKDAYS = ("monday", "tuesday", "wednesday", "thursday", "friday")
MONTHS = (
    "january",
    "february",
    "march",
    "april",
    "may",
    "june",
    "july",
    "august",
    "september",
    "october",
    "november",
    "december",
)
EVENT_PHRASES: dict[str, str] = {
    **{f"up_streak_{n}": f"after {n} consecutive up closes" for n in STREAK_LENGTHS},
    **{f"down_streak_{n}": f"after {n} consecutive down closes" for n in STREAK_LENGTHS},
    "volume_spike": "after a volume spike",
    "gap_up": "after a gap up",
    "gap_down": "after a gap down",
    "rsi_below_30": "after RSI fell below 30 (oversold)",
    "rsi_above_70": "after RSI rose above 70 (overbought)",
    "high_52w_breakout": "after a new 52-week high",
    "low_52w_breakout": "after a new 52-week low",
    "move_2sigma_up": "after a move of more than two standard deviations up",
    "move_2sigma_down": "after a move of more than two standard deviations down",
    **{f"dow_{d[:3]}": f"after a {d.capitalize()} session" for d in WEEKDAYS},
    **{f"month_{m[:3]}": f"after a session in {m.capitalize()}" for m in MONTHS},
    "pre_holiday": "after the session before a holiday",
    "post_holiday": "after the first session after a holiday",
    "vix_spike": "after a VIX spike",
}
"""Every event id the parser can produce (those of ``quant.patterns.events.EVENTS``) and how a
sentence names it."""

# (example question, the variants it stands for): what an unreadable question is shown
_FORMS: tuple[tuple[str, str], ...] = (
    (
        "What happens to AAPL after three consecutive green candles?",
        "streaks of 2 to 5 up or down closes: up days, red candles, 4 losing days in a row",
    ),
    ("What's the average move after a volume spike?", "high volume, unusual volume"),
    ("When does momentum typically reverse?", "the reversal share of the up and down streaks"),
    ("How does MSFT move the next week after a gap up?", "gap down, opens higher, opens lower"),
    ("What happens after RSI drops below 30?", "oversold; RSI above 70, overbought"),
    ("What does NVDA do after a new 52-week high?", "breakout; 52-week low, new low"),
    (
        "What follows a 2 sigma move down in the S&P 500?",
        "big move up, big drop, two standard deviations",
    ),
    ("How do stocks do on Mondays?", "any weekday, Monday to Friday"),
    ("How does Apple perform in January?", "any month"),
    ("What happens to JPM the day before a holiday?", "before or after a holiday"),
    ("What do equities do over the next month after a VIX spike?", "fear spike"),
)
EXAMPLE_QUESTIONS: list[str] = [example for example, _ in _FORMS]
QUESTION_FORMS: list[str] = [
    *(f"{example}  ({variants})" for example, variants in _FORMS),
    "Horizon: next day / tomorrow (1 session), next week / 5 days (5), next month / 20 days / "
    "4 weeks (20); none named: all three.",
    "Symbol: a ticker of the universe (AAPL, ^GSPC or GSPC) or its name (Apple, S&P 500); "
    "none named: the pooled equities.",
]
"""The questions :func:`parse` reads, with examples: what :class:`UnparsableQuestion` prints."""


class AskError(ValueError):
    """A question :func:`parse` will not answer (the message says why; it is safe to print)."""


class UnparsableQuestion(AskError):
    """The question matches none of :data:`QUESTION_FORMS` (or asks for two things at once)."""

    def __init__(self, reason: str = "") -> None:
        self.reason = reason
        forms = "\n".join(f"  - {form}" for form in QUESTION_FORMS)
        lead = f"cannot read the question: {reason}" if reason else "cannot read the question"
        super().__init__(f"{lead}\nQuestions I understand:\n{forms}")


class UnknownSymbol(AskError):
    """A ticker-like word of the question is not a symbol of the universe."""

    def __init__(self, token: str, source: str, known: Collection[str]) -> None:
        self.token = token
        listed = ", ".join(sorted(known))
        super().__init__(f"{token!a} is not a symbol of the universe ({source}); known: {listed}")


class InsightsSchemaError(ValueError):
    """The insights table lacks columns an answer needs (written by an older study)."""


@dataclass(frozen=True)
class Query:
    """What a question asks: ``symbol`` None = the pooled equities, ``horizon`` None = 1, 5
    and 20 sessions, ``event`` an event id or :data:`MOMENTUM_REVERSAL`."""

    symbol: str | None
    event: str
    horizon: int | None


@dataclass(frozen=True)
class Answer:
    """One or two sentences with the numbers, and the table cells they came from."""

    text: str
    rows: list[dict[str, object]]


# --- parsing -----------------------------------------------------------------------------------

_NUMBER_WORDS = {
    "one": 1,
    "two": 2,
    "three": 3,
    "four": 4,
    "five": 5,
    "six": 6,
    "seven": 7,
    "eight": 8,
    "nine": 9,
    "ten": 10,
    "eleven": 11,
    "twelve": 12,
    "fifteen": 15,
    "twenty": 20,
}
_NUM = r"(?P<n>\d{1,3}|" + "|".join(_NUMBER_WORDS) + r")"
_MOD = r"(?:(?:consecutive|straight|successive|back to back|sequential)\s+)?(?:daily\s+)?"
_NOUN = r"(?:candles?|candlesticks?|days?|closes?|sessions?|bars?|finishes)"
_UP_ADJ = r"green|up|rising|higher|positive|winning|gaining|advancing|bullish|white"
_DOWN_ADJ = r"red|down|falling|lower|negative|losing|declining|bearish|black"
_UP_NOUN = r"gains|advances|rallies|rises|upticks"
_DOWN_NOUN = r"losses|declines|drops|falls|dips|downticks"
_UP_VERB = r"up|rose|gained|rallied|advanced|climbed|higher|green"
_DOWN_VERB = r"down|fell|dropped|declined|lost|slid|lower|red"

_STREAK_PATTERNS: tuple[re.Pattern[str], ...] = tuple(
    re.compile(p, re.IGNORECASE)
    for p in (
        # "3 consecutive green candles", "three up days", "2 straight losing sessions"
        rf"\b{_NUM}\s+{_MOD}(?:(?P<up>{_UP_ADJ})|(?P<down>{_DOWN_ADJ}))\s+{_NOUN}\b",
        # "3 gains in a row", "four straight losses"
        rf"\b{_NUM}\s+{_MOD}(?:(?P<up>{_UP_NOUN})|(?P<down>{_DOWN_NOUN}))\b",
        # "up 3 days in a row", "closed higher for four sessions", "fell three days straight"
        rf"\b(?:(?P<up>{_UP_VERB})|(?P<down>{_DOWN_VERB}))\s+(?:for\s+|in\s+)?{_NUM}\s+"
        rf"{_MOD}(?:trading\s+)?{_NOUN}\b",
        # "a 3 day winning streak"
        rf"\b{_NUM}\s+(?:day|session|close)\s+(?:(?P<up>{_UP_ADJ})|(?P<down>{_DOWN_ADJ}))\s+"
        r"(?:streaks?|runs?)\b",
        # "3 consecutive days up", "three sessions down in a row"
        rf"\b{_NUM}\s+{_MOD}(?:trading\s+)?{_NOUN}\s+(?:(?P<up>up|higher|green)|"
        r"(?P<down>down|lower|red))\b",
        # "3 days of gains", "four sessions of lower closes"
        rf"\b{_NUM}\s+{_MOD}(?:trading\s+)?(?:days|sessions)\s+of\s+(?:(?P<up>{_UP_NOUN}|"
        rf"(?:{_UP_ADJ})\s+closes)|(?P<down>{_DOWN_NOUN}|(?:{_DOWN_ADJ})\s+closes))\b",
        # "a winning streak of 3 days"
        rf"\b(?:(?P<up>{_UP_ADJ})|(?P<down>{_DOWN_ADJ}))\s+(?:streaks?|runs?)\s+of\s+{_NUM}"
        r"(?:\s+(?:days|sessions|closes))?\b",
    )
)
_STREAK_HINT = re.compile(
    r"\b(?:in a row|consecutive|straight|streaks?|successive)\b", re.IGNORECASE
)
_MOMENTUM = re.compile(
    r"\bmomentum\b.*\b(?:revers\w*|revert\w*|turns?|turning|fades?|fading|flips?|stalls?|"
    r"exhaust\w*|ends?|ending)\b"
    r"|\b(?:revers\w*|revert\w*|turns?|fades?|flips?|ends?)\b.*\bmomentum\b"
    r"|\bstreaks?\b.*\b(?:revers\w*|ends?|break|breaks|snaps?)\b"
    r"|\bmean\s+(?:revers\w*|revert\w*)",
    re.IGNORECASE,
)
_SIGMA_UNIT = r"(?:sigma|σ|standard\s+deviations?|std\s+devs?|stdevs?|std|sds?)"
_MOVE_NOUN = (
    r"(?:moves?|days?|jumps?|rall(?:y|ies)|gains?|rises?|surges?|drops?|falls?|declines?|"
    r"losses|sell\s*offs?|swings?|events?|crash(?:es)?|plunges?)"
)
_DIRECTION = r"(?:up|down|upward|downward|higher|lower|above|below|positive|negative)"
_SIGMA = re.compile(
    rf"\b(?:{_DIRECTION}\s+)?(?:2|two)\s*{_SIGMA_UNIT}(?:\s+(?:{_DIRECTION}\s+)?{_MOVE_NOUN})?"
    rf"(?:\s+{_DIRECTION})?(?:\s+(?:the\s+)?(?:mean|average))?(?!\w)"
    rf"|\b(?:big|large|huge|sharp|outsized|extreme|massive)\s+(?:{_DIRECTION}\s+)?{_MOVE_NOUN}"
    rf"(?:\s+{_DIRECTION})?\b",
    re.IGNORECASE,
)
_DOWNWARD = re.compile(
    r"\b(?:down|downward|lower|below|negative|drops?|falls?|declines?|losses|sell\s*offs?|"
    r"crash(?:es)?|plunges?)\b",
    re.IGNORECASE,
)


def _event(pattern: str) -> re.Pattern[str]:
    return re.compile(pattern, re.IGNORECASE)


_EVENT_PATTERNS: tuple[tuple[str, re.Pattern[str]], ...] = (
    (
        "volume_spike",
        _event(
            r"\bvolume\s+(?:spikes?|spiked|spiking|surges?|surged|jumps?|jumped|explodes?|bursts?)\b"
            r"|\b(?:high|heavy|unusual|abnormal|huge|big|large|elevated|extreme|massive)\s+"
            r"(?:trading\s+)?volumes?\b"
            r"|\b(?:spikes?|surges?|jumps?)\s+in\s+(?:trading\s+)?volume\b"
        ),
    ),
    (
        "gap_up",
        _event(
            r"\bgap(?:s|ped|ping)?\s+(?:ups?|higher)\b|\bup\s+gaps?\b"
            r"|\bopen(?:s|ed|ing)?\s+(?:sharply\s+|much\s+|significantly\s+)?(?:higher|up)\b"
        ),
    ),
    (
        "gap_down",
        _event(
            r"\bgap(?:s|ped|ping)?\s+(?:downs?|lower)\b|\bdown\s+gaps?\b"
            r"|\bopen(?:s|ed|ing)?\s+(?:sharply\s+|much\s+|significantly\s+)?(?:lower|down)\b"
        ),
    ),
    (
        "rsi_below_30",
        _event(
            r"\boversold\b|\brsi\b(?:\s*\(\s*14\s*\))?\s*(?:\w+\s+){0,2}?"
            r"(?:below|under|beneath|less\s+than|<)\s*30\b"
        ),
    ),
    (
        "rsi_above_70",
        _event(
            r"\boverbought\b|\brsi\b(?:\s*\(\s*14\s*\))?\s*(?:\w+\s+){0,2}?"
            r"(?:above|over|exceeds?|more\s+than|greater\s+than|tops?|>)\s*70\b"
        ),
    ),
    (
        "high_52w_breakout",
        _event(
            r"\b(?:52|fifty\s+two)\s*(?:weeks?|wk|w)\s+highs?\b"
            r"|\bnew\s+(?:(?:52|fifty\s+two)\s*(?:weeks?|wk|w)\s+|all\s+time\s+|record\s+)?highs?\b"
            r"|\b(?:year|yearly|annual|one\s+year|1\s+year|12\s+month|all\s+time|record)\s+highs?\b"
            r"|\bbreak\s*outs?\b|\b(?:breaks?|broke|breaking)\s+out\b"
        ),
    ),
    (
        "low_52w_breakout",
        _event(
            r"\b(?:52|fifty\s+two)\s*(?:weeks?|wk|w)\s+lows?\b"
            r"|\bnew\s+(?:(?:52|fifty\s+two)\s*(?:weeks?|wk|w)\s+|all\s+time\s+|record\s+)?lows?\b"
            r"|\b(?:year|yearly|annual|one\s+year|1\s+year|12\s+month|all\s+time|record)\s+lows?\b"
            r"|\bbreak\s*downs?\b"
        ),
    ),
    *((f"dow_{day[:3]}", _event(rf"\b(?:on\s+(?:a\s+)?)?{day}s?\b")) for day in WEEKDAYS),
    *(
        (f"month_{month[:3]}", _event(rf"\b(?:in\s+|during\s+)?{month}\b"))
        for month in MONTHS
        if month != "may"  # "may" is also a verb: only "in May", "during May" or a capital May
    ),
    ("month_may", _event(r"\b(?:in|during|through|throughout|over|of)\s+may\b")),
    (
        "pre_holiday",
        _event(
            r"\b(?:before|ahead\s+of|prior\s+to|preceding|eve\s+of)\s+(?:an?\s+|the\s+)?"
            r"(?:market\s+|public\s+|bank\s+|exchange\s+|long\s+)?(?:holidays?|long\s+weekends?)\b"
            r"|\bpre\s*holidays?\b|\bholiday\s+eve\b"
        ),
    ),
    (
        "post_holiday",
        _event(
            r"\b(?:after|following|post)\s+(?:an?\s+|the\s+)?"
            r"(?:market\s+|public\s+|bank\s+|exchange\s+|long\s+)?(?:holidays?|long\s+weekends?)\b"
            r"|\bpost\s*holidays?\b"
        ),
    ),
    (
        "vix_spike",
        _event(
            r"\b(?:vix|volatility\s+index|fear\s+(?:gauge|index))\s+(?:spikes?|spiked|spiking|"
            r"jumps?|jumped|surges?|surged|soars?|soared|pops?|popped|explodes?)\b"
            r"|\b(?:spikes?|jumps?|surges?)\s+in\s+(?:the\s+)?(?:vix|volatility|fear)\b"
            r"|\b(?:fear|volatility|panic)\s+spikes?\b"
        ),
    ),
)
_CAPITAL_MAY = re.compile(r"\bMay\b")

_HORIZON_FIXED: tuple[tuple[int, re.Pattern[str]], ...] = (
    (
        1,
        _event(
            r"\b(?:next|following|subsequent)\s+(?:trading\s+)?(?:day|session)\b|\btomorrow\b"
            r"|\bovernight\b|\b(?:day|session)\s+after\b"
        ),
    ),
    (
        5,
        _event(
            r"\b(?:next|following|subsequent|coming)\s+(?:trading\s+)?week\b"
            r"|\b(?:a|one)\s+week\b|\bweek\s+after\b"
        ),
    ),
    (
        20,
        _event(
            r"\b(?:next|following|subsequent|coming)\s+(?:trading\s+)?month\b"
            r"|\b(?:a|one)\s+month\b|\bmonth\s+after\b"
        ),
    ),
)
_HORIZON_COUNTED = _event(rf"\b{_NUM}\s+(?:trading\s+)?(?P<unit>days?|sessions?|weeks?|months?)\b")
_UNIT_SESSIONS = {"day": 1, "session": 1, "week": 5, "month": 20}

_TOKEN = re.compile(r"(?<![\w^$.=-])[\^$]?\w[\w.=-]*")

# words a question is made of: an upper-case one of these is shouting, not a ticker
_WORDS = """
    a about above after again against ahead all also am an and annual any are around as at ath
    average avg back be been before being below big bank bar bars bearish behave behaves
    behavior behaviour between black break breakout breakouts breaks broke bullish but by can
    candle candles candlestick chance ci close closed closes closing coming consecutive could
    crash crashes day days decline declines deviation deviations did do does doing dow down drop
    drops during each end ends eod equities equity etc etf etfs eve events ever expect fall
    falls fear fed few five follow followed following follows for four from gain gains gap gaps
    gauge generally get give go goes going green had happen happened happens has have heavy high
    higher highs historically holiday holidays how huge i if in index is it its jump jumps large
    last less like likely long low lower lows make many market markets may me mean median month
    monthly months more most move moved moves much my new next nyse nasdaq no not of off often
    on one open opened opens or other our out over overbought oversold panic past pattern
    patterns percent perform performance please pm positive post pre previous price prices
    probability rally red return returns reversal reverse reverses rise rises rising row rsi run
    runs s same see sell selloff session sessions share shares should show sigma since so spike
    spikes spx standard stock stocks straight streak streaks surge surges tell than that the
    their them then there these they this those three through time times to today tomorrow trade
    trading trend trends turn two typical typically under unusual up upon us usa usually versus
    very volatility volume vs was we week weekly weeks well were what whats when where which
    while who why will with within would year years yearly you your
"""
_VOCABULARY = (
    frozenset(_WORDS.split()) | frozenset(WEEKDAYS) | frozenset(MONTHS) | frozenset(_NUMBER_WORDS)
)

_CORPORATE_SUFFIX = re.compile(
    r"\s+(?:group|platforms|inc\.?|corp\.?|corporation|company|co\.?|holdings|plc|ltd\.?|"
    r"chase|composite|index)$",
    re.IGNORECASE,
)
_EXTRA_ALIASES: dict[str, tuple[str, ...]] = {
    "^GSPC": ("S&P", "S&P500", "SP500", "SPX", "S and P 500"),
    "^DJI": ("Dow Jones", "the Dow"),
    "^IXIC": ("Nasdaq",),
}


def _normalize(question: str) -> str:
    """NFKC, one kind of apostrophe and dash, no control characters."""
    text = unicodedata.normalize("NFKC", question)
    text = re.sub(r"[\u2018\u2019\u02bc\u0060\u00b4]", "'", text)
    text = re.sub(r"[\u2010-\u2015\u2212]", "-", text)
    return "".join(" " if unicodedata.category(c).startswith("C") else c for c in text)


def _blank(text: str, spans: list[tuple[int, int]]) -> str:
    """``text`` with each span overwritten by spaces (offsets stay put)."""
    chars = list(text)
    for start, end in spans:
        chars[start:end] = " " * (end - start)
    return "".join(chars)


def _number(word: str) -> int:
    return int(word) if word.isdigit() else _NUMBER_WORDS[word.lower()]


def _find_events(words: str, original: str) -> list[tuple[str, tuple[int, int]]]:
    """Every (event id, span) the question names; a streak of another length is refused."""
    found: list[tuple[str, tuple[int, int]]] = []
    for pattern in _STREAK_PATTERNS:
        for m in pattern.finditer(words):
            n = _number(m["n"])
            if n not in STREAK_LENGTHS:
                raise UnparsableQuestion(
                    f"streaks of {STREAK_LENGTHS[0]} to {STREAK_LENGTHS[-1]} closes are studied"
                )
            side = "up" if m["up"] else "down"
            found.append((f"{side}_streak_{n}", m.span()))
    for m in _SIGMA.finditer(words):
        side = "down" if _DOWNWARD.search(m.group()) else "up"
        found.append((f"move_2sigma_{side}", m.span()))
    for event, pattern in _EVENT_PATTERNS:
        found.extend((event, m.span()) for m in pattern.finditer(words))
    if not any(event == "month_may" for event, _ in found):
        for m in _CAPITAL_MAY.finditer(original):
            if original[: m.start()].strip():  # not the question's first word ("May I ...")
                found.append(("month_may", m.span()))
    if not found and _MOMENTUM.search(words):
        found.append((MOMENTUM_REVERSAL, (0, 0)))
    return found


def _find_horizon(words: str) -> tuple[int | None, list[tuple[int, int]]]:
    """The horizon the question names (None: none, or several) and where it was named."""
    horizons: set[int] = set()
    spans: list[tuple[int, int]] = []
    for m in _HORIZON_COUNTED.finditer(words):
        unit = m["unit"].lower().rstrip("s")
        sessions = _number(m["n"]) * _UNIT_SESSIONS[unit]
        if sessions not in HORIZONS:
            raise UnparsableQuestion(
                "the study measures 1, 5 and 20 sessions ahead (next day, next week, next month)"
            )
        horizons.add(sessions)
        spans.append(m.span())
    for horizon, pattern in _HORIZON_FIXED:
        for m in pattern.finditer(words):
            horizons.add(horizon)
            spans.append(m.span())
    return (horizons.pop() if len(horizons) == 1 else None), spans


def symbol_aliases(names: Mapping[str, str]) -> dict[str, str]:
    """Lower-cased company and index names (and their short forms) -> symbol; a short form
    two symbols would share is dropped."""
    candidates: dict[str, set[str]] = {}
    for symbol, name in names.items():
        forms = {name, *_EXTRA_ALIASES.get(symbol, ())}
        inner = re.search(r"\(([^)]*)\)", name)
        bare = re.sub(r"\s*\([^)]*\)", "", name).strip()
        forms |= {bare, _CORPORATE_SUFFIX.sub("", bare)}
        if inner:
            forms.add(inner.group(1))
        forms |= {f.replace("'", "") for f in forms}
        for form in forms:
            key = " ".join(form.lower().replace("-", " ").split())
            if len(key) >= 3 and key not in _VOCABULARY:
                candidates.setdefault(key, set()).add(symbol)
    return {key: next(iter(s)) for key, s in candidates.items() if len(s) == 1}


def _find_names(words: str, aliases: Mapping[str, str]) -> tuple[set[str], list[tuple[int, int]]]:
    found: set[str] = set()
    spans: list[tuple[int, int]] = []
    for alias in sorted(aliases, key=len, reverse=True):
        body = r"\s+".join(re.escape(part) for part in alias.split())
        for m in re.finditer(rf"(?<![\w&]){body}(?![\w&])", _blank(words, spans), re.IGNORECASE):
            found.add(aliases[alias])
            spans.append(m.span())
    return found, spans


def _find_tickers(
    text: str, symbols: Collection[str], shouting: bool
) -> tuple[set[str], list[str]]:
    """Universe tickers named in ``text`` and the ticker-like words that are not in it."""
    by_key: dict[str, str] = {}
    for symbol in symbols:
        by_key[symbol.upper()] = symbol
        by_key.setdefault(symbol.lstrip("^").upper(), symbol)
    found: set[str] = set()
    unknown: list[str] = []
    for m in _TOKEN.finditer(text):
        token = m.group().rstrip(".=-")
        bare = token.lstrip("^$")
        prefixed = token != bare
        capitals = bare == bare.upper() and any(c.isalpha() for c in bare)
        common = bare.lower() in _VOCABULARY
        symbol = by_key.get(bare.upper())
        if symbol is not None:
            # "AAPL", "aapl", "$AAPL", "^GSPC"; a lower-case or one-letter common word ("a",
            # "on") is a word, not a ticker, unless it is written like one
            shouted = capitals and not shouting and len(bare) > 1
            if prefixed or shouted or (not common and (len(bare) > 1 or capitals)):
                found.add(symbol)
                continue
        looks_like = (prefixed and any(c.isalpha() for c in bare)) or (
            capitals
            and bare[:1].isalpha()
            and not common
            and (not shouting or any(c in bare for c in ".=-"))
            and len(bare) > 1
        )
        if looks_like and len(bare) <= 15:
            unknown.append(token.lstrip("$"))  # a cashtag is not part of the ticker
    return found, unknown


def parse(
    question: str,
    symbols: Collection[str],
    *,
    names: Mapping[str, str] | None = None,
    source: str | Path | None = None,
) -> Query:
    """Read ``question`` as a :class:`Query` over the universe ``symbols``.

    ``names`` maps symbols to company or index names ("Apple", "S&P 500"); by default they come
    from the universe file (:func:`quant.universe.load_universe`), which ``source`` names in an
    :class:`UnknownSymbol` message. Raises :class:`UnparsableQuestion` (the message lists
    :data:`QUESTION_FORMS`) or :class:`UnknownSymbol`; the question itself is never echoed except
    for the one refused ticker-like word.
    """
    if not isinstance(question, str) or not question.strip():
        raise UnparsableQuestion("the question is empty")
    if len(question) > MAX_QUESTION_CHARS:
        raise UnparsableQuestion(f"a question is at most {MAX_QUESTION_CHARS} characters")
    universe_symbols = set(symbols)
    if names is None:
        universe = load_universe()
        names = {i.symbol: i.name for i in universe.instruments if i.symbol in universe_symbols}
        source = source or universe.source
    source = str(source or universe_path())

    original = _normalize(question)
    words = original.replace("-", " ").replace("_", " ")
    found = _find_events(words, original)
    if not found:
        hint = "say how many closes in a row (2 to 5)" if _STREAK_HINT.search(words) else ""
        raise UnparsableQuestion(hint)
    events = {event for event, _ in found}
    if len(events) > 1:
        raise UnparsableQuestion("ask about one pattern at a time")
    event = events.pop()
    spans = [span for _, span in found]

    horizon, horizon_spans = _find_horizon(_blank(words, spans))
    spans += horizon_spans

    aliases = symbol_aliases({s: n for s, n in names.items() if s in universe_symbols})
    named, name_spans = _find_names(_blank(words, spans), aliases)
    spans += name_spans
    shouting = not any(c.islower() for c in original)
    tickers, unknown = _find_tickers(_blank(original, spans), universe_symbols, shouting)
    if unknown:
        raise UnknownSymbol(unknown[0], source, universe_symbols)
    chosen = named | tickers
    if len(chosen) > 1:
        raise UnparsableQuestion("ask about one symbol at a time")
    return Query(symbol=chosen.pop() if chosen else None, event=event, horizon=horizon)


# --- answering ---------------------------------------------------------------------------------

REQUIRED_COLUMNS = (
    "scope",
    "symbol",
    "event",
    "horizon",
    "n_events",
    "mean_return",
    "ci_low",
    "ci_high",
    "p_up",
    "p_reversal",
    "baseline_mean",
    "q_value",
    "holdout_n",
    "persists",
    "insight",
    "verdict",
)
TABLE = "pattern_insights"


def pct(log_return: float | None) -> str:
    """A log return as a signed simple percentage: ``+0.12 %``, ``−0.05 %`` (typographic minus)."""
    if log_return is None or not math.isfinite(log_return):
        return "n/a"
    value = round(math.expm1(log_return) * 100, 2)
    return f"{'−' if value < 0 else '+'}{abs(value):.2f} %"


def fmt_q(q: float | None) -> str:
    """``q = 0.81``, ``q = 0.004``, ``q < 0.001``; ``q n/a`` when the table has none."""
    if q is None or not math.isfinite(q):
        return "q n/a"
    if q < 0.001:
        return "q < 0.001"
    return f"q = {q:.3f}" if q < 0.01 else f"q = {q:.2f}"


def _share(p: float | None) -> str:
    return "n/a" if p is None or not math.isfinite(p) else f"{round(p * 100):.0f} %"


def _plain(value: object) -> object:
    """A JSON-friendly cell: dates as ISO strings, NaN as None."""
    if isinstance(value, datetime | date):
        return value.isoformat()
    if isinstance(value, float) and not math.isfinite(value):
        return None
    return value


def _sessions(horizon: int) -> str:
    return "next session" if horizon == 1 else f"next {horizon} sessions"


def _who(symbol: str | None) -> tuple[str, str]:
    """(possessive, its/their) for a sentence about ``symbol``."""
    return (f"{symbol}'s", "its") if symbol else ("the pooled equities'", "their")


def _subject(symbol: str | None) -> str:
    return symbol or "the pooled equities"


def _holdout(row: Mapping[str, object]) -> str:
    if row.get("persists"):
        return "the holdout confirmed it"
    if not row.get("holdout_n"):
        return "no holdout events to check it"
    return "the holdout did not confirm it"


def _verdict(row: Mapping[str, object]) -> str:
    return str(row.get("verdict") or "no verdict")


def _cells(query: Query, insights: pl.DataFrame, events: Collection[str]) -> pl.DataFrame:
    missing = [c for c in REQUIRED_COLUMNS if c not in insights.columns]
    if missing:
        raise InsightsSchemaError(f"{TABLE} lacks column(s) {missing}; re-run the pattern study")
    if query.symbol is None:
        who = pl.col("scope") == "equities"
    else:
        who = (pl.col("scope") == "symbol") & pl.col("symbol").is_in(
            [query.symbol, query.symbol.lstrip("^")]
        )
    horizons = list(HORIZONS) if query.horizon is None else [query.horizon]
    order = {event: i for i, event in enumerate(EVENT_PHRASES)}
    return (
        insights.filter(
            who & pl.col("event").is_in(list(events)) & pl.col("horizon").is_in(horizons)
        )
        .unique(subset=["event", "horizon"], keep="first", maintain_order=True)
        .with_columns(_order=pl.col("event").replace_strict(order, default=len(order)))
        .sort("horizon", "_order")
        .drop("_order")
    )


def _rows(cells: pl.DataFrame) -> list[dict[str, object]]:
    return [{k: _plain(v) for k, v in row.items()} for row in cells.to_dicts()]


def _cell_sentence(query: Query, row: Mapping[str, object]) -> str:
    """The sentence for one cell: the move, its interval, the share up, n, q, the verdict."""
    possessive, pronoun = _who(query.symbol)
    lead = EVENT_PHRASES.get(str(row["event"]), str(row["event"]))
    head = f"{lead[:1].upper()}{lead[1:]}, {possessive} {_sessions(int(row['horizon']))}"
    verdict = _verdict(row)
    n = row.get("n_events") or 0
    if row.get("mean_return") is None or verdict.startswith("too few"):
        return f"{head}: too few events to judge ({n} in the table)."
    counted = (
        f"up {_share(row['p_up'])} of {n} times" if row.get("p_up") is not None else f"n = {n}"
    )
    usual = (
        f" against {pronoun} usual {pct(row['baseline_mean'])}"
        if row.get("baseline_mean") is not None
        else ""
    )
    return (
        f"{head} averaged {pct(row['mean_return'])} (95 % CI {pct(row['ci_low'])} to "
        f"{pct(row['ci_high'])}; {counted}){usual}: {verdict} ({fmt_q(row['q_value'])}; "
        f"{_holdout(row)})."
    )


def _other_horizons(cells: pl.DataFrame) -> str:
    parts = []
    for horizon in HORIZONS[1:]:
        found = cells.filter(pl.col("horizon") == horizon)
        if found.is_empty():
            parts.append(f"over the {_sessions(horizon)}: no row")
            continue
        row = found.row(0, named=True)
        if row["mean_return"] is None or _verdict(row).startswith("too few"):
            parts.append(f"over the {_sessions(horizon)}: too few events")
        else:
            parts.append(
                f"over the {_sessions(horizon)}: {pct(row['mean_return'])} "
                f"({_verdict(row)}, {fmt_q(row['q_value'])})"
            )
    text = "; ".join(parts)
    return f"{text[:1].upper()}{text[1:]}."


def _missing(query: Query, horizon: int | None, what: str | None = None) -> str:
    lead = what or EVENT_PHRASES.get(query.event, query.event)
    when = f" over the {_sessions(horizon)}" if horizon else " at any horizon"
    return f"The {TABLE} table has no row for {_subject(query.symbol)} {lead}{when}."


def _answer_event(query: Query, insights: pl.DataFrame) -> Answer:
    cells = _cells(query, insights, [query.event])
    horizon = query.horizon or 1
    rows = _rows(cells)
    if cells.is_empty():
        return Answer(_missing(query, query.horizon), rows)
    main = cells.filter(pl.col("horizon") == horizon)
    text = (
        _cell_sentence(query, main.row(0, named=True))
        if not main.is_empty()
        else _missing(query, horizon)
    )
    if query.horizon is None:
        text = f"{text} {_other_horizons(cells)}"
    return Answer(text, rows)


def _answer_momentum(query: Query, insights: pl.DataFrame) -> Answer:
    """Which streak length reverses most often among the significant ones (the study's
    ``insight`` flag: q below its threshold and confirmed in the holdout)."""
    cells = _cells(query, insights, STREAK_EVENTS)
    rows = _rows(cells)
    horizon = query.horizon or 1
    judged = cells.filter((pl.col("horizon") == horizon) & pl.col("p_reversal").is_not_null())
    if judged.is_empty():
        return Answer(_missing(query, horizon, "after up or down streaks (2 to 5 closes)"), rows)
    who = _subject(query.symbol)
    ranked = judged.sort("p_reversal", descending=True, maintain_order=True)
    significant = ranked.filter(pl.col("insight").fill_null(False))
    if significant.is_empty():
        top = ranked.row(0, named=True)
        text = (
            f"For {who}, no up or down streak of 2 to 5 closes reverses reliably over the "
            f"{_sessions(horizon)}: no clear pattern (the highest reversal share, "
            f"{_share(top['p_reversal'])} of {top['n_events']} times "
            f"{EVENT_PHRASES[top['event']]}, has {fmt_q(top['q_value'])})."
        )
        return Answer(text, rows)
    best = significant.row(0, named=True)
    text = (
        f"For {who}, momentum most often reverses {EVENT_PHRASES[best['event']]}: the "
        f"{_sessions(horizon)} went the other way {_share(best['p_reversal'])} of "
        f"{best['n_events']} times (average {pct(best['mean_return'])}, 95 % CI "
        f"{pct(best['ci_low'])} to {pct(best['ci_high'])}; {fmt_q(best['q_value'])}; "
        f"{_holdout(best)}): {_verdict(best)}."
    )
    return Answer(text, rows)


def answer(query: Query, insights: pl.DataFrame) -> Answer:
    """The answer to ``query`` from the ``pattern_insights`` frame: a sentence (two when no
    horizon was named: the next session, then 5 and 20 sessions) and the cells it used.

    Returns are log returns in the table and simple percentages in the text (``exp(x) - 1``).
    A cell the table lacks is said plainly; raises :class:`InsightsSchemaError` when the table
    lacks a column the answer needs.
    """
    if query.event == MOMENTUM_REVERSAL:
        return _answer_momentum(query, insights)
    return _answer_event(query, insights)
