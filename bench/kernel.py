"""Kernel benchmark (issue 2): /healthz vs a bare Flask hello; GET /api/v1/tenants/<id>
vs a bare one-row SQLAlchemy + marshmallow endpoint; a list page of 50 vs the list probe."""

from __future__ import annotations

import os
import subprocess
import sys

from bench.harness import ROOT, Harness, gunicorn


def _cli(env: dict[str, str], *args: str) -> str:
    out = subprocess.run(
        [sys.executable, "-m", "config.cli", *args],
        cwd=ROOT,
        check=True,
        env={**os.environ, **env},
        capture_output=True,
        text=True,
    )
    return out.stdout


def setup(h: Harness) -> tuple[dict[str, str], dict[str, str]]:
    """A syndic instance with the demo tenants plus 1,000 more (3 of them sub-tenants of
    ville-ivry, the technician's tenant: a realistic GLPI-like tree), and two tokens."""
    env = h.syndic_env("kernel")
    _cli(env, "db", "upgrade")
    _cli(env, "demo", "load")
    code = (
        "from config.app import create_app\n"
        "from config.auth import SYSTEM\n"
        "from config.tenancy import create_tenant\n"
        "app = create_app()\n"
        "with app.app_context():\n"
        "    for i in range(1000):\n"
        "        create_tenant({'code': f'bench-{i:04d}', 'name': f'Bench {i}', 'kind': 'city',"
        " 'parent': 'ville-ivry' if i < 3 else None}, actor=SYSTEM)\n"
    )
    subprocess.run([sys.executable, "-c", code], cwd=ROOT, check=True, env={**os.environ, **env})
    _cli(env, "users", "create", "bench-tech", "--role", "technician", "--tenant", "ville-ivry")
    tokens = {
        "admin": _cli(env, "tokens", "create", "admin").strip().splitlines()[-1],
        "technician": _cli(env, "tokens", "create", "bench-tech").strip().splitlines()[-1],
    }
    return env, tokens


def run(h: Harness) -> None:
    env, tokens = setup(h)
    with gunicorn("config.app:create_app()", env=env) as srv:
        h.versus("/healthz vs hello probe", srv.url + "/healthz", "hello", goal=0.8)
        for who, token in tokens.items():
            auth = {"Authorization": f"Bearer {token}"}
            h.versus(
                f"GET /api/v1/tenants/<id> ({who}) vs one-row probe",
                srv.url + "/api/v1/tenants/3",
                "onerow",
                goal=0.5,
                headers=auth,
            )
            h.versus(
                f"GET /api/v1/tenants?limit=50 ({who}) vs list probe",
                srv.url + "/api/v1/tenants?limit=50",
                "list50",
                goal=0.5,
                headers=auth,
            )
