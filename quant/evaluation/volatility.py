"""Scores of volatility forecasts against the realized volatility that followed.

qlike_loss(realized_vol, forecast_vol)         -> per-observation QLIKE loss on variances
volatility_metrics(realized_vol, forecast_vol) -> rmse, mean qlike, Mincer–Zarnowitz fit, n
"""

from __future__ import annotations

import numpy as np

NAN = float("nan")


def qlike_loss(realized_vol: np.ndarray, forecast_vol: np.ndarray) -> np.ndarray:
    """Per-observation QLIKE loss on variances: r/f - log(r/f) - 1, r = realized², f = forecast².

    QLIKE is one of the two losses that rank forecasts consistently when the realized measure is
    a noisy proxy for the true variance (Patton 2011), and unlike MSE it is not dominated by a
    few turbulent days. It is 0 for a perfect forecast, positive otherwise, and penalizes
    under-prediction more than over-prediction by the same amount. Element-wise: NaN where an
    input is NaN, inf where the realized volatility is 0 or the forecast is 0.
    """
    r = np.asarray(realized_vol, dtype=float) ** 2
    f = np.asarray(forecast_vol, dtype=float) ** 2
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = r / f
        return ratio - np.log(ratio) - 1.0


def volatility_metrics(realized_vol: np.ndarray, forecast_vol: np.ndarray) -> dict[str, float]:
    """RMSE, mean QLIKE and the Mincer–Zarnowitz regression of realized on forecast volatility.

    RMSE (on volatility) is the familiar scale, QLIKE the robust ranking loss; the
    Mincer–Zarnowitz OLS ``realized = alpha + beta * forecast`` checks calibration (an unbiased
    forecast has alpha 0 and beta 1) and ``mz_r2`` how much of the realized variation the
    forecast explains. Pairs where either value is non-finite or the forecast is <= 0 are
    ignored; ``n`` counts the pairs used. The regression is NaN with fewer than 3 pairs or a
    constant forecast.
    """
    r = np.asarray(realized_vol, dtype=float).ravel()
    f = np.asarray(forecast_vol, dtype=float).ravel()
    if r.size != f.size:
        raise ValueError(f"inputs must have the same length, got {r.size} and {f.size}")
    ok = np.isfinite(r) & np.isfinite(f)
    ok[ok] = f[ok] > 0
    r, f = r[ok], f[ok]
    n = int(r.size)
    out = {"rmse": NAN, "qlike": NAN, "mz_r2": NAN, "mz_alpha": NAN, "mz_beta": NAN, "n": n}
    if n == 0:
        return out
    out["rmse"] = float(np.sqrt(np.mean((r - f) ** 2)))
    out["qlike"] = float(np.mean(qlike_loss(r, f)))
    fc, rc = f - f.mean(), r - r.mean()
    sxx = float(fc @ fc)
    if n >= 3 and sxx > 0:
        beta = float(fc @ rc) / sxx
        residual = rc - beta * fc
        syy = float(rc @ rc)
        out["mz_beta"] = beta
        out["mz_alpha"] = float(r.mean() - beta * f.mean())
        out["mz_r2"] = 1.0 - float(residual @ residual) / syy if syy > 0 else NAN
    return out
