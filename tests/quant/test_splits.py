"""Split assignment with purging at each boundary, and purged walk-forward folds."""

from datetime import date, timedelta

import numpy as np
import polars as pl
import pytest

from quant.splits import (
    OUTSIDE,
    PURGED,
    TEST,
    TRAIN,
    VALIDATION,
    SplitConfig,
    assign_splits,
    refit_mask,
    resolve_windows,
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


CONFIG = SplitConfig.fixed(
    date(2023, 12, 31), date(2024, 2, 29), horizon=H, embargo=H, validation_sessions=2 * H
)


def test_each_boundary_is_purged_by_the_label_horizon():
    frame = panel()
    split = assign_splits(frame, resolve_windows(frame, CONFIG))
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
        SplitConfig.fixed(date(2024, 1, 1), date(2023, 1, 1))
    with pytest.raises(ValueError, match="fixed splits need"):
        SplitConfig(mode="fixed", train_end=date(2024, 1, 1))
    with pytest.raises(ValueError, match="split mode"):
        SplitConfig(mode="calendar")


def test_the_default_split_has_no_date_in_it():
    config = SplitConfig()
    assert config.mode == "rolling"
    assert config.train_end is None and config.validation_end is None


def sessions_panel(symbol_ends: dict[str, date], start: date = date(2022, 1, 3)) -> pl.DataFrame:
    """Business days (weekdays, with 2023-07-04 and 2023-12-25 closed) per symbol up to its
    own last date, labeled H sessions ahead."""
    days = pl.date_range(start, max(symbol_ends.values()), eager=True)
    days = days.filter(days.dt.weekday() <= 5)
    days = days.filter(~days.is_in([date(2023, 7, 4), date(2023, 12, 25)]))
    frames = []
    for symbol, end in symbol_ends.items():
        frame = pl.DataFrame({"symbol": symbol, "date": days.filter(days <= end)})
        frames.append(frame.with_columns(pl.col("date").shift(-H).alias("label_end")))
    return pl.concat(frames)


ROLLING = SplitConfig(validation_sessions=30, horizon=H, embargo=H)


def test_rolling_windows_are_anchored_to_the_anchor_symbols_last_labeled_session():
    # equities end 2024-01-31, an index runs on to 2024-03-29, another ended long before
    frame = sessions_panel(
        {
            "AAA": date(2024, 1, 31),
            "BBB": date(2024, 1, 31),
            "^IDX": date(2024, 3, 29),
            "^OLD": date(2023, 6, 30),
        }
    )
    windows = resolve_windows(frame, ROLLING, frozenset({"AAA", "BBB"}))
    labeled = frame.filter(pl.col("symbol") == "AAA").drop_nulls("label_end")
    sessions = labeled["date"].to_list()
    assert windows.validation_end == sessions[-1]  # H sessions before the data end
    assert windows.data_as_of == date(2024, 1, 31)  # what the last label reads
    assert windows.validation_start == sessions[-30]
    assert windows.train_end == sessions[-31]
    assert windows.train_start == date(2022, 1, 3)
    tagged = frame.drop_nulls("label_end").with_columns(
        assign_splits(frame.drop_nulls("label_end"), windows)
    )
    # no fitted label reads past the anchor's data; the index's later rows are held out
    fitted = tagged.filter(pl.col("split").is_in([TRAIN, VALIDATION]))
    assert fitted["label_end"].max() <= windows.data_as_of
    later = tagged.filter(pl.col("date") > windows.validation_end)
    assert set(later["symbol"]) == {"^IDX"} and set(later["split"]) == {TEST}
    # train/validation boundary purged by the horizon, per symbol
    aaa = tagged.filter(pl.col("symbol") == "AAA")
    assert aaa.filter(pl.col("split") == PURGED).height == H
    assert aaa.filter(pl.col("split") == TRAIN)["label_end"].max() <= windows.train_end
    # the symbol that ended earlier simply has fewer rows, all in train (or purged)
    assert set(tagged.filter(pl.col("symbol") == "^OLD")["split"]) <= {TRAIN}
    # the refit takes every row up to the validation end whose label is known, purge zone too
    refit = tagged.filter(pl.Series(refit_mask(tagged, windows)))
    assert refit["date"].max() == windows.validation_end
    assert set(refit["split"]) == {TRAIN, VALIDATION, PURGED}


def test_rolling_windows_move_with_the_data_and_skip_holidays():
    early = resolve_windows(sessions_panel({"AAA": date(2023, 9, 29)}), ROLLING)
    late = resolve_windows(sessions_panel({"AAA": date(2023, 12, 29)}), ROLLING)
    assert late.train_end > early.train_end and late.validation_end > early.validation_end
    assert late.data_as_of == date(2023, 12, 29)
    # 30 validation sessions counted on the symbol's own sessions: the closed 2023-12-25 is
    # not one of them, so the window reaches one weekday further back
    frame = sessions_panel({"AAA": date(2023, 12, 29)}).drop_nulls("label_end")
    window = frame.filter(
        (pl.col("date") >= late.validation_start) & (pl.col("date") <= late.validation_end)
    )
    assert window.height == 30 and date(2023, 12, 25) not in window["date"].to_list()


def test_sliding_window_leaves_older_rows_outside():
    config = SplitConfig(validation_sessions=30, horizon=H, embargo=H, train_years=1)
    frame = sessions_panel({"AAA": date(2024, 1, 31)}).drop_nulls("label_end")
    windows = resolve_windows(frame, config)
    assert (windows.validation_start - windows.train_start).days == 366
    tagged = frame.with_columns(assign_splits(frame, windows))
    assert tagged.filter(pl.col("date") < windows.train_start)["split"].unique().to_list() == [
        OUTSIDE
    ]
    assert not refit_mask(tagged, windows)[
        tagged["date"].to_numpy() < np.datetime64(windows.train_start)
    ].any()


def test_too_little_history_for_a_rolling_split_is_a_clear_error():
    frame = sessions_panel({"AAA": date(2022, 2, 15)})
    with pytest.raises(ValueError, match="rolling split needs"):
        resolve_windows(frame, ROLLING)


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
