"""Forward-looking targets: what the models are asked to predict, per (symbol, date).

Every label at date t reads bars *after* t only (the next session, or the next ``horizon``
sessions of the same symbol), and its trailing twin (the same quantity over the ``horizon``
sessions up to t) is what the naive baselines predict. Returns use the adjusted close.

- direction: the next session's simple return, classed Down (< -0.1 %), Neutral, Up (> +0.1 %);
  the raw forward return is kept for the information coefficient. Optionally
  (``direction_band="vol_scaled"``) the neutral band is per symbol and per date instead:
  ± ``direction_band_scale`` × the standard deviation of the symbol's daily log returns over the
  last ``direction_band_window`` sessions up to t (known at t's close), so a quiet index and a
  volatile stock, or a calm and a stressed year, get the same share of Neutral days.
- volatility: realized volatility of daily log returns over the next 20 sessions,
  sqrt(252 * mean(r^2)) (zero-mean, annualized); baseline: the same over the last 20 sessions.
- regime: the regime of the next 20 sessions. Thresholds are estimated per symbol on the
  training window only (rows whose label ends on or before its ``train_end``: an explicit date,
  or the rolling window's, which moves with the data), then applied everywhere:

  1. HighVol when forward realized vol >= its training 80th percentile, or the mean VIX over the
     next 20 sessions >= its training 80th percentile (market-wide stress; the VIX as the
     symbol's context sees it, one session lagged for every symbol but the VIX itself);
  2. otherwise Bull when the forward 20-session log return > +band, Bear when < -band,
     Sideways in between, where band = half of a typical 20-session move:
     0.5 * median(training forward vol) * sqrt(20 / 252).

  The persistence baseline applies the same thresholds to the trailing 20 sessions ("today's
  regime persists"). Labelling *today's* state and predicting it from the same features would be
  circular; predicting the coming regime is the useful task.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import date
from enum import IntEnum
from typing import Literal

import polars as pl

from quant.splits import SplitConfig, resolve_windows

TRADING_DAYS = 252
SYMBOL = "symbol"


class Direction(IntEnum):
    DOWN = 0
    NEUTRAL = 1
    UP = 2


class Regime(IntEnum):
    BEAR = 0
    SIDEWAYS = 1
    BULL = 2
    HIGH_VOL = 3


DIRECTION_NAMES = [d.name.title() for d in Direction]
REGIME_NAMES = ["Bear", "Sideways", "Bull", "HighVol"]


DIRECTION_BANDS = ("fixed", "vol_scaled")
# vol_scaled default: on the bundled sample 0.1 × trailing daily vol leaves 9 % of days Neutral,
# in the range the fixed ±0.1 % band gives (equities 6 %, indices 10 %), but evenly spread over
# symbols (8-10 % each, against 1-11 %) and years (docs/MODELS.md, "Direction band")
DEFAULT_BAND_SCALE = 0.1


@dataclass(frozen=True)
class LabelConfig:
    """Label definitions. The regime thresholds may see rows whose label ends by ``train_end``;
    without one, by the train end of the ``split`` windows resolved on the data itself (the
    windows the training set will use), anchored to ``anchors``."""

    up_threshold: float = 0.001
    down_threshold: float = -0.001
    horizon: int = 20
    train_end: date | None = None
    split: SplitConfig | None = None
    anchors: frozenset[str] | None = None
    vol_quantile: float = 0.8
    vix_quantile: float = 0.8
    band_scale: float = 0.5
    # the direction's neutral band: "fixed" (up_threshold / down_threshold) or "vol_scaled"
    # (± direction_band_scale × trailing std of daily log returns; the thresholds are then unused)
    direction_band: Literal["fixed", "vol_scaled"] = "fixed"
    direction_band_scale: float = DEFAULT_BAND_SCALE
    direction_band_window: int = 20

    def __post_init__(self) -> None:
        if not self.down_threshold <= 0 <= self.up_threshold:
            raise ValueError(
                f"direction thresholds must satisfy down <= 0 <= up, got {self.down_threshold}, "
                f"{self.up_threshold}"
            )
        if self.direction_band not in DIRECTION_BANDS:
            raise ValueError(
                f"direction_band must be one of {DIRECTION_BANDS}, got {self.direction_band!r}"
            )
        if not self.direction_band_scale >= 0:
            raise ValueError(f"direction_band_scale must be >= 0, got {self.direction_band_scale}")
        if self.direction_band_window < 2:
            raise ValueError(
                f"direction_band_window must be at least 2 sessions, got "
                f"{self.direction_band_window}"
            )
        if self.horizon < 2:
            raise ValueError(f"horizon must be at least 2 sessions, got {self.horizon}")
        if self.train_end is None and self.split is None:
            raise ValueError("labels need a train_end or a split config to fit regime thresholds")

    def threshold_end(self, forward: pl.DataFrame) -> date:
        """The last label end the regime thresholds may read, for ``forward`` (symbol, date,
        label_end)."""
        if self.train_end is not None:
            return self.train_end
        assert self.split is not None
        return resolve_windows(forward, self.split, self.anchors).train_end


LABEL_COLUMNS = {
    "fwd_return_1": "simple return from this close to the next session's close",
    "direction": "next-session class: 0 Down (< down threshold), 1 Neutral, 2 Up (> up threshold); "
    "with the vol-scaled band, thresholds ± scale × trailing 20-session std of daily log returns",
    "prev_direction": "the class of today's return (previous-day-sign baseline)",
    "fwd_vol_20": "annualized realized volatility of daily log returns over the next 20 sessions",
    "trail_vol_20": "annualized realized volatility over the last 20 sessions (naive baseline)",
    "fwd_return_20": "log return over the next 20 sessions",
    "fwd_vix_20": "mean of the symbol's vix_level over its next 20 sessions (for every symbol "
    "but the volatility index, each level is the previous VIX session's close)",
    "regime": "regime of the next 20 sessions: 0 Bear, 1 Sideways, 2 Bull, 3 HighVol",
    "regime_now": "regime of the last 20 sessions by the same thresholds (persistence baseline)",
    "label_end": "date of the last session the 20-session labels read (for purging)",
}


def _direction(ret: pl.Expr, config: LabelConfig, band: pl.Expr | None = None) -> pl.Expr:
    """The class of return ``ret``: the fixed thresholds, or with ``band`` (the vol-scaled
    half-width, null while the trailing window fills) Up above +band, Down below −band, null
    where the band is unknown."""
    if band is None:
        return (
            pl.when(ret > config.up_threshold)
            .then(pl.lit(Direction.UP.value))
            .when(ret < config.down_threshold)
            .then(pl.lit(Direction.DOWN.value))
            .when(ret.is_not_null())
            .then(pl.lit(Direction.NEUTRAL.value))
            .cast(pl.Int8)
        )
    return (
        pl.when(band.is_null())
        .then(None)
        .when(ret > band)
        .then(pl.lit(Direction.UP.value))
        .when(ret < -band)
        .then(pl.lit(Direction.DOWN.value))
        .when(ret.is_not_null())
        .then(pl.lit(Direction.NEUTRAL.value))
        .cast(pl.Int8)
    )


def direction_band(log_ret: pl.Expr, config: LabelConfig) -> pl.Expr:
    """The vol-scaled half-width of the neutral band at each row: ``direction_band_scale`` × the
    sample std of the symbol's daily log returns over the ``direction_band_window`` sessions
    ending at the row (today's return included: it is known at the close), null until that many
    returns exist. Reads no later row. Expects (symbol, date) order; per symbol."""
    window = config.direction_band_window
    std = log_ret.rolling_std(window, min_samples=window)
    return (std * config.direction_band_scale).over(SYMBOL)


def forward_quantities(bars: pl.DataFrame, vix: pl.DataFrame, config: LabelConfig) -> pl.DataFrame:
    """Forward and trailing returns, volatilities and VIX means per (symbol, date).

    ``bars``: symbol, date, close (adjusted). ``vix``: symbol, date, vix_level (the market
    context, already aligned to each symbol's dates as of its close). For every symbol but the
    volatility index, ``vix_level`` at t is the close of the last VIX session *before* t (the VIX
    closes at 4:15 pm ET, after the equities), so ``trail_vix_20`` (the last 20 levels) is known
    at the close of t, and ``fwd_vix_20`` (the next 20 levels) spans the VIX closes from t's own,
    printed after the decision, to the 19th session ahead: all after the decision, as a label
    must be.
    """
    h = config.horizon
    close = pl.col("close")
    log_ret = (close / close.shift(1)).log().over(SYMBOL)
    sq = pl.col("_r2")
    frame = (
        bars.select(SYMBOL, "date", "close")
        .join(vix.select(SYMBOL, "date", "vix_level"), on=[SYMBOL, "date"], how="left")
        .sort(SYMBOL, "date")
        .with_columns(log_ret.pow(2).alias("_r2"), log_ret.alias("_ret"))
        .with_columns(
            (close.shift(-1) / close - 1.0).over(SYMBOL).alias("fwd_return_1"),
            (close / close.shift(1) - 1.0).over(SYMBOL).alias("_ret_today"),
            # the rolling mean ending at t+h covers t+1..t+h
            (sq.rolling_mean(h).shift(-h) * TRADING_DAYS).sqrt().over(SYMBOL).alias("fwd_vol_20"),
            (sq.rolling_mean(h) * TRADING_DAYS).sqrt().over(SYMBOL).alias("trail_vol_20"),
            (close.shift(-h) / close).log().over(SYMBOL).alias("fwd_return_20"),
            (close / close.shift(h)).log().over(SYMBOL).alias("trail_return_20"),
            pl.col("vix_level").rolling_mean(h).shift(-h).over(SYMBOL).alias("fwd_vix_20"),
            pl.col("vix_level").rolling_mean(h).over(SYMBOL).alias("trail_vix_20"),
            pl.col("date").shift(-h).over(SYMBOL).alias("label_end"),
        )
    )
    if config.direction_band == "vol_scaled":
        # the return t -> t+1 is classed by the band known at t; today's return t-1 -> t by the
        # band known at t-1, the same rule, so prev_direction at t is direction at t-1
        band = pl.col("_band")
        frame = frame.with_columns(direction_band(pl.col("_ret"), config).alias("_band"))
        frame = frame.with_columns(
            _direction(pl.col("fwd_return_1"), config, band).alias("direction"),
            _direction(pl.col("_ret_today"), config, band.shift(1).over(SYMBOL)).alias(
                "prev_direction"
            ),
        ).drop("_band")
    else:
        frame = frame.with_columns(
            _direction(pl.col("fwd_return_1"), config).alias("direction"),
            _direction(pl.col("_ret_today"), config).alias("prev_direction"),
        )
    return frame.drop("_r2", "_ret", "_ret_today", "close", "vix_level")


@dataclass(frozen=True)
class RegimeThresholds:
    """Per-symbol thresholds: ``table`` has symbol, vol_high, vix_high, band, n_train."""

    table: pl.DataFrame

    fitted_through: date | None = None

    @classmethod
    def fit(cls, forward: pl.DataFrame, config: LabelConfig) -> RegimeThresholds:
        """Estimate on rows whose 20-session label ends on or before the training window's end
        only (``LabelConfig.threshold_end``)."""
        end = config.threshold_end(forward)
        train = forward.filter(pl.col("label_end") <= end)
        table = train.group_by(SYMBOL).agg(
            pl.col("fwd_vol_20").quantile(config.vol_quantile, "linear").alias("vol_high"),
            pl.col("fwd_vix_20").quantile(config.vix_quantile, "linear").alias("vix_high"),
            (
                pl.col("fwd_vol_20").median()
                * config.band_scale
                * math.sqrt(config.horizon / TRADING_DAYS)
            ).alias("band"),
            pl.col("fwd_vol_20").drop_nulls().len().alias("n_train"),
        )
        return cls(table.sort(SYMBOL), end)


def _classify(ret: str, vol: str, vix: str) -> pl.Expr:
    """The regime rule over one (return, vol, VIX) triple of columns; null if any input is."""
    r, v, x = pl.col(ret), pl.col(vol), pl.col(vix)
    stressed = (v >= pl.col("vol_high")) | (x >= pl.col("vix_high")).fill_null(False)
    return (
        pl.when(r.is_null() | v.is_null() | pl.col("band").is_null())
        .then(None)
        .when(stressed)
        .then(pl.lit(Regime.HIGH_VOL.value))
        .when(r > pl.col("band"))
        .then(pl.lit(Regime.BULL.value))
        .when(r < -pl.col("band"))
        .then(pl.lit(Regime.BEAR.value))
        .otherwise(pl.lit(Regime.SIDEWAYS.value))
        .cast(pl.Int8)
    )


def assign_regimes(forward: pl.DataFrame, thresholds: RegimeThresholds) -> pl.DataFrame:
    """Add ``regime`` (next 20 sessions) and ``regime_now`` (last 20 sessions).

    A symbol without training history has no thresholds, hence null regimes: nothing may be
    estimated from its later data.
    """
    joined = forward.join(thresholds.table.drop("n_train"), on=SYMBOL, how="left")
    return joined.with_columns(
        _classify("fwd_return_20", "fwd_vol_20", "fwd_vix_20").alias("regime"),
        _classify("trail_return_20", "trail_vol_20", "trail_vix_20").alias("regime_now"),
    ).drop("vol_high", "vix_high", "band")


def compute_labels(
    bars: pl.DataFrame, vix: pl.DataFrame, config: LabelConfig | None = None
) -> tuple[pl.DataFrame, RegimeThresholds]:
    """All labels for ``bars`` (any number of symbols) and the regime thresholds used.

    Output columns: symbol, date and :data:`LABEL_COLUMNS` (plus the trailing return and VIX mean
    the persistence baseline reads). The last rows of each symbol have null forward labels: their
    future has not happened yet.
    """
    config = config or LabelConfig(split=SplitConfig())
    forward = forward_quantities(bars, vix, config)
    thresholds = RegimeThresholds.fit(forward, config)
    return assign_regimes(forward, thresholds), thresholds
