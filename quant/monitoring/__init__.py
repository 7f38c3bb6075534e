"""Production monitoring: is the data the models now score still like what they learned from?

psi, feature_drift, DriftReport, DriftThresholds,
drift_by_symbol, current_window                                    (drift)
"""

from quant.monitoring.drift import (
    DriftReport,
    DriftThresholds,
    current_window,
    drift_by_symbol,
    feature_drift,
    psi,
)

__all__ = [
    "DriftReport",
    "DriftThresholds",
    "current_window",
    "drift_by_symbol",
    "feature_drift",
    "psi",
]
