from datetime import date

import polars as pl
import pytest

from resources.sources import DeliveryMode, EmptyResponseError, SampleSource, SourceError
from tests.conftest import SAMPLE_DIR


def test_sample_serves_real_bars_in_the_window(sample_panel):
    source = SampleSource(SAMPLE_DIR, start=date(2020, 1, 1), as_of=date(2024, 12, 31))
    delivery = source.fetch("^GSPC")
    bars = delivery.bars
    assert delivery.mode is DeliveryMode.SNAPSHOT and delivery.source == "sample"
    assert bars["date"].min() == date(2020, 1, 2) and bars["date"].max() == date(2024, 12, 31)
    expected = sample_panel.filter(
        (pl.col("symbol") == "^GSPC")
        & pl.col("date").is_between(date(2020, 1, 1), date(2024, 12, 31))
    )
    assert bars.height == expected.height == 1258
    assert bars["close"].to_list() == expected.sort("date")["close"].to_list()


def test_as_of_replays_history_as_it_was_known():
    early = SampleSource(SAMPLE_DIR, as_of=date(2023, 6, 30)).fetch("AAPL").bars
    assert early["date"].max() == date(2023, 6, 30)


def test_unknown_symbol_and_empty_window_are_errors():
    with pytest.raises(SourceError, match="not in the bundled sample"):
        SampleSource(SAMPLE_DIR).fetch("TSLA")
    with pytest.raises(EmptyResponseError, match="no sample bars"):
        SampleSource(SAMPLE_DIR, start=date(2026, 1, 1)).fetch("^DJI")  # ^DJI ends 2025-07-11
    with pytest.raises(ValueError, match="after as_of"):
        SampleSource(SAMPLE_DIR, start=date(2024, 1, 2), as_of=date(2024, 1, 1))


def test_bundled_sample_matches_its_provenance(sample_panel):
    assert sample_panel.height == 187_660
    assert sample_panel["symbol"].n_unique() == 26
    assert (SAMPLE_DIR / "PROVENANCE.md").read_text().startswith("# PROVENANCE")
