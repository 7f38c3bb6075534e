"""Operator controls: halt/resume trading, pin/unpin/roll back champions, with an audit trail.

State lives in ``<root>/`` (``<data>/control`` by default):

- ``state.json`` (written atomically: temp file + rename): ``halt`` (the halt record, or null),
  ``pins`` (``{model: version}``) and ``champion_history`` (``{model: [{version,
  previous_version, at, action, user}, ...]}``, every champion change made here, in order).
- ``audit.jsonl``: one JSON line per action (halt, resume, pin, unpin, rollback), only ever
  appended: at, user, action, model, version, previous_version, reason.

A halt makes the ``signals`` asset serve HOLD everywhere. A pin makes a version the champion and
keeps it there: automatic promotion asks ``pinned(name)`` before it changes a champion. In MLflow
a pin shows as the model-version tag ``pinned=true`` and the registered-model tag
``pinned_version``; every champion change made here also tags the new champion version with
``champion_set_by`` and ``champion_previous``.

"The champion before the current one" (a rollback without a version) comes from one timeline:
the changes recorded here (exact: each names the champion it replaced), plus the automatic
promotions that the versions' MLflow tags show (``shadow_status=promoted``, or the older
``promotion`` reasons). MLflow does not date an alias change, so an automatic promotion is dated
by its version's creation: exact when nobody acted in between, an approximation when an
operator action falls between a version's registration and its promotion in shadow.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import UTC, datetime
from pathlib import Path

import dagster as dg
from mlflow.exceptions import MlflowException

from resources.atomic import write_text_atomic
from resources.mlflow_tracking import CHALLENGER, CHAMPION, MlflowTracking

ACTIONS = ("halt", "resume", "pin", "unpin", "rollback")
PINNED_TAG, PINNED_VERSION_TAG = "pinned", "pinned_version"
SET_BY_TAG, PREVIOUS_TAG = "champion_set_by", "champion_previous"


def _now() -> datetime:
    return datetime.now(UTC)


def _empty_state() -> dict:
    return {"halt": None, "pins": {}, "champion_history": {}}


def _automatically_promoted(tags: dict[str, str]) -> bool:
    """Whether a model version's tags say automatic promotion made it champion.

    The promotion in shadow (assets/promotion.py, assets/training.py) tags ``shadow_status`` /
    ``shadow_decision`` = ``promoted``; older versions only carry the ``promotion`` reason of
    quant.promotion (``no champion yet``, ``... beats champion ...``, ``already champion``).
    """
    if "promoted" in (tags.get("shadow_status"), tags.get("shadow_decision")):
        return True
    reason = tags.get("promotion", "")
    return (
        reason.startswith("no champion yet")
        or reason == "already champion"
        or (" beats champion " in reason)
    )


def previous_champion(events: list[tuple[datetime, str, str | None]], current: str) -> str | None:
    """The version that was champion before ``current``, from dated champion changes.

    ``events`` are ``(at, new_version, previous_version or None)``; a None previous (an automatic
    promotion) means "whatever was champion just before". Pure, so it is testable on its own.
    """
    ordered = sorted(events, key=lambda e: e[0])
    for i in range(len(ordered) - 1, -1, -1):
        _, version, previous = ordered[i]
        if version != current:
            continue
        if previous is not None and previous != current:
            return previous
        return next((v for _, v, _ in reversed(ordered[:i]) if v != current), None)
    # the current champion was set outside any known change: the last champion known before it
    return next((v for _, v, _ in reversed(ordered) if v != current), None)


class OperatorControl(dg.ConfigurableResource):
    """Halt switch, champion pins and rollbacks; every action audited."""

    root: str

    # ---- files ---------------------------------------------------------------------------------

    @property
    def _dir(self) -> Path:
        return Path(self.root)

    @property
    def state_path(self) -> Path:
        return self._dir / "state.json"

    @property
    def audit_path(self) -> Path:
        return self._dir / "audit.jsonl"

    @contextmanager
    def _locked(self) -> Iterator[dict]:
        """The state, exclusively locked across processes, written back atomically on exit."""
        self._dir.mkdir(parents=True, exist_ok=True)
        with open(self._dir / ".lock", "w") as lock:
            fcntl.flock(lock, fcntl.LOCK_EX)
            try:
                state = self.state()
                yield state
                write_text_atomic(json.dumps(state, indent=2, sort_keys=True), self.state_path)
            finally:
                fcntl.flock(lock, fcntl.LOCK_UN)

    def state(self) -> dict:
        """The whole operator state (halt, pins, champion_history); defaults when nothing is set."""
        if not self.state_path.exists():
            return _empty_state()
        return {**_empty_state(), **json.loads(self.state_path.read_text())}

    def _audit(self, action: str, user: str, **fields: str | None) -> dict:
        """Append one line to the audit trail (opened for append only: never rewritten)."""
        record = {
            "at": _now().isoformat(),
            "user": user,
            "action": action,
            "model": fields.get("model"),
            "version": fields.get("version"),
            "previous_version": fields.get("previous_version"),
            "reason": fields.get("reason") or "",
        }
        self._dir.mkdir(parents=True, exist_ok=True)
        with open(self.audit_path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(record) + "\n")
            handle.flush()
            os.fsync(handle.fileno())
        return record

    def audit(self) -> list[dict]:
        """Every recorded action, oldest first."""
        if not self.audit_path.exists():
            return []
        lines = self.audit_path.read_text(encoding="utf-8").splitlines()
        return [json.loads(line) for line in lines if line.strip()]

    # ---- halt ----------------------------------------------------------------------------------

    def halt(self, reason: str, user: str) -> None:
        """Stop trading: from now on the signals asset serves HOLD (position 0) for every symbol.

        Halting while halted replaces the record (new reason, user, time).
        """
        with self._locked() as state:
            state["halt"] = {"reason": reason, "user": user, "at": _now().isoformat()}
            self._audit("halt", user, reason=reason)

    def resume(self, user: str) -> None:
        """Lift the halt; ValueError when trading is not halted (nothing to resume)."""
        with self._locked() as state:
            if state["halt"] is None:
                raise ValueError("trading is not halted: nothing to resume")
            previous = state["halt"]
            state["halt"] = None
            self._audit(
                "resume", user, reason=f"halted since {previous['at']}: {previous['reason']}"
            )

    def halted(self) -> dict | None:
        """The halt record (reason, user, at), or None when trading is not halted."""
        return self.state()["halt"]

    # ---- champions -----------------------------------------------------------------------------

    def pinned(self, name: str) -> str | None:
        """The version ``name``'s champion is pinned to, or None. Automatic promotion must not
        replace a pinned champion."""
        return self.state()["pins"].get(name)

    def pin(
        self,
        tracking: MlflowTracking,
        name: str,
        version: str | None,
        user: str,
        reason: str = "",
    ) -> str:
        """Make ``version`` (default: the current champion) ``name``'s champion and pin it there.

        Returns the pinned version. Errors (ValueError): unknown model, unknown version, no
        champion to pin when ``version`` is None.
        """
        _check_model(name)
        current = _champion_version(tracking, name)
        if version is None:
            if current is None:
                raise ValueError(f"{name} has no champion to pin; name a version")
            version = current
        version = _check_version(tracking, name, version)
        client = tracking.client()
        with self._locked() as state:
            if version != current:
                self._set_champion(tracking, state, name, version, current, "pin", user)
            old = state["pins"].get(name)
            if old is not None and old != version:
                _delete_version_tag(tracking, name, old, PINNED_TAG)
            client.set_model_version_tag(name, version, PINNED_TAG, "true")
            client.set_registered_model_tag(name, PINNED_VERSION_TAG, version)
            state["pins"][name] = version
            self._audit(
                "pin", user, model=name, version=version, previous_version=current, reason=reason
            )
        return version

    def unpin(self, tracking: MlflowTracking, name: str, user: str, reason: str = "") -> str:
        """Release ``name``'s pin (the champion stays; automatic promotion may replace it again).

        Returns the version that was pinned; ValueError when it is not pinned.
        """
        _check_model(name)
        with self._locked() as state:
            version = state["pins"].get(name)
            if version is None:
                raise ValueError(f"{name} is not pinned")
            _delete_version_tag(tracking, name, version, PINNED_TAG)
            # the tag may have been removed by hand: the pin in state.json is what counts
            with contextlib.suppress(MlflowException):
                tracking.client().delete_registered_model_tag(name, PINNED_VERSION_TAG)
            del state["pins"][name]
            self._audit("unpin", user, model=name, version=version, reason=reason)
        return version

    def rollback(
        self,
        tracking: MlflowTracking,
        name: str,
        version: str | None,
        user: str,
        reason: str = "",
    ) -> str:
        """Make ``version`` (default: the version that was champion before the current one)
        ``name``'s champion again. Returns the new champion version.

        A pinned model stays pinned, to the version rolled back to. ValueError: unknown model or
        version, no champion now, no earlier champion known, or ``version`` already champion.
        """
        _check_model(name)
        current = _champion_version(tracking, name)
        if current is None:
            raise ValueError(f"{name} has no champion to roll back")
        with self._locked() as state:
            if version is None:
                version = previous_champion(self._champion_events(tracking, state, name), current)
                if version is None:
                    raise ValueError(
                        f"no earlier champion of {name} is known (only version {current} has "
                        "been champion): name the version to roll back to"
                    )
            version = _check_version(tracking, name, version)
            if version == current:
                raise ValueError(f"{name} version {version} is already the champion")
            self._set_champion(tracking, state, name, version, current, "rollback", user)
            if name in state["pins"]:
                client = tracking.client()
                _delete_version_tag(tracking, name, state["pins"][name], PINNED_TAG)
                client.set_model_version_tag(name, version, PINNED_TAG, "true")
                client.set_registered_model_tag(name, PINNED_VERSION_TAG, version)
                state["pins"][name] = version
            self._audit(
                "rollback",
                user,
                model=name,
                version=version,
                previous_version=current,
                reason=reason,
            )
        return version

    def _set_champion(
        self,
        tracking: MlflowTracking,
        state: dict,
        name: str,
        version: str,
        previous: str | None,
        action: str,
        user: str,
    ) -> None:
        """Move the champion alias, tag the version, and record the change in the history."""
        tracking.set_alias(name, CHAMPION, version)
        challenger = tracking.version_by_alias(name, CHALLENGER)
        if challenger is not None and str(challenger.version) == version:
            tracking.delete_alias(name, CHALLENGER)  # one version, one role
        client = tracking.client()
        client.set_model_version_tag(name, version, SET_BY_TAG, f"{action} by {user}")
        client.set_model_version_tag(name, version, PREVIOUS_TAG, previous or "")
        state["champion_history"].setdefault(name, []).append(
            {
                "version": version,
                "previous_version": previous,
                "at": _now().isoformat(),
                "action": action,
                "user": user,
            }
        )

    def _champion_events(
        self, tracking: MlflowTracking, state: dict, name: str
    ) -> list[tuple[datetime, str, str | None]]:
        """Dated champion changes of ``name``: those made here and the automatic promotions."""
        events: list[tuple[datetime, str, str | None]] = [
            (datetime.fromisoformat(h["at"]), h["version"], h["previous_version"])
            for h in state["champion_history"].get(name, [])
        ]
        for found in tracking.client().search_model_versions(f"name = '{name}'"):
            if _automatically_promoted(found.tags):
                at = datetime.fromtimestamp(found.creation_timestamp / 1000, UTC)
                events.append((at, str(found.version), None))
        return events


def _check_model(name: str) -> None:
    from quant.models import MODEL_FAMILIES

    if name not in MODEL_FAMILIES:
        raise ValueError(f"unknown model {name!r}; the models are {', '.join(MODEL_FAMILIES)}")


def _champion_version(tracking: MlflowTracking, name: str) -> str | None:
    found = tracking.version_by_alias(name, CHAMPION)
    return None if found is None else str(found.version)


def _check_version(tracking: MlflowTracking, name: str, version: str) -> str:
    """``version`` as the registry spells it; ValueError if ``name`` has no such version."""
    version = str(version).strip()
    if not version.isdigit():
        raise ValueError(f"model version must be a number, not {version!r}")
    try:
        found = tracking.client().get_model_version(name, version)
    except MlflowException:
        raise ValueError(f"{name} has no version {version} in the MLflow registry") from None
    return str(found.version)


def _delete_version_tag(tracking: MlflowTracking, name: str, version: str, key: str) -> None:
    """Remove a model-version tag; nothing happens if the version or the tag is gone already."""
    with contextlib.suppress(MlflowException):
        tracking.client().delete_model_version_tag(name, version, key)
