"""Dagster assets and asset checks, one module per stage. Thin: data moves between the lake and
the pure functions in ``quant``; every materialization carries metadata a person can act on."""

import warnings

import dagster as dg

# Single-run backfills and partitioned checks are beta/preview in Dagster 1.13; we rely on them
# deliberately (README: "One run, one step for all symbols"), so their warnings are noise on
# every import.
warnings.filterwarnings("ignore", category=dg.BetaWarning)
warnings.filterwarnings("ignore", category=dg.PreviewWarning)
