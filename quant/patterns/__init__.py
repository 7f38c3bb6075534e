"""Pattern oracle: market events per (symbol, date) and their conditional event studies, each
with its doubt (block-bootstrap intervals, HAC p-values, Benjamini–Hochberg q-values and an
out-of-sample check). Pure polars/numpy: no Dagster here."""

from quant.patterns.events import (
    EVENT_DIRECTION,
    EVENTS,
    EventSpec,
    detect_events,
    spec_from_universe,
)

__all__ = ["EVENTS", "EVENT_DIRECTION", "EventSpec", "detect_events", "spec_from_universe"]
