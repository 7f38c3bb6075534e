"""The walk-forward record: refit every ``step`` sessions, predict the next block, repeat.

This is qlib's rolling retraining (RollingGen) applied to every model family: once
``min_train_years`` of history exist, the sessions of the anchor symbols (the equities) are cut
into blocks of ``step`` sessions; the model scoring block k is fitted only on rows whose label
ends before the block starts (purged by the horizon), so its training cutoff ``refit_date`` is
the last session before the block, and every prediction of the block is made at ``refit_date``
plus the row's own features. The blocks concatenated are the out-of-sample record of the
*procedure*, through regimes, not the score of one window.

What a refit may learn from is exactly what was known at its cutoff, including what the labels
themselves depend on: the regime thresholds are re-estimated per refit on rows whose label
ends by ``refit_date`` (the served labels use the current window's thresholds, which have seen
later data). Hyper-parameters are the families' defaults; the early-stopping families
(XGBoost, the LSTMs) choose their rounds or epochs on the last ``inner_validation`` sessions of
the refit's own training window, purged from the rows before it.

``block_key`` identifies a block's predictions by the family, the configuration, the cutoff and
a hash of every input row up to the block's end, so a rebuild after new data recomputes only the
blocks whose inputs changed (in practice: the last, growing block and the new ones).
"""

from __future__ import annotations

import hashlib
import json
import math
from collections.abc import Callable
from dataclasses import asdict, dataclass
from datetime import date, timedelta

import polars as pl

from quant.dataset import MODEL_FEATURES, TrainingSet
from quant.labels import LabelConfig, RegimeThresholds, assign_regimes
from quant.models.direction import train_direction_lstm, train_direction_xgboost
from quant.models.har import HarForecaster
from quant.models.lstm import LSTMConfig
from quant.models.regime import train_regime_forest
from quant.models.volatility import OUTPUT as VOL_OUTPUT
from quant.models.volatility import train_volatility_garch, train_volatility_lstm
from quant.promotion import OUTPUTS
from quant.splits import TRAIN, VALIDATION

KEYS = ["symbol", "date"]
UNUSED = "unused"
FAST_FAMILIES = ("direction_xgboost", "volatility_garch", "volatility_har", "regime_random_forest")
ALL_FAMILIES = (*FAST_FAMILIES, "direction_lstm", "volatility_lstm")
FAMILY_OF = {
    "direction_xgboost": "direction",
    "direction_lstm": "direction",
    "volatility_garch": "volatility",
    "volatility_har": "volatility",
    "volatility_lstm": "volatility",
    "regime_random_forest": "regime",
}
RECORD_OUTPUTS = [*OUTPUTS["direction"], *OUTPUTS["volatility"], *OUTPUTS["regime"]]
# the regime labels as defined at the refit (thresholds known then), for scoring its rows
REGIME_LABELS = {"regime": "label_regime", "regime_now": "label_regime_now"}
# columns a block's inputs are hashed on: the bars' features and the forward quantities the labels
# are made of (not ``regime``, whose thresholds the current window sets: they are refit here)
LABEL_INPUTS = [
    "label_end",
    "direction",
    "prev_direction",
    "fwd_return_1",
    "fwd_vol_20",
    "trail_vol_20",
    "fwd_return_20",
    "trail_return_20",
    "fwd_vix_20",
    "trail_vix_20",
]


@dataclass(frozen=True)
class WalkForwardConfig:
    """The rolling procedure and the (default) sizes of the models it refits."""

    step: int = 63
    min_train_years: float = 3.0
    horizon: int = 20
    inner_validation: int = 126
    seed: int = 7
    xgb_rounds: int = 300
    forest_trees: int = 50
    lstm_hidden: int = 32
    lstm_max_epochs: int = 20
    lstm_patience: int = 3

    def __post_init__(self) -> None:
        if self.step < 1 or self.min_train_years <= 0:
            raise ValueError(f"step must be >= 1 and min_train_years > 0, got {self}")

    def lstm(self) -> LSTMConfig:
        return LSTMConfig(
            hidden_size=self.lstm_hidden,
            max_epochs=self.lstm_max_epochs,
            patience=self.lstm_patience,
            seed=self.seed,
        )

    def for_family(self, model: str) -> dict[str, object]:
        """What defines ``model``'s refits (a change means a new record)."""
        shared = {
            "step": self.step,
            "min_train_years": self.min_train_years,
            "horizon": self.horizon,
            "seed": self.seed,
        }
        sizes = {
            "direction_xgboost": {"rounds": self.xgb_rounds, "inner": self.inner_validation},
            "regime_random_forest": {"trees": self.forest_trees},
            # the loss and output corrections are part of what a refit is: cached blocks of the
            # class-weighted direction LSTM or of the uncorrected (median) vol LSTM are stale
            "direction_lstm": {
                **asdict(self.lstm()),
                "inner": self.inner_validation,
                "class_weights": False,
            },
            "volatility_lstm": {
                **asdict(self.lstm()),
                "inner": self.inner_validation,
                "mean_correction": "smearing",
            },
        }
        return {"model": model, **shared, **sizes.get(model, {}), "features": MODEL_FEATURES}


@dataclass(frozen=True)
class Block:
    """One refit: fitted on rows whose label ends by ``refit_date``, scoring ``start .. end``."""

    number: int
    refit_date: date
    start: date
    end: date


def _anchor_sessions(panel: pl.DataFrame, anchors: frozenset[str] | None) -> pl.Series:
    rows = panel
    if anchors:
        chosen = panel.filter(pl.col("symbol").is_in(sorted(anchors)))
        rows = chosen if not chosen.is_empty() else panel
    return rows["date"].unique().sort()


def record_panel(
    features: pl.DataFrame, context: pl.DataFrame, labels: pl.DataFrame
) -> pl.DataFrame:
    """Features + context + every label column (the forward quantities the regime thresholds
    are refit from) per (symbol, date), without warm-up rows and rows whose 20-session future
    has not happened yet."""
    from quant.dataset import warm_panel

    panel = warm_panel(features, context)
    fields = [c for c in labels.columns if c not in panel.columns or c in KEYS]
    return (
        panel.join(labels.select(fields), on=KEYS, how="inner")
        .filter(pl.col("label_end").is_not_null() & pl.col("fwd_vol_20").is_not_null())
        .sort(KEYS)
    )


def schedule(
    panel: pl.DataFrame, config: WalkForwardConfig, anchors: frozenset[str] | None = None
) -> list[Block]:
    """The blocks over ``panel``'s anchor sessions: the first starts once ``min_train_years``
    of history exist (counted from the first session: no calendar constant), every later one
    ``step`` sessions on; the last may be shorter."""
    sessions = _anchor_sessions(panel, anchors)
    if sessions.is_empty():
        return []
    earliest = sessions[0] + timedelta(days=math.ceil(365.25 * config.min_train_years))
    first = int((sessions < earliest).sum())
    blocks = []
    for number, i in enumerate(range(max(first, 1), sessions.len(), config.step)):
        stop = min(i + config.step, sessions.len()) - 1
        blocks.append(Block(number, sessions[i - 1], sessions[i], sessions[stop]))
    return blocks


def fit_rows(panel: pl.DataFrame, block: Block) -> pl.Series:
    """Rows a refit may fit on: labels that end by its cutoff (purged from the block)."""
    return panel.select(pl.col("label_end") <= block.refit_date).to_series()


def with_regimes_as_of(
    panel: pl.DataFrame, refit_date: date, horizon: int, anchors: frozenset[str] | None
) -> pl.DataFrame:
    """``panel`` with ``regime`` / ``regime_now`` from thresholds fitted on rows whose label ends
    by ``refit_date`` only."""
    config = LabelConfig(horizon=horizon, train_end=refit_date, anchors=anchors)
    thresholds = RegimeThresholds.fit(panel, config)
    return assign_regimes(panel.drop("regime", "regime_now", strict=False), thresholds)


def training_view(
    panel: pl.DataFrame, block: Block, inner_validation: int, with_validation: bool
) -> TrainingSet:
    """The refit's rows as a ``TrainingSet``: ``train`` (and, for the early-stopping families,
    ``validation`` = the last ``inner_validation`` sessions of the window, the train rows before
    it purged by their label end); everything else (the block included) ``unused``."""
    usable = fit_rows(panel, block)
    if with_validation:
        dates = panel.filter(usable)["date"].unique().sort()
        start = dates[max(dates.len() - inner_validation, 0)]
        previous = dates[max(dates.len() - inner_validation - 1, 0)]
        split = (
            pl.when(usable & (pl.col("date") >= start))
            .then(pl.lit(VALIDATION))
            .when(usable & (pl.col("label_end") <= previous))
            .then(pl.lit(TRAIN))
            .otherwise(pl.lit(UNUSED))
        )
    else:
        split = pl.when(usable).then(pl.lit(TRAIN)).otherwise(pl.lit(UNUSED))
    frame = panel.with_columns(split.alias("split"))
    features = tuple(c for c in MODEL_FEATURES if c in panel.columns)
    return TrainingSet(frame, feature_columns=features)


def _xgboost(view: TrainingSet, block: Block, config: WalkForwardConfig) -> object:
    model, _ = train_direction_xgboost(view, seed=config.seed, num_boost_round=config.xgb_rounds)
    return model


def _direction_lstm(view: TrainingSet, block: Block, config: WalkForwardConfig) -> object:
    return train_direction_lstm(view, config.lstm())[0]


def _volatility_lstm(view: TrainingSet, block: Block, config: WalkForwardConfig) -> object:
    return train_volatility_lstm(view, config.lstm())[0]


def _garch(view: TrainingSet, block: Block, config: WalkForwardConfig) -> object:
    return train_volatility_garch(view, block.refit_date, config.horizon)[0]


def _forest(view: TrainingSet, block: Block, config: WalkForwardConfig) -> object:
    return train_regime_forest(view, n_estimators=config.forest_trees, seed=config.seed)[0]


@dataclass
class _HarModel:
    har: HarForecaster

    def predict_frame(self, frame: pl.DataFrame) -> pl.DataFrame:
        out = self.har.forecast(frame.select("symbol", "date", "log_ret_1"))
        return out.rename({"har_vol": VOL_OUTPUT})


def _har(view: TrainingSet, block: Block, config: WalkForwardConfig) -> object:
    frame = view.frame.select("symbol", "date", "log_ret_1", "fwd_vol_20")
    har = HarForecaster().fit(frame, target="fwd_vol_20", train_mask=view.mask(TRAIN))
    return _HarModel(har)


Fitter = Callable[[TrainingSet, Block, WalkForwardConfig], object]
FITTERS: dict[str, tuple[Fitter, bool]] = {
    # (fit, whether it early-stops on the window's last sessions)
    "direction_xgboost": (_xgboost, True),
    "direction_lstm": (_direction_lstm, True),
    "volatility_garch": (_garch, False),
    "volatility_har": (_har, False),
    "volatility_lstm": (_volatility_lstm, True),
    "regime_random_forest": (_forest, False),
}


def refit_and_predict(
    model: str,
    panel: pl.DataFrame,
    block: Block,
    config: WalkForwardConfig,
    anchors: frozenset[str] | None = None,
) -> pl.DataFrame:
    """One refit of ``model`` at ``block.refit_date`` and its predictions for the block's rows:
    symbol, date, model, refit_date and the family's outputs."""
    fitter, early_stopping = FITTERS[model]
    known = panel.filter(pl.col("date") <= block.end)
    if FAMILY_OF[model] == "regime":
        known = with_regimes_as_of(known, block.refit_date, config.horizon, anchors)
        known = known.filter(pl.col("regime").is_not_null() | (pl.col("date") > block.refit_date))
    view = training_view(known, block, config.inner_validation, early_stopping)
    fitted = fitter(view, block, config)
    outputs = fitted.predict_frame(known)
    scored = outputs.filter((pl.col("date") >= block.start) & (pl.col("date") <= block.end))
    columns = OUTPUTS[FAMILY_OF[model]]
    rows = scored.select(
        *KEYS,
        pl.lit(model).alias("model"),
        pl.lit(block.refit_date).alias("refit_date"),
        *[pl.col(c).cast(pl.Float64) for c in columns],
    ).drop_nulls(columns)
    if FAMILY_OF[model] == "regime":
        labels = known.select(*KEYS, *[pl.col(k).alias(v) for k, v in REGIME_LABELS.items()])
        rows = rows.join(labels, on=KEYS, how="left")
    return rows


def inputs_version(panel: pl.DataFrame, end: date) -> str:
    """A hash of every input a block up to ``end`` can read (features, context, forward
    quantities), independent of the current regime thresholds."""
    columns = [
        c for c in (*KEYS, *MODEL_FEATURES, "log_ret_1", *LABEL_INPUTS) if c in panel.columns
    ]
    rows = panel.filter(pl.col("date") <= end).select(list(dict.fromkeys(columns))).sort(KEYS)
    digest = hashlib.sha256(",".join(f"{k}:{v}" for k, v in rows.schema.items()).encode())
    digest.update(rows.hash_rows(seed=0).to_numpy().tobytes())
    return digest.hexdigest()[:16]


def block_key(model: str, block: Block, config: WalkForwardConfig, version: str) -> str:
    """The cache key of one block's predictions."""
    text = json.dumps(
        {
            "config": config.for_family(model),
            "refit": str(block.refit_date),
            "start": str(block.start),
            "end": str(block.end),
            "inputs": version,
        },
        sort_keys=True,
        default=str,
    )
    return f"{model}-{block.refit_date:%Y%m%d}-{hashlib.sha256(text.encode()).hexdigest()[:16]}"


def empty_record() -> pl.DataFrame:
    return pl.DataFrame(
        schema={
            "symbol": pl.String,
            "date": pl.Date,
            "model": pl.String,
            "refit_date": pl.Date,
            **{c: pl.Float64 for c in RECORD_OUTPUTS},
            **{c: pl.Int8 for c in REGIME_LABELS.values()},
        }
    )


def conform(frame: pl.DataFrame) -> pl.DataFrame:
    """A block's predictions in the record's schema (outputs it lacks are null)."""
    return pl.concat([empty_record(), frame], how="diagonal_relaxed")


def build_record(
    panel: pl.DataFrame,
    models: tuple[str, ...],
    config: WalkForwardConfig,
    anchors: frozenset[str] | None = None,
    cache_get: Callable[[str], pl.DataFrame | None] | None = None,
    cache_put: Callable[[str, pl.DataFrame], None] | None = None,
    on_block: Callable[[str, Block, bool, float], None] | None = None,
) -> pl.DataFrame:
    """The whole record for ``models``; ``cache_get`` / ``cache_put`` (by ``block_key``) let a
    rebuild reuse blocks whose inputs and configuration are unchanged; ``on_block`` hears
    (model, block, from cache, seconds) after each."""
    import time

    panel = panel.sort(KEYS)
    parts = []
    blocks = schedule(panel, config, anchors)
    versions = {b.number: inputs_version(panel, b.end) for b in blocks}
    for model in models:
        for block in blocks:
            key = block_key(model, block, config, versions[block.number])
            started = time.perf_counter()
            cached = cache_get(key) if cache_get else None
            rows = (
                cached
                if cached is not None
                else refit_and_predict(model, panel, block, config, anchors)
            )
            if cached is None and cache_put:
                cache_put(key, rows)
            parts.append(conform(rows))
            if on_block:
                on_block(model, block, cached is not None, time.perf_counter() - started)
    if not parts:
        return empty_record()
    return pl.concat(parts, how="vertical_relaxed").sort("model", "symbol", "date")


__all__ = [
    "ALL_FAMILIES",
    "FAST_FAMILIES",
    "Block",
    "WalkForwardConfig",
    "block_key",
    "build_record",
    "refit_and_predict",
    "schedule",
]
