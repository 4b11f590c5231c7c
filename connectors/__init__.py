"""Connectors: pull tickets, time, categories, users and tenants from GLPI and from files."""

from __future__ import annotations

from typing import Any


def init_app(app: Any, api: Any) -> None:
    """Register the connectors' models, routes, CLI command and scheduled jobs."""
    from connectors import models  # noqa: F401  (maps the tables)
    from connectors.api import sync_blp
    from connectors.cli import sync_command
    from connectors.jobs import register
    from connectors.permissions import register as register_permissions
    from connectors.settings import ConnectorSettings

    register_permissions()
    api.register_blueprint(sync_blp)
    app.cli.add_command(sync_command)
    settings = app.extensions["syndic.settings"]
    register(ConnectorSettings.of(settings), settings.timezone)
    from connectors.pages import init_pages

    init_pages(app)
