"""Optuna study storage as a resource: a SQLite file under ``data/`` by default, any RDB URL
(Postgres) when several workers join one study (SQLite's locking breaks under parallel writers)."""

from __future__ import annotations

from pathlib import Path

import dagster as dg
import optuna


class OptunaStorage(dg.ConfigurableResource):
    """Where studies live; ``url`` is an SQLAlchemy URL (``sqlite:///…``, ``postgresql://…``)."""

    url: str

    def storage(self) -> optuna.storages.RDBStorage:
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        return optuna.storages.RDBStorage(self.url)

    def study(
        self, name: str, seed: int, direction: str = "minimize", warmup_steps: int = 1
    ) -> optuna.Study:
        """Create the study, or load it to continue: the same name always resumes the same
        study, so repeated sweeps add trials instead of starting over."""
        return optuna.create_study(
            study_name=name,
            storage=self.storage(),
            direction=direction,
            sampler=optuna.samplers.TPESampler(seed=seed),
            pruner=optuna.pruners.MedianPruner(n_startup_trials=3, n_warmup_steps=warmup_steps),
            load_if_exists=True,
        )

    def best_params(self, name: str) -> dict[str, object] | None:
        """The best parameters of a study with at least one completed trial, else None."""
        try:
            study = optuna.load_study(study_name=name, storage=self.storage())
        except KeyError:
            return None
        completed = study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))
        return dict(study.best_params) if completed else None
