"""Launch the pipeline's runs from Python: what `make run`, the CLI and the tests share.

One ingestion run covers every symbol (a partition range, executed in one step). Validation
then runs once per symbol, so that a symbol failing a blocking check stops only its own run.
Runs go to the instance in $DAGSTER_HOME, so they appear in the web UI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

PARTITION_TAG = "dagster/partition"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
IN_PROCESS = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _job(name: str) -> dg.JobDefinition:
    from pipelines.definitions import defs

    return defs.resolve_job_def(name)


def ingest_job() -> dg.JobDefinition:
    return _job("ingest")


def validate_job() -> dg.JobDefinition:
    return _job("validate")


@dataclass
class PipelineRun:
    """Outcome of one `run_pipeline` call."""

    ingest: dg.ExecuteJobResult | None = None
    validations: dict[str, dg.ExecuteJobResult] = field(default_factory=dict)

    @property
    def blocked(self) -> list[str]:
        return [s for s, r in self.validations.items() if not r.success]

    @property
    def success(self) -> bool:
        return bool(self.ingest and self.ingest.success) and not self.blocked


def _execute(
    factory: Callable[[], dg.JobDefinition], tags: dict[str, str], instance: dg.DagsterInstance
):
    return dg.execute_job(
        dg.reconstructable(factory),
        instance=instance,
        tags=tags,
        run_config=IN_PROCESS,
        raise_on_error=False,
    )


def contiguous_range(symbols: Sequence[str], universe_symbols: Sequence[str]) -> tuple[str, str]:
    """First and last symbol of a run over ``symbols``, which must be contiguous in universe order."""
    positions = sorted(universe_symbols.index(s) for s in symbols)
    if positions != list(range(positions[0], positions[-1] + 1)):
        raise ValueError(
            f"symbols {list(symbols)} are not contiguous in the universe order; one run covers a range"
        )
    return universe_symbols[positions[0]], universe_symbols[positions[-1]]


def run_pipeline(
    symbols: Sequence[str] | None = None,
    instance: dg.DagsterInstance | None = None,
    on_symbol: Callable[[str, dg.ExecuteJobResult], None] | None = None,
) -> PipelineRun:
    """Ingest ``symbols`` (default: the universe) in one run, then validate each in its own run."""
    from assets.partitions import UNIVERSE

    instance = instance or dg.DagsterInstance.get()
    chosen = list(symbols) if symbols else UNIVERSE.symbols
    for symbol in chosen:
        UNIVERSE.get(symbol)
    first, last = contiguous_range(chosen, UNIVERSE.symbols)
    outcome = PipelineRun()
    outcome.ingest = _execute(ingest_job, {RANGE_START: first, RANGE_END: last}, instance)
    if not outcome.ingest.success:
        return outcome
    for symbol in chosen:
        result = _execute(validate_job, {PARTITION_TAG: symbol}, instance)
        outcome.validations[symbol] = result
        if on_symbol:
            on_symbol(symbol, result)
    return outcome
