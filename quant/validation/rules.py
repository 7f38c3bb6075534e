"""Thresholds of the data contract, in one place, with the reason for each."""

from __future__ import annotations

from dataclasses import dataclass

from quant.universe import AssetClass, Instrument

ERROR = "ERROR"
WARN = "WARN"

COMPLETENESS = "completeness"
OHLC_LOGIC = "ohlc_logic"
PRICE_SANITY = "price_sanity"
VOLUME_SANITY = "volume_sanity"
TEMPORAL_INTEGRITY = "temporal_integrity"
RULES = (COMPLETENESS, OHLC_LOGIC, PRICE_SANITY, VOLUME_SANITY, TEMPORAL_INTEGRITY)


@dataclass(frozen=True)
class ValidationRules:
    """The contract's numbers.

    - ``max_missing_share``: a trailing year (``completeness_window`` sessions) with this share of
      exchange sessions missing or more is incomplete; models must not learn from it.
    - ``min_usable_sessions``: after trimming incomplete early history, at least this much must
      remain, and the most recent year must be complete, or the symbol is blocked.
    - ``isolated_share``: up to this share of bad bars (at least one) is a few bad prints, which are
      quarantined with a warning; more is a systemic problem that blocks the symbol.
    - ``max_abs_return``: an adjusted close-to-close move beyond this is an unadjusted split or a
      broken series. Volatility indices (sector ``volatility``) genuinely move more: ^VIX rose
      116% on 2018-02-05, so they get ``max_abs_return_volatility``.
    """

    max_missing_share: float = 0.05
    completeness_window: int = 252
    min_usable_sessions: int = 252
    isolated_share: float = 0.01
    max_abs_return: float = 0.50
    max_abs_return_volatility: float = 2.00
    examples: int = 10  # offending rows shown in check metadata

    def return_threshold(self, instrument: Instrument) -> float:
        if instrument.asset_class is AssetClass.INDEX and instrument.sector == "volatility":
            return self.max_abs_return_volatility
        return self.max_abs_return

    def isolated_limit(self, rows: int) -> int:
        """How many bad bars still count as isolated in a series of ``rows`` bars."""
        return max(1, int(rows * self.isolated_share))


DEFAULT_RULES = ValidationRules()
