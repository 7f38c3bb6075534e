"""Generate docs/FEATURES.md from the code: ``python -m quant.features.docs [PATH]``.

The catalog is written from the same ``Feature`` objects that compute the values, so the
document cannot drift from the code (a test fails when the committed file is stale).
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from pathlib import Path

from quant.features.context import CONTEXT_COLUMNS
from quant.features.engine import FEATURES
from quant.features.spec import Family, Feature

DEFAULT_PATH = Path(__file__).resolve().parents[2] / "docs" / "FEATURES.md"


def _cell(text: str) -> str:
    return text.replace("|", "\\|")


def catalog_table(features: Sequence[Feature] = FEATURES) -> str:
    """The catalog as one markdown table (this document, and the asset page in the UI)."""
    lines = [
        "| feature | family | warm-up | params | description | reference |",
        "|---|---|---:|---|---|---|",
    ]
    for f in features:
        params = ", ".join(f"{k}={v}" for k, v in f.params.items())
        reference = f"`{_cell(f.reference)}`" if f.reference else ""
        volume = " (V)" if f.uses_volume else ""
        lines.append(
            f"| `{f.name}`{volume} | {f.family.value} | {f.warmup} | {params} | "
            f"{_cell(f.description)} | {reference} |"
        )
    return "\n".join(lines)


def render() -> str:
    """The whole document as markdown."""
    referenced = sum(1 for f in FEATURES if f.reference)
    lines = [
        "# Feature catalog",
        "",
        "Generated from `quant/features` by `python -m quant.features.docs`; do not edit by hand.",
        "",
        f"{len(FEATURES)} features per (symbol, date) in six families, {referenced} with a TA-Lib "
        "reference. A reference is a Python expression over the numpy arrays `open, high, low, "
        "close, volume` and the modules `talib` and `np`; the test suite evaluates every one of "
        "them on the real sample and requires agreement to 1e-6 relative after warm-up.",
        "",
        "*Warm-up* is the number of sessions of a symbol's history before the value is defined "
        "(the first value sits at 0-based row = warm-up). Volume features (marked V) are null for "
        "instruments that report no volume in their window (^VIX, often the NSE indices).",
        "",
        "Conventions: price-level indicators are divided by the close (or expressed as a ratio) so "
        "that one model can pool all symbols; EMA and Wilder smoothing are seeded with the simple "
        "mean of their first n values (TA-Lib); standard deviations are population (ddof = 0); "
        "ties in rolling extremes go to the most recent session; a ratio with a zero denominator "
        "is null, except where TA-Lib defines it (RSI, stochastics, %R, CCI ... give 0).",
        "",
    ]
    for family in Family:
        members = [f for f in FEATURES if f.family is family]
        lines += [
            f"## {family.value.capitalize()} ({len(members)})",
            "",
            catalog_table(members),
            "",
        ]
    lines += [
        "## Market context (`market_context` asset)",
        "",
        "Joined onto every (symbol, date) as of the symbol's close: US symbols see the same "
        "session's benchmark and breadth values; markets that close before New York (NSE) see "
        "the previous US session's, never a later one. The volatility index's close prints at "
        "4:15 pm ET, after the 4:00 pm equity close the decisions are made at, so every symbol "
        "but the volatility index itself sees its values (`vix_*`) of the last session strictly "
        "before the row's date.",
        "",
        "| column | description |",
        "|---|---|",
        *[f"| `{name}` | {text} |" for name, text in CONTEXT_COLUMNS.items()],
        "",
    ]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    path = Path(args[0]) if args else DEFAULT_PATH
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(render())
    print(f"wrote {path} ({len(FEATURES)} features)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
