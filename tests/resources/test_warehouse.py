from datetime import date

import polars as pl

from resources.lake import ParquetLake
from resources.warehouse import DuckDBWarehouse


def test_lake_assets_are_queryable_as_views(tmp_path):
    lake = ParquetLake(base_dir=str(tmp_path / "lake"))
    for sym, n in (("AAA", 2), ("^BBB", 3)):
        lake.write(
            "raw_ohlcv",
            pl.DataFrame({"symbol": sym, "date": [date(2024, 1, d + 1) for d in range(n)]}),
            sym,
        )
    lake.write("market_context", pl.DataFrame({"date": [date(2024, 1, 1)], "vix": [13.2]}))
    warehouse = DuckDBWarehouse(lake_dir=str(tmp_path / "lake"))
    counts = warehouse.query(
        "SELECT symbol, count(*) AS n FROM raw_ohlcv GROUP BY symbol ORDER BY symbol"
    )
    assert counts.to_dicts() == [{"symbol": "AAA", "n": 2}, {"symbol": "^BBB", "n": 3}]
    assert warehouse.query("SELECT vix FROM market_context").item() == 13.2
    # a partition written later is visible without re-registering anything
    lake.write("raw_ohlcv", pl.DataFrame({"symbol": "CCC", "date": [date(2024, 1, 1)]}), "CCC")
    assert warehouse.query("SELECT count(DISTINCT symbol) FROM raw_ohlcv").item() == 3


def test_empty_lake_has_no_views(tmp_path):
    warehouse = DuckDBWarehouse(lake_dir=str(tmp_path / "missing"))
    with warehouse.connect() as con:
        assert (
            con.execute("SELECT count(*) FROM duckdb_views() WHERE NOT internal").fetchone()[0] == 0
        )
