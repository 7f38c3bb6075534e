"""Backups of the SQLite stores (Dagster's runs, event logs and schedules; MLflow; Optuna).

Each database is copied with SQLite's online backup API (what ``sqlite3 .backup`` does): a
consistent snapshot even while a run or the daemon writes, unlike a file copy, which can catch
a half-written page or miss the write-ahead log. The copies keep their paths relative to the
folder they came from, so restoring is copying them back with every process stopped.
"""

from __future__ import annotations

import sqlite3
from contextlib import closing
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class BackedUp:
    source: Path
    copy: Path
    pages: int


def backup_database(source: Path, copy: Path) -> BackedUp:
    """A consistent copy of one SQLite database (checked with ``PRAGMA integrity_check``)."""
    copy.parent.mkdir(parents=True, exist_ok=True)
    with (
        closing(sqlite3.connect(f"file:{source}?mode=ro", uri=True, timeout=30)) as src,
        closing(sqlite3.connect(copy)) as dst,
    ):
        src.backup(dst)
        (verdict,) = dst.execute("PRAGMA integrity_check").fetchone()
        pages = dst.execute("PRAGMA page_count").fetchone()[0]
    if verdict != "ok":
        raise sqlite3.DatabaseError(f"backup of {source} failed its integrity check: {verdict}")
    return BackedUp(source, copy, pages)


def sqlite_stores(roots: dict[str, Path]) -> list[tuple[str, Path]]:
    """Every SQLite database under each named root (``*.db`` files), as (root name, path)."""
    found = []
    for name, root in roots.items():
        if root.is_file():
            found.append((name, root))
        elif root.exists():
            found.extend((name, p) for p in sorted(root.rglob("*.db")))
    return found


def backup_stores(roots: dict[str, Path], destination: Path) -> list[BackedUp]:
    """Copy every store under ``roots`` into ``destination/<root name>/<relative path>``."""
    done = []
    for name, path in sqlite_stores(roots):
        root = roots[name]
        relative = path.name if root.is_file() else path.relative_to(root)
        done.append(backup_database(path, destination / name / relative))
    return done
