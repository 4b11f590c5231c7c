"""Service-desk fixtures: the settings in force and small builders over the services."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from config.auth import SYSTEM, Role, create_user
from config.db import utcnow
from servicedesk import services
from servicedesk.queries import current_rules


@pytest.fixture()
def rules(app, db):
    return current_rules()


@pytest.fixture()
def open_ticket(db, rules):
    counter = iter(range(1, 100_000))

    def make(tenant: Any, **data: Any):
        n = next(counter)
        body = {"tenant": tenant.code, "type": "incident", "title": f"Panne numéro {n}", **data}
        return services.open_ticket(
            body, actor=SYSTEM, now=data.pop("now", None) or utcnow(), rules=rules
        )

    return make


@pytest.fixture()
def worker(db, tenant_a, tenant_b):
    """A technician of both tenants, to own time entries in either."""
    return create_user("worker", role=Role.TECHNICIAN, tenants=[tenant_a, tenant_b], actor=SYSTEM)


@pytest.fixture()
def today(rules):
    from zoneinfo import ZoneInfo

    return utcnow().astimezone(ZoneInfo(rules.timezone)).date()


@pytest.fixture()
def log_time(db, rules, today):
    def make(user: Any, tenant: Any = None, **data: Any):
        body = {
            "user": user.username,
            "date": today - dt.timedelta(days=1),
            "minutes": 60,
            "activity": "mco",
            **data,
        }
        if tenant is not None:
            body["tenant"] = tenant.code
        return services.log_time(body, actor=SYSTEM, now=utcnow(), rules=rules)

    return make
