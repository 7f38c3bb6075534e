"""What a new user does: `market materialize` (what `make run` calls), then the web UI.

Real processes over a temporary Dagster instance: the CLI launches one run over all 26 symbols,
and a real dagster-webserver then reports raw_ohlcv with 26 materialized partitions.
"""

import subprocess

import pytest

from tests.support.processes import BIN, PROJECT_ROOT, dagster_webserver, graphql, isolated_env

pytestmark = pytest.mark.slow


def test_one_run_materializes_all_symbols_and_the_ui_shows_them(tmp_path):
    env = isolated_env(tmp_path)
    run = subprocess.run(
        [str(BIN / "market"), "materialize"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 0, run.stdout[-2000:] + run.stderr[-4000:]
    summary = run.stdout
    assert "26 symbols" in summary and "AAPL" in summary and "^NSEBANK" in summary
    assert len(list((tmp_path / "data/lake/raw_ohlcv").glob("*.parquet"))) == 26

    sql = subprocess.run(
        [str(BIN / "market"), "sql", "SELECT count(DISTINCT symbol) AS n FROM raw_ohlcv"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sql.returncode == 0 and sql.stdout.split()[-1] == "26", sql.stdout + sql.stderr

    with dagster_webserver(env) as port:
        data = graphql(
            port,
            """{
              assetNodeOrError(assetKey: {path: ["raw_ohlcv"]}) {
                ... on AssetNode { groupName partitionStats { numMaterialized numPartitions numFailed } }
              }
              runsOrError { ... on Runs { results { status tags { key value } } } }
            }""",
        )
    node = data["assetNodeOrError"]
    assert node["groupName"] == "ingestion"
    assert node["partitionStats"] == {"numMaterialized": 26, "numPartitions": 26, "numFailed": 0}
    runs = data["runsOrError"]["results"]
    assert len(runs) == 1 and runs[0]["status"] == "SUCCESS"
    tags = {t["key"]: t["value"] for t in runs[0]["tags"]}
    assert tags["dagster/asset_partition_range_start"] == "^GSPC"
    assert tags["dagster/asset_partition_range_end"] == "SLB"
