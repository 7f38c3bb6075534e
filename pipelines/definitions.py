"""The code location: the one ``Definitions`` object Dagster loads (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets import (
    backtest,
    evaluation,
    features,
    freshness,
    ingestion,
    labels,
    monitoring,
    patterns,
    promotion,
    serving,
    training,
    tuning,
    validation,
    walk_forward,
)
from pipelines.alerts import ALERT_SENSORS
from pipelines.automation import SCHEDULES, SENSORS, TriggerThresholds
from pipelines.jobs import JOBS
from pipelines.orphans import dead_run_reaper
from resources import build_resources, settings

settings.disable_telemetry()

defs = dg.Definitions(
    assets=dg.load_assets_from_modules(
        [
            ingestion,
            validation,
            features,
            labels,
            training,
            tuning,
            evaluation,
            backtest,
            patterns,
            monitoring,
            promotion,
            serving,
            walk_forward,
        ]
    ),
    asset_checks=dg.load_asset_checks_from_modules([validation, features, freshness]),
    # Each step in its own process costs ~6 s of interpreter start-up on these machines; the
    # steps here are small and vectorized, so one process per run is faster.
    executor=dg.in_process_executor,
    jobs=JOBS,
    schedules=SCHEDULES,
    sensors=[*SENSORS, *ALERT_SENSORS, dead_run_reaper],
    resources={**build_resources(), "trigger_thresholds": TriggerThresholds.from_env()},
)
