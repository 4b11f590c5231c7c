"""Pages benchmark (issue 7): server time of the technician's queue and ticket page vs the
list probe (goal ≥ 50 %), their SQL statements (constant in the number of tickets), and the
weight of the assets each page loads (goal ≤ 200 KB)."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from pathlib import Path

from bench.harness import ROOT, Harness, gunicorn

SESSION = r"""
import json, re, sys
import sqlalchemy as sa
from sqlalchemy import event
from config.app import create_app
from config.auth import SYSTEM, User, update_user
from config.db import db
from servicedesk.models import Ticket
app = create_app({"SESSION_COOKIE_SECURE": False})
with app.app_context():
    user = db.session.execute(sa.select(User).where(User.username == "n.leroy")).scalar_one()
    update_user(user, {"password": "bench password 2021"}, actor=SYSTEM)
    ticket = db.session.execute(sa.select(Ticket.id).where(Ticket.assignee_id == user.id).limit(1)).scalar_one()
    engine = db.engine
c = app.test_client()
html = c.get("/connexion").get_data(as_text=True)
tok = re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)
resp = c.post("/connexion", data={"csrf_token": tok, "username": "n.leroy", "password": "bench password 2021"})
cookie = resp.headers["Set-Cookie"].split(";")[0]
counts = {}
pages = {"queue": "/tickets", "ticket": f"/tickets/{ticket}", "timesheet": "/temps", "cmdb": "/cmdb"}
assets = {}
for name, path in pages.items():
    c.get(path)
    seen = []
    rec = lambda conn, cur, stmt, *a: seen.append(stmt)
    event.listen(engine, "before_cursor_execute", rec)
    page = c.get(path)
    event.remove(engine, "before_cursor_execute", rec)
    assert page.status_code == 200, (path, page.status_code)
    counts[name] = len(seen)
    refs = re.findall(r'(?:href|src)="(/static/[^"]+)"', page.get_data(as_text=True))
    assets[name] = sum(len(c.get(r).data) for r in set(refs))
print(json.dumps({"cookie": cookie, "ticket": ticket, "counts": counts, "assets": assets, "pages": pages}))
"""


def run(h: Harness) -> None:
    env = h.syndic_env("pages") | {"SYNDIC_COOKIE_SECURE": "false"}
    for args in (("db", "upgrade"), ("demo", "load")):
        subprocess.run(
            [sys.executable, "-m", "config.cli", *args],
            cwd=ROOT,
            check=True,
            env={**os.environ, **env},
            capture_output=True,
        )
    out = subprocess.run(
        [sys.executable, "-c", SESSION],
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        env={**os.environ, **env},
    ).stdout
    info = json.loads(out.strip().splitlines()[-1])
    for name, count in info["counts"].items():
        h.info(f"SQL statements of the {name} page", count, "statements")
    for name, size in info["assets"].items():
        h.ratio(
            f"assets of the {name} page vs 200 KB",
            size / 1024,
            200,
            goal=1.0,
            unit="KB",
            higher_is_better=False,
        )
    headers = {"Cookie": info["cookie"]}
    with gunicorn("config.app:create_app()", env=env) as srv:
        for name in ("queue", "ticket"):
            url = srv.url + info["pages"][name]
            h.versus(f"{name} page vs list probe", url, "list50", goal=0.5, headers=headers)
    Path(h.workdir / "pages.json").write_text(json.dumps(info))
    assert re  # noqa: B018 - the module's imports are used in the child script
