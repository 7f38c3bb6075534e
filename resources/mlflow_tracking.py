"""MLflow tracking and registry as a Dagster resource (our own; dagster-mlflow is legacy).

Local default: a SQLite tracking/registry store under ``data/mlflow`` with artifacts beside it
(MLflow's file store is deprecated). Point ``tracking_uri`` at a server for a shared setup.

Every model is logged as a pyfunc wrapping the project's model object, so all of them share one
interface (a training-set-shaped frame in, a prediction frame out), have a signature and
explicit pip requirements, and can be re-scored by the report and loaded by the signals.
"""

from __future__ import annotations

import contextlib
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
from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException


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
        fresh data folder would otherwise race MLflow's schema migration."""
        os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
        if self.tracking_uri.startswith("sqlite:///"):
            database = Path(self.tracking_uri.removeprefix("sqlite:///"))
            database.parent.mkdir(parents=True, exist_ok=True)
            if self.tracking_uri not in _SCHEMA_READY:
                from filelock import FileLock

                with FileLock(f"{database}.lock"):
                    MlflowClient(self.tracking_uri).search_experiments(max_results=1)
                _SCHEMA_READY.add(self.tracking_uri)
        mlflow.set_tracking_uri(self.tracking_uri)
        mlflow.set_registry_uri(self.tracking_uri)

    def client(self) -> MlflowClient:
        self.configure()
        return MlflowClient(tracking_uri=self.tracking_uri, registry_uri=self.tracking_uri)

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
        with mlflow.start_run(
            run_id=run_id,
            experiment_id=None if run_id else experiment,
            run_name=None if run_id else run_name,
            tags=dict(tags or {}),
        ) as run:
            yield run

    def log_model(
        self,
        model: object,
        registered_name: str,
        example: pd.DataFrame,
        requirements: list[str],
    ) -> LoggedVersion:
        """Log ``model`` (wrapped as pyfunc) in the active run, with a signature inferred from
        ``example``, and register it as a new version of ``registered_name``."""
        wrapped = FramePyfunc(model)
        output = wrapped.predict(None, example)
        signature = mlflow.models.infer_signature(example, output)
        info = mlflow.pyfunc.log_model(
            name="model",
            python_model=wrapped,
            signature=signature,
            input_example=example,
            pip_requirements=requirements,
            registered_model_name=registered_name,
        )
        run = mlflow.active_run()
        return LoggedVersion(
            name=registered_name,
            version=str(info.registered_model_version),
            run_id=run.info.run_id,
            experiment_id=run.info.experiment_id,
        )

    def version_by_alias(self, name: str, alias: str) -> ModelVersion | None:
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
        """The project model inside a registered pyfunc (``predict_frame`` available)."""
        self.configure()
        alias_or_version = str(alias_or_version)
        reference = (
            f"models:/{name}/{alias_or_version}"
            if alias_or_version.isdigit()
            else f"models:/{name}@{alias_or_version}"
        )
        return mlflow.pyfunc.load_model(reference).unwrap_python_model().model

    def log_table_and_plots(
        self, table_name: str, table: pl.DataFrame, figures: Mapping[str, bytes]
    ) -> None:
        """Into the active run: ``table`` as ``<table_name>.csv`` and each PNG under ``plots/``."""
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            csv = Path(tmp) / f"{table_name}.csv"
            table.write_csv(csv)
            mlflow.log_artifact(str(csv))
            for name, png in figures.items():
                path = Path(tmp) / f"{name}.png"
                path.write_bytes(png)
                mlflow.log_artifact(str(path), artifact_path="plots")

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
