"""No token or password in clear anywhere in a database dump (tables and change log)."""

from __future__ import annotations

import subprocess

import pytest
from sqlalchemy.engine import make_url

from config.auth import SYSTEM, Role, create_token, create_user
from config.cli import main
from config.db import utcnow

pytestmark = pytest.mark.e2e


def test_a_dump_holds_neither_tokens_nor_passwords(app, db, database, tmp_path, tenant_a):
    password = "Correct-Horse-Battery-Staple-42"
    user = create_user(
        "alice", role=Role.TECHNICIAN, tenants=[tenant_a], password=password, actor=SYSTEM
    )
    _, token = create_token(user, "laptop", expires_days=30, now=utcnow(), actor=SYSTEM)
    client = app.test_client()
    client.token = token
    assert client.get("/api/v1/tenants").status_code == 200  # used once: last_used_at written
    if database.backend == "sqlite":
        dump_file = tmp_path / "dump.backup"
        assert app.test_cli_runner().invoke(main, ["db", "backup", str(dump_file)]).exit_code == 0
        import sqlite3

        conn = sqlite3.connect(dump_file)
        text = "\n".join(conn.iterdump())
        conn.close()
    else:
        url = (
            make_url(database.url)
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        text = subprocess.run(
            ["pg_dump", "--data-only", url], capture_output=True, text=True, check=True
        ).stdout
    assert "alice" in text  # the dump is real
    assert token not in text and token[12:] not in text
    assert password not in text
