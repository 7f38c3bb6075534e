"""Retention and backup on real stores: `market gc` never removes what served or what the
landing needs to rebuild a partition; `market backup` copies live SQLite stores consistently."""

import json
import sqlite3
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import polars as pl
import pytest

from pipelines.cli import main
from quant.bars import conform_bars
from resources.backup import backup_database, backup_stores
from resources.control import OperatorControl
from resources.landing import RawLanding
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking
from resources.retention import compact_landing, gc
from resources.sources.base import Delivery, DeliveryMode

NOW = datetime(2026, 12, 1, tzinfo=UTC)


def bars(first: date, days: int, close: float = 10.0) -> pl.DataFrame:
    dates = [first + timedelta(days=i) for i in range(days)]
    return conform_bars(
        pl.DataFrame(
            {
                "symbol": "AAPL",
                "date": dates,
                "open": close,
                "high": close + 1,
                "low": close - 1,
                "close": close,
                "volume": 100.0,
            }
        )
    )


def land(landing: RawLanding, frame: pl.DataFrame, mode: DeliveryMode, days_ago: int) -> None:
    landing.land(
        Delivery(
            "AAPL", frame, "sample", mode, None, None, fetched_at=NOW - timedelta(days=days_ago)
        )
    )


def test_compaction_folds_old_receipts_and_rebuilds_the_same_partition(tmp_path):
    landing = RawLanding(root=str(tmp_path / "raw"))
    land(landing, bars(date(2024, 1, 1), 10), DeliveryMode.SNAPSHOT, 300)
    land(landing, bars(date(2024, 1, 1), 20), DeliveryMode.SNAPSHOT, 200)
    land(landing, bars(date(2024, 1, 1), 5), DeliveryMode.SNAPSHOT, 150)  # refused: shorter
    land(landing, bars(date(2024, 1, 21), 3, close=11.0), DeliveryMode.INCREMENTAL, 120)
    land(landing, bars(date(2024, 1, 24), 2, close=12.0), DeliveryMode.INCREMENTAL, 5)  # recent
    before = landing.rebuild("sample", "AAPL")
    folder = landing.folder("sample", "AAPL")
    assert len(list(folder.glob("*.json"))) == 5 and before.height == 25

    done = compact_landing(landing, landing_days=90, dry_run=False, now=NOW)
    receipts = sorted(folder.glob("*.json"))
    assert done.compacted == ["sample/AAPL"] and done.receipts == 4
    assert len(receipts) == 2  # the compacted snapshot and the recent delivery
    compacted = json.loads(receipts[0].read_text())
    assert compacted["mode"] == "snapshot" and compacted["details"]["compacted_receipts"] == "4"
    assert landing.rebuild("sample", "AAPL").equals(before)  # nothing delivered is lost
    referenced = {json.loads(p.read_text())["bars_file"] for p in receipts}
    assert {p.name for p in folder.glob("bars-*.parquet")} == referenced
    # a second pass has nothing old enough to fold twice
    again = compact_landing(landing, landing_days=90, dry_run=False, now=NOW)
    assert again.receipts == 0 and landing.rebuild("sample", "AAPL").equals(before)


def registered(tracking: MlflowTracking, name: str, tags: list[dict[str, str]]) -> list[str]:
    """Versions of ``name`` with ``tags`` each, every one with a run holding an artifact."""
    client = tracking.client()
    experiment = tracking.experiment_id("direction")
    client.create_registered_model(name)
    artifact_dirs = []
    for version_tags in tags:
        run = client.create_run(experiment)
        note = Path(tracking.artifact_root) / "note.txt"
        note.parent.mkdir(parents=True, exist_ok=True)
        note.write_text("model")
        client.log_artifact(run.info.run_id, str(note))
        client.set_terminated(run.info.run_id)
        version = client.create_model_version(
            name, f"{run.info.artifact_uri}/note.txt", run.info.run_id, tags=version_tags
        )
        artifact_dirs.append(run.info.artifact_uri.removeprefix("file://"))
        assert version.version
    return artifact_dirs


def test_gc_keeps_served_versions_aliases_and_the_newest(tmp_path):
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "art")
    )
    served = {"promotion": "no champion yet: first model serves"}
    rejected = {"shadow_decision": "rejected", "shadow_status": "rejected"}
    promoted = {"shadow_decision": "promoted", "shadow_status": "promoted"}
    tags = [served, rejected, rejected, promoted, rejected, rejected, rejected, {}, {}]
    artifacts = registered(tracking, "direction_xgboost", tags)
    tracking.set_alias("direction_xgboost", CHAMPION, "4")
    tracking.set_alias("direction_xgboost", CHALLENGER, "6")
    control = OperatorControl(root=str(tmp_path / "control"))
    landing = RawLanding(root=str(tmp_path / "raw"))

    dry = gc(tracking, control, landing, keep_versions=2, landing_days=90, dry_run=True)
    assert dry.versions == [
        "direction_xgboost/7",
        "direction_xgboost/5",
        "direction_xgboost/3",
        "direction_xgboost/2",
    ]
    assert len(tracking.client().search_model_versions("name = 'direction_xgboost'")) == 9

    done = gc(tracking, control, landing, keep_versions=2, landing_days=90)
    left = {
        str(v.version)
        for v in tracking.client().search_model_versions("name = 'direction_xgboost'")
    }
    # 1 and 4 served, 6 is the challenger, 8 and 9 the newest two
    assert left == {"1", "4", "6", "8", "9"} and len(done.versions) == 4
    for number, folder in enumerate(artifacts, start=1):
        assert Path(folder).exists() is (str(number) in left), number  # artifacts purged
    assert str(tracking.version_by_alias("direction_xgboost", CHAMPION).version) == "4"


def test_backup_is_consistent_while_a_writer_holds_a_transaction(tmp_path):
    source = tmp_path / "store.db"
    with sqlite3.connect(source) as con:
        con.execute("CREATE TABLE runs (id INTEGER)")
        con.executemany("INSERT INTO runs VALUES (?)", [(i,) for i in range(1000)])
    writer = sqlite3.connect(source)
    writer.execute("BEGIN")
    writer.execute("INSERT INTO runs VALUES (-1)")  # not committed yet
    copy = backup_database(source, tmp_path / "backup" / "store.db")
    writer.rollback()
    writer.close()
    with sqlite3.connect(copy.copy) as con:
        assert con.execute("SELECT count(*), min(id) FROM runs").fetchone() == (1000, 0)


def test_market_backup_copies_every_store_under_its_relative_path(tmp_path, monkeypatch, capsys):
    home = tmp_path / "dagster_home"
    for relative in ("history/runs.db", "history/runs/abc.db", "schedules/schedules.db"):
        path = home / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        with sqlite3.connect(path) as con:
            con.execute("CREATE TABLE t (x)")
    mlflow_db = tmp_path / "mlflow.db"
    with sqlite3.connect(mlflow_db) as con:
        con.execute("CREATE TABLE registered_models (name)")
        con.execute("INSERT INTO registered_models VALUES ('direction_xgboost')")
    monkeypatch.setenv("DAGSTER_HOME", str(home))
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{mlflow_db}")
    monkeypatch.setenv("OPTUNA_STORAGE", "postgresql://elsewhere/optuna")  # not SQLite: skipped
    assert main(["backup", str(tmp_path / "backup")]) == 0
    out = capsys.readouterr().out
    assert "4 database(s) backed up" in out and "integrity ok" in out
    for relative in ("history/runs.db", "history/runs/abc.db", "schedules/schedules.db"):
        assert (tmp_path / "backup" / "dagster" / relative).exists()
    with sqlite3.connect(tmp_path / "backup" / "mlflow" / "mlflow.db") as con:
        assert con.execute("SELECT name FROM registered_models").fetchone() == (
            "direction_xgboost",
        )
    assert len(backup_stores({"none": tmp_path / "missing"}, tmp_path / "b2")) == 0


@pytest.mark.parametrize("value", ["-1", "five"])
def test_a_bad_retention_setting_is_refused(value, monkeypatch):
    from resources import settings

    monkeypatch.setenv("MARKET_GC_KEEP_VERSIONS", value)
    with pytest.raises(ValueError, match="MARKET_GC_KEEP_VERSIONS must be a whole number"):
        settings.gc_keep_versions()
