"""What every market-data source delivers, and the errors it raises."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, date, datetime
from enum import StrEnum
from typing import Protocol

import polars as pl


class DeliveryMode(StrEnum):
    """How a delivery relates to what is already stored."""

    SNAPSHOT = "snapshot"  # the full history the source holds: replaces the stored partition
    INCREMENTAL = "incremental"  # only recent bars: merged into the stored partition


class SourceError(RuntimeError):
    """A source could not deliver bars for a symbol. The message names symbol and cause."""

    def __init__(self, symbol: str, message: str) -> None:
        super().__init__(f"{symbol}: {message}")
        self.symbol = symbol


class EmptyResponseError(SourceError):
    """The source answered, but with no bars (yfinance's way of reporting most failures)."""


@dataclass(frozen=True)
class Delivery:
    """Bars for one symbol as a source delivered them, plus how and when they were fetched."""

    symbol: str
    bars: pl.DataFrame
    source: str
    mode: DeliveryMode
    requested_start: date | None
    requested_end: date | None
    fetched_at: datetime = field(default_factory=lambda: datetime.now(UTC))
    details: dict[str, str] = field(default_factory=dict)


class BarSource(Protocol):
    """A market-data source: fetch daily bars for one symbol.

    ``last_stored`` is the last date already in the lake (None on the first fetch); incremental
    sources use it to ask only for what is new, snapshot sources may ignore it.
    """

    name: str

    def fetch(self, symbol: str, last_stored: date | None = None) -> Delivery: ...
