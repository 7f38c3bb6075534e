"""The symbol universe: which instruments the pipeline covers, loaded from a YAML file.

The universe is configuration, not code. Everything that turns a symbol into a file path or a
query goes through :func:`validate_symbol` first, so a hostile or mistyped ticker is refused
before it can reach the file system.
"""

from __future__ import annotations

import os
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from enum import StrEnum
from pathlib import Path

import yaml

DEFAULT_UNIVERSE_PATH = Path(__file__).resolve().parents[1] / "config" / "universe.yaml"
UNIVERSE_ENV_VAR = "MARKET_UNIVERSE"

# Yahoo-style tickers: letters, digits and ^ . - = ; at most 15 characters. The first character
# must be a letter, a digit or a leading caret, so "." and ".." can never be produced.
_SYMBOL_RE = re.compile(r"^\^?[A-Za-z0-9][A-Za-z0-9.\-=]*$")
MAX_SYMBOL_LENGTH = 15


class InvalidSymbolError(ValueError):
    """A ticker that is not a Yahoo-style symbol (and so must never reach a path or a query)."""


class UniverseError(ValueError):
    """The universe file is malformed: names the file and the offending entry."""


class AssetClass(StrEnum):
    INDEX = "index"
    EQUITY = "equity"


def validate_symbol(symbol: object) -> str:
    """Return ``symbol`` unchanged if it is a well-formed Yahoo ticker, else raise.

    Why: symbols become partition keys, file names and SQL literals; rejecting anything outside
    the ticker alphabet here is what keeps ``../../etc/passwd`` out of the lake.
    """
    if not isinstance(symbol, str):
        raise InvalidSymbolError(
            f"symbol must be a string, got {type(symbol).__name__}: {symbol!r}"
        )
    if not symbol or len(symbol) > MAX_SYMBOL_LENGTH or not _SYMBOL_RE.match(symbol):
        raise InvalidSymbolError(
            f"invalid symbol {symbol!r}: expected a Yahoo-style ticker of at most "
            f"{MAX_SYMBOL_LENGTH} characters (letters, digits, ^ . - =), e.g. 'AAPL', '^GSPC', "
            "'BRK-B', 'EURUSD=X'"
        )
    return symbol


def symbol_slug(symbol: str) -> str:
    """File-system name for a symbol (``^GSPC`` → ``GSPC``): what lake and landing paths use."""
    return validate_symbol(symbol).lstrip("^")


@dataclass(frozen=True)
class Instrument:
    """One tradable or index series and the facts that rules depend on."""

    symbol: str
    name: str
    asset_class: AssetClass
    sector: str
    exchange: str
    calendar: str
    currency: str = "USD"

    @property
    def slug(self) -> str:
        return symbol_slug(self.symbol)

    @property
    def is_index(self) -> bool:
        return self.asset_class is AssetClass.INDEX


@dataclass(frozen=True)
class Universe:
    """An ordered, validated set of instruments with unique symbols and unique file slugs."""

    instruments: tuple[Instrument, ...]
    source: str = "<memory>"

    def __post_init__(self) -> None:
        if not self.instruments:
            raise UniverseError(f"{self.source}: the universe lists no instruments")
        seen_symbols: dict[str, int] = {}
        seen_slugs: dict[str, str] = {}
        for position, inst in enumerate(self.instruments, start=1):
            if inst.symbol in seen_symbols:
                raise UniverseError(
                    f"{self.source}: symbol {inst.symbol!r} is listed twice "
                    f"(entries {seen_symbols[inst.symbol]} and {position})"
                )
            seen_symbols[inst.symbol] = position
            if inst.slug in seen_slugs:
                raise UniverseError(
                    f"{self.source}: symbols {seen_slugs[inst.slug]!r} and {inst.symbol!r} would "
                    f"share the file name {inst.slug!r}"
                )
            seen_slugs[inst.slug] = inst.symbol

    @property
    def symbols(self) -> list[str]:
        return [inst.symbol for inst in self.instruments]

    def __len__(self) -> int:
        return len(self.instruments)

    def __contains__(self, symbol: object) -> bool:
        return any(inst.symbol == symbol for inst in self.instruments)

    def get(self, symbol: str) -> Instrument:
        """The instrument for ``symbol``; a clear error for an unknown or malformed one."""
        validate_symbol(symbol)
        for inst in self.instruments:
            if inst.symbol == symbol:
                return inst
        raise KeyError(f"symbol {symbol!r} is not in the universe ({self.source})")

    def of_class(self, asset_class: AssetClass) -> list[Instrument]:
        return [inst for inst in self.instruments if inst.asset_class is asset_class]

    def subset(self, symbols: Iterable[str]) -> Universe:
        """A universe restricted to ``symbols`` (kept in universe order)."""
        wanted = set(symbols)
        missing = wanted - set(self.symbols)
        if missing:
            raise KeyError(f"symbols not in the universe: {sorted(missing)}")
        return Universe(
            tuple(i for i in self.instruments if i.symbol in wanted), source=self.source
        )


_REQUIRED_FIELDS = ("symbol", "asset_class", "calendar")


def _parse_instrument(entry: object, position: int, source: str) -> Instrument:
    if not isinstance(entry, dict):
        raise UniverseError(f"{source}: entry {position} is not a mapping: {entry!r}")
    missing = [f for f in _REQUIRED_FIELDS if not entry.get(f)]
    if missing:
        raise UniverseError(f"{source}: entry {position} lacks {', '.join(missing)}: {entry!r}")
    symbol = entry["symbol"]
    try:
        validate_symbol(symbol)
    except InvalidSymbolError as exc:
        raise UniverseError(f"{source}: entry {position}: {exc}") from None
    try:
        asset_class = AssetClass(str(entry["asset_class"]).lower())
    except ValueError:
        allowed = ", ".join(c.value for c in AssetClass)
        raise UniverseError(
            f"{source}: entry {position} ({symbol}): asset_class {entry['asset_class']!r} "
            f"is not one of {allowed}"
        ) from None
    return Instrument(
        symbol=symbol,
        name=str(entry.get("name", symbol)),
        asset_class=asset_class,
        sector=str(entry.get("sector", "unknown")),
        exchange=str(entry.get("exchange", "unknown")),
        calendar=str(entry["calendar"]),
        currency=str(entry.get("currency", "USD")),
    )


def universe_from_entries(entries: Sequence[object], source: str = "<memory>") -> Universe:
    """Build a validated :class:`Universe` from a list of mappings (the YAML's ``instruments``)."""
    return Universe(
        tuple(_parse_instrument(e, i, source) for i, e in enumerate(entries, start=1)),
        source=source,
    )


def universe_path() -> Path:
    """The universe file in force: ``$MARKET_UNIVERSE`` if set, else the bundled default."""
    override = os.environ.get(UNIVERSE_ENV_VAR)
    return Path(override) if override else DEFAULT_UNIVERSE_PATH


def load_universe(path: str | Path | None = None) -> Universe:
    """Load and validate a universe YAML file (default: :func:`universe_path`)."""
    path = Path(path) if path is not None else universe_path()
    try:
        document = yaml.safe_load(path.read_text())
    except FileNotFoundError:
        raise UniverseError(f"universe file not found: {path}") from None
    except yaml.YAMLError as exc:
        raise UniverseError(f"{path}: not valid YAML: {exc}") from None
    if not isinstance(document, dict) or not isinstance(document.get("instruments"), list):
        raise UniverseError(f"{path}: expected a mapping with a list under 'instruments'")
    return universe_from_entries(document["instruments"], source=str(path))
