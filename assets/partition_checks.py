"""Asset-check results per partition from a step that covers several partitions.

Dagster records an ``AssetCheckResult`` against the step's single partition only; a step over a
range of symbols (one process for the whole universe) would record one verdict for all of them,
and a blocking failure would stop every symbol. These helpers record one evaluation per symbol
partition instead, so a bad symbol fails its own check while the others go on; the asset that
consumes the data is then the gate for each symbol.
"""

from collections.abc import Iterable, Iterator, Mapping

import dagster as dg
from dagster._core.definitions.asset_checks.asset_check_evaluation import AssetCheckEvaluation

# Dagster names a check's output "<asset>_<check>" (both as plain identifiers)


def check_output_name(asset: str, check: str) -> str:
    """The op output Dagster expects for the check ``check`` on ``asset``."""
    return f"{asset}_{check}"


def partition_evaluation(
    asset: str,
    check: str,
    partition: str,
    passed: bool,
    severity: dg.AssetCheckSeverity,
    description: str,
    metadata: Mapping[str, object] | None = None,
) -> AssetCheckEvaluation:
    """One check verdict recorded against one partition (never blocking the whole step)."""
    normalized = {
        k: (v if isinstance(v, dg.MetadataValue) else _coerce(v))
        for k, v in (metadata or {}).items()
    }
    return AssetCheckEvaluation(
        asset_key=dg.AssetKey(asset),
        check_name=check,
        passed=passed,
        metadata=normalized,
        severity=severity,
        description=description,
        blocking=False,
        partition=partition,
        target_materialization_data=None,
    )


def check_outputs(asset: str, checks: Iterable[str]) -> Iterator[dg.Output]:
    """The (empty) outputs that mark the checks done for the step, after their evaluations."""
    for check in checks:
        yield dg.Output(None, output_name=check_output_name(asset, check))


def _coerce(value: object) -> dg.MetadataValue:
    if isinstance(value, bool):
        return dg.MetadataValue.bool(value)
    if isinstance(value, int):
        return dg.MetadataValue.int(value)
    if isinstance(value, float):
        return dg.MetadataValue.float(value)
    if isinstance(value, dict | list):
        return dg.MetadataValue.json(value)
    if value is None:
        return dg.MetadataValue.null()
    return dg.MetadataValue.text(str(value))
