"""Scheduled CMDB jobs (run by ``syndic scheduler`` only)."""

from __future__ import annotations

from cmdb import analysis
from config.jobs import scheduled
from config.settings import current_settings


@scheduled("interval", seconds=60, id="cmdb.refresh_analyses")
def refresh_analyses() -> None:
    """Recompute the stored whole-graph analyses (SPOF, findings) when the graph changed."""
    analysis.refresh_analyses(analysis.Tuning.of(current_settings().section("cmdb")))
