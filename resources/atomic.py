"""Crash-safe file writes: a reader sees the old file or the new one, never a torn one."""

from __future__ import annotations

import errno
import os
import shutil
import tempfile
from pathlib import Path

import polars as pl


class DiskFullError(OSError):
    """A write ran out of space; the message names the file and the free space, and says the
    stored file is unchanged."""


def _disk_full(exc: BaseException) -> bool:
    if isinstance(exc, OSError) and exc.errno == errno.ENOSPC:
        return True
    return "No space left on device" in str(exc) or "os error 28" in str(exc)


def _raise_if_disk_full(exc: BaseException, path: Path) -> None:
    if not _disk_full(exc):
        return
    try:
        free = f"{shutil.disk_usage(path.parent).free:,} bytes free"
    except OSError:
        free = "free space unknown"
    raise DiskFullError(
        errno.ENOSPC,
        f"No space left on device writing {path} ({free} on its filesystem); the stored "
        "file is unchanged. Free some space (`market gc`, old replays), then rerun",
    ) from exc


def write_parquet_atomic(frame: pl.DataFrame, path: Path, *, exclusive: bool = False) -> Path:
    """Write ``frame`` to ``path`` through a temporary file in the same directory and a rename.

    With ``exclusive=True`` an existing file is never replaced (raises FileExistsError): the
    append-only landing area relies on that.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    tmp = Path(tmp_name)
    try:
        frame.write_parquet(tmp, compression="zstd")
        if exclusive:
            os.link(tmp, path)  # fails if ``path`` exists: no overwrite, even in a race
            tmp.unlink()
        else:
            os.replace(tmp, path)
    except BaseException as exc:
        tmp.unlink(missing_ok=True)
        _raise_if_disk_full(exc, path)
        raise
    return path


def write_text_atomic(text: str, path: Path) -> Path:
    """Write a small text file atomically (temp file + rename)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "w") as handle:
            handle.write(text)
        os.replace(tmp_name, path)
    except BaseException as exc:
        Path(tmp_name).unlink(missing_ok=True)
        _raise_if_disk_full(exc, path)
        raise
    return path
