"""Jobs: named selections of assets that runs, schedules and sensors launch."""

from __future__ import annotations

import dagster as dg

from quant.validation.rules import RULES

RAW = dg.AssetKey("raw_ohlcv")

ingest_job = dg.define_asset_job(
    "ingest",
    selection=dg.AssetSelection.assets("raw_ohlcv").without_checks()
    | dg.AssetSelection.checks(dg.AssetCheckKey(RAW, "delivery")),
    description="Fetch daily bars for the universe into raw_ohlcv: one run, one step for all "
    "symbols; a symbol that cannot be fetched, or whose delivery would lose stored history, "
    "keeps its stored partition and fails its own delivery check.",
)

validate_job = dg.define_asset_job(
    "validate",
    selection=dg.AssetSelection.checks(*(dg.AssetCheckKey(RAW, r) for r in RULES))
    | dg.AssetSelection.assets("ohlcv", "ohlcv_quarantine"),
    description="The data contract for a range of symbols in one step: five checks on raw_ohlcv "
    "recorded per symbol, then ohlcv and its quarantine for the symbols that pass (a blocked "
    "symbol keeps its stored partition; the others go on).",
)

features_job = dg.define_asset_job(
    "build_features",
    selection=dg.AssetSelection.assets("features"),
    description="Features for a range of symbols in one run and one step, then the blocking "
    "look-ahead and sanity checks.",
)

context_job = dg.define_asset_job(
    "build_market_context",
    selection=dg.AssetSelection.assets("market_context"),
    description="Market-wide context (VIX, S&P 500 trend, breadth, beta/correlation) for all symbols.",
)

labels_job = dg.define_asset_job(
    "build_labels",
    selection=dg.AssetSelection.assets("labels"),
    description="Forward-looking labels for a range of symbols in one run and one step.",
)

MODEL_ASSETS = (
    "direction_xgboost",
    "direction_lstm",
    "direction_ensemble",
    "volatility_garch",
    "volatility_lstm",
    "regime_random_forest",
)

retrain_job = dg.define_asset_job(
    "retrain",
    selection=dg.AssetSelection.assets(
        "training_set",
        *MODEL_ASSETS,
        "model_report",
        "backtest",
        "walk_forward",
        "signals",
        "pattern_insights",
    ),
    description="Rebuild the training set, train every model (logged and registered in MLflow: "
    "a first version serves at once, later ones wait as challengers for promotion in shadow), "
    "the out-of-sample report, the backtest, the walk-forward record (new blocks only), "
    "today's signals from the champions and the pattern oracle's event studies.",
    tags={"market/kind": "retrain"},
)

SWEEP_ASSETS = ("direction_xgboost_sweep", "direction_lstm_sweep")

sweep_job = dg.define_asset_job(
    "sweep",
    selection=dg.AssetSelection.assets(
        "training_set",
        *SWEEP_ASSETS,
        *MODEL_ASSETS,
        "model_report",
        "backtest",
        "walk_forward",
        "signals",
        "pattern_insights",
    ),
    description="Continue the Optuna studies on the current training set, then retrain every "
    "model with the best parameters and report (promotion included).",
    tags={"market/kind": "retrain"},
)

monitor_job = dg.define_asset_job(
    "monitor",
    selection=dg.AssetSelection.assets("feature_drift", "model_health", "shadow_promotion"),
    description="Feature drift, champion health and promotion in shadow on the stored data (the "
    "nightly run's last steps, on their own).",
)

NIGHTLY_ASSETS = (
    "raw_ohlcv",
    "ohlcv",
    "ohlcv_quarantine",
    "features",
    "market_context",
    "labels",
    "feature_drift",
    "model_health",
    "shadow_promotion",
    "signals",
    "pattern_insights",
)

nightly_job = dg.define_asset_job(
    "nightly",
    selection=dg.AssetSelection.assets(*NIGHTLY_ASSETS),
    description="The nightly run for the whole universe, one step per stage: ingestion, the "
    "blocking contract, validated bars, features and their checks, market context, labels, "
    "feature drift, champion health, promotion in shadow, today's signals (from the "
    "champions it leaves) and the pattern oracle's event studies on the new bars. The drift "
    "sensor reacts to its monitoring results.",
)

walk_forward_job = dg.define_asset_job(
    "build_walk_forward",
    selection=dg.AssetSelection.assets("walk_forward"),
    description="The walk-forward record alone (`make walk-forward`: every family, LSTMs included).",
)

JOBS = [
    ingest_job,
    validate_job,
    features_job,
    context_job,
    labels_job,
    retrain_job,
    sweep_job,
    monitor_job,
    nightly_job,
    walk_forward_job,
]
