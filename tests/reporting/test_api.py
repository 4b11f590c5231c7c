"""The HTTP API of reports and of the archive, `syndic report`, the archive job."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json

import pytest

from config.jobs import registry
from reporting import services
from tests.api_mixins import covers
from tests.reporting.conftest import read_xlsx
from tests.support import assert_problem, assert_status

URL = "/api/v1/reports"


@pytest.mark.parametrize(
    "role,status", [("technician", 403), ("infra", 403), ("manager", 200), ("admin", 200)]
)
def test_managers_and_admins_only(db, as_role, role, status):
    resp = as_role(role).get(f"{URL}/workload?year=2021")
    assert resp.status_code == status
    if status == 403:
        assert_problem(resp, 403)


def test_no_token_is_401(client):
    assert_problem(client.get(f"{URL}/workload"), 401)


def test_json_answer_names_its_denominator(published_days, as_role):
    resp = as_role("manager").get(f"{URL}/workload?year=2021&group_by=activity_class")
    assert_status(resp, 200)
    body = resp.get_json()
    mco = next(r for r in body["rows"] if r["activity_class"] == "mco")
    assert mco["days"] == 1256 and round(mco["share"] * 100, 1) == 43.7
    assert body["total"]["days"] == 2873
    assert "2021-01-01" in body["denominator"]


def test_repeated_group_by_parameters_combine(published_days, as_role):
    resp = as_role("manager").get(f"{URL}/workload?year=2021&group_by=activity&group_by=month")
    assert_status(resp, 200)
    assert {"activity", "month"} <= set(resp.get_json()["rows"][0])


@pytest.mark.parametrize(
    "query,accept,mimetype",
    [
        ("format=csv", None, "text/csv"),
        ("format=xlsx", None, "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet"),
        ("format=html", None, "text/html"),
        ("format=pdf", None, "application/pdf"),
        ("", "text/csv", "text/csv"),
        ("", "application/pdf", "application/pdf"),
        ("", None, "application/json"),
        ("", "*/*", "application/json"),
        ("", "text/html,application/xhtml+xml,*/*;q=0.8", "text/html"),
    ],
)
def test_format_from_the_query_or_the_accept_header(
    published_days, as_role, query, accept, mimetype
):
    headers = {"Accept": accept} if accept else {}
    resp = as_role("manager").get(f"{URL}/workload?year=2021&{query}", headers=headers)
    assert_status(resp, 200)
    assert resp.mimetype == mimetype
    if mimetype != "application/json":
        assert 'filename="workload_2021-01-01_2021-12-31.' in resp.headers["Content-Disposition"]


@pytest.mark.parametrize(
    "query,field",
    [
        ("group_by=colour", "group_by"),
        ("format=docx", "format"),
        ("from=2021-05-01&to=2021-04-01", "to"),
        ("from=2021-13", "from"),
        ("from=2000-01-01&to=2021-01-01", "to"),
        ("sep=tab&format=csv", "sep"),
        ("flavour=x", "flavour"),
        ("tenant=%00", "tenant"),
    ],
)
def test_bad_parameters_are_400_problems(db, as_role, query, field):
    body = assert_problem(as_role("manager").get(f"{URL}/workload?{query}"), 400)
    assert field in body["errors"]


def test_unknown_group_by_lists_the_allowed_values(db, as_role):
    body = assert_problem(as_role("manager").get(f"{URL}/tickets?group_by=colour"), 400)
    assert body["allowed"] == ["tenant", "month", "category", "type"]


def test_unknown_report_is_404(db, as_role):
    body = assert_problem(as_role("manager").get(f"{URL}/budget"), 404)
    assert "workload" in body["allowed"]


def test_an_empty_period_is_an_empty_report(db, as_role):
    body = as_role("manager").get(f"{URL}/workload?year=1999").get_json()
    assert body["rows"] == [] and body["total"]["minutes"] == 0


@covers("GET /api/v1/reports/<name>")
@pytest.mark.parametrize("fmt", ["json", "csv", "xlsx", "html", "pdf"])
def test_a_tenant_bound_manager_sees_only_its_rows_in_every_format(world, as_role, fmt):
    client = as_role("manager", tenants=[world.a])
    resp = client.get(f"{URL}/chargeback?year=2021&format={fmt}")
    assert_status(resp, 200)
    body = resp.get_data()
    if fmt == "json":
        data = json.loads(body)
        assert [r["tenant"] for r in data["rows"]] == ["tenant-a"]
        assert data["other_tenants"] == 1
        assert data["all_tenants_total"]["total_days"] == 16
        text = body.decode()
    elif fmt == "csv":
        text = body.decode("utf-8-sig")
        assert [r["tenant"] for r in csv.DictReader(io.StringIO(text))][0] == "tenant-a"
    elif fmt == "xlsx":
        ws = read_xlsx(body).worksheets[0]
        text = " ".join(str(c.value) for row in ws.iter_rows() for c in row)
    elif fmt == "html":
        text = body.decode()
    else:
        from pypdf import PdfReader

        text = "".join(p.extract_text() for p in PdfReader(io.BytesIO(body)).pages)
    assert "tenant-a" in text
    assert "tenant-b" not in text and "Tenant B" not in text


def test_a_bound_manager_cannot_filter_on_another_tenant(world, as_role):
    client = as_role("manager", tenants=[world.a])
    body = assert_problem(client.get(f"{URL}/workload?year=2021&tenant=tenant-b"), 400)
    assert "tenant" in body["errors"]


def test_csv_with_semicolons(published_days, as_role):
    resp = as_role("manager").get(
        f"{URL}/workload?year=2021&group_by=activity_class&format=csv&sep=semicolon"
    )
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig")), delimiter=";"))
    assert next(r for r in rows if r["activity_class"] == "mco")["days"] == "1256,0"


def test_csv_of_another_table(world, as_role):
    resp = as_role("manager").get(f"{URL}/pmo?month=2021-03&format=csv&table=by_domain")
    assert_status(resp, 200)
    rows = list(csv.DictReader(io.StringIO(resp.get_data().decode("utf-8-sig"))))
    assert {r["domain"] for r in rows} == {"Finances", "RH", "Total"}


# -- archive ----------------------------------------------------------------------------------


@pytest.fixture()
def archived(world, app, tmp_path, monkeypatch):
    monkeypatch.setitem(
        app.extensions,
        "syndic.settings",
        app.extensions["syndic.settings"].replace(
            sections={
                **app.extensions["syndic.settings"].sections,
                "reporting": {
                    "archive_dir": str(tmp_path / "archive"),
                    "archive_formats": ["pdf", "xlsx"],
                },
            }
        ),
    )
    now = dt.datetime(2021, 4, 2, 6, 0, tzinfo=dt.UTC)
    return services.archive_due_pmo(now=now)


def test_the_archive_job_writes_the_syndicate_and_each_member_view_once(archived, world):
    # all + tenant-a + tenant-b (the syndicate itself is not a member), pdf and xlsx each
    assert archived == 6
    assert services.archive_due_pmo(now=dt.datetime(2021, 4, 3, tzinfo=dt.UTC)) == 0


def test_the_archive_job_catches_up_before_the_archive_day(world):
    assert services.pmo_month_due(dt.date(2021, 4, 1), 1) == "2021-03"
    assert services.pmo_month_due(dt.date(2021, 4, 3), 5) == "2021-02"
    assert services.pmo_month_due(dt.date(2021, 1, 10), 5) == "2020-12"


def test_the_archive_job_is_registered_for_the_scheduler(app):
    assert "reporting.archive_pmo" in registry()


@covers("GET /api/v1/reports/archive", "GET /api/v1/reports/archive/<archive_id>")
def test_archive_isolation(archived, world, as_role):
    admin = as_role("admin")
    all_rows = admin.get(f"{URL}/archive?limit=100").get_json()
    assert all_rows["count"] == 6
    by = {(r["tenant"], r["format"]): r for r in all_rows["results"]}
    member = as_role("manager", tenants=[world.a])
    mine = member.get(f"{URL}/archive").get_json()["results"]
    assert {(r["tenant"], r["format"]) for r in mine} == {("tenant-a", "pdf"), ("tenant-a", "xlsx")}
    own = member.get(f"{URL}/archive/{by[('tenant-a', 'pdf')]['id']}")
    assert_status(own, 200)
    assert own.mimetype == "application/pdf" and own.get_data().startswith(b"%PDF")
    assert_problem(member.get(f"{URL}/archive/{by[('tenant-b', 'pdf')]['id']}"), 404)
    assert_problem(member.get(f"{URL}/archive/{by[(None, 'pdf')]['id']}"), 404)
    assert_problem(as_role("technician").get(f"{URL}/archive"), 403)
    whole = admin.get(f"{URL}/archive/{by[(None, 'xlsx')]['id']}")
    ws = read_xlsx(whole.get_data()).worksheets[0]
    codes = {ws.cell(row=r, column=1).value for r in range(2, ws.max_row + 1)}
    assert {"p1-a", "p4-b"} <= codes


def test_a_member_archive_holds_only_its_own_projects(archived, world, as_role):
    member = as_role("manager", tenants=[world.b])
    row = next(r for r in member.get(f"{URL}/archive?format=xlsx").get_json()["results"])
    ws = read_xlsx(member.get(f"{URL}/archive/{row['id']}").get_data()).worksheets[0]
    codes = {ws.cell(row=r, column=1).value for r in range(2, ws.max_row + 1)}
    assert "p4-b" in codes and "p1-a" not in codes


def test_purge_removes_old_files(archived, app):
    later = dt.datetime(2030, 1, 1, tzinfo=dt.UTC)
    assert services.purge_archives(now=later) == 6
    assert services.purge_archives(now=later) == 0


# -- command line ---------------------------------------------------------------------------


def test_syndic_report_writes_the_file(published_days, app, tmp_path):
    out = tmp_path / "charge.xlsx"
    result = app.test_cli_runner().invoke(
        args=[
            "report",
            "workload",
            "--year",
            "2021",
            "--group-by",
            "activity_class",
            "-o",
            str(out),
        ]
    )
    assert result.exit_code == 0, result.output
    ws = read_xlsx(out.read_bytes()).worksheets[0]
    assert {ws.cell(row=r, column=1).value for r in range(2, 6)} == {
        "mco",
        "project",
        "internal",
        "domain_management",
    }


def test_syndic_report_to_stdout_as_csv(published_days, app):
    result = app.test_cli_runner().invoke(
        args=[
            "report",
            "workload",
            "--from",
            "2020-01",
            "--to",
            "2020-12",
            "--exclude",
            "internal,domain_management",
            "--format",
            "csv",
        ]
    )
    assert result.exit_code == 0, result.output
    assert "0.514525" in result.output


def test_syndic_report_bad_input_is_a_clean_error(db, app):
    result = app.test_cli_runner().invoke(args=["report", "pmo", "--month", "2021-13"])
    assert result.exit_code != 0
    assert "month" in result.output and "Traceback" not in result.output


def test_the_scheduled_job_archives_last_month_when_it_runs(world, app, tmp_path, monkeypatch):
    import time_machine

    from reporting import jobs
    from reporting.models import ReportArchive

    settings = app.extensions["syndic.settings"]
    monkeypatch.setitem(
        app.extensions,
        "syndic.settings",
        settings.replace(
            sections={
                **settings.sections,
                "reporting": {"archive_dir": str(tmp_path), "archive_formats": ["pdf"]},
            }
        ),
    )
    with time_machine.travel(dt.datetime(2021, 4, 1, 5, 0, tzinfo=dt.UTC), tick=False):
        jobs.archive_pmo()
    from sqlalchemy import select

    from config.db import db

    rows = db.session.execute(select(ReportArchive)).scalars().all()
    assert {(r.period, r.format) for r in rows} == {("2021-03", "pdf")}
    assert len(rows) == 3  # the syndicate, tenant A, tenant B
    assert all((tmp_path / r.path).read_bytes().startswith(b"%PDF") for r in rows)
