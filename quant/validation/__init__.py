"""The OHLCV data contract: rules, exchange calendars, price adjustment (no Dagster here)."""

from quant.validation.adjust import adjust_prices
from quant.validation.calendars import exchange_sessions
from quant.validation.checks import (
    QUARANTINE_SCHEMA,
    RuleResult,
    ValidationReport,
    empty_quarantine,
    validate_bars,
)
from quant.validation.rules import DEFAULT_RULES, ERROR, RULES, WARN, ValidationRules

__all__ = [
    "DEFAULT_RULES",
    "ERROR",
    "QUARANTINE_SCHEMA",
    "RULES",
    "WARN",
    "RuleResult",
    "ValidationReport",
    "ValidationRules",
    "adjust_prices",
    "empty_quarantine",
    "exchange_sessions",
    "validate_bars",
]
