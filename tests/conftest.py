"""Fixtures (flaskr-style): one migrated database per backend, reset before each test.

- ``app``: a syndic app on the current backend (SQLite file; PostgreSQL when
  ``SYNDIC_TEST_POSTGRES_URL`` is set: every database test then runs on both).
- ``db``: an app context on an empty, migrated database.
- ``client``: an anonymous API client; ``as_role(role, tenants=[...])`` one with a token.
- ``tenant_a`` / ``tenant_b``: two tenants; ``world`` bundles them with role clients.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from flask import Flask
from flask_migrate import upgrade

from config.app import create_app
from config.auth import SYSTEM, Role, create_token, create_user
from config.db import db as _db
from config.db import utcnow
from config.settings import Settings
from config.tenancy import Tenant, TenantKind, create_tenant
from tests.support import (
    ApiClient,
    TestDatabase,
    backends,
    drop_pg_database,
    ensure_pg_database,
    pg_url,
    reset_pg_schema,
)

os.environ.setdefault("TZ", "UTC")


def make_settings(database_url: str, tmp: Path, **extra: Any) -> Settings:
    """Settings for a test app: defaults plus a database, a fixed key, a temp instance."""
    base = Settings.from_env({})
    return base.replace(
        database_url=database_url, secret_key="test-secret-key", instance_path=str(tmp), **extra
    )


def build_app(settings: Settings) -> Flask:
    app = create_app({"TESTING": True}, settings=settings)
    app.test_client_class = ApiClient
    return app


@pytest.fixture(scope="session", params=backends())
def database(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[TestDatabase]:
    """A database migrated to head with the shipped migrations (not create_all)."""
    tmp = tmp_path_factory.mktemp(f"db-{request.param}")
    if request.param == "sqlite":
        path = tmp / "syndic.db"
        url = f"sqlite:///{path}"
    else:
        url = pg_url()
        ensure_pg_database(url)
        reset_pg_schema(url)
    app = build_app(make_settings(url, tmp))
    with app.app_context():
        upgrade()
        _db.engine.dispose()
    template = None
    if request.param == "sqlite":
        template = tmp / "template.db"
        import shutil

        shutil.copyfile(path, template)
    yield TestDatabase(request.param, url, template)
    if request.param == "postgresql" and os.environ.get("PYTEST_XDIST_WORKER"):
        drop_pg_database(url)


def dispose(app: Flask) -> None:
    """Close an app's pooled connections (psycopg warns about connections left to GC)."""
    with app.app_context():
        _db.engine.dispose()


@pytest.fixture(scope="session")
def app(database: TestDatabase, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Flask]:
    # Attached, so that resetting the database for another app (the connectors' app) closes
    # this one's pooled SQLite connections too: a connection left open on the replaced file
    # (same inode, stale WAL index) fails later with "disk I/O error".
    app = database.attach(
        build_app(make_settings(database.url, tmp_path_factory.mktemp("instance")))
    )
    yield app
    dispose(app)


@pytest.fixture()
def db(app: Flask, database: TestDatabase) -> Iterator[Any]:
    """An app context on an empty database; yields Flask-SQLAlchemy's ``db``."""
    database.reset(app)
    with app.app_context():
        yield _db
        _db.session.remove()


@pytest.fixture()
def client(app: Flask, db: Any) -> ApiClient:
    return app.test_client()  # type: ignore[return-value]


@pytest.fixture()
def make_tenant(db: Any) -> Callable[..., Tenant]:
    counter = iter(range(1, 10_000))

    def make(code: str | None = None, **kw: Any) -> Tenant:
        n = next(counter)
        data = {
            "code": code or f"tenant-{n}",
            "name": kw.pop("name", f"Tenant {n}"),
            "kind": kw.pop("kind", TenantKind.CITY),
            **kw,
        }
        return create_tenant(data, actor=SYSTEM)

    return make


@pytest.fixture()
def tenant_a(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("tenant-a", name="Tenant A")


@pytest.fixture()
def tenant_b(make_tenant: Callable[..., Tenant]) -> Tenant:
    return make_tenant("tenant-b", name="Tenant B")


@pytest.fixture()
def as_role(app: Flask, db: Any) -> Callable[..., ApiClient]:
    """``as_role("technician", tenants=[tenant_a])`` → a client bearing a fresh token."""
    counter = iter(range(1, 10_000))

    def make(
        role: str | Role, tenants: list[Tenant] | None = None, *, username: str | None = None
    ) -> ApiClient:
        role = Role(role)
        name = username or f"{role.value}-{next(counter)}"
        user = create_user(
            name, role=role, tenants=list(tenants or []), all_tenants=not tenants, actor=SYSTEM
        )
        _token, raw = create_token(user, "test", expires_days=None, now=utcnow(), actor=SYSTEM)
        c: ApiClient = app.test_client()  # type: ignore[assignment]
        c.token = raw
        c.user = user  # type: ignore[attr-defined]
        return c

    return make


@pytest.fixture()
def admin(as_role: Callable[..., ApiClient]) -> ApiClient:
    return as_role("admin", username="root")
