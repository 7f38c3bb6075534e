"""Shared fixtures: a temporary data folder, resources pointing into it, a real Dagster instance."""

from __future__ import annotations

import os

os.environ.setdefault("MLFLOW_DISABLE_TELEMETRY", "true")
os.environ.setdefault("DAGSTER_DISABLE_TELEMETRY", "1")
os.environ.setdefault("DO_NOT_TRACK", "1")

from pathlib import Path

import dagster as dg
import polars as pl
import pytest

from resources import settings
from resources.control import OperatorControl
from resources.lake import ParquetLake, ParquetLakeIOManager
from resources.landing import RawLanding
from resources.market_data import MarketData
from resources.mlflow_tracking import MlflowTracking
from resources.modeling import ModelingConfig
from resources.optuna_storage import OptunaStorage
from resources.served_log import ServedLog
from resources.warehouse import DuckDBWarehouse

SAMPLE_DIR = settings.PROJECT_ROOT / "data" / "sample"


def make_resources(
    data_dir: Path, source: str = "sample", **market: str | None
) -> dict[str, object]:
    """The pipeline's resources, every path inside ``data_dir``."""
    lake = ParquetLake(base_dir=str(data_dir / "lake"))
    return {
        "market_data": MarketData(
            source=source,
            start=market.get("start", "2018-01-01"),
            as_of=market.get("as_of"),
            sample_dir=str(SAMPLE_DIR),
            csv_dir=str(market.get("csv_dir") or data_dir / "csv"),
            cache_dir=str(data_dir / "cache"),
        ),
        "lake": lake,
        "lake_io_manager": ParquetLakeIOManager(lake=lake),
        "landing": RawLanding(root=str(data_dir / "raw")),
        "warehouse": DuckDBWarehouse(lake_dir=str(data_dir / "lake")),
        "modeling": ModelingConfig.for_profile("quick"),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=f"sqlite:///{data_dir / 'mlflow' / 'mlflow.db'}",
            artifact_root=str(data_dir / "mlflow" / "artifacts"),
        ),
        "optuna_storage": OptunaStorage(url=f"sqlite:///{data_dir / 'optuna' / 'optuna.db'}"),
        "served_log": ServedLog(lake_dir=str(data_dir / "lake")),
        "operator_control": OperatorControl(root=str(data_dir / "control")),
    }


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    path = tmp_path / "data"
    path.mkdir()
    return path


@pytest.fixture
def instance():
    """A real, SQLite-backed Dagster instance in a temporary directory."""
    with dg.instance_for_test() as inst:
        yield inst


@pytest.fixture(scope="session")
def sample_panel() -> pl.DataFrame:
    return pl.read_parquet(SAMPLE_DIR / "ohlcv_daily.parquet")
