"""The symbol partitions, built from the universe file in force."""

from __future__ import annotations

import dagster as dg

from quant.universe import load_universe

UNIVERSE = load_universe()
symbol_partitions = dg.StaticPartitionsDefinition(UNIVERSE.symbols)
