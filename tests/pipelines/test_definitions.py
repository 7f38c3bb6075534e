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
    assert defs.resolve_job_def("ingest") is not None


CONTRACT = ["completeness", "ohlc_logic", "price_sanity", "volume_sanity", "temporal_integrity"]


def test_contract_checks_are_per_symbol_and_never_stop_the_other_symbols():
    graph = defs.resolve_asset_graph()
    checks = {
        key.name: graph.get_check_spec(key)
        for key in graph.asset_check_keys
        if key.asset_key == dg.AssetKey("raw_ohlcv")
    }
    assert sorted(checks) == sorted([*CONTRACT, "delivery"])
    partitions = graph.get(dg.AssetKey("raw_ohlcv")).partitions_def
    # recorded per symbol partition; the gate for each symbol is ``ohlcv`` itself, so a bad
    # symbol cannot block the step the other symbols share
    assert all(spec.partitions_def == partitions and not spec.blocking for spec in checks.values())
    validate = defs.resolve_job_def("validate")
    assert {str(k.path[0]) for k in validate.asset_layer.executable_asset_keys} == {
        "ohlcv",
        "ohlcv_quarantine",
    }
    selected = {k.name for k in validate.asset_layer.asset_graph.asset_check_keys}
    assert set(CONTRACT) <= selected
    ingest = defs.resolve_job_def("ingest")
    assert "delivery" in {k.name for k in ingest.asset_layer.asset_graph.asset_check_keys}


def test_the_repository_builds_with_every_job_the_daemon_loads():
    # a job named like an asset breaks the code server (the daemon) though `validate` passes
    repository = defs.get_repository_def()
    jobs = {job.name for job in repository.get_all_jobs()}
    assert {"nightly", "retrain", "sweep", "monitor", "build_walk_forward"} <= jobs
