"""Retention: what `market gc` removes, and what it never removes.

Model versions: per registered model, the newest ``keep_versions`` stay, and so does every
version that is or has been served (champion now or before: promoted in shadow, first champion,
or set by an operator), the challenger, and a pinned version; the others (rejected or superseded
challengers) are deleted from the registry with their runs, whose artifacts ``mlflow gc`` then
removes from the artifact store.

The raw landing: receipts older than ``landing_days`` are folded into one compacted snapshot per
symbol (the bars the older deliveries make, replayed as ingestion accepts them), then removed
with the bar files nothing refers to any more. ``RawLanding.rebuild`` gives the same partition
before and after: no delivered history is lost, only the duplicates and the receipts.
"""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path

from resources.control import SET_BY_TAG, OperatorControl, _automatically_promoted
from resources.landing import RawLanding
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking


@dataclass
class Collected:
    """What a gc pass removed (or, dry, would remove)."""

    versions: list[str] = field(default_factory=list)  # "model/version"
    receipts: int = 0
    bar_files: int = 0
    compacted: list[str] = field(default_factory=list)  # "source/symbol"

    def describe(self) -> str:
        return (
            f"{len(self.versions)} model version(s) ({', '.join(self.versions) or 'none'}); "
            f"{self.receipts} landing receipt(s) and {self.bar_files} bar file(s) folded into "
            f"{len(self.compacted)} compacted snapshot(s)"
        )


def has_served(tags: dict[str, str]) -> bool:
    """Whether a model version is or was champion (its predictions may be in the served log)."""
    return (
        _automatically_promoted(tags)
        or tags.get("promotion", "").startswith("no champion yet")
        or SET_BY_TAG in tags
    )


def prunable_versions(
    tracking: MlflowTracking, control: OperatorControl, keep_versions: int
) -> list[tuple[str, str, str]]:
    """(model, version, run id) of the versions gc may delete."""
    client = tracking.client()
    out = []
    for model in client.search_registered_models():
        name = model.name
        pinned = control.pinned(name)
        protected = {
            str(v.version)
            for alias in (CHAMPION, CHALLENGER)
            if (v := tracking.version_by_alias(name, alias)) is not None
        }
        versions = sorted(
            client.search_model_versions(f"name = '{name}'"),
            key=lambda v: int(v.version),
            reverse=True,
        )
        for rank, version in enumerate(versions):
            number = str(version.version)
            if rank < keep_versions or number in protected or number == pinned:
                continue
            if has_served(version.tags):
                continue
            out.append((name, number, version.run_id))
    return out


def collect_models(
    tracking: MlflowTracking, control: OperatorControl, keep_versions: int, dry_run: bool
) -> list[str]:
    """Delete the prunable versions and their runs, then purge the runs' artifacts."""
    chosen = prunable_versions(tracking, control, keep_versions)
    if dry_run or not chosen:
        return [f"{name}/{version}" for name, version, _ in chosen]
    client = tracking.client()
    for name, version, run_id in chosen:
        client.delete_model_version(name, version)
        client.delete_run(run_id)
    run_ids = ",".join(run_id for _, _, run_id in chosen)
    subprocess.run(
        [
            sys.executable,
            "-m",
            "mlflow",
            "gc",
            "--backend-store-uri",
            tracking.tracking_uri,
            "--run-ids",
            run_ids,
        ],
        check=True,
        capture_output=True,
        text=True,
    )
    return [f"{name}/{version}" for name, version, _ in chosen]


def compact_landing(
    landing: RawLanding, landing_days: int, dry_run: bool, now: datetime | None = None
) -> Collected:
    """Fold each symbol's receipts older than ``landing_days`` into one compacted snapshot."""
    cutoff = (now or datetime.now(UTC)) - timedelta(days=landing_days)
    done = Collected()
    root = Path(landing.root)
    if not root.exists():
        return done
    for folder in sorted(p for p in root.glob("*/*") if p.is_dir()):
        source = folder.parent.name
        receipts = sorted(folder.glob("*.json"))
        bodies = [json.loads(p.read_text()) for p in receipts]
        old = [
            (path, body)
            for path, body in zip(receipts, bodies, strict=True)
            if datetime.fromisoformat(body["fetched_at"]) < cutoff
        ]
        if len(old) < 2:
            continue  # nothing to fold
        symbol = bodies[0]["symbol"]
        done.compacted.append(f"{source}/{symbol}")
        if dry_run:
            done.receipts += len(old)
            continue
        bars = landing.rebuild_from(source, symbol, [body for _, body in old])
        last = old[-1][1]
        compacted = landing.land_compacted(source, symbol, bars, last, len(old))
        for path, _ in old:
            if path != compacted:
                path.unlink()
                done.receipts += 1
        referenced = {json.loads(p.read_text())["bars_file"] for p in folder.glob("*.json")}
        for bars_file in folder.glob("bars-*.parquet"):
            if bars_file.name not in referenced:
                bars_file.unlink()
                done.bar_files += 1
    return done


def gc(
    tracking: MlflowTracking,
    control: OperatorControl,
    landing: RawLanding,
    keep_versions: int,
    landing_days: int,
    dry_run: bool = False,
) -> Collected:
    """One retention pass over the registry and the raw landing."""
    done = compact_landing(landing, landing_days, dry_run)
    done.versions = collect_models(tracking, control, keep_versions, dry_run)
    return done


__all__ = ["Collected", "compact_landing", "gc", "has_served", "prunable_versions"]
