"""Every catalog ``reference`` agrees with TA-Lib on the real sample, symbol by symbol.

The reference strings are evaluated exactly as the catalog states them, over numpy arrays of one
symbol's bars, so the documentation and the code cannot drift apart.
"""

from datetime import date

import numpy as np
import polars as pl
import pytest
import talib  # dev dependency: the reference implementation

from quant.features import FEATURES, catalog, compute_features

SYMBOLS = ["AAPL", "JPM", "^GSPC", "^VIX", "^NSEBANK"]
REFERENCED = [f for f in FEATURES if f.reference]


@pytest.fixture(scope="module")
def bars(sample_panel) -> pl.DataFrame:
    return sample_panel.filter(
        pl.col("symbol").is_in(SYMBOLS) & (pl.col("date") >= date(2018, 1, 1))
    ).sort("symbol", "date")


@pytest.fixture(scope="module")
def features(bars) -> pl.DataFrame:
    return compute_features(bars)


def evaluate_reference(reference: str, one: pl.DataFrame) -> np.ndarray:
    arrays = {
        c: one[c].to_numpy().astype(np.float64) for c in ("open", "high", "low", "close", "volume")
    }
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.asarray(eval(reference, {"talib": talib, "np": np}, arrays), dtype=np.float64)


def test_catalog_size_and_references():
    entries = catalog()
    assert len(entries) >= 70
    assert sum(1 for e in entries if e["reference"]) >= 40
    assert {e["family"] for e in entries} == {
        "trend",
        "momentum",
        "volatility",
        "volume",
        "pattern",
        "statistical",
    }
    for entry in entries:
        assert entry["description"] and isinstance(entry["warmup"], int), entry["name"]


@pytest.mark.parametrize("feature", REFERENCED, ids=lambda f: f.name)
def test_reference_matches_talib(bars, features, feature):
    compared = 0
    for symbol in SYMBOLS:
        one = bars.filter(pl.col("symbol") == symbol)
        expected = evaluate_reference(feature.reference, one)
        got = (
            features.filter(pl.col("symbol") == symbol)[feature.name].to_numpy().astype(np.float64)
        )
        after = np.arange(len(got)) >= feature.warmup
        judged = after.copy()
        if feature.uses_volume:
            # no volume traded in the window: undefined. TA-Lib's running sums leave residues
            # like 1e-7 there and turn 0/0 into finite nonsense; we say null.
            volume = one["volume"].to_numpy().astype(np.float64)
            silent = talib.MAX(volume, timeperiod=feature.warmup + 1) == 0
            assert np.isnan(got[after & silent]).all(), f"{symbol}: value without volume"
            judged &= talib.MAX(volume, timeperiod=max(feature.warmup, 1)) > 0
        finite = np.isfinite(expected) & judged
        # wherever TA-Lib has a value after warm-up, so do we, and it is the same value
        assert not np.isnan(got[finite]).any(), f"{symbol}: null where TA-Lib has a value"
        np.testing.assert_allclose(
            got[finite], expected[finite], rtol=1e-6, atol=1e-9, err_msg=f"{feature.name} {symbol}"
        )
        # where TA-Lib divides by zero (no volume) after its own warm-up, we say null, not inf/NaN
        started = np.arange(len(got)) >= np.argmax(np.isfinite(expected))
        undefined = judged & started & ~np.isfinite(expected)
        assert np.isnan(got[undefined]).all(), f"{symbol}: value where TA-Lib has none"
        compared += int(finite.sum())
    assert compared > 3 * 1500, "too few rows compared"


def test_committed_catalog_document_is_current():
    from quant.features.docs import DEFAULT_PATH, render

    assert DEFAULT_PATH.read_text() == render(), "run `python -m quant.features.docs`"
