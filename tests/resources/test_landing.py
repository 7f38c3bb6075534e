from datetime import UTC, date, datetime

import polars as pl

from resources.landing import RawLanding
from resources.sources import Delivery, DeliveryMode


def delivery(close: float, when: datetime) -> Delivery:
    bars = pl.DataFrame(
        {
            "symbol": "^VIX",
            "date": [date(2024, 1, 2)],
            "open": 1.0,
            "high": 2.0,
            "low": 0.5,
            "close": close,
            "adj_close": None,
            "volume": 0.0,
        }
    ).with_columns(pl.col("adj_close").cast(pl.Float64))
    return Delivery(
        "^VIX", bars, "yahoo", DeliveryMode.SNAPSHOT, date(2024, 1, 1), None, fetched_at=when
    )


def test_landing_is_append_only_and_stores_identical_content_once(tmp_path):
    landing = RawLanding(root=str(tmp_path))
    t1, t2, t3 = (datetime(2024, 1, 3, h, tzinfo=UTC) for h in (1, 2, 3))
    first = landing.land(delivery(1.5, t1))
    again = landing.land(delivery(1.5, t2))
    revised = landing.land(delivery(1.7, t3))
    assert first.new_content and not again.new_content and revised.new_content
    folder = tmp_path / "yahoo" / "VIX"
    assert len(list(folder.glob("bars-*.parquet"))) == 2
    receipts = landing.receipts("yahoo", "^VIX")
    assert [r["fetched_at"] for r in receipts] == [t.isoformat() for t in (t1, t2, t3)]
    assert receipts[0]["content_hash"] == receipts[1]["content_hash"] != receipts[2]["content_hash"]
    assert landing.read("yahoo", "^VIX", receipts[0]["content_hash"])["close"].item() == 1.5
    assert landing.read("yahoo", "^VIX", receipts[2]["content_hash"])["close"].item() == 1.7
