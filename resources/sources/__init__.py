"""Market-data sources: the bundled sample, a CSV directory, and Yahoo Finance."""

from resources.sources.base import (
    BarSource,
    Delivery,
    DeliveryMode,
    EmptyResponseError,
    SourceError,
)
from resources.sources.csv_source import CsvFormatError, CsvSource, read_bars_csv
from resources.sources.sample import SampleSource
from resources.sources.yahoo import YahooSource

__all__ = [
    "BarSource",
    "CsvFormatError",
    "CsvSource",
    "Delivery",
    "DeliveryMode",
    "EmptyResponseError",
    "SampleSource",
    "SourceError",
    "YahooSource",
    "read_bars_csv",
]
