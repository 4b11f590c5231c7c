"""The CMDB domain: configuration items, relations, usage, impact analysis."""

from __future__ import annotations

from typing import Any


def init_app(app: Any, api: Any) -> None:
    """Register the CMDB models, blueprints, CLI commands and jobs."""
    from cmdb import jobs, models  # noqa: F401  (jobs register; models map, hook)
    from cmdb.api import cis_blp, relations_blp
    from cmdb.api_analysis import cmdb_blp

    for blp in (cis_blp, relations_blp, cmdb_blp):
        api.register_blueprint(blp)

    from cmdb.pages import init_pages

    init_pages(app)

    import click

    from cmdb.cli import impact_command, import_cmdb_command

    app.cli.add_command(impact_command)
    # Other domains may add their own `syndic import ...` commands to the same group.
    group = app.cli.commands.get("import")
    if group is None:
        group = click.Group("import", help="Bulk imports into syndic.")
        app.cli.add_command(group)
    group.add_command(import_cmdb_command)
