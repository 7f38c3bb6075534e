"""Serving: ``signals``, today's BUY / SELL / HOLD per symbol from the champion models.

The champions come from the MLflow registry (alias ``champion``); the combiner is
``quant.signals`` (soft vote of the direction models, regime gate, volatility-scaled size).
An operator halt (``market halt``, resources/control.py) turns every signal into HOLD, and so does
stale data for its symbol: a last bar more than ``MARKET_STALE_AFTER_SESSIONS`` sessions of the
symbol's exchange calendar behind the run date (quant/freshness.py). What was
served is appended to the served log (resources/served_log.py): the signals, and every
champion's predictions for the served rows, with the model versions and the Dagster run.
"""

import json
from datetime import UTC, date, datetime

import dagster as dg
import polars as pl

from assets.metadata import md
from assets.partitions import UNIVERSE
from quant.dataset import KEYS, MODEL_FEATURES
from quant.freshness import freshness
from quant.monitoring.drift import current_window
from quant.signals import SignalRule, combine, halt_all, hold_stale, latest, soft_vote
from resources.control import OperatorControl
from resources.market_data import MarketData
from resources.mlflow_tracking import Champion, MlflowTracking, load_champions
from resources.served_log import ServedLog, prediction_rows

HISTORY_SESSIONS = 60  # enough rows for the sequence models' 20-session windows
SIGNAL_COLUMNS = {
    "p_down": "probability the next session closes down (soft vote of the direction champions)",
    "p_neutral": "probability of a move within ±0.1 %",
    "p_up": "probability the next session closes up",
    "vol_forecast": "forecast annualized volatility of the next 20 sessions",
    "p_bear": "probability the next 20 sessions are a Bear regime",
    "p_sideways": "probability of a Sideways regime",
    "p_bull": "probability of a Bull regime",
    "p_highvol": "probability of a HighVol regime",
    "edge": "P(Up) - P(Down)",
    "confidence": "|edge|",
    "signal": "BUY / SELL / HOLD",
    "position": "volatility-scaled position in [-1, 1] (0 for HOLD)",
    "regime": "predicted regime of the next 20 sessions",
    "halted": "true when an operator halt turned the signal into HOLD (position 0)",
    "data_date": "the date of the bar the signal was made from (equal to `date`)",
    "run_date": "the date the data should be current on (the source's as-of; live: today)",
    "sessions_behind": "sessions of the symbol's exchange calendar after data_date, up to run_date",
    "stale": "true when sessions_behind exceeds MARKET_STALE_AFTER_SESSIONS: signal HOLD, "
    "position 0",
}
COLUMN_TYPES = {
    "signal": "string",
    "regime": "string",
    "halted": "bool",
    "data_date": "date",
    "run_date": "date",
    "sessions_behind": "int64",
    "stale": "bool",
}


class SignalConfig(dg.Config):
    min_edge: float = 0.05
    gate_multiplier: float = 2.0
    target_vol: float = 0.15
    long_only: bool = False

    def rule(self) -> SignalRule:
        return SignalRule(self.min_edge, self.gate_multiplier, self.target_vol, self.long_only)


def family_outputs(
    champions: dict[str, Champion], family: str, frame: pl.DataFrame, exclude: tuple[str, ...] = ()
) -> list[pl.DataFrame]:
    """Each champion of ``family``'s predictions on ``frame``."""
    chosen = [c for n, c in champions.items() if c.family == family and n not in exclude]
    return [c.model.predict_frame(frame) for c in chosen]


def champion_outputs(
    champions: dict[str, Champion], frame: pl.DataFrame
) -> dict[str, pl.DataFrame]:
    """Every champion's predictions on ``frame``, by model name (each model predicts once: the
    same outputs feed the signals and the served log)."""
    return {n: c.model.predict_frame(frame) for n, c in champions.items()}


def of_family(
    champions: dict[str, Champion],
    outputs: dict[str, pl.DataFrame],
    family: str,
    exclude: tuple[str, ...] = (),
) -> list[pl.DataFrame]:
    """The outputs of ``family``'s champions (as ``family_outputs``, from precomputed outputs)."""
    return [outputs[n] for n, c in champions.items() if c.family == family and n not in exclude]


def served_predictions(
    champions: dict[str, Champion], outputs: dict[str, pl.DataFrame], served: pl.DataFrame
) -> pl.DataFrame:
    """Each champion's predictions for exactly the (symbol, date) rows of ``served``, long: one
    row per symbol x session x model, with the model's family and registered version."""
    keys = served.select(KEYS)
    return pl.concat(
        [
            prediction_rows(n, c.family, c.version, outputs[n].join(keys, on=KEYS, how="semi"))
            for n, c in champions.items()
        ]
    ).sort("symbol", "date", "model")


def halt_note(halt: dict) -> str:
    """The halt record as one line of metadata: reason (user, since when)."""
    return f"{halt['reason'] or '(no reason given)'} (by {halt['user']} at {halt['at']})"


def with_freshness(
    today: pl.DataFrame, run_date: date, max_sessions_behind: int
) -> tuple[pl.DataFrame, pl.DataFrame]:
    """``today``'s signals with data_date, run_date, sessions_behind and stale, the stale
    symbols held (HOLD, position 0); and the stale symbols' freshness rows.

    Why: a signal is only today's if the bar it was made from is current on its exchange
    calendar; ``date`` is that bar's date, so it is the signal's data date.
    """
    calendars = {i.symbol: i.calendar for i in UNIVERSE.instruments}
    verdicts = freshness(
        today.select("symbol", pl.col("date").alias("data_date")),
        calendars,
        run_date,
        max_sessions_behind,
    )
    stale = verdicts.filter(pl.col("stale"))
    served = (
        hold_stale(today, stale["symbol"])
        .join(verdicts.select("symbol", "sessions_behind"), on="symbol", how="left")
        .with_columns(
            pl.col("date").alias("data_date"),
            pl.lit(run_date, pl.Date).alias("run_date"),
        )
    )
    return served, stale


def stale_summary(stale: pl.DataFrame) -> list[dict[str, object]]:
    """The stale symbols for the asset's metadata: symbol, calendar, data_date, sessions_behind."""
    return [
        {
            "symbol": r["symbol"],
            "calendar": r["calendar"],
            "data_date": str(r["data_date"]),
            "sessions_behind": r["sessions_behind"],
        }
        for r in stale.iter_rows(named=True)
    ]


def missing_families(champions: dict[str, Champion]) -> list[str]:
    """Families without a champion (signals need all three)."""
    return sorted({"direction", "volatility", "regime"} - {c.family for c in champions.values()})


def mean_volatility(frames: list[pl.DataFrame]) -> pl.DataFrame:
    """The mean of the volatility champions' forecasts (a forecast combination)."""
    return (
        pl.concat([f.select(*KEYS, "vol_forecast") for f in frames])
        .drop_nulls("vol_forecast")
        .group_by(KEYS)
        .agg(pl.col("vol_forecast").mean(), pl.len().alias("_n"))
        .filter(pl.col("_n") == len(frames))
        .drop("_n")
    )


@dg.asset(
    ins={"features": dg.AssetIn("features"), "market_context": dg.AssetIn("market_context")},
    # the champions it loads are decided by the report (promotion), so that is upstream too
    deps=["model_report", "shadow_promotion"],
    io_manager_key="lake_io_manager",
    group_name="serving",
    kinds={"mlflow", "polars", "duckdb"},
    owners=["team:trading"],
    tags={"layer": "serving"},
    code_version="3",
    description="For the latest session of each symbol: the champions' P(Up/Neutral/Down) (soft "
    "vote of the direction models), forecast 20-session volatility and predicted regime, "
    "combined into BUY / SELL / HOLD with a confidence and a volatility-scaled position (rule: "
    "quant/signals.py); all HOLD while an operator halt is on (`market halt`); HOLD for a symbol "
    "whose last bar is stale on its exchange calendar (`stale`, `data_date`). Every run "
    "appends what it served to the served log (DuckDB views `served_signals`, "
    "`served_predictions`). Also the DuckDB view `signals`.",
    metadata={
        "dagster/column_schema": dg.TableSchema(
            columns=[
                dg.TableColumn("symbol", "string"),
                dg.TableColumn("date", "date"),
                *[
                    dg.TableColumn(n, COLUMN_TYPES.get(n, "float64"), description=d)
                    for n, d in SIGNAL_COLUMNS.items()
                ],
            ]
        ),
    },
)
def signals(
    context: dg.AssetExecutionContext,
    config: SignalConfig,
    mlflow_tracking: MlflowTracking,
    served_log: ServedLog,
    operator_control: OperatorControl,
    market_data: MarketData,
    features: pl.DataFrame,
    market_context: pl.DataFrame,
) -> pl.DataFrame:
    context_columns = [c for c in MODEL_FEATURES if c in market_context.columns]
    panel = features.join(market_context.select(*KEYS, *context_columns), on=KEYS, how="left")
    recent = current_window(panel, HISTORY_SESSIONS)
    champions = load_champions(mlflow_tracking)
    missing = missing_families(champions)
    if missing:
        # a nightly run before the first retrain: nothing to serve yet, and no reason to fail
        context.add_output_metadata(
            {
                "status": f"no champion for {missing} in the MLflow registry: run `retrain` "
                "(or `make run`) first",
                "dagster/row_count": 0,
            }
        )
        return pl.DataFrame(
            schema={
                "symbol": pl.String,
                "date": pl.Date,
                "signal": pl.String,
                "data_date": pl.Date,
                "stale": pl.Boolean,
                "halted": pl.Boolean,
            }
        )
    outputs = champion_outputs(champions, recent)
    direction = soft_vote(
        of_family(champions, outputs, "direction", exclude=("direction_ensemble",))
    )
    volatility = mean_volatility(of_family(champions, outputs, "volatility"))
    (regime,) = of_family(champions, outputs, "regime")
    today = latest(combine(direction, volatility, regime, config.rule()))
    run_date = market_data.run_date(UNIVERSE)
    threshold = market_data.max_sessions_behind
    today, stale = with_freshness(today, run_date, threshold)
    halt = operator_control.halted()
    if halt is not None:
        today = halt_all(today)
    else:
        today = today.with_columns(pl.lit(False).alias("halted"))
    versions = {n: c.version for n, c in champions.items()}
    served_at = datetime.now(UTC)
    served_signals = today.with_columns(pl.lit(json.dumps(versions)).alias("model_versions"))
    predictions = served_predictions(champions, outputs, today)
    served_log.append("signals", served_signals, served_at, context.run_id)
    served_log.append("predictions", predictions, served_at, context.run_id)
    counts = {s: int((today["signal"] == s).sum()) for s in ("BUY", "SELL", "HOLD")}
    context.add_output_metadata(
        {
            "dagster/row_count": today.height,
            "run_date": str(run_date),
            "data_dates": f"{today['data_date'].min()} .. {today['data_date'].max()}",
            "stale_after_sessions": threshold,
            "stale_symbols": dg.MetadataValue.json(stale_summary(stale)),
            **{f"{k.lower()}_signals": v for k, v in counts.items()},
            "signals": md(
                today.select(
                    "symbol",
                    "data_date",
                    "signal",
                    "stale",
                    "sessions_behind",
                    "confidence",
                    "position",
                    "p_up",
                    "p_down",
                    "vol_forecast",
                    "regime",
                ),
                3,
            ),
            "champions": dg.MetadataValue.json(versions),
            "rule": dg.MetadataValue.json(vars(config.rule())),
            "served_rows_logged": served_signals.height + predictions.height,
            **({"halted": halt_note(halt)} if halt is not None else {}),
        }
    )
    return today
