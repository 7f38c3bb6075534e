"""GARCH(1,1) volatility forecaster: fitted once per symbol, then run forward with fixed parameters.

    GarchForecaster(horizon=20).fit(frame, train_end)   -> per-symbol parameters (plain floats)
    .forecast(frame)                                     -> symbol, date, garch_vol
    .params_table()                                      -> one row per fitted symbol

``frame`` holds ``symbol, date, log_ret_1`` (the daily log return, null on a symbol's first row).
The model is ``arch_model(100 r, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")``,
estimated by arch on the returns dated on or before ``train_end`` only.

Forecasts run the GARCH variance recursion with the training parameters over every return in the
frame (no refit) and turn the analytic multi-step forecast into the annualized realized-vol scale of
the label: ``sqrt(252 / h * sum_{k=1..h} sigma2_{t+k|t}) / 100``. The recursion is
``scipy.signal.lfilter`` (compiled and strictly causal), started from the model's unconditional
variance. It is not arch's ``fix(params).forecast()`` because that one starts from a backcast of the
first 75 residuals and clips every variance to bounds computed from the whole sample's variance and
maximum, so an early forecast could, in principle, depend on later data. After the start-up rows the
two agree to rounding (the tests check it).
"""

from __future__ import annotations

import datetime
import math
import warnings
from dataclasses import dataclass

import numpy as np
import polars as pl
from arch import arch_model
from scipy.signal import lfilter

SYMBOL, DATE, RETURN = "symbol", "date", "log_ret_1"
OUTPUT = "garch_vol"
SCALE = 100.0  # arch is fitted on percent returns: its optimizer is tuned for variances near 1
ANNUAL = 252.0
MIN_TRAIN = 250  # about a year of sessions: fewer and the persistence is poorly identified
ARCH_NAMES = {"mu": "mu", "omega": "omega", "alpha[1]": "alpha", "beta[1]": "beta"}


@dataclass(frozen=True)
class GarchParams:
    """The fitted GARCH(1,1) parameters of one symbol (percent-return scale) and fit diagnostics."""

    mu: float
    omega: float
    alpha: float
    beta: float
    loglik: float
    converged: bool
    n_train: int
    sigma2_start: float  # variance the forecast recursion starts from (unconditional when finite)

    @property
    def persistence(self) -> float:
        """alpha + beta: how slowly a variance shock decays (must be < 1 for a finite mean level)."""
        return self.alpha + self.beta

    @property
    def unconditional_vol(self) -> float:
        """Annualized long-run volatility sqrt(252 omega / (1 - alpha - beta)) / 100 (NaN if
        the fit is not stationary)."""
        if self.persistence >= 1.0:
            return math.nan
        return math.sqrt(ANNUAL * self.omega / (1.0 - self.persistence)) / SCALE

    def as_arch(self) -> np.ndarray:
        """The parameters in arch's order (mu, omega, alpha[1], beta[1]), for ``arch_model.fix``."""
        return np.array([self.mu, self.omega, self.alpha, self.beta])


class GarchForecaster:
    """Per-symbol GARCH(1,1) forecast of the annualized realized volatility over the next
    ``horizon`` sessions.

    Parameters are estimated once on the training period and kept as plain floats, so the object
    pickles small and forecasting any later period neither refits nor reads the future.
    """

    def __init__(self, horizon: int = 20) -> None:
        if horizon < 1:
            raise ValueError(f"horizon must be >= 1, got {horizon}")
        self.horizon = horizon
        self.train_end: datetime.date | None = None
        self.params: dict[str, GarchParams] = {}
        self.skipped: dict[str, str] = {}

    def fit(
        self,
        frame: pl.DataFrame,
        train_end: datetime.date,
        start: datetime.date | None = None,
    ) -> GarchForecaster:
        """Estimate one GARCH(1,1) per symbol on its non-null returns dated <= ``train_end``
        (and >= ``start`` when given: a sliding window).

        A symbol with fewer than ``MIN_TRAIN`` training returns, whose optimizer fails or does not
        converge, or whose parameters are not finite is left out of ``params`` and listed in
        ``skipped`` with the reason (it gets no forecast rather than an unreliable one).
        """
        _check_columns(frame)
        self.train_end = train_end
        self.params, self.skipped = {}, {}
        train = (
            frame.lazy()
            .filter((pl.col(DATE) <= train_end) & pl.col(RETURN).is_not_null())
            .filter(pl.lit(True) if start is None else pl.col(DATE) >= start)
            .filter(pl.col(RETURN).is_not_nan())
            .sort(SYMBOL, DATE, maintain_order=True)
            .collect()
        )
        symbols = frame.get_column(SYMBOL).unique(maintain_order=True).to_list()
        returns = {
            key[0]: part.get_column(RETURN).to_numpy()
            for key, part in train.partition_by(SYMBOL, as_dict=True, maintain_order=True).items()
        }
        for symbol in symbols:
            result = _fit_one(returns.get(symbol, np.empty(0)))
            if isinstance(result, str):
                self.skipped[symbol] = result
            else:
                self.params[symbol] = result
        return self

    def forecast(self, frame: pl.DataFrame) -> pl.DataFrame:
        """``symbol, date, garch_vol`` for every row of every fitted symbol in ``frame``.

        The value at date t uses the training parameters and the returns up to and including t
        only. A row with a null return (a symbol's first row) keeps its place with a null forecast
        and is skipped by the recursion. Rows keep the input order; unfitted symbols are dropped.
        """
        _check_columns(frame)
        rows = frame.select(SYMBOL, DATE, RETURN).filter(pl.col(SYMBOL).is_in(list(self.params)))
        out = np.full(rows.height, np.nan)
        positions = rows.with_row_index("_at")
        for key, part in positions.partition_by(SYMBOL, as_dict=True).items():
            part = part.sort(DATE, maintain_order=True)
            at = part.get_column("_at").to_numpy()
            r = part.get_column(RETURN).fill_nan(None).to_numpy().astype(float)
            out[at] = self._forecast_one(self.params[key[0]], r)
        vol = pl.Series(OUTPUT, out, dtype=pl.Float64).fill_nan(None)
        return rows.select(SYMBOL, DATE).with_columns(vol)

    def _forecast_one(self, p: GarchParams, log_ret: np.ndarray) -> np.ndarray:
        """Annualized h-session vol at each row of one symbol's returns (NaN where the return is
        missing)."""
        result = np.full(log_ret.shape, np.nan)
        valid = np.isfinite(log_ret)
        eps2 = (SCALE * log_ret[valid] - p.mu) ** 2
        # sigma2_{t+1} = omega + alpha eps_t^2 + beta sigma2_t, with sigma2 before the first
        # return = sigma2_start: a causal first-order IIR filter, so row t reads rows <= t only
        next_var, _ = lfilter(
            [1.0], [1.0, -p.beta], p.omega + p.alpha * eps2, zi=[p.beta * p.sigma2_start]
        )
        # sigma2_{t+k|t} = omega * sum_{j<k-1} phi^j + phi^(k-1) sigma2_{t+1|t}; summed over k=1..h
        powers = p.persistence ** np.arange(self.horizon)
        level = p.omega * float(np.sum(np.cumsum(powers) - powers))
        total = level + float(np.sum(powers)) * next_var
        result[valid] = np.sqrt(ANNUAL / self.horizon * np.maximum(total, 0.0)) / SCALE
        return result

    def params_table(self) -> pl.DataFrame:
        """One row per fitted symbol: omega, alpha, beta, mu (percent-return scale), persistence,
        loglik, n_train and the implied annualized unconditional vol."""
        schema = {
            SYMBOL: pl.String,
            "omega": pl.Float64,
            "alpha": pl.Float64,
            "beta": pl.Float64,
            "mu": pl.Float64,
            "persistence": pl.Float64,
            "loglik": pl.Float64,
            "n_train": pl.Int64,
            "unconditional_vol": pl.Float64,
        }
        rows = [
            {
                SYMBOL: symbol,
                "omega": p.omega,
                "alpha": p.alpha,
                "beta": p.beta,
                "mu": p.mu,
                "persistence": p.persistence,
                "loglik": p.loglik,
                "n_train": p.n_train,
                "unconditional_vol": p.unconditional_vol,
            }
            for symbol, p in self.params.items()
        ]
        return pl.DataFrame(rows, schema=schema)


def _check_columns(frame: pl.DataFrame) -> None:
    missing = {SYMBOL, DATE, RETURN} - set(frame.columns)
    if missing:
        raise ValueError(f"frame lacks columns {sorted(missing)}")


def _fit_one(log_ret: np.ndarray) -> GarchParams | str:
    """Fit one symbol's training returns; the reason as a string when it cannot be used."""
    n = int(log_ret.shape[0])
    if n < MIN_TRAIN:
        return f"only {n} training returns (fewer than {MIN_TRAIN})"
    y = SCALE * log_ret
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # non-convergence is read from the flag below
            # (show_warning=False: arch otherwise re-enables its ConvergenceWarning itself)
            model = arch_model(y, mean="Constant", vol="GARCH", p=1, q=1, dist="normal")
            res = model.fit(disp="off", show_warning=False)
    except Exception as exc:  # arch raises various errors on degenerate data; record, don't crash
        return f"fit failed: {type(exc).__name__}: {exc}"
    if res.convergence_flag != 0:
        message = getattr(res.optimization_result, "message", "")
        return f"did not converge (flag {res.convergence_flag}): {message}"
    values = {ARCH_NAMES[name]: float(value) for name, value in res.params.items()}
    if not all(math.isfinite(v) for v in values.values()) or not math.isfinite(res.loglikelihood):
        return f"non-finite parameters: {values}"
    persistence = values["alpha"] + values["beta"]
    if persistence < 1.0:
        sigma2_start = values["omega"] / (1.0 - persistence)
    else:  # integrated fit: no finite long-run variance, start from the training variance
        sigma2_start = float(np.var(y - values["mu"]))
    return GarchParams(
        mu=values["mu"],
        omega=values["omega"],
        alpha=values["alpha"],
        beta=values["beta"],
        loglik=float(res.loglikelihood),
        converged=True,
        n_train=n,
        sigma2_start=sigma2_start,
    )
