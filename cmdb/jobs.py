"""Scheduled CMDB jobs (run by ``syndic scheduler`` only)."""

from __future__ import annotations

from cmdb import analysis
from config.jobs import scheduled


@scheduled("interval", seconds=60, id="cmdb.refresh_analyses")
def refresh_analyses() -> None:
    """Recompute the stored whole-graph analyses (SPOF) when the graph changed."""
    analysis.refresh_analyses()
