"""Live daily bars from Yahoo Finance through ``yfinance``.

Incremental (only bars after the last stored date, re-requesting a few days of overlap so
revisions are picked up), retried with exponential backoff, cached on disk, and loud about
empty answers: yfinance logs most failures and returns an empty frame instead of raising.
"""

from __future__ import annotations

import logging
import socket
import time
from collections.abc import Callable
from datetime import date, timedelta
from pathlib import Path
from typing import Any

import pandas as pd
import polars as pl

from quant.bars import conform_bars
from quant.universe import symbol_slug, validate_symbol
from resources.sources.base import Delivery, DeliveryMode, EmptyResponseError, SourceError

log = logging.getLogger(__name__)

DEFAULT_OVERLAP_DAYS = 5
DEFAULT_RETRIES = 3
DEFAULT_CACHE_TTL_S = 6 * 3600
# the host yfinance asks for daily bars; probed before a download to tell an outage apart
YAHOO_ENDPOINT = ("query2.finance.yahoo.com", 443)
_YAHOO_COLUMNS = {
    "Date": "date",
    "Open": "open",
    "High": "high",
    "Low": "low",
    "Close": "close",
    "Adj Close": "adj_close",
    "Volume": "volume",
}


def yahoo_history_to_bars(history: pd.DataFrame, symbol: str) -> pl.DataFrame:
    """Convert ``Ticker.history(auto_adjust=False)`` output to canonical bars.

    The index is tz-aware at the exchange's midnight, so its calendar date is the session date.
    """
    frame = history.reset_index()
    frame = frame.rename(columns={k: v for k, v in _YAHOO_COLUMNS.items() if k in frame.columns})
    frame["date"] = pd.to_datetime(frame["date"]).dt.date
    keep = [c for c in _YAHOO_COLUMNS.values() if c in frame.columns]
    bars = pl.from_pandas(frame[keep]).with_columns(pl.lit(symbol).alias("symbol"))
    return conform_bars(bars)


class YahooSource:
    """Fetch from Yahoo with retries, backoff and an on-disk cache of answers.

    ``session`` is handed to yfinance (a ``curl_cffi`` or ``requests`` session); None lets
    yfinance build its own. Tests pass a ``requests`` session that replays recorded responses.
    """

    name = "yahoo"

    def __init__(
        self,
        cache_dir: Path,
        start: date | None = None,
        as_of: date | None = None,
        overlap_days: int = DEFAULT_OVERLAP_DAYS,
        retries: int = DEFAULT_RETRIES,
        backoff_s: float = 1.0,
        cache_ttl_s: float = DEFAULT_CACHE_TTL_S,
        session: Any = None,
        sleep: Callable[[float], None] = time.sleep,
        endpoint: tuple[str, int] = YAHOO_ENDPOINT,
    ) -> None:
        self.cache_dir = Path(cache_dir)
        self.start = start
        self.as_of = as_of
        self.overlap_days = overlap_days
        self.retries = retries
        self.backoff_s = backoff_s
        self.cache_ttl_s = cache_ttl_s
        self.endpoint = endpoint
        self.session = session
        self.sleep = sleep

    def window(self, last_stored: date | None) -> tuple[date | None, date | None]:
        """The [start, end) dates to request: from the last stored bar minus the overlap."""
        start = self.start
        if last_stored is not None:
            start = last_stored - timedelta(days=self.overlap_days)
        end = self.as_of + timedelta(days=1) if self.as_of else None
        return start, end

    def fetch(self, symbol: str, last_stored: date | None = None) -> Delivery:
        validate_symbol(symbol)
        start, end = self.window(last_stored)
        cached = self._cache_path(symbol, start, end)
        if cached.exists() and time.time() - cached.stat().st_mtime < self.cache_ttl_s:
            bars = pl.read_parquet(cached)
            details = {"cache": "hit", "cache_file": str(cached)}
        else:
            bars = self._download_with_retries(symbol, start, end)
            cached.parent.mkdir(parents=True, exist_ok=True)
            tmp = cached.with_suffix(".tmp")
            bars.write_parquet(tmp)
            tmp.replace(cached)
            details = {"cache": "miss", "cache_file": str(cached)}
        return Delivery(
            symbol=symbol,
            bars=bars,
            source=self.name,
            mode=DeliveryMode.INCREMENTAL if last_stored else DeliveryMode.SNAPSHOT,
            requested_start=start,
            requested_end=end,
            details=details,
        )

    def _cache_path(self, symbol: str, start: date | None, end: date | None) -> Path:
        name = f"{start or 'min'}_{end or 'now'}.parquet"
        return self.cache_dir / "answers" / symbol_slug(symbol) / name

    def _download_with_retries(
        self, symbol: str, start: date | None, end: date | None
    ) -> pl.DataFrame:
        import yfinance as yf
        from yfinance.data import YfData

        yf.set_tz_cache_location(str(self.cache_dir / "yfinance"))
        if self.session is None:  # a replayed session needs no network
            unreachable = network_problem(*self.endpoint)
            if unreachable:
                raise NetworkUnreachableError(
                    symbol,
                    f"network unreachable: {unreachable}; Yahoo was not asked (yfinance would "
                    "call every symbol 'possibly delisted'). Check the connection or proxy, or "
                    "use MARKET_SOURCE=sample or csv",
                )
        last_problem = "no attempt made"
        for attempt in range(self.retries + 1):
            if attempt:
                delay = self.backoff_s * 2 ** (attempt - 1)
                log.warning(
                    "%s: retry %d/%d in %.1fs after: %s",
                    symbol,
                    attempt,
                    self.retries,
                    delay,
                    last_problem,
                )
                self.sleep(delay)
            # yfinance memoizes answers in-process, failures included; our cache is on disk.
            YfData.cache_get.cache_clear()
            try:
                ticker = yf.Ticker(symbol, session=self.session)
                window = {"start": start, "end": end} if start else {"period": "max", "end": end}
                history = ticker.history(
                    **window,
                    interval="1d",
                    auto_adjust=False,
                    actions=True,
                    repair=False,
                )
            except Exception as exc:  # yfinance raises a zoo of types; all are worth a retry
                last_problem = f"{type(exc).__name__}: {exc}"
                continue
            if history is not None and not history.empty:
                return yahoo_history_to_bars(history, symbol)
            reason = getattr(getattr(ticker, "_price_history", None), "_last_error", None)
            last_problem = f"empty answer ({reason or 'no reason given'})"
        raise EmptyResponseError(
            symbol,
            f"Yahoo gave no bars for {start or 'the full history'} .. {end or 'now'} after "
            f"{self.retries + 1} attempts; last problem: {last_problem}",
        )


class NetworkUnreachableError(SourceError):
    """Yahoo's servers cannot be reached at all (no route, DNS, refused): not a symbol problem."""


def network_problem(host: str, port: int, timeout_s: float = 3.0) -> str | None:
    """Why a TCP connection to ``host:port`` cannot be opened (None when it can): tells a
    network outage from a symbol Yahoo does not know, which yfinance reports the same way."""
    try:
        with socket.create_connection((host, port), timeout=timeout_s):
            return None
    except OSError as exc:
        cause = exc.strerror or type(exc).__name__
        return f"cannot connect to {host}:{port} ({cause})"


__all__ = [
    "NetworkUnreachableError",
    "SourceError",
    "YahooSource",
    "network_problem",
    "yahoo_history_to_bars",
]
