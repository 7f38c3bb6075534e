"""False-alarm rate and power of the champion decay test, measured on simulated champions.

    .venv/bin/python benchmarks/bench_health_false_alarms.py

Per-session log losses with mean 1.0 and sd 0.1, right-skewed: lag 0 = i.i.d. 0.8 + Gamma(4,
0.05) (next-session targets); lag 19 = equal-weight MA(19) of standardised Gamma(2) shocks
(losses on overlapping 20-session targets). For T served sessions and alpha it prints the share
of stable series (mean = reference) flagged with tolerance 0 and with the default log-loss
tolerance 0.02, what Student t p-values on the same statistic would have flagged (the textbook
recipe the lag > 0 calibration replaces), and the power against a decay of 3 x tolerance
(mean = reference + 0.06). Then the lag-19 false-alarm rate for other MA(19) shapes.
Each cell: 2,000 simulations, binomial standard error sqrt(r (1 - r) / 2000), e.g. 0.0022 at
r = 0.01 and 0.0049 at r = 0.05. Pure functions, no Dagster.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable

import numpy as np
from scipy import stats

from quant.monitoring.health import HealthTolerances, decay_test, false_alarm_rate

REFERENCE = 1.0
TOLERANCE = HealthTolerances().log_loss
N_SIM = 2_000
SESSIONS = [21, 63, 126]
ALPHAS = [0.01, 0.05]
LAGS = [0, 19]

Simulator = Callable[[np.random.Generator], np.ndarray]


def simulator(sessions: int, lag: int, mean: float, weights: np.ndarray | None = None) -> Simulator:
    """Losses with mean ``mean``, sd 0.1: i.i.d. (lag 0) or an MA(lag) with ``weights``."""
    if lag == 0:
        return lambda rng: mean - 0.2 + rng.gamma(4.0, 0.05, sessions)
    w = np.ones(lag + 1) if weights is None else np.asarray(weights, dtype=float)
    w = w / math.sqrt(float(w @ w))

    def simulate(rng: np.random.Generator) -> np.ndarray:
        shocks = (rng.gamma(2.0, 1.0, sessions + lag) - 2.0) / math.sqrt(2.0)
        return mean + 0.1 * np.convolve(shocks, w, mode="valid")

    return simulate


def student_t_rate(simulate: Simulator, sessions: int, lag: int, alpha: float) -> float:
    """Share flagged if the p-value were Student t (T - 1 df) on the same statistic."""
    rng = np.random.default_rng(0)
    flagged = 0
    for _ in range(N_SIM):
        statistic = decay_test(simulate(rng), REFERENCE, 0.0, lag).statistic
        flagged += stats.t.sf(statistic, sessions - 1) < alpha
    return flagged / N_SIM


def main() -> None:
    started = time.perf_counter()
    print(
        "| lag | T | alpha | false alarms, tol 0 | false alarms, tol 0.02 "
        "| Student t would flag (tol 0) | power at +3 x tol |"
    )
    print("|---|---|---|---|---|---|---|")
    for lag in LAGS:
        for sessions in SESSIONS:
            stable = simulator(sessions, lag, REFERENCE)
            decayed = simulator(sessions, lag, REFERENCE + 3 * TOLERANCE)
            for alpha in ALPHAS:
                strict = false_alarm_rate(stable, REFERENCE, 0.0, lag, alpha, N_SIM)
                tolerant = false_alarm_rate(stable, REFERENCE, TOLERANCE, lag, alpha, N_SIM)
                naive = student_t_rate(stable, sessions, lag, alpha)
                power = false_alarm_rate(decayed, REFERENCE, TOLERANCE, lag, alpha, N_SIM)
                print(
                    f"| {lag} | {sessions} | {alpha} | {strict:.4f} | {tolerant:.4f} "
                    f"| {naive:.4f} | {power:.3f} |"
                )

    print("\nlag 19, T = 63, tolerance 0: false-alarm rate by MA(19) shape\n")
    print("| MA(19) weights | alpha 0.01 | alpha 0.05 |")
    print("|---|---|---|")
    shapes = {
        "equal (overlapping targets)": None,
        "declining 1 .. 0.05": np.linspace(1.0, 0.05, 20),
        "geometric 0.85^k": 0.85 ** np.arange(20),
    }
    for name, weights in shapes.items():
        stable = simulator(63, 19, REFERENCE, weights)
        rates = [false_alarm_rate(stable, REFERENCE, 0.0, 19, a, N_SIM) for a in ALPHAS]
        print(f"| {name} | {rates[0]:.4f} | {rates[1]:.4f} |")
    print(f"\n({N_SIM:,} simulations per cell; {time.perf_counter() - started:.0f} s)")


if __name__ == "__main__":
    main()
