"""The raw landing area: every delivery from every source, append-only.

``data/raw/<source>/<slug>/`` holds the delivered bars content-addressed
(``bars-<sha256>.parquet``, written once) and one JSON receipt per fetch
(``<fetched-at>_<hash12>.json``: when, what was asked, how many rows, which content). Files are
only ever added, never replaced, so no delivery is lost, even one a later validation rejects,
and re-delivering identical data costs a receipt, not another copy.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import dagster as dg
import polars as pl

from quant.bars import content_hash
from quant.universe import symbol_slug
from resources.atomic import write_parquet_atomic, write_text_atomic
from resources.sources.base import Delivery


@dataclass(frozen=True)
class LandedDelivery:
    receipt: Path
    bars_file: Path
    content_hash: str
    new_content: bool


class RawLanding(dg.ConfigurableResource):
    """Append-only store of source deliveries."""

    root: str

    def folder(self, source: str, symbol: str) -> Path:
        return Path(self.root) / source / symbol_slug(symbol)

    def land(self, delivery: Delivery) -> LandedDelivery:
        """Store one delivery and its receipt; returns where they went."""
        digest = content_hash(delivery.bars)
        folder = self.folder(delivery.source, delivery.symbol)
        bars_file = folder / f"bars-{digest}.parquet"
        new_content = False
        if not bars_file.exists():
            try:
                write_parquet_atomic(delivery.bars, bars_file, exclusive=True)
                new_content = True
            except FileExistsError:  # a concurrent run landed the same content first
                pass
        stamp = delivery.fetched_at.strftime("%Y%m%dT%H%M%S%fZ")
        receipt = folder / f"{stamp}_{digest[:12]}.json"
        body = {
            "symbol": delivery.symbol,
            "source": delivery.source,
            "mode": delivery.mode.value,
            "requested_start": str(delivery.requested_start) if delivery.requested_start else None,
            "requested_end": str(delivery.requested_end) if delivery.requested_end else None,
            "fetched_at": delivery.fetched_at.isoformat(),
            "rows": delivery.bars.height,
            "content_hash": digest,
            "bars_file": bars_file.name,
            "details": delivery.details,
        }
        if not receipt.exists():
            write_text_atomic(json.dumps(body, indent=2), receipt)
        return LandedDelivery(receipt, bars_file, digest, new_content)

    def receipts(self, source: str, symbol: str) -> list[dict]:
        """Every fetch of ``symbol`` from ``source``, oldest first."""
        folder = self.folder(source, symbol)
        if not folder.exists():
            return []
        return [json.loads(p.read_text()) for p in sorted(folder.glob("*.json"))]

    def read(self, source: str, symbol: str, content: str) -> pl.DataFrame:
        """The bars of one landed delivery, by content hash."""
        return pl.read_parquet(self.folder(source, symbol) / f"bars-{content}.parquet")

    def rebuild(self, source: str, symbol: str) -> pl.DataFrame:
        """``symbol``'s raw partition as its landed deliveries make it, replayed in fetch order
        as ingestion accepts them (a snapshot replaces unless it would lose stored dates, an
        incremental delivery merges): how a lost or corrupt ``raw_ohlcv`` file is restored
        without asking the source again."""
        bars = self.rebuild_from(source, symbol, self.receipts(source, symbol))
        if bars is None:
            raise FileNotFoundError(
                f"{symbol}: nothing landed from {source} under {self.folder(source, symbol)}"
            )
        return bars

    def rebuild_from(self, source: str, symbol: str, receipts: list[dict]) -> pl.DataFrame | None:
        """The bars ``receipts`` (oldest first) make, replayed as ``rebuild`` does."""
        from quant.bars import lost_history, merge_deliveries

        bars: pl.DataFrame | None = None
        for receipt in receipts:
            delivered = self.read(source, symbol, receipt["content_hash"])
            if receipt["mode"] != "snapshot":
                bars = merge_deliveries(bars, delivered)
            elif lost_history(bars, delivered).is_empty():
                bars = delivered
        return bars

    def land_compacted(
        self, source: str, symbol: str, bars: pl.DataFrame, last: dict, folded: int
    ) -> Path:
        """Land ``bars`` as one snapshot receipt dated like ``last`` (the newest receipt it
        replaces), so a replay of the landing starts from it; returns the receipt's path."""
        digest = content_hash(bars)
        folder = self.folder(source, symbol)
        bars_file = folder / f"bars-{digest}.parquet"
        if not bars_file.exists():
            write_parquet_atomic(bars, bars_file, exclusive=True)
        fetched = datetime.fromisoformat(last["fetched_at"])
        # just before the receipt it replaces, so the order of receipts is unchanged
        stamp = fetched.strftime("%Y%m%dT%H%M%S%fZ")
        receipt = folder / f"{stamp}_{digest[:12]}.json"
        body = {
            **{k: last.get(k) for k in ("symbol", "source", "requested_start", "requested_end")},
            "mode": "snapshot",
            "fetched_at": last["fetched_at"],
            "rows": bars.height,
            "content_hash": digest,
            "bars_file": bars_file.name,
            "details": {"compacted_receipts": str(folded)},
        }
        write_text_atomic(json.dumps(body, indent=2), receipt)
        return receipt
