"""Fixtures of the connector tests: a fake GLPI on loopback (tests/connectors/fake_glpi.py)
and an app whose source ``glpi`` points at it, on the test database."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import pytest
from flask import Flask

from config.db import db as _db
from config.settings import SourceSettings
from tests.conftest import build_app, dispose, make_settings
from tests.connectors.fake_glpi import (
    APP_TOKEN,
    USER_TOKEN,
    FakeGlpi,
    FakeGlpiServer,
    small_instance,
)

ACTIVITY_MAP = {"Projet*": "project", "Support": "assistance"}


class Switch:
    """The WSGI app of the server: whichever fake the current test installed."""

    def __init__(self) -> None:
        self.fake = FakeGlpi()

    def __call__(self, environ: Any, start_response: Any) -> Any:
        return self.fake(environ, start_response)


@pytest.fixture(scope="session")
def glpi_server() -> Iterator[Any]:
    switch = Switch()
    with FakeGlpiServer(switch) as server:  # type: ignore[arg-type]
        server.switch = switch  # type: ignore[attr-defined]
        yield server


def connector_settings(database_url: str, tmp: Any, glpi_url: str, **section: Any) -> Any:
    base = make_settings(database_url, tmp)
    sections = {k: dict(v) for k, v in base.sections.items()}
    sections["connectors"] = {
        **sections.get("connectors", {}),
        "page_size": 40,
        "read_timeout": 1.0,
        "connect_timeout": 1.0,
        "retries": 3,
        "backoff": 0.01,
        "run_lease_seconds": 30,
        **section,
    }
    sources = {
        "glpi": SourceSettings(
            name="glpi",
            kind="glpi",
            url=glpi_url,
            options={"activity_map": ACTIVITY_MAP},
            secrets={"user_token": USER_TOKEN, "app_token": APP_TOKEN},
        ),
        "files": SourceSettings(name="files", kind="csv", options={}),
    }
    return base.replace(sources=sources, sections=sections)


@pytest.fixture(scope="session")
def sync_app(database: Any, glpi_server: Any, tmp_path_factory: Any) -> Iterator[Flask]:
    settings = connector_settings(database.url, tmp_path_factory.mktemp("sync"), glpi_server.url)
    app = database.attach(build_app(settings))
    yield app
    dispose(app)


@pytest.fixture()
def sdb(sync_app: Flask, app: Flask, database: Any) -> Iterator[Any]:
    """An app context of ``sync_app`` on an empty database. The main test app's pooled
    connections are closed first: on SQLite the reset replaces the file under them."""
    dispose(app)
    database.reset(sync_app)
    with sync_app.app_context():
        yield _db
        _db.session.remove()


@pytest.fixture()
def fake(glpi_server: Any) -> FakeGlpi:
    instance = small_instance()
    glpi_server.switch.fake = instance
    return instance


def sync(full: bool = False, **kw: Any) -> Any:
    from connectors.runner import run_source

    return run_source("glpi", full=full, trigger="test", **kw)
