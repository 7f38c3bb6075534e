"""A directory of the user's own per-symbol CSV files (``<dir>/<SYMBOL or slug>.csv``).

Tolerant of the layouts people actually have: Yahoo's ``Date,Open,High,Low,Close,Adj Close,
Volume``, lower-case or snake-case names, yfinance's three-line multi-index header, ISO dates
(optionally with a time and zone) or day-first dates. Anything it cannot read is reported with
the file, the line and the column, never guessed around.
"""

from __future__ import annotations

import csv
import re
from datetime import date
from pathlib import Path

import polars as pl

from quant.bars import conform_bars
from quant.universe import symbol_slug, validate_symbol
from resources.sources.base import Delivery, DeliveryMode, EmptyResponseError, SourceError

_ALIASES = {
    "date": "date",
    "datetime": "date",
    "timestamp": "date",
    "time": "date",
    "open": "open",
    "high": "high",
    "low": "low",
    "close": "close",
    "adj close": "adj_close",
    "adj_close": "adj_close",
    "adjclose": "adj_close",
    "adjusted close": "adj_close",
    "adjusted_close": "adj_close",
    "volume": "volume",
    "symbol": "symbol",
    "ticker": "symbol",
}
REQUIRED = ("date", "open", "high", "low", "close", "volume")
NUMERIC = ("open", "high", "low", "close", "adj_close", "volume")
_NA_TOKENS = ["", "null", "NULL", "NaN", "nan", "NA", "N/A"]
# Day-first layouts tried when a file's dates are not ISO, in this order.
_DAY_FIRST_FORMATS = ("%d-%m-%Y", "%d/%m/%Y", "%d.%m.%Y")
_ISO_PREFIX = re.compile(r"^\d{4}-\d{2}-\d{2}")


class CsvFormatError(SourceError):
    """A CSV file could not be read; names the file, the 1-based line and the column."""

    def __init__(
        self,
        symbol: str,
        path: Path,
        message: str,
        line: int | None = None,
        column: str | None = None,
    ) -> None:
        where = str(path)
        if line is not None:
            where += f", line {line}"
        if column is not None:
            where += f", column {column!r}"
        super().__init__(symbol, f"{where}: {message}")
        self.path, self.line, self.column = path, line, column


def _normalize_header(name: str) -> str:
    key = re.sub(r"\s+", " ", name.strip().lower())
    return _ALIASES.get(key, key)


def read_bars_csv(path: Path, symbol: str) -> pl.DataFrame:
    """Parse one CSV file of daily bars for ``symbol`` into the canonical bar schema."""
    validate_symbol(symbol)
    try:
        raw = pl.read_csv(
            path, infer_schema=False, null_values=_NA_TOKENS, truncate_ragged_lines=False
        )
    except pl.exceptions.NoDataError:
        raise CsvFormatError(symbol, path, "the file is empty", line=1) from None
    except pl.exceptions.ComputeError as exc:
        raise CsvFormatError(symbol, path, f"not a readable CSV file: {exc}") from None
    header_lines = 1
    original = _header_of(path)
    if original and original[0].strip().lower() == "price" and raw.height >= 2:
        # yfinance >= 0.2.51 writes "Price,Close,...", then "Ticker,AAPL,...", then "Date,,,...".
        first_cells = [str(v).strip().lower() for v in raw.get_column(original[0]).head(2)]
        if first_cells == ["ticker", "date"]:
            raw = raw.slice(2).rename({original[0]: "date"})
            header_lines = 3
    renamed = [_normalize_header(c) for c in (original if header_lines == 1 else raw.columns)]
    duplicates = sorted({c for c in renamed if renamed.count(c) > 1})
    if duplicates:
        raise CsvFormatError(
            symbol, path, f"duplicated column(s) in the header: {duplicates}", line=1
        )
    raw.columns = renamed
    missing = [c for c in REQUIRED if c not in raw.columns]
    if missing:
        raise CsvFormatError(
            symbol, path, f"missing required column(s) {missing}; found {original}", line=1
        )
    if raw.is_empty():
        raise CsvFormatError(
            symbol, path, "the file has a header but no rows", line=header_lines + 1
        )

    row_line = pl.int_range(pl.len()) + header_lines + 1
    repeated_header = raw.with_columns(row_line.alias("_line")).filter(
        pl.col("date").str.strip_chars().str.to_lowercase().is_in(["date", "datetime", "timestamp"])
    )
    if not repeated_header.is_empty():
        raise CsvFormatError(
            symbol,
            path,
            "duplicated header row inside the data",
            line=int(repeated_header["_line"][0]),
        )

    if "symbol" in raw.columns:
        foreign = raw.with_columns(row_line.alias("_line")).filter(
            pl.col("symbol").is_not_null() & (pl.col("symbol") != symbol)
        )
        if not foreign.is_empty():
            raise CsvFormatError(
                symbol,
                path,
                f"row belongs to symbol {foreign['symbol'][0]!r}, expected {symbol!r}",
                line=int(foreign["_line"][0]),
                column="symbol",
            )

    parsed = raw.with_columns(
        pl.lit(symbol).alias("symbol"),
        _parse_dates(raw.get_column("date"), symbol, path, header_lines).alias("date"),
        *[
            pl.col(c).str.strip_chars().cast(pl.Float64, strict=False)
            for c in NUMERIC
            if c in raw.columns
        ],
    )
    for column in NUMERIC:
        if column not in raw.columns:
            continue
        bad = raw.with_columns(
            row_line.alias("_line"), parsed.get_column(column).alias("_parsed")
        ).filter(pl.col(column).is_not_null() & pl.col("_parsed").is_null())
        if not bad.is_empty():
            raise CsvFormatError(
                symbol,
                path,
                f"{bad[column][0]!r} is not a number",
                line=int(bad["_line"][0]),
                column=column,
            )
    return conform_bars(parsed)


def _header_of(path: Path) -> list[str]:
    """The header row exactly as written (polars would silently rename duplicated names)."""
    with path.open(newline="", encoding="utf-8-sig") as handle:
        return next(csv.reader(handle), [])


def _parse_dates(values: pl.Series, symbol: str, path: Path, header_lines: int) -> pl.Series:
    """ISO dates (time and zone suffixes ignored) or one day-first layout for the whole file."""
    text = values.str.strip_chars()
    if text.null_count():
        line = int(text.is_null().arg_true()[0]) + header_lines + 1
        raise CsvFormatError(symbol, path, "missing date", line=line, column="date")
    iso = text.str.slice(0, 10).str.strptime(pl.Date, "%Y-%m-%d", strict=False)
    iso = iso.set(~text.str.contains(_ISO_PREFIX.pattern), None)
    day_first = [text.str.strptime(pl.Date, fmt, strict=False) for fmt in _DAY_FIRST_FORMATS]
    # One layout per file, the one that reads the most rows; its first unreadable row is the error.
    best = min([iso, *day_first], key=lambda s: s.null_count())
    if best.null_count():
        line = int(best.is_null().arg_true()[0]) + header_lines + 1
        bad_value = text[line - header_lines - 1]
        raise CsvFormatError(
            symbol,
            path,
            f"{bad_value!r} is not a date (expected YYYY-MM-DD or DD-MM-YYYY)",
            line=line,
            column="date",
        )
    return best


class CsvSource:
    """Serve bars from ``<directory>/<symbol>.csv`` (or the slug, ``^GSPC`` → ``GSPC.csv``)."""

    name = "csv"

    def __init__(self, directory: Path, start: date | None = None, as_of: date | None = None):
        self.directory = Path(directory)
        self.start = start
        self.as_of = as_of

    def path_for(self, symbol: str) -> Path:
        """The file that holds ``symbol`` (the raw ticker name is preferred over the slug)."""
        validate_symbol(symbol)
        for name in (f"{symbol}.csv", f"{symbol_slug(symbol)}.csv"):
            candidate = self.directory / name
            if candidate.is_file():
                return candidate
        raise SourceError(
            symbol, f"no CSV file for it in {self.directory} (expected {symbol_slug(symbol)}.csv)"
        )

    def fetch(self, symbol: str, last_stored: date | None = None) -> Delivery:
        path = self.path_for(symbol)
        bars = read_bars_csv(path, symbol)
        if self.start:
            bars = bars.filter(pl.col("date") >= self.start)
        if self.as_of:
            bars = bars.filter(pl.col("date") <= self.as_of)
        if bars.is_empty():
            raise EmptyResponseError(
                symbol, f"{path}: no bars between {self.start} and {self.as_of}"
            )
        return Delivery(
            symbol=symbol,
            bars=bars,
            source=self.name,
            mode=DeliveryMode.SNAPSHOT,
            requested_start=self.start,
            requested_end=self.as_of,
            details={"file": str(path)},
        )
