"""What a new user does: `market materialize` (what `make run` calls), then the web UI.

Real processes over a temporary Dagster instance: the CLI launches one ingestion run over all 26
symbols, one validation run per symbol, features, context, labels and the retrain (tiny models);
a real dagster-webserver then reports every asset materialized and every check green, and a real
browser (Debian's chromium through Playwright) opens the asset graph, the features checks and
catalog, today's signals, and the lineage of the signals back to the raw bars.
"""

import subprocess

import pytest

from assets.partitions import UNIVERSE
from tests.support.browser import chromium_page, open_page, screenshot
from tests.support.processes import (
    BIN,
    PROJECT_ROOT,
    dagster_webserver,
    graphql,
    isolated_env,
    run_market,
)

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
    assert (
        "26 symbols" in summary
        and "26 symbols validated (1 run(s))" in summary
        and "^NSEBANK" in summary
    )
    assert "BLOCKED" not in run.stderr
    assert len(list((tmp_path / "data/lake/raw_ohlcv").glob("*.parquet"))) == 26
    assert len(list((tmp_path / "data/lake/ohlcv").glob("*.parquet"))) == 26
    assert len(list((tmp_path / "data/lake/features").glob("*.parquet"))) == 26
    assert (tmp_path / "data/lake/market_context.parquet").exists()
    assert "features run" in summary and "market_context run" in summary and "FAILED" not in summary
    assert (tmp_path / "data/reports/great_expectations/AAPL/index.html").exists()
    assert "labels run" in summary and "sweep + retrain run" in summary and "monitor run" in summary
    # the report is headed by the scoreboard (cross-sectional IC over the equities, then every
    # model per group beside per-symbol baselines with Holm-adjusted p-values), then the
    # walk-forward record per year, then the latest models' window
    assert "scoreboard: cross-sectional IC per date over the equities" in summary
    board = summary.index("scoreboard: each model per symbol, averaged within its group")
    assert board < summary.index("walk-forward record (refit every step sessions")
    assert "p_holm" in summary and "symbol_har" in summary and "previous_direction" in summary
    assert "symbol_prior" in summary and "p_value_vs_baseline" in summary
    assert (
        "direction: latest models, out of sample (validation window, selection models)" in summary
    )
    assert "majority_class" in summary and "naive_trailing_20d" in summary
    assert (tmp_path / "data/mlflow/mlflow.db").exists()
    assert (tmp_path / "data/lake/model_report.parquet").exists()

    sql = subprocess.run(
        [str(BIN / "market"), "sql", "SELECT count(DISTINCT symbol) AS n FROM raw_ohlcv"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert sql.returncode == 0 and sql.stdout.split()[-1] == "26", sql.stdout + sql.stderr

    import polars as pl

    stored = pl.read_parquet(tmp_path / "data/lake/signals.parquet")
    aapl = stored.filter(pl.col("symbol") == "AAPL").row(0, named=True)
    assert "signals: latest session" in summary and aapl["signal"] in ("BUY", "SELL", "HOLD")

    def market(*args: str) -> subprocess.CompletedProcess:
        return run_market(env, *args, timeout=120)

    predicted = market("predict", "AAPL")
    assert predicted.returncode == 0 and aapl["signal"] in predicted.stdout, predicted.stderr
    assert not aapl["stale"] and "AAPL: data is stale" not in predicted.stdout
    # the sample's ^DJI ends 2025-07-11, 222 NYSE sessions before its equities' 2026-05-29
    dji = stored.filter(pl.col("symbol") == "^DJI").row(0, named=True)
    assert dji["stale"] and dji["signal"] == "HOLD" and dji["position"] == 0
    assert str(dji["data_date"]) == "2025-07-11" and dji["sessions_behind"] == 222
    held = market("predict", "^DJI")
    assert held.returncode == 0, held.stderr
    assert (
        "^DJI: data is stale — last bar 2025-07-11, 222 NYSE sessions behind the run date "
        "2026-05-29; signal held (HOLD)"
    ) in held.stdout
    summarized = market("summary")
    assert summarized.returncode == 0 and "sessions_behind" in summarized.stdout
    unknown = market("predict", "NOPE")
    assert unknown.returncode == 2 and "'NOPE' is not in the universe" in unknown.stderr
    backtested = market("backtest")
    assert backtested.returncode == 0 and "S&P 500 buy and hold" in backtested.stdout
    assert "(the walk-forward record, per year, daily rebalanced)" in backtested.stdout
    view = market("sql", "SELECT signal FROM signals WHERE symbol = 'AAPL'")
    assert view.returncode == 0 and aapl["signal"] in view.stdout, view.stderr

    with dagster_webserver(env) as port:
        browse_the_ui(f"http://127.0.0.1:{port}", aapl)
        data = graphql(
            port,
            """{
              raw: assetNodeOrError(assetKey: {path: ["raw_ohlcv"]}) {
                ... on AssetNode { groupName partitionStats { numMaterialized numPartitions numFailed } }
              }
              ohlcv: assetNodeOrError(assetKey: {path: ["ohlcv"]}) {
                ... on AssetNode { groupName partitionStats { numMaterialized numPartitions numFailed } }
              }
              features: assetNodeOrError(assetKey: {path: ["features"]}) {
                ... on AssetNode { groupName partitionStats { numMaterialized numPartitions numFailed } }
              }
              assetNodes { assetKey { path } assetMaterializations(limit: 1) { runId } }
              signals: assetNodeOrError(assetKey: {path: ["signals"]}) {
                ... on AssetNode { groupName assetMaterializations(limit: 1) { runId } }
              }
              report: assetNodeOrError(assetKey: {path: ["model_report"]}) {
                ... on AssetNode { groupName assetMaterializations(limit: 1) { runId } }
              }
              runsOrError { ... on Runs { results { status jobName tags { key value } } } }
            }""",
        )
    for asset, group in (("raw", "ingestion"), ("ohlcv", "validation"), ("features", "features")):
        node = data[asset]
        assert node["groupName"] == group
        assert node["partitionStats"] == {
            "numMaterialized": 26,
            "numPartitions": 26,
            "numFailed": 0,
        }
    # the whole graph is materialized (green): no asset left without a materialization
    unmaterialized = [
        n["assetKey"]["path"][-1] for n in data["assetNodes"] if not n["assetMaterializations"]
    ]
    assert unmaterialized == [], unmaterialized
    assert data["report"]["groupName"] == "evaluation"
    assert data["signals"]["groupName"] == "serving"
    assert len(data["signals"]["assetMaterializations"]) == 1
    assert len(data["report"]["assetMaterializations"]) == 1
    runs = data["runsOrError"]["results"]
    assert all(r["status"] == "SUCCESS" for r in runs)
    ingest = [r for r in runs if r["jobName"] == "ingest"]
    assert len(ingest) == 1  # all 26 symbols fetched in ONE run
    tags = {t["key"]: t["value"] for t in ingest[0]["tags"]}
    assert tags["dagster/asset_partition_range_start"] == "^GSPC"
    assert tags["dagster/asset_partition_range_end"] == "SLB"
    assert [r["jobName"] for r in runs].count("sweep") == 1
    assert [r["jobName"] for r in runs].count("monitor") == 1
    (validate,) = [r for r in runs if r["jobName"] == "validate"]  # one run for all symbols
    tags = {t["key"]: t["value"] for t in validate["tags"]}
    assert tags["dagster/asset_partition_range_start"] == UNIVERSE.symbols[0]
    assert tags["dagster/asset_partition_range_end"] == UNIVERSE.symbols[-1]


GROUPS = [
    "ingestion",
    "validation",
    "features",
    "labels",
    "training",
    "tuning",
    "evaluation",
    "monitoring",
    "serving",
]


def browse_the_ui(base: str, aapl: dict) -> None:
    """What a person checks in the web UI, in a real browser, with screenshots as artifacts."""
    with chromium_page() as page:
        text = open_page(page, f"{base}/asset-groups", settle_ms=3000)
        assert all(group in text for group in GROUPS), text[:2000]
        screenshot(page, "asset_graph")

        text = open_page(page, f"{base}/assets/features?view=checks")
        for check in ("features_no_lookahead", "features_null_share", "features_variance"):
            assert check in text
        screenshot(page, "features_checks")
        text = open_page(page, f"{base}/assets/features")
        assert "feature_count" in text and "catalog" in text and "sma_dist_200" in text
        screenshot(page, "features_overview")

        open_page(page, f"{base}/assets/signals")
        row = page.locator("tr", has=page.locator("td", has_text="signals"))
        row.filter(has_text="Show Markdown").first.get_by_text("Show Markdown").click()
        page.wait_for_timeout(1000)
        table = page.get_by_role("dialog").inner_text()
        line = next(x for x in table.splitlines() if x.startswith("AAPL\t"))
        cells = line.split("\t")
        assert cells[1] == str(aapl["date"]) and cells[2] == aapl["signal"], line
        screenshot(page, "signals")

        text = open_page(
            page,
            f"{base}/assets/signals?view=lineage&lineageScope=upstream&lineageDepth=6",
            settle_ms=3000,
        )
        for upstream in ("raw_ohlcv", "ohlcv", "features", "training_set", "model_report"):
            assert upstream in text, upstream
        screenshot(page, "signals_lineage")


def test_a_blocked_symbol_is_reported_with_its_rule_and_the_others_go_on(tmp_path, sample_panel):
    import polars as pl

    csv_dir = tmp_path / "csv"
    csv_dir.mkdir()
    for symbol in ("AAPL", "MSFT", "GOOGL"):
        bars = sample_panel.filter(
            (pl.col("symbol") == symbol) & (pl.col("date") >= pl.date(2023, 1, 1))
        ).drop("symbol")
        if symbol == "MSFT":  # an unadjusted 4:1 split
            early = pl.col("date") < pl.date(2024, 3, 1)
            bars = bars.drop("adj_close").with_columns(
                *[
                    pl.when(early).then(pl.col(c) * 4).otherwise(pl.col(c)).alias(c)
                    for c in ("open", "high", "low", "close")
                ]
            )
        bars.write_csv(csv_dir / f"{symbol}.csv")
    env = isolated_env(tmp_path, MARKET_SOURCE="csv", MARKET_CSV_DIR=str(csv_dir))
    run = subprocess.run(
        [str(BIN / "market"), "materialize", "--symbols", "AAPL", "MSFT", "GOOGL"],
        cwd=PROJECT_ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert run.returncode == 1, run.stdout + run.stderr
    assert "BLOCKED MSFT:" in run.stderr
    assert "price_sanity: 1 adjusted daily move(s) beyond ±50%; first 2024-03-01" in run.stderr
    lake = tmp_path / "data" / "lake" / "ohlcv"
    assert sorted(p.name for p in lake.glob("*.parquet")) == ["AAPL.parquet", "GOOGL.parquet"]
    # the symbols that passed still get their features (one run each: MSFT sits between them)
    features = tmp_path / "data" / "lake" / "features"
    assert sorted(p.name for p in features.glob("*.parquet")) == ["AAPL.parquet", "GOOGL.parquet"]
    # no models were trained (the universe is incomplete): the CLI says what is missing
    predict = run_market(env, "predict", "AAPL", timeout=120)
    assert predict.returncode == 2
    assert "`signals` has not been materialized" in predict.stderr
    assert "market_context skipped" in run.stdout
