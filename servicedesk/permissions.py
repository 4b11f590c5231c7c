"""Who may write what in the service desk (API.md §1 roles)."""

from __future__ import annotations

from config.auth import Role, register_permission

TECH, INFRA, MANAGER = Role.TECHNICIAN, Role.INFRA, Role.MANAGER

PERMISSIONS = {
    "servicedesk.tickets.write": {TECH, INFRA},
    "servicedesk.tickets.delete": set(),  # admins only
    "servicedesk.time.write": {TECH, INFRA, MANAGER},
    "servicedesk.time.others": {MANAGER},  # log or change time for another user
    "servicedesk.projects.write": {MANAGER},
    "servicedesk.categories.write": set(),
    "servicedesk.training.write": {TECH, INFRA, MANAGER},
}


def register() -> None:
    for name, roles in PERMISSIONS.items():
        register_permission(name, roles)


register()
