"""The demo CMDB end to end: `syndic demo load`, then `syndic impact site:...` answers."""

from __future__ import annotations

import json

import pytest
import sqlalchemy as sa

from cmdb.models import CI, CIKind, Usage
from config.db import db as _db
from tests.conftest import build_app, dispose, make_settings

pytestmark = pytest.mark.e2e


def test_demo_load_then_impact_of_the_main_site(tmp_path):
    from config.cli import main

    app = build_app(make_settings(f"sqlite:///{tmp_path / 'demo.db'}", tmp_path))
    runner = app.test_cli_runner()

    def run(*args):
        result = runner.invoke(main, list(args), catch_exceptions=False)
        assert result.exit_code == 0, result.output
        return result.output

    try:
        run("db", "upgrade")
        first = run("demo", "load")
        assert "cis: 554" in first and "ci_usage: 245" in first
        assert "cis: 0, relations: 0, ci_usage: 0" in run("demo", "load")
        with app.app_context():

            def count(*where):
                stmt = sa.select(sa.func.count()).select_from(CI).where(*where)
                return _db.session.execute(stmt).scalar_one()

            env = CI.attributes["environment"].as_string()
            assert count(CI.kind == CIKind.SERVER) == 331
            assert count(CI.kind == CIKind.SERVER, env == "test") == 87
            assert count(CI.kind == CIKind.HOST) == 20
            assert count(CI.kind == CIKind.APPLICATION) == 74
            size = _db.session.execute(
                sa.select(sa.func.sum(CI.attributes["size_gb"].as_float())).where(
                    CI.kind == CIKind.DATABASE
                )
            ).scalar_one()
            assert size == pytest.approx(2300, abs=0.5)
            assert (
                _db.session.execute(sa.select(sa.func.count()).select_from(Usage)).scalar() == 245
            )
        table = run("impact", "site:siim94")
        assert "cluster:hci-prod" in table  # the stretched cluster survives, degraded
        assert "application:ulis" in table and "opaly" in table  # the legacy host's apps
        doc = json.loads(run("impact", "site:siim94", "--json"))
        assert [d["ci"] for d in doc["degraded"]] == ["cluster:hci-prod"]
        assert doc["overcommitted"][0]["ci"] == "cluster:hci-prod"
        assert "application:esedit-gf" not in {d["ci"] for d in doc["down"]}
    finally:
        dispose(app)
