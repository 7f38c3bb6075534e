"""When monitoring results call for a retrain or a sweep: the rule the sensor applies.

Drift share ≥ ``severe_drift_share`` → sweep (re-tune, then retrain); ≥ ``retrain_drift_share``
→ retrain; champion decay → retrain. Pure, so the rule is tested without a Dagster instance.
"""

from __future__ import annotations

from dataclasses import dataclass

RETRAIN, SWEEP = "retrain", "sweep"
SEVERITY = {None: 0, RETRAIN: 1, SWEEP: 2}


@dataclass(frozen=True)
class TriggerPolicy:
    retrain_drift_share: float = 0.3
    severe_drift_share: float = 0.5

    def __post_init__(self) -> None:
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


@dataclass(frozen=True)
class Decision:
    job: str | None
    reason: str
    observation: Observation

    @property
    def run_key(self) -> str:
        """Deterministic: the same materialization can never launch two runs."""
        return f"{self.job}:{self.observation.asset}:{self.observation.storage_id}"


def decide(observation: Observation, policy: TriggerPolicy) -> Decision:
    """The job (or None) one monitoring result calls for, and why."""
    where = f"{observation.asset} #{observation.storage_id}" + (
        f" (as of {observation.as_of})" if observation.as_of else ""
    )
    if observation.drift_share is not None:
        share = observation.drift_share
        if share >= policy.severe_drift_share:
            return Decision(
                SWEEP,
                f"{where}: drift share {share:.2f} >= severe {policy.severe_drift_share:.2f}",
                observation,
            )
        if share >= policy.retrain_drift_share:
            return Decision(
                RETRAIN,
                f"{where}: drift share {share:.2f} >= {policy.retrain_drift_share:.2f}",
                observation,
            )
        return Decision(
            None,
            f"{where}: drift share {share:.2f} < {policy.retrain_drift_share:.2f}",
            observation,
        )
    if observation.decayed:
        return Decision(RETRAIN, f"{where}: champion performance decayed", observation)
    return Decision(None, f"{where}: no decay", observation)


def most_severe(decisions: list[Decision]) -> Decision | None:
    """The decision to act on in one tick: the most severe, the latest among equals."""
    acting = [d for d in decisions if d.job is not None]
    if not acting:
        return None
    return max(acting, key=lambda d: (SEVERITY[d.job], d.observation.storage_id))
