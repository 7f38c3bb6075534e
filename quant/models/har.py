"""HAR-RV baseline (Corsi 2009): forward realized vol regressed on daily, weekly and monthly vol.

    trailing_realized_vol(pl.col("log_ret_1"), 20)       -> the naive baseline, per symbol
    HarForecaster().fit(frame, train_mask=mask)           -> pooled OLS over all symbols
    .forecast(frame)                                      -> symbol, date, har_vol

Realized vol everywhere is zero-mean and annualized, sqrt(252 * mean(r^2)) over the window, the
same definition as the label ``fwd_vol_20``. One regression is pooled across symbols: the three
coefficients describe how vol persists at three horizons, which is much the same for every liquid
asset, and pooling gives them many more observations than any one symbol has.
"""

from __future__ import annotations

import numpy as np
import polars as pl

SYMBOL, DATE, RETURN = "symbol", "date", "log_ret_1"
OUTPUT = "har_vol"
ANNUAL = 252.0
WINDOWS = (1, 5, 22)  # a day, a week, a month of sessions
REGRESSORS = tuple(f"rv_{n}" for n in WINDOWS)
FLOOR = 1e-4  # forecasts are clipped here: a vol must stay positive for QLIKE and for logs


def trailing_realized_vol(log_ret: pl.Expr, window: int) -> pl.Expr:
    """Annualized zero-mean realized vol sqrt(252 * mean(r^2)) over the last ``window`` rows of
    each symbol, the current row included.

    Null until ``window`` non-null returns are in the window (a symbol's first row has no return,
    so the first value is at row ``window``); computed per symbol with ``.over("symbol")``, so a
    window never reaches into the previous symbol. Expects the frame sorted by (symbol, date).
    """
    if window < 1:
        raise ValueError(f"window must be >= 1, got {window}")
    mean_square = log_ret.pow(2).rolling_mean(window, min_samples=window)
    return (ANNUAL * mean_square).sqrt().over(SYMBOL)


def har_regressors(frame: pl.DataFrame) -> pl.DataFrame:
    """``frame`` with the HAR regressors ``rv_1, rv_5, rv_22`` added (rows keep their order)."""
    return (
        frame.with_row_index("_row")
        .sort(SYMBOL, DATE, maintain_order=True)
        .with_columns(
            trailing_realized_vol(pl.col(RETURN), n).alias(name)
            for n, name in zip(WINDOWS, REGRESSORS, strict=True)
        )
        .sort("_row")
        .drop("_row")
    )


class HarForecaster:
    """Pooled HAR-RV: ``target = b0 + b1 rv_1 + b5 rv_5 + b22 rv_22`` by ordinary least squares.

    A deliberately simple, transparent baseline for the volatility models: the coefficients are
    plain floats (``coefficients``), so the object pickles and explains itself.
    """

    def __init__(self) -> None:
        self.coefficients: dict[str, float] = {}
        self.target: str | None = None
        self.n_train: int = 0

    def fit(
        self,
        frame: pl.DataFrame,
        target: str = "fwd_vol_20",
        *,
        train_mask: np.ndarray | pl.Series,
    ) -> HarForecaster:
        """Fit by OLS (with intercept) on the rows where ``train_mask`` is true and the target and
        all three regressors are present; no other row is read for the fit.

        ``frame`` holds ``symbol, date, log_ret_1`` and ``target``, and ``train_mask`` is a boolean
        per row of ``frame``, in the same order.
        """
        mask = np.asarray(
            train_mask.to_numpy() if isinstance(train_mask, pl.Series) else train_mask
        )
        if mask.dtype != bool or mask.shape != (frame.height,):
            raise ValueError(f"train_mask must be {frame.height} booleans, got {mask.dtype}")
        data = har_regressors(frame.select(SYMBOL, DATE, RETURN, target))
        x = _design(data)
        y = data.get_column(target).fill_nan(None).to_numpy().astype(float)
        use = mask & np.isfinite(x).all(axis=1) & np.isfinite(y)
        if use.sum() <= x.shape[1]:
            raise ValueError(f"only {int(use.sum())} complete training rows for HAR")
        beta, *_ = np.linalg.lstsq(x[use], y[use], rcond=None)
        self.coefficients = dict(
            zip(("intercept", *REGRESSORS), (float(b) for b in beta), strict=True)
        )
        self.target = target
        self.n_train = int(use.sum())
        return self

    def forecast(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``symbol, date, har_vol`` for every row of ``frame`` (null until the 22-session window
        is full), clipped below at ``FLOOR``."""
        if not self.coefficients:
            raise RuntimeError("HarForecaster.forecast called before fit")
        data = har_regressors(frame.select(SYMBOL, DATE, RETURN))
        beta = np.array([self.coefficients[k] for k in ("intercept", *REGRESSORS)])
        values = np.maximum(_design(data) @ beta, FLOOR)  # NaN stays NaN
        vol = pl.Series(OUTPUT, values, dtype=pl.Float64).fill_nan(None)
        return data.select(SYMBOL, DATE).with_columns(vol)


def _design(data: pl.DataFrame) -> np.ndarray:
    """Intercept column plus the regressors, NaN where a regressor is null."""
    regressors = data.select(pl.col(name).cast(pl.Float64) for name in REGRESSORS).to_numpy()
    return np.column_stack([np.ones(data.height), regressors])
