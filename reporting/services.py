"""The reporting use cases: build a report by name for an actor (the interface the API, the
command line, the scheduler and the management pages all use).

``build_report(name, params, actor)`` checks the permission, parses the parameters (400 on
anything wrong, listing the allowed values), runs the report's GROUP BY statements inside the
caller's tenant scope and returns a :class:`~reporting.model.Report`; ``reporting.render``
turns it into bytes of any format.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Mapping
from typing import Any

from config.auth import Actor, require
from config.db import utcnow
from config.errors import NotFound
from config.settings import current_settings
from reporting import permissions  # noqa: F401  (registers reporting.read)
from reporting.i18n import report_locale
from reporting.model import Chart, Column, GanttBar, Report, Table
from reporting.reports.base import Context
from reporting.reports.chargeback import build_chargeback
from reporting.reports.pmo import build_pmo
from reporting.reports.satisfaction import build_satisfaction
from reporting.reports.tickets import build_tickets
from reporting.reports.time_entries import build_time_entries
from reporting.reports.training import build_training
from reporting.reports.workload import build_workload
from servicedesk.queries import current_rules

__all__ = [
    "REPORTS",
    "Chart",
    "Column",
    "GanttBar",
    "Report",
    "Table",
    "build_report",
    "make_context",
    "reporting_settings",
]

Builder = Callable[[Mapping[str, str], Context], Report]

_BUILDERS: dict[str, Builder] = {
    "workload": build_workload,
    "tickets": build_tickets,
    "pmo": build_pmo,
    "chargeback": build_chargeback,
    "training": build_training,
    "satisfaction": build_satisfaction,
    "time-entries": build_time_entries,
}
REPORTS: tuple[str, ...] = tuple(_BUILDERS)

DEFAULTS: dict[str, Any] = {
    "archive_day": 1,
    "archive_dir": "reports",
    "archive_keep_months": 36,
    "archive_per_member": True,
    "chargeback_key": "proportional",
    "time_entries_max_rows": 1_000_000,
}


def reporting_settings() -> dict[str, Any]:
    """The ``[reporting]`` section with defaults filled in."""
    return {**DEFAULTS, **dict(current_settings().section("reporting"))}


def make_context(actor: Actor, *, today: dt.date | None = None) -> Context:
    rules = current_rules()
    if today is None:
        today = utcnow().astimezone(current_settings().tz).date()
    return Context(actor=actor, rules=rules, today=today, settings=reporting_settings())


def build_report(
    name: str, params: Mapping[str, str], actor: Actor, *, today: dt.date | None = None
) -> Report:
    """Build report ``name`` with ``params`` as ``actor`` sees it.

    Raises Forbidden (403) for roles without reports access (technician, infra), NotFound
    (404, listing the reports) for an unknown name, BadRequest (400) for bad parameters.
    ``today`` (the local date) sets the default period; it defaults to now.
    """
    require(actor, "reporting.read")
    builder = _BUILDERS.get(name)
    if builder is None:
        raise NotFound(f"No report named {name[:60]!r}.", allowed=list(REPORTS))
    with report_locale():
        return builder(params, make_context(actor, today=today))
