"""Who may do what with sync sources (API.md §1: admins manage sync sources)."""

from __future__ import annotations

from config.auth import Role, register_permission

PERMISSIONS: dict[str, set[Role]] = {
    "connectors.runs.read": set(),  # admins only: run errors name objects of every tenant
    "connectors.sources.read": set(),  # admins only
    "connectors.runs.start": set(),  # admins only
}


def register() -> None:
    for name, roles in PERMISSIONS.items():
        register_permission(name, roles)


register()
