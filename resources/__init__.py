"""Dagster resources: market-data sources, the Parquet lake, the raw landing area, DuckDB,
the modelling configuration, MLflow, the served log, the operator controls and the alerts."""

from __future__ import annotations

import os

from resources import settings
from resources.alerts import Alerts
from resources.control import OperatorControl
from resources.lake import ParquetLake, ParquetLakeIOManager
from resources.landing import RawLanding
from resources.market_data import MarketData
from resources.mlflow_tracking import MlflowTracking
from resources.modeling import ModelingConfig
from resources.optuna_storage import OptunaStorage
from resources.served_log import ServedLog
from resources.warehouse import DuckDBWarehouse


def build_resources() -> dict[str, object]:
    """The resources for the local (default) deployment, configured from the environment."""
    lake = ParquetLake(base_dir=str(settings.lake_dir()))
    return {
        "market_data": MarketData(
            source=os.environ.get("MARKET_SOURCE", "sample"),
            start=os.environ.get("MARKET_START", settings.DEFAULT_START),
            as_of=os.environ.get("MARKET_AS_OF") or None,
            sample_dir=str(settings.sample_dir()),
            csv_dir=str(settings.csv_dir()),
            cache_dir=str(settings.cache_dir()),
        ),
        "lake": lake,
        "lake_io_manager": ParquetLakeIOManager(lake=lake),
        "landing": RawLanding(root=str(settings.raw_dir())),
        "warehouse": DuckDBWarehouse(lake_dir=str(settings.lake_dir())),
        "modeling": ModelingConfig.for_profile(os.environ.get("MARKET_MODEL_PROFILE", "full")),
        "mlflow_tracking": MlflowTracking(
            tracking_uri=settings.mlflow_tracking_uri(),
            artifact_root=str(settings.mlflow_artifact_root()),
            ui_url=settings.mlflow_ui_url(),
        ),
        "optuna_storage": OptunaStorage(url=settings.optuna_storage_url()),
        "served_log": ServedLog(lake_dir=str(settings.lake_dir())),
        "operator_control": OperatorControl(root=str(settings.data_dir() / "control")),
        "alerts": Alerts(
            webhook_url=settings.alert_webhook(),
            smtp_server=settings.alert_smtp(),
            email_to=settings.alert_email_to(),
            dagster_ui_url=settings.dagster_ui_url(),
        ),
    }
