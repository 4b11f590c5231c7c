"""CMDB fixtures: build CIs, relations and usage through the services."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import pytest

from cmdb import services
from cmdb.models import CI, Relation, Usage
from config.auth import SYSTEM
from config.tenancy import Tenant


@pytest.fixture()
def make_ci(db: Any) -> Callable[..., CI]:
    """``make_ci("host:hv-1", tenant=None, min_healthy=2, name=...)`` → a CI (SYSTEM)."""

    def make(
        key: str,
        tenant: Tenant | str | None = None,
        *,
        name: str | None = None,
        status: str = "active",
        **attributes: Any,
    ) -> CI:
        kind, _, code = key.partition(":")
        code_of = tenant.code if isinstance(tenant, Tenant) else tenant
        return services.create_ci(
            {
                "kind": kind,
                "code": code,
                "name": name or code.upper(),
                "tenant": code_of,
                "status": status,
                "attributes": attributes,
            },
            actor=SYSTEM,
        )

    return make


@pytest.fixture()
def relate(db: Any) -> Callable[..., Relation]:
    """``relate(server, "runs_on", host)`` → a Relation (SYSTEM)."""

    def make(source: CI, rel_type: str, target: CI) -> Relation:
        return services.create_relation(
            {"source": source.id, "target": target.id, "type": rel_type}, actor=SYSTEM
        )

    return make


@pytest.fixture()
def use(db: Any) -> Callable[..., Usage]:
    """``use(app, tenant)`` → a Usage (SYSTEM)."""

    def make(app: CI, tenant: Tenant, **kw: Any) -> Usage:
        return services.add_usage(app, tenant.code, actor=SYSTEM, **kw)

    return make
