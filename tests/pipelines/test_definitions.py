import subprocess

import dagster as dg

from assets.partitions import UNIVERSE
from pipelines.definitions import defs
from tests.support.processes import BIN, PROJECT_ROOT, isolated_env


def test_code_location_validates_with_the_dagster_cli(tmp_path):
    result = subprocess.run(
        [str(BIN / "dagster"), "definitions", "validate", "-w", "workspace.yaml"],
        cwd=PROJECT_ROOT,
        env=isolated_env(tmp_path),
        capture_output=True,
        text=True,
        timeout=180,
    )
    assert result.returncode == 0, result.stdout + result.stderr
    assert "All code locations passed validation" in result.stdout + result.stderr


def test_raw_ohlcv_is_partitioned_by_the_universe_and_runs_in_one_step():
    graph = defs.resolve_asset_graph()
    node = graph.get(dg.AssetKey("raw_ohlcv"))
    assert node.partitions_def.get_partition_keys() == UNIVERSE.symbols
    assert node.backfill_policy == dg.BackfillPolicy.single_run()
    assert node.group_name == "ingestion"
    for name in ("ingest", "pipeline"):
        assert defs.resolve_job_def(name) is not None
