"""Reporting: workload shares, ticket KPIs, the monthly PMO report, chargeback per member,
training and satisfaction, in JSON, CSV, XLSX, HTML and PDF; the archive of PMO reports."""

from __future__ import annotations

from typing import Any


def init_app(app: Any, api: Any) -> None:
    """Register the reports blueprint, `syndic report` and the archive job (STYLE §3.5)."""
    from reporting import (
        jobs,  # noqa: F401  (registers the scheduled job)
        models,  # noqa: F401  (maps the archive table and the covering index)
    )
    from reporting.api import blueprints
    from reporting.cli import report_command
    from reporting.pages import init_pages
    from reporting.permissions import register

    register()
    for blp in blueprints:
        api.register_blueprint(blp)
    app.cli.add_command(report_command)
    init_pages(app)
