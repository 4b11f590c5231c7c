"""``syndic demo load``: the SIIM94 2021 data set (see data/SOURCE.md for provenance).

The loader is idempotent: each part creates what is missing and leaves existing rows
alone, so running it twice changes nothing. Domains contribute their parts here (this
package is part of the composition root and may import every domain).
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Iterator
from importlib import resources
from typing import Any

from sqlalchemy import select

from config.auth import SYSTEM, Role, User, create_user
from config.db import db, refresh_statistics
from config.tenancy import Tenant, create_tenant

__all__ = ["load_demo", "read_csv"]

Progress = Callable[[str], None]


def read_csv(name: str) -> Iterator[dict[str, str]]:
    """Rows of one of the bundled CSV files."""
    text = resources.files("config.demo").joinpath("data", name).read_text(encoding="utf-8")
    yield from csv.DictReader(text.splitlines())


def load_tenants() -> int:
    existing = set(db.session.execute(select(Tenant.code)).scalars())
    created = 0
    for row in read_csv("tenants.csv"):
        if row["code"] in existing:
            continue
        contributions = (
            {"2021": float(row["contribution_2021_eur"])} if row["contribution_2021_eur"] else {}
        )
        create_tenant(
            {
                "code": row["code"],
                "name": row["name"],
                "kind": row["kind"],
                "contributions": contributions,
            },
            actor=SYSTEM,
        )
        created += 1
    return created


DEMO_USERS = [
    ("admin", Role.ADMIN, (), "Administrateur syndic"),
    ("manager", Role.MANAGER, (), "Direction SIIM94"),
    ("infra", Role.INFRA, (), "Équipe infrastructure"),
]


def load_users() -> int:
    existing = set(db.session.execute(select(User.username)).scalars())
    created = 0
    for username, role, tenants, full_name in DEMO_USERS:
        if username in existing:
            continue
        create_user(
            username,
            role=role,
            tenants=list(tenants),
            all_tenants=True,
            full_name=full_name,
            actor=SYSTEM,
        )
        created += 1
    return created


# Each domain contributes a module ``config/demo/<domain>.py`` with
# ``load(progress) -> dict[str, int]`` (what it created, by kind), run in this order.
DOMAIN_PARTS = ("cmdb", "servicedesk", "connectors", "reporting")


def load_demo(progress: Progress | None = None) -> dict[str, Any]:
    """Load every part of the demo data set; returns what was created, by part."""
    import importlib

    say = progress or (lambda _msg: None)
    summary: dict[str, Any] = {}
    say("tenants…")
    summary["tenants"] = load_tenants()
    say("users…")
    summary["users"] = load_users()
    for part in DOMAIN_PARTS:
        try:
            module = importlib.import_module(f"config.demo.{part}")
        except ModuleNotFoundError as exc:
            if exc.name != f"config.demo.{part}":
                raise
            continue
        say(f"{part}…")
        summary.update(module.load(say))
    say("statistics…")
    refresh_statistics()
    return summary
