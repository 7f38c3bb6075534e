"""Run ingestion and then validation for one symbol, as the pipeline does, on a test instance."""

from __future__ import annotations

import dagster as dg

from assets.ingestion import raw_ohlcv
from assets.validation import ohlcv, ohlcv_expectations, raw_ohlcv_contract
from quant.validation.rules import RULES

VALIDATION_SELECTION = dg.AssetSelection.checks(
    *(dg.AssetCheckKey(dg.AssetKey("raw_ohlcv"), rule) for rule in RULES)
) | dg.AssetSelection.assets("ohlcv", "ohlcv_quarantine")


def ingest(symbol: str, resources: dict, instance: dg.DagsterInstance) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_ohlcv],
        instance=instance,
        resources=resources,
        partition_key=symbol,
        raise_on_error=False,
    )


def validate(
    symbol: str, resources: dict, instance: dg.DagsterInstance
) -> dg.ExecuteInProcessResult:
    return dg.materialize(
        [raw_ohlcv, ohlcv, raw_ohlcv_contract, ohlcv_expectations],
        selection=VALIDATION_SELECTION,
        instance=instance,
        resources=resources,
        partition_key=symbol,
        raise_on_error=False,
    )


def check_verdicts(result: dg.ExecuteInProcessResult) -> dict[str, tuple[bool, str]]:
    """``{check_name: (passed, severity)}`` for every check evaluated in the run."""
    return {
        e.check_name: (e.passed, e.severity.value) for e in result.get_asset_check_evaluations()
    }
