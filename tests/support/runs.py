"""Launch real Dagster runs over a range of symbol partitions (one run, as `make run` does)."""

from __future__ import annotations

from collections.abc import Sequence

import dagster as dg

from assets.partitions import UNIVERSE

RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"


def range_tags(first: str, last: str) -> dict[str, str]:
    symbols = UNIVERSE.symbols
    assert symbols.index(first) <= symbols.index(last), "range must follow universe order"
    return {RANGE_START: first, RANGE_END: last}


def symbols_between(first: str, last: str) -> list[str]:
    symbols = UNIVERSE.symbols
    return symbols[symbols.index(first) : symbols.index(last) + 1]


def materialize_range(
    assets: Sequence[dg.AssetsDefinition],
    first: str,
    last: str,
    resources: dict[str, object],
    instance: dg.DagsterInstance,
) -> dg.ExecuteInProcessResult:
    """Materialize ``assets`` for the symbols ``first..last`` in ONE run on ``instance``."""
    return dg.materialize(
        assets,
        instance=instance,
        resources=resources,
        tags=range_tags(first, last),
        raise_on_error=False,
    )


def materializations(
    result: dg.ExecuteInProcessResult, asset: str
) -> dict[str, dg.AssetMaterialization]:
    """The run's materialization events for ``asset``, by partition."""
    return {m.partition: m for m in result.asset_materializations_for_node(asset)}
