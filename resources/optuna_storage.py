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

    def completed_trials(self) -> dict[str, int]:
        """Completed trials per study in the storage (every study: each hyperparameter search
        behind the models). A SQLite file that does not exist yet holds none, and is not
        created by asking; an unreachable server raises (the caller decides what that means)."""
        sqlite = self.url.removeprefix("sqlite:///") if self.url.startswith("sqlite:///") else None
        if sqlite is not None and not Path(sqlite).exists():
            return {}
        storage = optuna.storages.RDBStorage(self.url)
        complete = (optuna.trial.TrialState.COMPLETE,)
        return {
            name: len(
                optuna.load_study(study_name=name, storage=storage).get_trials(
                    deepcopy=False, states=complete
                )
            )
            for name in optuna.get_all_study_names(storage)
        }
