"""End to end: the schema the migrations build, and the `syndic` command line."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest
import sqlalchemy as sa
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from config.db import db as _db
from tests.conftest import build_app, make_settings

pytestmark = pytest.mark.e2e
ROOT = Path(__file__).resolve().parents[2]


def test_migrations_build_exactly_the_models(app, database):
    """No drift: the migrated test database (SQLite, and PostgreSQL when set) equals the models."""
    with app.app_context(), _db.engine.connect() as conn:
        ctx = MigrationContext.configure(conn, opts={"compare_type": True, "render_as_batch": True})
        diff = compare_metadata(ctx, _db.metadata)
    assert diff == []


@pytest.fixture()
def cli(tmp_path):
    """A CLI runner on a fresh, empty SQLite file."""
    app = build_app(make_settings(f"sqlite:///{tmp_path / 'cli.db'}", tmp_path))
    runner = app.test_cli_runner()

    def run(*args: str, ok: bool = True):
        from config.cli import main

        result = runner.invoke(main, list(args), catch_exceptions=False)
        if ok:
            assert result.exit_code == 0, result.output
        return result

    run.app = app
    return run


def test_db_upgrade_on_an_empty_file_then_readyz(cli):
    cli("db", "upgrade")
    assert cli.app.test_client().get("/readyz").status_code == 200


def test_demo_load_twice_changes_nothing_the_second_time(cli):
    cli("db", "upgrade")
    first = cli("demo", "load").output
    assert "tenants: 17" in first
    second = cli("demo", "load").output
    assert "tenants: 0" in second and "users: 0" in second
    assert "not loaded" in cli("demo", "load", "--if-empty").output


def test_users_and_tokens_commands(cli):
    cli("db", "upgrade")
    cli("demo", "load")
    out = cli(
        "users",
        "create",
        "alice",
        "--role",
        "technician",
        "--tenant",
        "ville-ivry",
        "--tenant",
        "ville-vitry",
    ).output
    assert "created user alice" in out
    bad = cli("users", "create", "bob", "--role", "technician", "--tenant", "nowhere", ok=False)
    assert bad.exit_code != 0 and "nowhere" in bad.output
    made = cli("tokens", "create", "alice", "--expires", "7").output.strip().splitlines()
    token = made[-1]
    assert token.startswith("syn_") and " " not in token
    client = cli.app.test_client()
    resp = client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {token}"})
    assert resp.status_code == 200
    assert {t["code"] for t in resp.json["results"]} == {"ville-ivry", "ville-vitry"}
    assert token[:12] in cli("tokens", "list").output
    cli("tokens", "revoke", token[:12])
    assert (
        client.get("/api/v1/tenants", headers={"Authorization": f"Bearer {token}"}).status_code
        == 401
    )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_script_serves_with_gunicorn(tmp_path):
    env = {
        **os.environ,
        "SYNDIC_DATABASE_URL": f"sqlite:///{tmp_path / 'serve.db'}",
        "SYNDIC_INSTANCE_PATH": str(tmp_path),
    }
    subprocess.run(
        [sys.executable, "-m", "config.cli", "db", "upgrade"],
        env=env,
        check=True,
        cwd=ROOT,
        capture_output=True,
    )
    port = _free_port()
    proc = subprocess.Popen(
        [
            sys.executable,
            "-m",
            "config.cli",
            "serve",
            "--bind",
            f"127.0.0.1:{port}",
            "--workers",
            "1",
        ],
        env=env,
        cwd=ROOT,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=2) as resp:  # noqa: S310
                    assert resp.status == 200
                    break
            except OSError:
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.2)
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_wsgi_module_builds_the_app(tmp_path, monkeypatch):
    monkeypatch.setenv("SYNDIC_DATABASE_URL", f"sqlite:///{tmp_path / 'w.db'}")
    monkeypatch.setenv("SYNDIC_INSTANCE_PATH", str(tmp_path))
    sys.path.insert(0, str(ROOT))
    try:
        import importlib

        wsgi = importlib.import_module("wsgi")
        assert wsgi.app.name == "syndic"
    finally:
        sys.path.remove(str(ROOT))
        sys.modules.pop("wsgi", None)


def test_postgres_schema_has_the_append_only_trigger(app, database):
    if database.backend != "postgresql":
        pytest.skip("PostgreSQL only")
    with app.app_context(), _db.engine.connect() as conn:
        names = (
            conn.execute(sa.text("SELECT tgname FROM pg_trigger WHERE NOT tgisinternal"))
            .scalars()
            .all()
        )
    assert "changes_no_update_delete" in names


def test_users_password_sets_an_argon2_hash(cli):
    cli("db", "upgrade")
    cli("demo", "load")
    result = cli.app.test_cli_runner().invoke(
        __import__("config.cli", fromlist=["main"]).main,
        ["users", "password", "admin", "--stdin"],
        input="a long enough password\n",
    )
    assert result.exit_code == 0, result.output
    short = cli.app.test_cli_runner().invoke(
        __import__("config.cli", fromlist=["main"]).main,
        ["users", "password", "admin", "--stdin"],
        input="short\n",
    )
    assert short.exit_code != 0 and "10 characters" in short.output
    with cli.app.app_context():
        from config.auth import User
        from config.db import db as _db

        user = _db.session.execute(sa.select(User).where(User.username == "admin")).scalar_one()
        assert user.password_hash.startswith("$argon2")
