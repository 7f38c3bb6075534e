"""When monitoring results call for a retrain or a sweep: the rule the sensor applies.

Drift share ≥ the severe threshold → sweep (re-tune, then retrain); ≥ the retrain threshold →
retrain; champion decay → retrain. The thresholds are those the drift reading calibrated on its
own reference (``feature_drift``'s ``retrain_threshold`` / ``severe_threshold``) unless the
policy fixes them. A retrain is also due on the calendar, every ``every_sessions`` sessions of
new labeled data; and nothing is launched when no labeled session has arrived since the last
retrain (it would refit the same rows). Pure, so the rule is tested without a Dagster instance.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRAIN, SWEEP = "retrain", "sweep"
CALENDAR = "calendar"
SEVERITY = {None: 0, RETRAIN: 1, SWEEP: 2}


@dataclass(frozen=True)
class TriggerPolicy:
    """Fallback thresholds (used when a reading carries no calibrated ones, or when ``fixed``
    names the ones to use regardless: ``"retrain"``, ``"severe"``) and the retrain calendar."""

    retrain_drift_share: float = 0.3
    severe_drift_share: float = 0.5
    fixed: frozenset[str] = frozenset()
    every_sessions: int = 21

    def __post_init__(self) -> None:
        if self.every_sessions < 1:
            raise ValueError(f"every_sessions must be >= 1, got {self.every_sessions}")
        if not 0 < self.retrain_drift_share <= self.severe_drift_share <= 1:
            raise ValueError(
                "thresholds must satisfy 0 < retrain_drift_share <= severe_drift_share <= 1, got "
                f"{self.retrain_drift_share}, {self.severe_drift_share}"
            )


@dataclass(frozen=True)
class Observation:
    """One monitoring materialization: which asset, its storage id, and what it measured."""

    asset: str
    storage_id: int
    drift_share: float | None = None
    decayed: bool | None = None
    as_of: str | None = None
    retrain_threshold: float | None = None
    severe_threshold: float | None = None

    def thresholds(self, policy: TriggerPolicy) -> tuple[float, float]:
        """(retrain, severe) for this reading: calibrated where it has them, unless fixed."""
        retrain = self.retrain_threshold
        severe = self.severe_threshold
        if retrain is None or "retrain" in policy.fixed:
            retrain = policy.retrain_drift_share
        if severe is None or "severe" in policy.fixed:
            severe = policy.severe_drift_share
        return retrain, max(severe, retrain)


@dataclass(frozen=True)
class Decision:
    job: str | None
    reason: str
    observation: Observation

    @property
    def run_key(self) -> str:
        """Deterministic: the same materialization (or, on the calendar, the same labeled-through
        date) can never launch two runs."""
        if self.observation.asset == CALENDAR:
            return f"{self.job}:{CALENDAR}:{self.observation.as_of}"
        return f"{self.job}:{self.observation.asset}:{self.observation.storage_id}"


def decide(observation: Observation, policy: TriggerPolicy) -> Decision:
    """The job (or None) one monitoring result calls for, and why."""
    where = f"{observation.asset} #{observation.storage_id}" + (
        f" (as of {observation.as_of})" if observation.as_of else ""
    )
    if observation.drift_share is not None:
        share = observation.drift_share
        retrain, severe = observation.thresholds(policy)
        if share >= severe:
            return Decision(
                SWEEP, f"{where}: drift share {share:.2f} >= severe {severe:.2f}", observation
            )
        if share >= retrain:
            return Decision(
                RETRAIN, f"{where}: drift share {share:.2f} >= {retrain:.2f}", observation
            )
        return Decision(None, f"{where}: drift share {share:.2f} < {retrain:.2f}", observation)
    if observation.decayed:
        return Decision(RETRAIN, f"{where}: champion performance decayed", observation)
    return Decision(None, f"{where}: no decay", observation)


def most_severe(decisions: list[Decision]) -> Decision | None:
    """The decision to act on in one tick: the most severe, the latest among equals."""
    acting = [d for d in decisions if d.job is not None]
    if not acting:
        return None
    return max(acting, key=lambda d: (SEVERITY[d.job], d.observation.storage_id))


@dataclass(frozen=True)
class DataProgress:
    """How far the labels reach now and how far the last retrain's did, in sessions."""

    labeled_through: str | None
    trained_through: str | None
    new_sessions: int | None

    @property
    def nothing_new(self) -> bool:
        """A retrain would refit exactly the rows the last one saw."""
        return self.trained_through is not None and self.new_sessions == 0

    def describe(self) -> str:
        if self.trained_through is None:
            return f"no retrain yet (labels through {self.labeled_through})"
        return (
            f"{self.new_sessions} labeled sessions since the last retrain (its training window "
            f"ends {self.trained_through}; labels now end {self.labeled_through})"
        )


def calendar_decision(progress: DataProgress, policy: TriggerPolicy) -> Decision | None:
    """A retrain on the calendar: first one, or ``every_sessions`` new labeled sessions since
    the last; None when not due or when the labels' extent is unknown."""
    if progress.labeled_through is None:
        return None
    due = progress.trained_through is None or (progress.new_sessions or 0) >= policy.every_sessions
    if not due:
        return None
    observation = Observation(CALENDAR, 0, as_of=progress.labeled_through)
    reason = f"calendar (every {policy.every_sessions} sessions): {progress.describe()}"
    return Decision(RETRAIN, reason, observation)
