"""The OpenAPI document, the docs page, /healthz and /readyz."""

from __future__ import annotations

import re

import pytest
from openapi_spec_validator import validate

from tests.conftest import build_app, make_settings
from tests.support import assert_problem, assert_status


def test_openapi_is_public_and_valid_3_1(client):
    resp = client.get("/api/v1/openapi.json")
    assert_status(resp, 200)
    spec = resp.json
    assert spec["openapi"].startswith("3.1")
    validate(spec)


def test_every_api_route_is_documented_with_problem_errors(app, client):
    spec = client.get("/api/v1/openapi.json").json
    documented = {
        (m.upper(), p) for p, ops in spec["paths"].items() for m in ops if m != "parameters"
    }
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule == "/api/v1/openapi.json":
            continue
        # <int:id>, <string(maxlength=64):name>, <name> → {id}, {name}
        path = re.sub(r"<(?:[^:>]+:)?(\w+)>", r"{\1}", rule.rule)
        for method in rule.methods - {"HEAD", "OPTIONS"}:
            assert (method, path) in documented, (method, path)
    for path, ops in spec["paths"].items():
        for method, op in ops.items():
            if method == "parameters":
                continue
            assert "401" in op["responses"] or not path.startswith("/api/v1/"), (method, path)
            for code, resp in op["responses"].items():
                if code.startswith(("4", "5")):
                    assert "application/problem+json" in resp["content"], (method, path, code)


def test_docs_page_works_offline(client):
    resp = client.get("/api/docs")
    assert_status(resp, 200)
    html = resp.get_data(as_text=True)
    assert "/api/v1/tenants" in html and "openapi.json" in html
    assert "http://" not in html and "https://" not in html  # no CDN


def test_healthz(client):
    resp = client.get("/healthz")
    assert_status(resp, 200)
    assert resp.json == {"status": "ok"}


def test_readyz_when_migrated(client):
    resp = client.get("/readyz")
    assert_status(resp, 200)
    assert resp.json["database"] == "ok"


@pytest.mark.parametrize("backend", ["sqlite"])
def test_readyz_is_503_on_an_empty_database(tmp_path, backend):
    app = build_app(make_settings(f"sqlite:///{tmp_path / 'empty.db'}", tmp_path))
    assert_problem(app.test_client().get("/readyz"), 503)
