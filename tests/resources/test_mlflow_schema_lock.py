"""Processes that start together on a fresh data folder share one MLflow schema creation."""

import multiprocessing
from pathlib import Path


def first_use(folder: str, index: int, queue) -> None:
    from resources.mlflow_tracking import MlflowTracking

    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{Path(folder) / 'mlflow.db'}",
        artifact_root=str(Path(folder) / "artifacts"),
    )
    try:
        experiment = tracking.experiment_id("direction")
        tracking.client().create_registered_model(f"model_{index}")
        queue.put(("ok", experiment))
    except Exception as exc:  # reported to the parent, which fails the test with it
        queue.put(("error", f"{type(exc).__name__}: {exc}"))


def test_three_processes_on_a_fresh_store_all_succeed_with_one_experiment(tmp_path):
    context = multiprocessing.get_context("spawn")
    queue = context.Queue()
    workers = [context.Process(target=first_use, args=(str(tmp_path), i, queue)) for i in range(3)]
    for worker in workers:
        worker.start()
    outcomes = [queue.get(timeout=180) for _ in workers]
    for worker in workers:
        worker.join(timeout=60)
    assert all(kind == "ok" for kind, _ in outcomes), outcomes
    assert len({experiment for _, experiment in outcomes}) == 1
    from resources.mlflow_tracking import MlflowTracking

    tracking = MlflowTracking(
        tracking_uri=f"sqlite:///{tmp_path / 'mlflow.db'}", artifact_root=str(tmp_path / "a")
    )
    names = {m.name for m in tracking.client().search_registered_models()}
    assert names == {"model_0", "model_1", "model_2"}
