"""Small universe files for end-to-end runs that must stay quick."""

from __future__ import annotations

from pathlib import Path

from resources.settings import PROJECT_ROOT

# both market-context roles (^GSPC, the volatility index ^VIX) and four equities of three sectors
SMALL_UNIVERSE = ("^GSPC", "^VIX", "AAPL", "MSFT", "JPM", "XOM")


def small_universe(folder: Path, symbols: tuple[str, ...] = SMALL_UNIVERSE) -> str:
    """A universe file of ``symbols``: their lines of config/universe.yaml, in its order."""
    lines = (PROJECT_ROOT / "config" / "universe.yaml").read_text().splitlines()
    chosen = [line for line in lines if any(f'symbol: "{s}"' in line for s in symbols)]
    path = folder / "universe.yaml"
    path.write_text("instruments:\n" + "\n".join(chosen) + "\n")
    return str(path)
