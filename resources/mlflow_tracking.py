"""MLflow tracking and registry as a Dagster resource (our own; dagster-mlflow is legacy).

Local default: a SQLite tracking/registry store under ``data/mlflow`` with artifacts beside it
(MLflow's file store is deprecated). Point ``tracking_uri`` at a server for a shared setup.

Every model is logged as a pyfunc wrapping the project's model object, so all of them share one
interface (a training-set-shaped frame in, a prediction frame out), have a signature and
explicit pip requirements, and can be re-scored by the report and loaded by the signals.

Every MLflow call made through the resource (``client()``'s methods, the fluent logging methods
below, run start and end, model logging and loading) waits out a locked SQLite store with
backoff and then raises ``StoreLockedError``; a read-only store raises ``StoreReadOnlyError`` at
once (``resources.store_retry``). Assets log through these methods, not ``mlflow.*`` directly.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from importlib.metadata import version
from pathlib import Path

import dagster as dg
import mlflow
import pandas as pd
import polars as pl
from mlflow import MlflowClient
from mlflow.entities import RunStatus
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.protos.databricks_pb2 import ALREADY_EXISTS, RESOURCE_ALREADY_EXISTS, ErrorCode

from resources import store_retry
from resources.store_retry import StoreLockedError as StoreLockedError  # re-exported
from resources.store_retry import StoreReadOnlyError as StoreReadOnlyError


# A known, accepted trade-off that MLflow repeats on every model: the wrapper is pickled (models
# from code would need one script per model). Silenced by message, nothing else.
class _DropKnownNotices(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        return "causes it to be serialized using CloudPickle" not in record.getMessage()


logging.getLogger("mlflow.pyfunc").addFilter(_DropKnownNotices())

CHAMPION, CHALLENGER = "champion", "challenger"
# what loading a logged model needs besides the project itself
BASE_REQUIREMENTS = ("mlflow", "numpy", "pandas", "polars", "pyarrow", "scikit-learn")


def pip_requirements(*extra: str) -> list[str]:
    """Pinned requirements of the installed versions (explicit: inferring them costs seconds)."""
    return [f"{name}=={version(name)}" for name in (*BASE_REQUIREMENTS, *extra)]


class FramePyfunc(mlflow.pyfunc.PythonModel):
    """Adapts a model with ``predict_frame(pl.DataFrame) -> pl.DataFrame`` to MLflow's pyfunc."""

    def __init__(self, model: object) -> None:
        self.model = model

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pl.from_pandas(model_input).with_columns(pl.col("date").cast(pl.Date))
        return self.model.predict_frame(frame).to_pandas()


def model_example(frame: pl.DataFrame, columns: list[str], rows: int = 25) -> pd.DataFrame:
    """The first rows of one symbol (enough for a sequence model's window), as the signature's
    example."""
    first = frame["symbol"][0]
    chosen = frame.filter(pl.col("symbol") == first).head(rows)
    return chosen.select("symbol", "date", *columns).to_pandas()


@dataclass(frozen=True)
class LoggedVersion:
    """A registered model version and the run that produced it."""

    name: str
    version: str
    run_id: str
    experiment_id: str


# SQLite stores whose schema this process has seen created (or found) under the lock
_SCHEMA_READY: set[str] = set()


class MlflowTracking(dg.ConfigurableResource):
    """Experiments (one per model family), runs, the model registry and links to the MLflow UI."""

    tracking_uri: str
    artifact_root: str
    ui_url: str = "http://127.0.0.1:5000"

    def configure(self) -> None:
        """Point the MLflow client libraries at this store (idempotent). A new SQLite store
        gets its schema created once, under a file lock: two processes starting together on a
        fresh data folder would otherwise race MLflow's schema migration. A SQLite store's
        per-statement lock wait is bounded so that ``store_retry`` does the waiting."""
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if self.tracking_uri.startswith("sqlite:///"):
            store_retry.bound_busy_wait(self.tracking_uri)
            if self.tracking_uri not in _SCHEMA_READY:
                self._retried(self._create_schema)
                _SCHEMA_READY.add(self.tracking_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def _create_schema(self) -> None:
        from filelock import FileLock

        database = Path(self.tracking_uri.removeprefix("sqlite:///"))
        database.parent.mkdir(parents=True, exist_ok=True)
        lock = FileLock(f"{database}.lock")
        try:
            lock.acquire()
        except OSError as error:
            if error.errno not in store_retry.READ_ONLY_ERRNOS or not database.is_file():
                raise
            # a read-only data folder: no schema can be created there, the existing one is read
            # as it is (writes then raise StoreReadOnlyError)
            MlflowClient(self.tracking_uri).search_experiments(max_results=1)
            return
        try:
            MlflowClient(self.tracking_uri).search_experiments(max_results=1)
        finally:
            lock.release()

    def store(self) -> str:
        """The store as messages name it: the SQLite file, or the tracking URI."""
        return store_retry.database_of(self.tracking_uri) or self.tracking_uri

    def _retried(self, operation, /, *args, **kwargs):
        """``operation(*args, **kwargs)`` under the store's lock policy (``store_retry.call``)."""
        return store_retry.call(self.store(), operation, *args, **kwargs)

    def client(self) -> MlflowClient:
        """An ``MlflowClient`` on this store whose every method call is retried while the store
        is locked (a ``store_retry.RetryingClient``: each call is one store transaction, so an
        attempt that failed on the lock wrote nothing)."""
        self.configure()
        client = MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)
        return store_retry.RetryingClient(client, self.store())  # type: ignore[return-value]

    def experiment_id(self, family: str) -> str:
        """The experiment of a model family (direction, volatility, regime), created on first use
        with its artifacts under ``artifact_root/<family>``."""
        client = self.client()
        found = client.get_experiment_by_name(family)
        if found is not None:
            return found.experiment_id
        location = Path(self.artifact_root).resolve() / family
        location.mkdir(parents=True, exist_ok=True)
        try:
            return client.create_experiment(family, artifact_location=location.as_uri())
        except MlflowException:  # created meanwhile by a concurrent run
            return client.get_experiment_by_name(family).experiment_id

    @contextmanager
    def start_run(
        self,
        family: str,
        run_name: str,
        tags: Mapping[str, str] | None = None,
        run_id: str | None = None,
    ) -> Iterator[mlflow.ActiveRun]:
        """A run in the family's experiment (or ``run_id`` resumed), ended on exit."""
        experiment = self.experiment_id(family)
        with self._run(
            run_id=run_id,
            experiment_id=None if run_id else experiment,
            run_name=None if run_id else run_name,
            tags=dict(tags or {}),
        ) as run:
            yield run

    @contextmanager
    def nested_run(self, run_name: str) -> Iterator[mlflow.ActiveRun]:
        """A run nested in the active one, in its experiment (an Optuna trial), ended on exit."""
        parent = mlflow.active_run().info.experiment_id
        with self._run(run_name=run_name, nested=True, experiment_id=parent) as run:
            yield run

    @contextmanager
    def _run(self, **start: object) -> Iterator[mlflow.ActiveRun]:
        """``mlflow.start_run(**start)`` retried (a new run is one ``create_run`` transaction,
        so a failed attempt created nothing), FINISHED or FAILED on exit like MLflow's own
        context manager, with the status written through the retried client."""
        run = self._retried(mlflow.start_run, **start)
        status = RunStatus.FAILED
        try:
            yield run
            status = RunStatus.FINISHED
        finally:
            self._end_run(run.info.run_id, RunStatus.to_string(status))

    def _end_run(self, run_id: str, status: str) -> None:
        try:
            self.client().set_terminated(run_id, status)
        finally:
            # pop MLflow's active-run stack; end_run pops before it writes the status again, so
            # a failure of that second, redundant write changes nothing already written
            active = mlflow.active_run()
            if active is not None and active.info.run_id == run_id:
                with contextlib.suppress(MlflowException):
                    mlflow.end_run(status)

    def log_params(self, params: Mapping[str, object]) -> None:
        """Parameters of the active run (retried: logging the same value again is a no-op)."""
        self._retried(mlflow.log_params, dict(params))

    def log_metrics(self, metrics: Mapping[str, float]) -> None:
        """Metrics of the active run (retried: each batch is one transaction)."""
        self._retried(mlflow.log_metrics, dict(metrics))

    def log_metric(self, key: str, value: float) -> None:
        self._retried(mlflow.log_metric, key, value)

    def set_tag(self, key: str, value: str) -> None:
        self._retried(mlflow.set_tag, key, value)

    def log_model(
        self,
        model: object,
        registered_name: str,
        example: pd.DataFrame,
        requirements: list[str],
    ) -> LoggedVersion:
        """Log ``model`` (wrapped as pyfunc) in the active run, with a signature inferred from
        ``example``, and register it as a new version of ``registered_name``.

        Retried in two parts, never as one: retrying ``pyfunc.log_model(registered_model_name=…)``
        whole could register a version twice, since MLflow writes the logged model's tags after
        creating the version and a lock there would fail an attempt that already registered.
        So the model is logged without registration, retried as a whole (a failed attempt
        registered nothing; it may leave a logged model that never became READY, with its
        files, under the run), and then registered by single-transaction calls of the retried
        client: the registered model (an existing one is fine), the version (one transaction:
        a failed attempt created none), the logged model's ``mlflow.modelVersions`` tag (as
        MLflow writes it; setting it again is harmless)."""
        wrapped = FramePyfunc(model)
        output = wrapped.predict(None, example)
        signature = mlflow.models.infer_signature(example, output)
        info = self._retried(
            mlflow.pyfunc.log_model,
            name="model",
            python_model=wrapped,
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
        )
        run = mlflow.active_run()
        client = self.client()
        try:
            client.create_registered_model(registered_name)
        except MlflowException as error:
            existing = (ErrorCode.Name(RESOURCE_ALREADY_EXISTS), ErrorCode.Name(ALREADY_EXISTS))
            if error.error_code not in existing:
                raise
        created = client.create_model_version(
            registered_name,
            source=f"models:/{info.model_id}",
            run_id=run.info.run_id,
            model_id=info.model_id,
            await_creation_for=0,  # a SQL store creates it READY; no polling read inside the call
        )
        versions = [{"name": registered_name, "version": created.version}]
        client.set_logged_model_tags(info.model_id, {"mlflow.modelVersions": json.dumps(versions)})
        return LoggedVersion(
            name=registered_name,
            version=str(created.version),
            run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
        )

    def version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
        """The version behind ``alias``; None when there is none (a locked or read-only store
        raises: it is not "no such alias")."""
        try:
            return self.client().get_model_version_by_alias(name, alias)
        except MlflowException:
            return None

    def set_alias(self, name: str, alias: str, version: str) -> None:
        self.client().set_registered_model_alias(name, alias, version)

    def delete_alias(self, name: str, alias: str) -> None:
        with contextlib.suppress(MlflowException):
            self.client().delete_registered_model_alias(name, alias)

    def load(self, name: str, alias_or_version: str | int) -> object:
        """The project model inside a registered pyfunc (``predict_frame`` available); retried
        as a whole (it only reads)."""
        self.configure()
        alias_or_version = str(alias_or_version)
        reference = (
            f"models:/{name}/{alias_or_version}"
            if alias_or_version.isdigit()
            else f"models:/{name}@{alias_or_version}"
        )
        return self._retried(mlflow.pyfunc.load_model, reference).unwrap_python_model().model

    def log_table_and_plots(
        self, table_name: str, table: pl.DataFrame, figures: Mapping[str, bytes]
    ) -> None:
        """Into the active run: ``table`` as ``<table_name>.csv`` and each PNG under ``plots/``
        (each file retried: logging it again overwrites the same artifact)."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / f"{table_name}.csv"
            table.write_csv(csv)
            self._retried(mlflow.log_artifact, str(csv))
            for name, png in figures.items():
                path = Path(tmp) / f"{name}.png"
                path.write_bytes(png)
                self._retried(mlflow.log_artifact, str(path), artifact_path="plots")

    def run_url(self, experiment_id: str, run_id: str) -> str:
        return f"{self.ui_url}/#/experiments/{experiment_id}/runs/{run_id}"

    def model_url(self, name: str, model_version: str) -> str:
        return f"{self.ui_url}/#/models/{name}/versions/{model_version}"


@dataclass(frozen=True)
class Champion:
    """A champion model loaded from the registry, with where it came from."""

    name: str
    family: str
    version: str
    run_id: str
    model: object
    tags: dict[str, str] = field(default_factory=dict)


def load_champions(
    tracking: MlflowTracking, families: Mapping[str, str] | None = None
) -> dict[str, Champion]:
    """The current ``champion`` of every registered model (by name), ready to ``predict_frame``.

    Models that have never been registered or have no champion are left out; callers decide
    whether that is an error (the signals asset and the CLI say which model is missing).
    """
    from quant.models import MODEL_FAMILIES

    chosen = MODEL_FAMILIES if families is None else families
    champions = {}
    for name, family in chosen.items():
        found = tracking.version_by_alias(name, CHAMPION)
        if found is None:
            continue
        champions[name] = Champion(
            name,
            family,
            str(found.version),
            found.run_id,
            tracking.load(name, found.version),
            dict(found.tags),
        )
    return champions
