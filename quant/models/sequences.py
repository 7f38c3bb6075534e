"""History windows for sequence models over a (symbol, date)-sorted panel."""

from __future__ import annotations

import numpy as np


def sequence_windows(symbols: np.ndarray, length: int) -> tuple[np.ndarray, np.ndarray]:
    """``(ends, windows)``: the rows with at least ``length`` rows of their own symbol up to and
    including themselves, and for each the row indices ``end - length + 1 .. end``.

    A window never crosses into another symbol and never reads a row after its end, so a model
    fed these windows cannot see the future or a neighbour's history.
    """
    if length < 1:
        raise ValueError(f"window length must be at least 1, got {length}")
    n = len(symbols)
    if n == 0:
        return np.array([], dtype=np.int64), np.zeros((0, length), dtype=np.int64)
    values = np.asarray(symbols)
    starts = np.r_[0, np.flatnonzero(values[1:] != values[:-1]) + 1]
    first_row = np.repeat(starts, np.diff(np.r_[starts, n]))  # each row's symbol's first row
    rows = np.arange(n, dtype=np.int64)
    ends = rows[rows - first_row >= length - 1]
    windows = ends[:, None] + np.arange(-length + 1, 1, dtype=np.int64)[None, :]
    return ends, windows
