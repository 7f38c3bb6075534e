"""Split assignment with purging at each boundary, and purged walk-forward folds."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant.splits import (
    PURGED,
    TEST,
    TRAIN,
    VALIDATION,
    SplitConfig,
    assign_splits,
    walk_forward_folds,
)

H = 5


def panel(days: int = 200, symbols=("AAA", "BBB")) -> pl.DataFrame:
    dates = [date(2023, 10, 1) + timedelta(days=i) for i in range(days)]
    frames = []
    for s in symbols:
        frame = pl.DataFrame({"symbol": s, "date": dates})
        frames.append(frame.with_columns(pl.col("date").shift(-H).alias("label_end")))
    return pl.concat(frames).drop_nulls("label_end")


CONFIG = SplitConfig(
    train_end=date(2023, 12, 31), validation_end=date(2024, 2, 29), horizon=H, embargo=H
)


def test_each_boundary_is_purged_by_the_label_horizon():
    frame = panel()
    split = assign_splits(frame, CONFIG)
    tagged = frame.with_columns(split)
    train = tagged.filter(pl.col("split") == TRAIN)
    valid = tagged.filter(pl.col("split") == VALIDATION)
    test = tagged.filter(pl.col("split") == TEST)
    purged = tagged.filter(pl.col("split") == PURGED)
    assert train["label_end"].max() <= CONFIG.train_end
    assert valid["date"].min() > CONFIG.train_end
    assert valid["label_end"].max() <= CONFIG.validation_end
    assert test["date"].min() > CONFIG.validation_end
    # H rows per symbol and boundary: the last H train dates and the last H validation dates
    assert purged.height == 2 * 2 * H
    assert sorted(purged.filter(pl.col("symbol") == "AAA")["date"].to_list())[:H] == [
        CONFIG.train_end - timedelta(days=H - 1 - i) for i in range(H)
    ]


def test_config_rejects_an_embargo_shorter_than_the_horizon_and_inverted_dates():
    with pytest.raises(ValueError, match="embargo"):
        SplitConfig(horizon=20, embargo=5)
    with pytest.raises(ValueError, match="validation_end"):
        SplitConfig(train_end=date(2024, 1, 1), validation_end=date(2023, 1, 1))


def test_walk_forward_folds_never_fit_on_or_after_the_scored_block():
    frame = panel(300)
    folds = walk_forward_folds(frame["date"], frame["label_end"], n_folds=4, embargo=H)
    assert len(folds) == 4
    dates = frame["date"].to_numpy()
    ends = frame["label_end"].to_numpy()
    previous_train = 0
    for fold in folds:
        start = np.datetime64(fold.test_start)
        assert fold.train.size > previous_train  # expanding window
        previous_train = fold.train.size
        assert (ends[fold.train] < start).all()  # purged: no label reaches the scored block
        gap = np.unique(dates[dates < start])
        assert dates[fold.train].max() <= gap[-H - 1]  # embargo of H sessions
        assert np.intersect1d(fold.train, fold.test).size == 0
        assert (dates[fold.test] >= start).all()
    scored = np.concatenate([f.test for f in folds])
    assert np.unique(scored).size == scored.size  # blocks do not overlap


def test_too_few_dates_for_the_folds_is_a_clear_error():
    frame = panel(12)
    with pytest.raises(ValueError, match="too few"):
        walk_forward_folds(frame["date"], frame["label_end"], n_folds=10, embargo=H)
