"""The schemathesis fuzzing of tests/fuzz, restricted to the reports routes (quick to rerun)."""

from __future__ import annotations

import pytest
from schemathesis import GenerationMode

from tests.fuzz.test_schemathesis import ROLES, fuzz_operation, operations

pytestmark = pytest.mark.fuzz


@pytest.mark.parametrize("role", ROLES)
def test_reports_routes_never_answer_5xx_or_off_schema(app, db, as_role, tenant_a, tenant_b, role):
    client = as_role(role, tenants=None if role == "admin" else [tenant_a])
    headers = {"Authorization": f"Bearer {client.token}"}
    _schema, ops = operations(app)
    ours = [op for op in ops if op.path.startswith("/api/v1/reports")]
    assert len(ours) == 3
    failures: list[str] = []
    for op in ours:
        for mode in (GenerationMode.POSITIVE, GenerationMode.NEGATIVE):
            fuzz_operation(op, mode, headers, failures)
    assert not failures, "\n\n".join(failures[:20])
