"""Models: direction, volatility and regime forecasters, each pure (no Dagster, no MLflow).

Every fitted model exposes ``predict_frame(frame) -> symbol, date, <outputs>`` over frames shaped
like the training set. ``MODEL_FAMILIES`` names each model (asset and registered model name)
and its family (MLflow experiment and promotion metric).
"""

MODEL_FAMILIES = {
    "direction_xgboost": "direction",
    "direction_lstm": "direction",
    "direction_ensemble": "direction",
    "volatility_garch": "volatility",
    "volatility_lstm": "volatility",
    "regime_random_forest": "regime",
}
