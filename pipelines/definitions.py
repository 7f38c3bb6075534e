"""The code location: the one ``Definitions`` object Dagster loads (see workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from assets import ingestion
from pipelines.jobs import JOBS
from resources import build_resources, settings

settings.disable_telemetry()

defs = dg.Definitions(
    assets=dg.load_assets_from_modules([ingestion]),
    jobs=JOBS,
    resources=build_resources(),
)
