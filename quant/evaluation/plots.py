"""Small PNG figures for the asset pages and the experiment tracker, and their markdown form.

Figures are built with matplotlib's object API (``Figure``, not ``pyplot``), so none is ever
registered in pyplot's global list: nothing to close, nothing leaks across calls or threads.
Images are about 480 x 320 pixels so that a page of them stays small as base64 markdown.
"""

from __future__ import annotations

import base64
import io

import matplotlib

matplotlib.use("Agg")

import numpy as np
from matplotlib.figure import Figure

FIGSIZE = (6.0, 4.0)
DPI = 80


def _figure() -> Figure:
    return Figure(figsize=FIGSIZE, dpi=DPI, layout="constrained")


def _png(fig: Figure) -> bytes:
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=DPI)
    fig.clear()
    return buffer.getvalue()


def _per_date_mean(dates: np.ndarray, values: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Sorted unique dates and the mean of the finite values on each (NaN where none)."""
    unique, codes = np.unique(np.asarray(dates), return_inverse=True)
    v = np.asarray(values, dtype=float).ravel()
    ok = np.isfinite(v)
    sums = np.bincount(codes[ok], weights=v[ok], minlength=unique.size)
    counts = np.bincount(codes[ok], minlength=unique.size)
    with np.errstate(invalid="ignore", divide="ignore"):
        return unique, np.where(counts > 0, sums / counts, np.nan)


def confusion_matrix_png(
    y_true: np.ndarray, y_pred: np.ndarray, labels: list[str], title: str
) -> bytes:
    """Confusion matrix (true classes as rows) with the count and the row share in each cell.

    Colours follow the row-normalized share (the recall of each true class), so a minority
    class the model never predicts is as visible as a majority one; counts keep the scale.
    ``y_true`` and ``y_pred`` are class codes indexing ``labels``.
    """
    k = len(labels)
    counts = np.zeros((k, k), dtype=np.int64)
    np.add.at(counts, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    totals = counts.sum(axis=1, keepdims=True)
    shares = np.divide(counts, totals, out=np.zeros((k, k)), where=totals > 0)
    fig = _figure()
    ax = fig.add_subplot()
    image = ax.imshow(shares, cmap="Blues", vmin=0.0, vmax=1.0)
    for i in range(k):
        for j in range(k):
            ax.text(
                j,
                i,
                f"{counts[i, j]}\n{shares[i, j]:.0%}",
                ha="center",
                va="center",
                fontsize=8,
                color="white" if shares[i, j] > 0.5 else "black",
            )
    ax.set_xticks(range(k), labels)
    ax.set_yticks(range(k), labels)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title, fontsize=10)
    fig.colorbar(image, ax=ax, label="share of true class")
    return _png(fig)


def calibration_png(
    y_true_binary: np.ndarray, prob: np.ndarray, title: str, bins: int = 10
) -> bytes:
    """Reliability diagram (observed frequency against mean predicted probability per bin) over a
    histogram of the predicted probabilities.

    A calibrated model lies on the diagonal; the histogram shows how many rows each point rests
    on (models of daily direction typically predict in a narrow band around the base rate).
    Bins have equal width on [0, 1]; empty bins are not drawn.
    """
    y = np.asarray(y_true_binary, dtype=float).ravel()
    p = np.asarray(prob, dtype=float).ravel()
    ok = np.isfinite(y) & np.isfinite(p)
    y, p = y[ok], np.clip(p[ok], 0.0, 1.0)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.clip(np.digitize(p, edges[1:-1]), 0, bins - 1)
    counts = np.bincount(which, minlength=bins)
    filled = counts > 0
    mean_p = np.bincount(which, weights=p, minlength=bins)[filled] / counts[filled]
    freq = np.bincount(which, weights=y, minlength=bins)[filled] / counts[filled]
    fig = _figure()
    top, bottom = fig.subplots(2, 1, sharex=True, height_ratios=[3, 1])
    top.plot([0, 1], [0, 1], linestyle="--", color="grey", linewidth=1, label="calibrated")
    top.plot(mean_p, freq, marker="o", label="model")
    top.set_ylim(0.0, 1.0)
    top.set_ylabel("observed frequency")
    top.legend(fontsize=8, loc="upper left")
    top.set_title(title, fontsize=10)
    bottom.hist(p, bins=edges, color="tab:blue", alpha=0.7)
    bottom.set_xlim(0.0, 1.0)
    bottom.set_xlabel("predicted probability")
    bottom.set_ylabel("rows")
    return _png(fig)


def forecast_vs_realized_png(
    dates: np.ndarray, realized: np.ndarray, forecasts: dict[str, np.ndarray], title: str
) -> bytes:
    """Realized volatility and each forecast over time, one line each.

    Rows sharing a date are averaged (a panel becomes its cross-sectional mean), so the caller
    may pass one symbol's rows or the whole panel.
    """
    fig = _figure()
    ax = fig.add_subplot()
    x, y = _per_date_mean(dates, realized)
    ax.plot(x, y, color="black", linewidth=1.2, label="realized")
    for name, forecast in forecasts.items():
        _, f = _per_date_mean(dates, forecast)
        ax.plot(x, f, linewidth=1.0, label=name)
    ax.set_ylabel("volatility")
    ax.set_title(title, fontsize=10)
    ax.legend(fontsize=8)
    fig.autofmt_xdate()
    return _png(fig)


def feature_importance_png(
    names: list[str], importances: np.ndarray, title: str, top: int = 20
) -> bytes:
    """Horizontal bars of the ``top`` largest importances, the largest at the top."""
    values = np.asarray(importances, dtype=float).ravel()
    if len(names) != values.size:
        raise ValueError(f"{len(names)} names but {values.size} importances")
    order = np.argsort(-np.nan_to_num(values, nan=-np.inf), kind="stable")[:top]
    fig = _figure()
    ax = fig.add_subplot()
    ax.barh(np.arange(order.size), values[order], color="tab:blue")
    ax.set_yticks(np.arange(order.size), [names[i] for i in order], fontsize=7)
    ax.invert_yaxis()
    ax.set_xlabel("importance")
    ax.set_title(title, fontsize=10)
    return _png(fig)


def line_png(x: np.ndarray, series: dict[str, np.ndarray], title: str, ylabel: str) -> bytes:
    """One line per named series against a shared x (equity curves, optimization histories)."""
    fig = _figure()
    ax = fig.add_subplot()
    for name, values in series.items():
        ax.plot(x, np.asarray(values, dtype=float), linewidth=1.0, label=name)
    ax.set_ylabel(ylabel)
    ax.set_title(title, fontsize=10)
    if series:
        ax.legend(fontsize=8)
    if np.issubdtype(np.asarray(x).dtype, np.datetime64):
        fig.autofmt_xdate()
    return _png(fig)


def markdown_image(png: bytes, alt: str) -> str:
    """``![alt](data:image/png;base64,...)``: a PNG inline in markdown metadata, which Dagster
    renders on the asset page without any file store behind it."""
    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode('ascii')})"
