from datetime import date

import polars as pl
import pytest

from quant.universe import InvalidSymbolError
from resources.lake import LakePartitionMissingError, ParquetLake


def frame(symbol: str, n: int = 3) -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": symbol, "date": [date(2024, 1, d + 1) for d in range(n)], "x": range(n)}
    )


def test_partitions_are_one_file_each_under_a_safe_name(tmp_path):
    lake = ParquetLake(base_dir=str(tmp_path))
    path = lake.write("raw_ohlcv", frame("^GSPC"), "^GSPC")
    assert path == tmp_path / "raw_ohlcv" / "GSPC.parquet"
    assert lake.read("raw_ohlcv", "^GSPC").equals(frame("^GSPC"))
    assert lake.path("market_context") == tmp_path / "market_context.parquet"
    with pytest.raises(InvalidSymbolError):
        lake.path("raw_ohlcv", "../../etc/passwd")
    with pytest.raises(ValueError, match="identifier"):
        lake.path("../escape")


def test_several_partitions_load_as_one_frame(tmp_path):
    lake = ParquetLake(base_dir=str(tmp_path))
    lake.write("raw_ohlcv", frame("AAA", 2), "AAA")
    lake.write("raw_ohlcv", frame("BBB", 3), "BBB")
    both = lake.read_partitions("raw_ohlcv", ["AAA", "BBB"])
    assert both.height == 5 and set(both["symbol"]) == {"AAA", "BBB"}
    with pytest.raises(LakePartitionMissingError, match=r"\['CCC'\]"):
        lake.read_partitions("raw_ohlcv", ["AAA", "CCC"])


def test_a_failed_write_leaves_the_previous_file_intact(tmp_path, monkeypatch):
    lake = ParquetLake(base_dir=str(tmp_path))
    lake.write("raw_ohlcv", frame("AAA"), "AAA")

    def crash(self, *args, **kwargs):
        raise OSError("disk full")

    monkeypatch.setattr(pl.DataFrame, "write_parquet", crash)
    with pytest.raises(OSError, match="disk full"):
        lake.write("raw_ohlcv", frame("AAA", 10), "AAA")
    monkeypatch.undo()
    assert lake.read("raw_ohlcv", "AAA").equals(frame("AAA"))
    assert [p.name for p in (tmp_path / "raw_ohlcv").iterdir()] == ["AAA.parquet"]  # no temp left


def test_a_range_load_leaves_out_missing_and_corrupt_partitions_and_names_them(tmp_path):
    lake = ParquetLake(base_dir=str(tmp_path))
    for symbol in ("AAA", "BBB"):
        lake.write("ohlcv", pl.DataFrame({"symbol": [symbol], "x": [1]}), symbol)
    path = lake.path("ohlcv", "BBB")
    path.write_bytes(path.read_bytes()[:10])  # truncated
    frame, left_out = lake.read_available("ohlcv", ["AAA", "BBB", "CCC"])
    assert frame["symbol"].to_list() == ["AAA"]
    assert left_out[0].startswith("BBB (") and str(path) in left_out[0]
    assert left_out[1].startswith("CCC (") and "has not been materialized" in left_out[1]
    with pytest.raises(LakePartitionMissingError, match="no readable partition"):
        lake.read_available("ohlcv", ["BBB", "CCC"])
