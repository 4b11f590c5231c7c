"""Who may read reports (API.md §1: managers and admins)."""

from __future__ import annotations

from config.auth import Role, register_permission

PERMISSIONS = {
    "reporting.read": {Role.MANAGER},
}


def register() -> None:
    for name, roles in PERMISSIONS.items():
        register_permission(name, roles)


register()
