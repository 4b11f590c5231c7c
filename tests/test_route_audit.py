"""Fails if any /api/v1 route (method × rule) has no cross-tenant isolation test.

Resource tests register their routes through ``ResourceAPITests``; special endpoints
through ``@covers("METHOD /api/v1/...")`` (tests/api_mixins.py).
"""

from __future__ import annotations

import importlib
import pkgutil

import tests
from tests.api_mixins import ISOLATION_COVERED, normalise

PUBLIC = {"/api/v1/openapi.json"}


def _import_all_test_modules() -> None:
    for mod in pkgutil.walk_packages(tests.__path__, "tests."):
        if mod.name.rsplit(".", 1)[-1].startswith("test_"):
            importlib.import_module(mod.name)


def test_every_api_route_has_an_isolation_test(app):
    _import_all_test_modules()
    missing = []
    routes = 0
    for rule in app.url_map.iter_rules():
        if not rule.rule.startswith("/api/v1/") or rule.rule in PUBLIC:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            routes += 1
            if (method, normalise(rule.rule)) not in ISOLATION_COVERED:
                missing.append(f"{method} {rule.rule}")
    assert not missing, "routes without an isolation test:\n" + "\n".join(missing)
    assert routes > 0
