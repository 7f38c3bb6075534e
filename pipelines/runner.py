"""Launch the pipeline's runs from Python: what `make run`, the CLI and the tests share.

One ingestion run covers every symbol (a partition range, executed in one step), and so does
validation: the contract records its verdicts per symbol and a blocked symbol keeps its stored
partition while the others go on. Runs go to the instance in $DAGSTER_HOME, so they appear in
the web UI.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import dagster as dg

PARTITION_TAG = "dagster/partition"
RANGE_START = "dagster/asset_partition_range_start"
RANGE_END = "dagster/asset_partition_range_end"
# Runs execute in process (the Definitions default executor); keep their console log to warnings.
RUN_CONFIG = {"loggers": {"console": {"config": {"log_level": "WARNING"}}}}


def _job(name: str) -> dg.JobDefinition:
    from pipelines.definitions import defs

    return defs.resolve_job_def(name)


def ingest_job() -> dg.JobDefinition:
    return _job("ingest")


def validate_job() -> dg.JobDefinition:
    return _job("validate")


def features_job() -> dg.JobDefinition:
    return _job("build_features")


def context_job() -> dg.JobDefinition:
    return _job("build_market_context")


def labels_job() -> dg.JobDefinition:
    return _job("build_labels")


def retrain_job() -> dg.JobDefinition:
    return _job("retrain")


def sweep_job() -> dg.JobDefinition:
    return _job("sweep")


def monitor_job() -> dg.JobDefinition:
    return _job("monitor")


def walk_forward_job() -> dg.JobDefinition:
    return _job("build_walk_forward")


@dataclass(frozen=True)
class SymbolRun:
    """One symbol's outcome in a validation (or ingestion) run: passed, or blocked and why."""

    symbol: str
    success: bool
    run_id: str
    problems: tuple[str, ...] = ()
    # True: the contract refused the symbol; False with success False: the run itself failed
    # (a full disk, a crash) before it could judge the symbol
    refused: bool = False


@dataclass
class PipelineRun:
    """Outcome of one `run_pipeline` call."""

    ingest: dg.ExecuteJobResult | None = None
    not_ingested: dict[str, list[str]] = field(default_factory=dict)
    validations: dict[str, SymbolRun] = field(default_factory=dict)
    features: list[dg.ExecuteJobResult] = field(default_factory=list)
    context: dg.ExecuteJobResult | None = None
    labels: dg.ExecuteJobResult | None = None
    retrain: dg.ExecuteJobResult | None = None
    monitor: dg.ExecuteJobResult | None = None

    @property
    def blocked(self) -> list[str]:
        return [s for s, r in self.validations.items() if not r.success]

    @property
    def downstream_failures(self) -> list[dg.ExecuteJobResult]:
        """Feature and context runs that failed (a failed check or step)."""
        later = [self.context, self.labels, self.retrain, self.monitor]
        runs = [*self.features, *(r for r in later if r is not None)]
        return [r for r in runs if not r.success]

    @property
    def success(self) -> bool:
        return (
            bool(self.ingest and self.ingest.success)
            and not self.not_ingested
            and not self.blocked
            and not self.downstream_failures
        )


def failed_checks(result: dg.ExecuteJobResult) -> dict[str, list[str]]:
    """ERROR check verdicts of a run by symbol partition (None: not partitioned): what was
    refused and why."""
    failures: dict[str, list[str]] = {}
    for event in result.all_events:
        if event.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        verdict = event.event_specific_data
        if verdict.passed or verdict.severity.value != "ERROR":
            continue
        summary = verdict.metadata.get("summary")
        text = summary.value if summary else verdict.description or "failed"
        failures.setdefault(verdict.partition, []).append(f"{verdict.check_name}: {text}")
    return failures


def failure_messages(result: dg.ExecuteJobResult) -> list[str]:
    """What went wrong in a run: ERROR check verdicts (symbol, rule, summary) and step errors."""
    messages = []
    for partition, problems in failed_checks(result).items():
        prefix = f"{partition} " if partition else ""
        messages.extend(f"{prefix}{problem}" for problem in problems)
    for event in result.all_events:
        if (
            event.is_step_failure
            and "blocking asset check" not in event.step_failure_data.error.message
        ):
            error = event.step_failure_data.error
            # past Dagster's wrappers to the first error of ours (which names its own cause)
            while error.cause is not None and (error.cls_name or "").startswith("Dagster"):
                error = error.cause
            messages.append(f"{event.step_key}: {error.message.strip()}")
    return messages


def execute(
    factory: Callable[[], dg.JobDefinition],
    tags: dict[str, str],
    instance: dg.DagsterInstance,
    run_config: dict[str, object] | None = None,
):
    """One run in this process, tagged with it (so a killed process's run is found and failed
    by ``pipelines.orphans``); runs left behind by dead processes are failed first."""
    from pipelines.orphans import process_tags, reap_dead_runs

    reap_dead_runs(instance)
    return dg.execute_job(
        dg.reconstructable(factory),
        instance=instance,
        tags={**tags, **process_tags()},
        run_config=run_config or RUN_CONFIG,
        raise_on_error=False,
    )


def validate_symbols(
    symbols: Sequence[str], universe_symbols: Sequence[str], instance: dg.DagsterInstance
) -> list[SymbolRun]:
    """One `validate` run per contiguous range of ``symbols`` (one run when they are), each
    symbol judged alone inside it: blocked (with the contract's reasons) or passed."""
    outcomes = []
    for block in contiguous_blocks(symbols, universe_symbols):
        result = execute(validate_job, {RANGE_START: block[0], RANGE_END: block[-1]}, instance)
        problems = failed_checks(result)
        step_errors = [] if result.success else failure_messages(result)
        for symbol in block:
            refused = problems.get(symbol, [])
            passed = result.success and not refused
            outcomes.append(
                SymbolRun(
                    symbol,
                    passed,
                    result.run_id,
                    tuple(refused or ([] if passed else step_errors)),
                    refused=bool(refused),
                )
            )
    return outcomes


def contiguous_range(symbols: Sequence[str], universe_symbols: Sequence[str]) -> tuple[str, str]:
    """First and last symbol of a run over ``symbols``, which must be contiguous in universe order."""
    positions = sorted(universe_symbols.index(s) for s in symbols)
    if positions != list(range(positions[0], positions[-1] + 1)):
        raise ValueError(
            f"symbols {list(symbols)} are not contiguous in the universe order; one run covers a range"
        )
    return universe_symbols[positions[0]], universe_symbols[positions[-1]]


def contiguous_blocks(symbols: Sequence[str], universe_symbols: Sequence[str]) -> list[list[str]]:
    """``symbols`` split into runs of neighbours in universe order (a run covers one range)."""
    blocks: list[list[str]] = []
    previous = None
    for position in sorted(universe_symbols.index(s) for s in symbols):
        if previous is None or position != previous + 1:
            blocks.append([])
        blocks[-1].append(universe_symbols[position])
        previous = position
    return blocks


def run_features(
    symbols: Sequence[str], universe_symbols: Sequence[str], instance: dg.DagsterInstance
) -> list[dg.ExecuteJobResult]:
    """One ``build_features`` run per contiguous range of ``symbols`` (all of them when none is blocked)."""
    return [
        execute(features_job, {RANGE_START: block[0], RANGE_END: block[-1]}, instance)
        for block in contiguous_blocks(symbols, universe_symbols)
    ]


def run_pipeline(
    symbols: Sequence[str] | None = None,
    train: bool = True,
    replace_history: bool = False,
) -> PipelineRun:
    """Ingest ``symbols`` (default: the universe) in one run, validate them in one run (each
    symbol judged alone), then compute features for the symbols that passed and the market
    context; with ``train``, the labels and the ``retrain`` run (models, report, promotion)
    follow. ``replace_history`` lets a delivery replace stored history by less.

    The market context needs every symbol of the universe validated; it (and the models after
    it) is skipped when one is missing.
    """
    from assets.partitions import UNIVERSE

    instance = dg.DagsterInstance.get()
    chosen = list(symbols) if symbols else UNIVERSE.symbols
    for symbol in chosen:
        UNIVERSE.get(symbol)
    first, last = contiguous_range(chosen, UNIVERSE.symbols)
    outcome = PipelineRun()
    ingest_config = {
        **RUN_CONFIG,
        "ops": {"raw_ohlcv": {"config": {"replace_history": replace_history}}},
    }
    outcome.ingest = execute(
        ingest_job, {RANGE_START: first, RANGE_END: last}, instance, ingest_config
    )
    if not outcome.ingest.success:
        return outcome
    outcome.not_ingested = {s: p for s, p in failed_checks(outcome.ingest).items() if s}
    runs = validate_symbols(chosen, UNIVERSE.symbols, instance)
    outcome.validations = {run.symbol: run for run in runs}
    passed = [s for s in chosen if s not in outcome.blocked]
    if passed:
        outcome.features = run_features(passed, UNIVERSE.symbols, instance)
    if _every_symbol_validated(instance, UNIVERSE.symbols):
        outcome.context = execute(context_job, {}, instance)
        if train and not outcome.blocked and not outcome.downstream_failures:
            run_models(outcome, UNIVERSE.symbols, instance)
    return outcome


# The first run's sweep budget: enough trials for the studies to exist and the models to train
# on tuned parameters, small enough for `make run` (the weekly sweep adds trials to the same
# studies; its results are new configurations, judged in shadow).
FIRST_SWEEP = {
    "direction_xgboost_sweep": {"n_trials": 3, "max_boost_rounds": 300},
    "direction_lstm_sweep": {"n_trials": 1, "epochs": 3},
    # the fast families' record with half-yearly refits and a smaller forest: the first build
    # fits in `make run`'s budget (`make walk-forward` builds every family every 63 sessions)
    "walk_forward": {"step": 126, "forest_trees": 20, "xgb_rounds": 150},
}


def first_sweep_config() -> dict[str, object]:
    """Run config of `make run`'s sweep: the budget above (the quick profile keeps its own)."""
    from assets.tuning import QUICK

    if QUICK:
        return RUN_CONFIG
    ops = {name: {"config": config} for name, config in FIRST_SWEEP.items()}
    return {**RUN_CONFIG, "ops": ops}


def run_models(
    outcome: PipelineRun, universe_symbols: Sequence[str], instance: dg.DagsterInstance
) -> None:
    """Labels for the whole universe in one run; the ``sweep`` run (training set, Optuna studies,
    models with the tuned parameters, report with promotion, backtest, signals); then the
    ``monitor`` run (feature drift, champion health), so every asset of the graph is
    materialized."""
    first, last = universe_symbols[0], universe_symbols[-1]
    outcome.labels = execute(labels_job, {RANGE_START: first, RANGE_END: last}, instance)
    if not outcome.labels.success:
        return
    outcome.retrain = execute(sweep_job, {"market/kind": "retrain"}, instance, first_sweep_config())
    if outcome.retrain.success:
        outcome.monitor = execute(monitor_job, {}, instance)


def _every_symbol_validated(instance: dg.DagsterInstance, symbols: Sequence[str]) -> bool:
    """Every symbol has validated bars in the lake (a blocked symbol's partition event is
    recorded with the run, but only a stored file counts)."""
    from resources import build_resources

    lake = build_resources()["lake"]
    return all(lake.exists("ohlcv", s) for s in symbols)


def nightly_job() -> dg.JobDefinition:
    return _job("nightly")


def market_data_config(as_of: str | None) -> dict[str, object]:
    """Run config for the ``market_data`` resource with ``as_of`` replaced. Every field is
    spelled out: run config replaces a configured resource's fields with their defaults."""
    from resources import build_resources

    current = build_resources()["market_data"]
    fields = ("source", "start", "as_of", "sample_dir", "csv_dir", "cache_dir")
    config = {name: getattr(current, name) for name in fields}
    config["as_of"] = as_of
    return {"config": {k: v for k, v in config.items() if v is not None}}


def nightly_run_config(
    as_of: str | None = None, drift: dict[str, object] | None = None
) -> dict[str, object]:
    """The nightly run's config: the data as known on ``as_of`` (None: everything) and the
    drift window ending there."""
    config: dict[str, object] = dict(RUN_CONFIG)
    config["resources"] = {"market_data": market_data_config(as_of)}
    drift_config = {"current_end": as_of, **(drift or {})}
    config["ops"] = {"feature_drift": {"config": {k: v for k, v in drift_config.items() if v}}}
    return config


def run_nightly(
    instance: dg.DagsterInstance, as_of: str | None = None, drift: dict[str, object] | None = None
) -> dg.ExecuteJobResult:
    """One ``nightly`` run over the whole universe (what the schedule launches), optionally
    replaying history as known on ``as_of``."""
    from assets.partitions import UNIVERSE

    tags = {RANGE_START: UNIVERSE.symbols[0], RANGE_END: UNIVERSE.symbols[-1]}
    if as_of:
        tags["market/as_of"] = as_of
    return execute(nightly_job, tags, instance, nightly_run_config(as_of, drift))
