"""Feature engineering over the whole (symbol, date) panel with polars expressions (no Dagster).

Work in progress (issue 4): the TA-Lib-compatible building blocks are here and tested against
TA-Lib; the feature families, ``compute_features`` and ``catalog`` come next.
"""
