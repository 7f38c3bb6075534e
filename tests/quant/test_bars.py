from datetime import date

import polars as pl
import pytest

from quant.bars import BAR_COLUMNS, conform_bars, content_hash, count_new_dates, merge_deliveries


def bars(days: list[int], close: float = 10.0, symbol: str = "AAA") -> pl.DataFrame:
    return pl.DataFrame(
        {
            "symbol": symbol,
            "date": [date(2024, 1, d) for d in days],
            "open": close,
            "high": close + 1,
            "low": close - 1,
            "close": [close + d / 100 for d in days],
            "volume": 1000,
        }
    )


def test_conform_adds_a_null_adj_close_and_orders_columns():
    out = conform_bars(bars([3, 2]))
    assert tuple(out.columns) == BAR_COLUMNS
    assert out["adj_close"].null_count() == 2
    assert out["date"].to_list() == [date(2024, 1, 2), date(2024, 1, 3)]
    assert out.schema["volume"] == pl.Float64


def test_conform_refuses_to_invent_missing_prices():
    with pytest.raises(ValueError, match="close"):
        conform_bars(bars([2]).drop("close"))


def test_content_hash_ignores_row_order_and_sees_any_value_change():
    a = bars([2, 3, 4])
    assert content_hash(a) == content_hash(a.reverse())
    changed = a.with_columns(
        pl.when(pl.col("date") == date(2024, 1, 3))
        .then(99.0)
        .otherwise(pl.col("close"))
        .alias("close")
    )
    assert content_hash(changed) != content_hash(a)


def test_incremental_delivery_wins_on_overlapping_dates():
    stored = bars([2, 3, 4], close=10.0)
    delivered = bars([4, 5], close=20.0)  # 4th revised, 5th new
    merged = merge_deliveries(stored, delivered)
    assert merged["date"].to_list() == [date(2024, 1, d) for d in (2, 3, 4, 5)]
    assert merged.filter(pl.col("date") == date(2024, 1, 4))["close"].item() == pytest.approx(20.04)
    assert merged.filter(pl.col("date") == date(2024, 1, 2))["close"].item() == pytest.approx(10.02)
    assert count_new_dates(stored, merged) == 1
    assert count_new_dates(None, merged) == 4
