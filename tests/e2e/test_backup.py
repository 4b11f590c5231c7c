"""`syndic db backup` while writers write, then `syndic db restore` into an empty database."""

from __future__ import annotations

import json
import threading

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import make_url

from config.auth import SYSTEM
from config.cli import main
from config.db import db as _db
from config.tenancy import Tenant, create_tenant
from tests.conftest import build_app, make_settings
from tests.support import drop_pg_database, ensure_pg_database, reset_pg_schema

pytestmark = pytest.mark.e2e


def _writers(app, stop: threading.Event, errors: list[BaseException]) -> list[threading.Thread]:
    def write(n: int) -> None:
        i = 0
        try:
            with app.app_context():
                while not stop.is_set():
                    create_tenant({"code": f"w{n}-{i}", "name": "W", "kind": "city"}, actor=SYSTEM)
                    i += 1
        except BaseException as exc:  # noqa: BLE001
            errors.append(exc)

    return [threading.Thread(target=write, args=(n,)) for n in range(2)]


def test_backup_under_writes_then_restore_into_an_empty_database(app, db, database, tmp_path):
    for i in range(20):
        create_tenant({"code": f"seed-{i}", "name": "S", "kind": "city"}, actor=SYSTEM)
    stop, errors = threading.Event(), []
    threads = _writers(app, stop, errors)
    for t in threads:
        t.start()
    try:
        backup_file = tmp_path / "syndic.backup"
        result = app.test_cli_runner().invoke(main, ["db", "backup", str(backup_file)])
        assert result.exit_code == 0, result.output
    finally:
        stop.set()
        for t in threads:
            t.join()
    assert errors == []
    manifest = json.loads((tmp_path / "syndic.backup.manifest.json").read_text())
    assert manifest["counts"]["tenants"] >= 20

    if database.backend == "sqlite":
        target_url = f"sqlite:///{tmp_path / 'restored.db'}"
    else:
        target_url = make_url(database.url).set(
            database=make_url(database.url).database + "_restore"
        )
        target_url = target_url.render_as_string(hide_password=False)
        ensure_pg_database(target_url)
        reset_pg_schema(target_url)
    target = build_app(make_settings(target_url, tmp_path))
    try:
        result = target.test_cli_runner().invoke(main, ["db", "restore", str(backup_file)])
        assert result.exit_code == 0, result.output
        with target.app_context():
            restored = _db.session.execute(
                sa.select(sa.func.count()).select_from(Tenant)
            ).scalar_one()
            assert restored == manifest["counts"]["tenants"]
            assert target.test_client().get("/readyz").status_code == 200
        again = target.test_cli_runner().invoke(main, ["db", "restore", str(backup_file)])
        assert again.exit_code != 0 and "not empty" in again.output
    finally:
        with target.app_context():
            _db.engine.dispose()
        if database.backend == "postgresql":
            drop_pg_database(target_url)


def test_backup_refuses_to_overwrite(app, db, tmp_path):
    existing = tmp_path / "exists.backup"
    existing.write_text("x")
    result = app.test_cli_runner().invoke(main, ["db", "backup", str(existing)])
    assert result.exit_code != 0 and "exists" in result.output
