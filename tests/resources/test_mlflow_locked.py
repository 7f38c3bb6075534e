"""A locked MLflow store is waited out with backoff, then named; a read-only one is named at once.

A real SQLite store in tmp_path; the other process's write transaction is a second ``sqlite3``
connection holding ``BEGIN EXCLUSIVE`` (from a thread); the read-only store is a copy on a
tmpfs remounted read-only (CI runs as root, and root writes through chmod)."""

import logging
import re
import shutil
import sqlite3
import subprocess
import threading
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest
from mlflow.exceptions import MlflowException

from resources import store_retry
from resources.mlflow_tracking import MlflowTracking, StoreLockedError, StoreReadOnlyError

# one attempt waits this long inside SQLite, so a lock held past it needs a retry
HELD_PAST_ONE_ATTEMPT_S = store_retry.ATTEMPT_BUSY_S + 2


def make_tracking(folder: Path) -> MlflowTracking:
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{folder / 'mlflow.db'}", artifact_root=str(folder / "artifacts")
    )
    # the schema and both stores (tracking, registry) made before any lock is taken
    tracking.client().search_experiments(max_results=1)
    tracking.client().search_registered_models(max_results=1)
    return tracking


@pytest.fixture(scope="module")
def empty_store(tmp_path_factory) -> Path:
    """An empty store with MLflow's schema, created once (the migration takes seconds)."""
    folder = tmp_path_factory.mktemp("empty_store")
    make_tracking(folder)
    return folder / "mlflow.db"


@pytest.fixture
def tracking(tmp_path, empty_store) -> MlflowTracking:
    shutil.copy(empty_store, tmp_path / "mlflow.db")
    return make_tracking(tmp_path)


@contextmanager
def writer_holding(database: str, seconds: float) -> Iterator[None]:
    """Another connection holds a write transaction (``BEGIN EXCLUSIVE``) on the store for
    ``seconds``, then commits; the block runs meanwhile, and the writer is joined after it."""
    locked = threading.Event()

    def hold() -> None:
        connection = sqlite3.connect(database, isolation_level=None)
        connection.execute("BEGIN EXCLUSIVE")
        locked.set()
        time.sleep(seconds)
        connection.execute("COMMIT")
        connection.close()

    writer = threading.Thread(target=hold)
    writer.start()
    assert locked.wait(10), "the writer did not get its lock"
    try:
        yield
    finally:
        writer.join()


def retry_warnings(caplog, database: str) -> list[str]:
    return [
        r.getMessage()
        for r in caplog.records
        if r.levelno == logging.WARNING
        and database in r.getMessage()
        and "locked" in r.getMessage()
    ]


def test_a_client_write_waits_out_a_lock_and_warns_naming_the_store(tracking, caplog):
    caplog.set_level(logging.WARNING, logger="resources.store_retry")
    database = tracking.store()
    started = time.monotonic()
    with writer_holding(database, HELD_PAST_ONE_ATTEMPT_S):
        experiment = tracking.client().create_experiment("waited")
    assert time.monotonic() - started >= HELD_PAST_ONE_ATTEMPT_S - 0.5  # it did wait the lock out
    assert tracking.client().get_experiment(experiment).name == "waited"
    assert retry_warnings(caplog, database), caplog.text


def test_setting_an_alias_waits_out_a_lock(tracking, caplog):
    caplog.set_level(logging.WARNING, logger="resources.store_retry")
    client = tracking.client()
    client.create_registered_model("direction_xgboost")
    client.create_model_version("direction_xgboost", source="file:///nowhere", run_id=None)
    with writer_holding(tracking.store(), HELD_PAST_ONE_ATTEMPT_S):
        tracking.set_alias("direction_xgboost", "champion", "1")
    assert str(tracking.version_by_alias("direction_xgboost", "champion").version) == "1"
    assert retry_warnings(caplog, tracking.store()), caplog.text


def test_fluent_logging_through_the_resource_waits_out_a_lock(tracking, caplog):
    caplog.set_level(logging.WARNING, logger="resources.store_retry")
    with tracking.start_run("direction", "locked-fluent") as run:
        with writer_holding(tracking.store(), HELD_PAST_ONE_ATTEMPT_S):
            tracking.log_params({"depth": 3})
        tracking.log_metrics({"log_loss": 0.69})
    logged = tracking.client().get_run(run.info.run_id)
    assert logged.data.params == {"depth": "3"} and logged.data.metrics == {"log_loss": 0.69}
    assert logged.info.status == "FINISHED"
    assert retry_warnings(caplog, tracking.store()), caplog.text


def test_a_lock_held_past_the_budget_raises_store_locked_naming_the_file(
    tracking, monkeypatch, caplog
):
    monkeypatch.setenv("MARKET_MLFLOW_LOCK_WAIT_S", "2")
    database = tracking.store()
    with writer_holding(database, 4):
        started = time.monotonic()
        with pytest.raises(StoreLockedError) as raised:
            tracking.client().create_experiment("too_late")
        elapsed = time.monotonic() - started
    assert 2 <= elapsed < 3.5  # the budget, not the lock's 4 s nor MLflow's own 20 s wait
    message = str(raised.value)
    assert database in message and re.search(r"stayed locked for \d+ s", message), message
    assert "another process holds a write transaction" in message and "mlflow gc" in message
    assert "MARKET_MLFLOW_LOCK_WAIT_S" in message
    assert tracking.client().get_experiment_by_name("too_late") is None  # nothing half-written


def test_a_locked_store_is_not_read_as_a_missing_alias(tracking, monkeypatch):
    """``version_by_alias`` means "no such alias" by None; a locked store must not say that
    (training would then make its new version champion)."""
    monkeypatch.setenv("MARKET_MLFLOW_LOCK_WAIT_S", "0")  # one attempt, no wait
    with writer_holding(tracking.store(), 1), pytest.raises(StoreLockedError):
        tracking.version_by_alias("direction_xgboost", "champion")


def test_other_errors_are_not_retried(tracking, caplog):
    caplog.set_level(logging.WARNING, logger="resources.store_retry")
    started = time.monotonic()
    with pytest.raises(MlflowException) as raised:
        tracking.client().get_model_version("never_registered", "1")
    assert type(raised.value) is MlflowException  # passed through unchanged
    assert "not found" in str(raised.value).lower()
    assert time.monotonic() - started < 1.0
    assert not retry_warnings(caplog, tracking.store())


@pytest.fixture
def read_only_folder(tmp_path, empty_store) -> Iterator[Path]:
    """A store (one registered model) copied to a tmpfs that is then remounted read-only."""
    (tmp_path / "source").mkdir()
    shutil.copy(empty_store, tmp_path / "source" / "mlflow.db")
    make_tracking(tmp_path / "source").client().create_registered_model("direction_xgboost")
    mount = tmp_path / f"ro-{uuid.uuid4().hex[:6]}"
    mount.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=16m", "tmpfs", str(mount)], capture_output=True
    )
    if mounted.returncode != 0:
        pytest.skip(f"mounting a tmpfs needs root (CI runs as root): {mounted.stderr.decode()}")
    try:
        shutil.copy(tmp_path / "source" / "mlflow.db", mount / "mlflow.db")
        (mount / "artifacts").mkdir()
        subprocess.run(["mount", "-o", "remount,ro", str(mount)], check=True)
        yield mount
    finally:
        subprocess.run(["umount", "-l", str(mount)], check=False)


def test_a_read_only_store_is_named_at_once_without_retry(read_only_folder, caplog):
    caplog.set_level(logging.WARNING, logger="resources.store_retry")
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{read_only_folder / 'mlflow.db'}",
        artifact_root=str(read_only_folder / "artifacts"),
    )
    assert tracking.client().get_registered_model("direction_xgboost").name  # reads still work
    started = time.monotonic()
    with pytest.raises(StoreReadOnlyError) as raised:
        tracking.client().create_registered_model("direction_lstm")
    assert time.monotonic() - started < store_retry.ATTEMPT_BUSY_S / 2  # no retry, no busy wait
    message = str(raised.value)
    assert str(read_only_folder / "mlflow.db") in message and "read-only" in message, message
    assert "attempt to write a readonly database" in message and "writable" in message
    assert not retry_warnings(caplog, tracking.store())


def test_a_new_store_in_a_read_only_folder_is_named(read_only_folder):
    database = read_only_folder / "fresh" / "mlflow.db"
    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{database}", artifact_root=str(read_only_folder / "artifacts")
    )
    with pytest.raises(StoreReadOnlyError) as raised:
        tracking.experiment_id("direction")
    message = str(raised.value)
    assert str(database) in message and "Read-only file system" in message, message
