"""Bulk import (file reading, checks, all-or-nothing writes, API and CLI)."""

from __future__ import annotations

import io

import pytest
import sqlalchemy as sa
from openpyxl import Workbook

from cmdb import imports
from cmdb.models import CI, Relation, Usage, graph_token
from cmdb.tabular import read_table
from config.auth import SYSTEM
from config.changelog import ChangeRecord
from config.db import db as _db
from config.errors import ValidationFailed
from tests.api_mixins import covers
from tests.support import assert_problem, assert_status

HEADER = (
    "record,key,name,tenant,status,relation,target,confidence,"
    "attr.min_healthy,attr.domain,attr.environment"
)
GOOD = f"""{HEADER}
ci,site:main,Site principal,,,,,,,,
ci,cluster:hc1,Cluster HC1,,,,,,2,,
ci,host:hv-1,HV 1,,,,,,,,
ci,host:hv-2,HV 2,,,,,,,,
relation,host:hv-1,,,,member_of,cluster:hc1,,,,
relation,host:hv-2,,,,member_of,cluster:hc1,,,,
relation,host:hv-1,,,,located_in,site:main,,,,
ci,server:srv-gf,Serveur GF,,,,,,,,production
relation,server:srv-gf,,,,runs_on,cluster:hc1,,,,
ci,application:gf,Gestion financière,,,,,,,Finances,
relation,application:gf,,,,hosted_on,server:srv-gf,,,,
usage,application:gf,,tenant-a,,,,likely,,,
"""


def count(model) -> int:
    return _db.session.execute(sa.select(sa.func.count()).select_from(model)).scalar_one()


def run(text: str | bytes, *, dry_run: bool = False, name: str = "cmdb.csv"):
    data = text.encode("utf-8") if isinstance(text, str) else text
    return imports.import_table(read_table(data, name), actor=SYSTEM, dry_run=dry_run)


def errors_of(text: str | bytes, name: str = "cmdb.csv") -> dict[str, list[str]]:
    with pytest.raises(ValidationFailed) as exc:
        run(text, name=name)
    return exc.value.errors or {}


# -- reading --------------------------------------------------------------------------------


def test_reading_utf8_with_and_without_bom_and_windows_1252():
    text = f"{HEADER}\nci,application:gf,Gestion financière,,,,,,,Finances,\n"
    for data, encoding in (
        (text.encode("utf-8"), "utf-8"),
        (b"\xef\xbb\xbf" + text.encode("utf-8"), "utf-8-sig"),
        (text.encode("cp1252"), "cp1252"),
    ):
        table = read_table(data, "x.csv")
        assert table.encoding == encoding
        assert table.rows[0].cells["name"] == "Gestion financière"
        assert table.rows[0].line == 2


def test_excel_semicolon_csv_is_read():
    text = HEADER.replace(",", ";") + "\nci;host:h1;Hôte 1;;;;;;;;\n"
    table = read_table(text.encode("cp1252"))
    assert table.rows[0].cells == {"record": "ci", "key": "host:h1", "name": "Hôte 1"}


@pytest.mark.parametrize(
    "data",
    [
        "record,key\nci,host:h\n".encode("utf-16"),
        b"record,key,name\nci,host:h,\x81\x8d\n",
    ],
)
def test_other_encodings_are_refused_clearly(data):
    with pytest.raises(ValidationFailed) as exc:
        read_table(data, "x.csv")
    assert exc.value.detail == "Unsupported encoding."
    assert "UTF-8" in exc.value.errors["file"][0]


@pytest.mark.parametrize("data", [b"", b"  \n\n", b"\xef\xbb\xbf", f"{HEADER}\n".encode()])
def test_empty_files_are_refused(data):
    with pytest.raises(ValidationFailed) as exc:
        read_table(data, "x.csv")
    assert "file" in exc.value.errors


def test_wrong_header_names_the_column():
    with pytest.raises(ValidationFailed) as exc:
        read_table(b"record,key,colour\nci,host:h,red\n")
    assert list(exc.value.errors) == ["line 1, column 3"]
    with pytest.raises(ValidationFailed) as exc:
        read_table(b"record,name\nci,x\n")
    assert exc.value.errors == {"line 1": ["Missing column 'key'."]}


def test_formula_cells_are_refused_with_their_place():
    with pytest.raises(ValidationFailed) as exc:
        read_table(f'{HEADER}\nci,host:h1,=HYPERLINK("x"),,,,,,,,\n'.encode())
    assert list(exc.value.errors) == ["line 2, column 3 (name)"]


def xlsx(rows) -> bytes:
    wb = Workbook()
    ws = wb.active
    for row in rows:
        ws.append(row)
    buf = io.BytesIO()
    wb.save(buf)
    return buf.getvalue()


def test_xlsx_is_read_with_typed_cells_and_column_letters():
    data = xlsx([["record", "key", "attr.min_healthy"], ["ci", "cluster:c", 2], [None, None, None]])
    table = read_table(data, "x.xlsx")
    assert table.rows[0].cells == {"record": "ci", "key": "cluster:c", "attr.min_healthy": 2}
    assert table.columns["attr.min_healthy"] == "C"


def test_xlsx_formula_is_refused():
    data = xlsx([["record", "key", "name"], ["ci", "host:h", '=CONCAT("a","b")']])
    with pytest.raises(ValidationFailed) as exc:
        read_table(data, "x.xlsx")
    assert list(exc.value.errors) == ["line 2, column C (name)"]


def test_a_broken_xlsx_is_refused():
    with pytest.raises(ValidationFailed) as exc:
        read_table(b"PK\x03\x04 not really a zip", "x.xlsx")
    assert "file" in exc.value.errors


# -- checking and writing -------------------------------------------------------------------


def test_import_creates_everything_then_reimport_changes_nothing(db, tenant_a):
    summary = run(GOOD)
    assert summary["cis"] == {"created": 6, "updated": 0, "unchanged": 0}
    assert summary["relations"] == {"created": 5, "updated": 0, "unchanged": 0}
    assert summary["usage"] == {"created": 1, "updated": 0, "unchanged": 0}
    gf = _db.session.execute(sa.select(CI).where(CI.code == "gf")).scalar_one()
    assert gf.attributes == {"domain": "Finances"} and gf.name == "Gestion financière"
    cluster = _db.session.execute(sa.select(CI).where(CI.code == "hc1")).scalar_one()
    assert cluster.attributes == {"min_healthy": 2}
    changes, token = count(ChangeRecord), graph_token()
    again = run(GOOD)
    assert again["cis"] == {"created": 0, "updated": 0, "unchanged": 6}
    assert again["relations"]["unchanged"] == 5 and again["usage"]["unchanged"] == 1
    assert count(ChangeRecord) == changes and graph_token() == token


def test_import_updates_what_differs(db, tenant_a):
    run(GOOD)
    changed = GOOD.replace("Cluster HC1,,,,,,2", "Cluster HC1,,maintenance,,,,3").replace(
        "tenant-a,,,,likely", "tenant-a,,,,certain"
    )
    summary = run(changed)
    assert summary["cis"] == {"created": 0, "updated": 1, "unchanged": 5}
    assert summary["usage"] == {"created": 0, "updated": 1, "unchanged": 0}
    cluster = _db.session.execute(sa.select(CI).where(CI.code == "hc1")).scalar_one()
    assert cluster.attributes == {"min_healthy": 3} and cluster.status.value == "maintenance"


def test_dry_run_writes_nothing(db, tenant_a):
    changes = count(ChangeRecord)
    assert run(GOOD, dry_run=True)["cis"]["created"] == 6
    assert count(CI) == 0 and count(ChangeRecord) == changes


BAD = f"""{HEADER}
ci,mainframe:m1,Unknown kind,,,,,,,,
ci,cluster:c1,Cluster,,,,,,two,,
ci,host:h1,Host,nowhere,,,,,,,
ci,server:s1,Server,,,,,,,,
ci,server:s1,Again,,,,,,,,
ci,server:s2,Server,,sleeping,,,,,,
relation,server:s1,,,,runs_on,host:ghost,,,,
ci,site:main,Main,,,,,,,,
relation,site:main,,,,runs_on,server:s1,,,,
usage,server:s1,,tenant-a,,,,,,,
ci,application:a,App,,,,,,,,production
bogus,host:x,,,,,,,,,
"""


def test_every_bad_row_is_reported_with_line_and_column_and_nothing_is_written(db, tenant_a):
    changes = count(ChangeRecord)
    errors = errors_of(BAD)
    assert set(errors) == {
        "line 2, column 2 (key)",
        "line 3, column 9 (attr.min_healthy)",
        "line 4, column 4 (tenant)",
        "line 6, column 2 (key)",
        "line 7, column 5 (status)",
        "line 8, column 7 (target)",
        "line 10, column 6 (relation)",
        "line 11, column 2 (key)",
        "line 12, column 11 (attr.environment)",
        "line 13, column 1 (record)",
    }
    assert count(CI) == 0 and count(Relation) == 0 and count(ChangeRecord) == changes


def test_a_cycle_in_the_file_is_refused(db):
    text = f"""{HEADER}
ci,service:a,A,,,,,,,,
ci,service:b,B,,,,,,,,
relation,service:a,,,,depends_on,service:b,,,,
relation,service:b,,,,depends_on,service:a,,,,
"""
    errors = errors_of(text)
    assert list(errors) == ["line 5"]
    assert "service:a → service:b → service:a" in errors["line 5"][0] or (
        "service:b → service:a → service:b" in errors["line 5"][0]
    )
    assert count(CI) == 0


def test_a_cycle_through_stored_relations_is_refused(db, make_ci, relate):
    a, b = make_ci("service:a"), make_ci("service:b")
    relate(a, "depends_on", b)
    errors = errors_of(f"{HEADER}\nrelation,service:b,,,,depends_on,service:a,,,,\n")
    assert "cycle" in errors["line 2"][0]
    assert count(Relation) == 1


def test_cis_of_other_tenants_are_unknown_or_taken(db, as_role, tenant_a, tenant_b, make_ci):
    from config.auth import Actor

    make_ci("server:theirs", tenant_b)
    infra = Actor.of(as_role("infra", tenants=[tenant_a]).user)
    text = f"""{HEADER}
ci,server:theirs,Mine now,tenant-a,,,,,,,
ci,application:a,A,tenant-b,,,,,,,
ci,application:b,B,,,,,,,,
relation,application:b,,,,hosted_on,server:theirs,,,,
"""
    with pytest.raises(ValidationFailed) as exc:
        imports.import_table(read_table(text.encode()), actor=infra)
    errors = exc.value.errors
    assert errors["line 2, column 2 (key)"] == ["The key server:theirs is taken."]
    assert "line 3, column 4 (tenant)" in errors
    assert "line 5, column 7 (target)" in errors
    assert "tenant-b" not in str(errors["line 2, column 2 (key)"])


def test_usage_of_another_tenants_application_is_refused(db, make_ci, tenant_a, tenant_b):
    make_ci("application:b-app", tenant_b)
    errors = errors_of(f"{HEADER}\nusage,application:b-app,,tenant-a,,,,,,,\n")
    assert list(errors) == ["line 2, column 4 (tenant)"]
    assert count(Usage) == 0


def test_xlsx_import_with_numbers(db):
    data = xlsx(
        [
            ["record", "key", "name", "attr.min_healthy", "attr.cpu_cores", "attr.memory_gb"],
            ["ci", "cluster:c", "C", 2, None, None],
            ["ci", "host:h", "H", None, 32, 256.5],
        ]
    )
    summary = imports.import_table(read_table(data, "x.xlsx"), actor=SYSTEM)
    assert summary["cis"]["created"] == 2
    host = _db.session.execute(sa.select(CI).where(CI.code == "h")).scalar_one()
    assert host.attributes == {"cpu_cores": 32, "memory_gb": 256.5}


def test_french_decimal_comma_and_booleans(db):
    text = "record;key;attr.size_gb;attr.virtual\nci;database:d;1234,5;\nci;server:s;;non\n"
    run(text)
    db_ = _db.session.execute(sa.select(CI).where(CI.code == "d")).scalar_one()
    srv = _db.session.execute(sa.select(CI).where(CI.code == "s")).scalar_one()
    assert db_.attributes["size_gb"] == 1234.5
    assert srv.attributes["virtual"] is False


def test_many_errors_are_capped(db):
    rows = "\n".join(f"bogus,host:h{i}" for i in range(imports.MAX_REPORTED_ERRORS + 5))
    errors = errors_of(f"record,key\n{rows}\n")
    assert len(errors) == imports.MAX_REPORTED_ERRORS + 1
    assert "5 more" in errors["file"][0]


# -- API ------------------------------------------------------------------------------------


def upload(client, text: str | bytes, name: str = "cmdb.csv", query: str = ""):
    from werkzeug.datastructures import FileStorage
    from werkzeug.test import encode_multipart

    data = text.encode("utf-8") if isinstance(text, str) else text
    # Encoded in memory: the test client spools big bodies to a temporary file it never
    # closes (a ResourceWarning under -W error), which a real client does not do.
    boundary, body = encode_multipart({"file": FileStorage(io.BytesIO(data), name)})
    return client.post(
        f"/api/v1/cmdb/imports{query}",
        data=body,
        content_type=f"multipart/form-data; boundary={boundary}",
    )


@covers("POST /api/v1/cmdb/imports")
def test_api_import_and_isolation(as_role, tenant_a, tenant_b, make_ci):
    infra = as_role("infra", tenants=[tenant_a])
    resp = upload(infra, GOOD)
    assert_status(resp, 200)
    assert resp.json["cis"]["created"] == 6 and resp.json["dry_run"] is False
    make_ci("application:theirs", tenant_b)
    text = f"{HEADER}\nusage,application:theirs,,tenant-a,,,,,,,\n"
    problem = assert_problem(upload(infra, text), 422, "validation-failed")
    assert list(problem["errors"]) == ["line 2, column 2 (key)"]


def test_api_import_refusals(as_role, tenant_a):
    infra = as_role("infra", tenants=[tenant_a])
    assert_problem(upload(infra, b""), 422)
    assert_problem(upload(infra, BAD), 422)
    assert_problem(upload(infra, "record,key\nci,host:x\n".encode("utf-16")), 422)
    assert count(CI) == 0
    assert_problem(
        as_role("technician", tenants=[tenant_a]).post(
            "/api/v1/cmdb/imports", data={}, content_type="multipart/form-data"
        ),
        422,
    )
    assert_problem(upload(as_role("technician", tenants=[tenant_a]), GOOD), 403)
    assert_problem(upload(infra, b"x" * (1024 * 1024 + 10)), 413)
    assert count(CI) == 0


def test_api_dry_run(as_role, tenant_a):
    resp = upload(as_role("admin"), GOOD, query="?dry_run=true")
    assert_status(resp, 200)
    assert resp.json["dry_run"] is True and resp.json["cis"]["created"] == 6
    assert count(CI) == 0


# -- CLI ------------------------------------------------------------------------------------


@pytest.fixture()
def cli(app, db):
    from config.cli import main

    runner = app.test_cli_runner()

    def invoke(*args):
        return runner.invoke(main, list(args), catch_exceptions=False)

    return invoke


def test_cli_import_then_impact(cli, tmp_path, tenant_a, monkeypatch):
    from cmdb import cli as cmdb_cli

    monkeypatch.setattr(cmdb_cli, "PROGRESS_THRESHOLD", 3)
    path = tmp_path / "cmdb.csv"
    path.write_text(GOOD, encoding="utf-8")
    result = cli("import", "cmdb", str(path))
    assert result.exit_code == 0, result.output
    assert "cis: 6 created, 0 updated, 0 unchanged" in result.output
    assert "importing" in result.output  # the progress bar (threshold lowered)
    again = cli("import", "cmdb", str(path))
    assert "cis: 0 created, 0 updated, 6 unchanged" in again.output
    table = cli("impact", "host:hv-1", "host:hv-2")
    assert table.exit_code == 0, table.output
    assert "cluster:hc1" in table.output and "tenant-a" in table.output
    assert "application:gf" in table.output
    as_json = cli("impact", "host:hv-1", "--json")
    # Two hosts and min_healthy 2: one host down takes the cluster down.
    assert '"ci": "cluster:hc1"' in as_json.output and '"tenants"' in as_json.output


def test_cli_import_errors_and_unknown_impact_keys(cli, tmp_path):
    path = tmp_path / "bad.csv"
    path.write_text(BAD, encoding="utf-8")
    result = cli("import", "cmdb", str(path))
    assert result.exit_code == 1
    assert "line 3, column 9 (attr.min_healthy)" in result.output
    assert count(CI) == 0
    unknown = cli("impact", "host:nope", "site:nowhere")
    assert unknown.exit_code == 1
    assert "host:nope" in unknown.output and "site:nowhere" in unknown.output


def test_the_import_group_is_shared(app):
    group = app.cli.commands["import"]
    assert "cmdb" in group.commands


def test_the_documented_example_imports(db, make_tenant):
    from pathlib import Path

    make_tenant("ville-ivry")
    doc = (Path(__file__).resolve().parents[2] / "docs" / "cmdb.md").read_text(encoding="utf-8")
    example = doc.split("```csv\n", 1)[1].split("```", 1)[0]
    summary = run(example)
    assert summary["cis"]["created"] == 4 and summary["relations"]["created"] == 2
    assert summary["usage"]["created"] == 1
