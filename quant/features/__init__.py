"""Feature engineering over the whole (symbol, date) panel with polars expressions (no Dagster).

    compute_features(bars)  -> one row per (symbol, date), one column per feature
    catalog()               -> name, family, description, params, warmup, reference per feature

Families: trend, momentum, volatility, volume, pattern, statistical (one module each). Standard
indicators follow TA-Lib's definitions; each catalog ``reference`` is checked against TA-Lib in
the tests.
"""

from quant.features.engine import FEATURES, catalog, compute_features, feature_names
from quant.features.spec import Family, Feature

__all__ = ["FEATURES", "Family", "Feature", "catalog", "compute_features", "feature_names"]
