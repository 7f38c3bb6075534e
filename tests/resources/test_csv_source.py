from datetime import date
from pathlib import Path

import polars as pl
import pytest

from quant.universe import InvalidSymbolError
from resources.sources import CsvFormatError, CsvSource, SourceError

YAHOO = "Date,Open,High,Low,Close,Adj Close,Volume\n2024-01-02,10,11,9,10.5,10.4,1000\n2024-01-03,10.5,12,10,11.5,11.4,1200\n"


def write(folder: Path, name: str, text: str) -> Path:
    path = folder / name
    path.write_text(text)
    return path


@pytest.mark.parametrize(
    "name, text",
    [
        ("yahoo", YAHOO),
        ("lower", YAHOO.lower().replace("adj close", "adj_close")),
        (
            "day_first_dash",
            "date,open,high,low,close,volume\n02-01-2024,10,11,9,10.5,1000\n03-01-2024,10.5,12,10,11.5,1200\n",
        ),
        (
            "day_first_slash",
            "date,open,high,low,close,volume\n02/01/2024,10,11,9,10.5,1000\n03/01/2024,10.5,12,10,11.5,1200\n",
        ),
        (
            "yfinance_multiindex",
            "Price,Close,High,Low,Open,Volume\nTicker,AAA,AAA,AAA,AAA,AAA\nDate,,,,,\n"
            "2024-01-02 00:00:00-05:00,10.5,11,9,10,1000\n2024-01-03 00:00:00-05:00,11.5,12,10,10.5,1200\n",
        ),
        ("yahoo_nulls", YAHOO + "2024-01-04,null,null,null,null,null,null\n"),
    ],
)
def test_common_layouts_parse_to_the_same_bars(tmp_path, name, text):
    write(tmp_path, "AAA.csv", text)
    bars = CsvSource(tmp_path).fetch("AAA").bars
    assert bars["date"].head(2).to_list() == [date(2024, 1, 2), date(2024, 1, 3)]
    assert bars["close"].head(2).to_list() == [10.5, 11.5]
    assert bars["volume"].head(2).to_list() == [1000.0, 1200.0]
    assert set(bars["symbol"]) == {"AAA"}
    if name == "yahoo_nulls":  # Yahoo's null placeholder rows are kept as nulls for validation
        assert bars.height == 3 and bars["close"][2] is None


def test_index_file_may_use_the_slug(tmp_path):
    write(tmp_path, "GSPC.csv", YAHOO)
    assert CsvSource(tmp_path).fetch("^GSPC").bars["symbol"][0] == "^GSPC"


@pytest.mark.parametrize(
    "text, line, column, message",
    [
        ("", 1, None, "the file is empty"),
        ("date,open,high,low,close,volume\n", 2, None, "header but no rows"),
        (
            "Date,Open,High,Low,Volume\n2024-01-02,1,2,0.5,10\n",
            1,
            None,
            r"missing required column\(s\) \['close'\]",
        ),
        (
            "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\n2024-01-03,1,2,0.5,abc,10\n",
            3,
            "close",
            "'abc' is not a number",
        ),
        (
            "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\nDate,Open,High,Low,Close,Volume\n",
            3,
            None,
            "duplicated header row",
        ),
        (
            "Date,Open,High,Low,Close,Close,Volume\n2024-01-02,1,2,0.5,1.5,1.5,10\n",
            1,
            None,
            r"duplicated column\(s\) in the header: \['close'\]",
        ),
        (
            "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,10\nJan 3 2024,1,2,0.5,1.5,10\n",
            3,
            "date",
            "'Jan 3 2024' is not a date",
        ),
        (
            "Date,Open,High,Low,Close,Volume,Symbol\n2024-01-02,1,2,0.5,1.5,10,BBB\n",
            2,
            "symbol",
            "belongs to symbol 'BBB'",
        ),
        (
            "Date,Open,High,Low,Close,Volume\n2024-01-02,1,2,0.5,1.5,1e3x\n",
            2,
            "volume",
            "'1e3x' is not a number",
        ),
    ],
    ids=[
        "empty",
        "header_only",
        "missing_column",
        "text_in_number",
        "duplicated_header_row",
        "duplicated_header_column",
        "bad_date",
        "foreign_symbol",
        "bad_volume",
    ],
)
def test_malformed_files_name_file_line_and_column(tmp_path, text, line, column, message):
    path = write(tmp_path, "AAA.csv", text)
    with pytest.raises(CsvFormatError, match=message) as info:
        CsvSource(tmp_path).fetch("AAA")
    error = info.value
    assert error.path == path and error.line == line and error.column == column
    assert (
        str(path) in str(error) and f"line {line}" in str(error) and str(error).startswith("AAA: ")
    )


def test_missing_file_and_hostile_symbols(tmp_path):
    with pytest.raises(SourceError, match="no CSV file"):
        CsvSource(tmp_path).fetch("AAA")
    with pytest.raises(InvalidSymbolError):
        CsvSource(tmp_path).fetch("../../etc/passwd")


def test_window_filters_and_empty_window_is_an_error(tmp_path):
    write(tmp_path, "AAA.csv", YAHOO)
    assert CsvSource(tmp_path, as_of=date(2024, 1, 2)).fetch("AAA").bars.height == 1
    with pytest.raises(SourceError, match="no bars between"):
        CsvSource(tmp_path, start=date(2025, 1, 1)).fetch("AAA")


def test_a_real_yahoo_export_round_trips(tmp_path, sample_panel):
    """Real bars written in Yahoo's CSV layout parse back to exactly the same values."""
    real = sample_panel.filter(pl.col("symbol") == "^NSEBANK").sort("date")
    real.drop("symbol").rename(
        {
            "date": "Date",
            "open": "Open",
            "high": "High",
            "low": "Low",
            "close": "Close",
            "adj_close": "Adj Close",
            "volume": "Volume",
        }
    ).write_csv(tmp_path / "NSEBANK.csv")
    bars = CsvSource(tmp_path).fetch("^NSEBANK").bars
    assert bars.drop("symbol").equals(real.drop("symbol"))
