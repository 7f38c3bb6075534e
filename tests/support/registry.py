"""Tiny real models in a real (temporary, SQLite) MLflow registry, for operator and serving
tests: each predicts constants, so what a test expects is obvious."""

from __future__ import annotations

from datetime import date

import polars as pl

from resources.mlflow_tracking import MlflowTracking, pip_requirements

FAMILY_OUTPUTS = {
    "direction": {"p_down": 0.2, "p_neutral": 0.1, "p_up": 0.7},
    "volatility": {"vol_forecast": 0.3},
    "regime": {"p_bear": 0.1, "p_sideways": 0.7, "p_bull": 0.1, "p_highvol": 0.1},
}


class ConstantModel:
    """``predict_frame``: the frame's symbol and date plus constant output columns."""

    def __init__(self, outputs: dict[str, float]) -> None:
        self.outputs = outputs

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        return frame.select("symbol", "date").with_columns(
            pl.lit(v, pl.Float64).alias(k) for k, v in self.outputs.items()
        )


def example() -> pl.DataFrame:
    return pl.DataFrame(
        {"symbol": ["AAA", "AAA"], "date": [date(2024, 1, 2), date(2024, 1, 3)], "x": [1.0, 2.0]}
    )


def register(
    tracking: MlflowTracking, name: str, family: str, outputs: dict[str, float] | None = None
) -> str:
    """Log and register one new version of ``name``; returns the version."""
    model = ConstantModel(outputs or FAMILY_OUTPUTS[family])
    with tracking.start_run(family, f"test-{name}"):
        logged = tracking.log_model(model, name, example().to_pandas(), pip_requirements())
    return logged.version
