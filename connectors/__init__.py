"""Connectors: pull tickets, time, categories, users and tenants from GLPI and from files."""

from __future__ import annotations

from typing import Any


def init_app(app: Any, api: Any) -> None:
    """Register the connectors' models, routes, CLI command and scheduled jobs."""
    from connectors import models  # noqa: F401  (maps the tables)
