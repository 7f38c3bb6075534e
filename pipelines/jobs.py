"""Jobs: named selections of assets that runs, schedules and sensors launch."""

from __future__ import annotations

import dagster as dg

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.groups("ingestion"),
    description="Fetch daily bars for the universe into raw_ohlcv (one run, one step).",
)

# Everything the pipeline has; `make run` materializes it for all symbols in one run.
pipeline_job = dg.define_asset_job(
    "pipeline",
    selection=dg.AssetSelection.all(),
    description="The whole pipeline over the bundled sample (what `make run` launches).",
)

JOBS = [ingest_job, pipeline_job]
