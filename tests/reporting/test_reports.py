"""Golden numbers of the other reports on the small hand-built world (tests/reporting/conftest)."""

from __future__ import annotations

import pytest

from config.errors import BadRequest, Forbidden, NotFound
from reporting.services import REPORTS, build_report
from tests.reporting.conftest import bound_manager


def rows_by(report, key, table="rows"):
    return {r[key]: r for r in report.table(table).rows}


# -- tickets --------------------------------------------------------------------------------


def test_ticket_counts_backlog_and_sla_by_tenant(world, manager):
    report = build_report("tickets", {"from": "2021-03-01", "to": "2021-03-31"}, manager)
    a, b = rows_by(report, "tenant")["tenant-a"], rows_by(report, "tenant")["tenant-b"]
    assert (a["opened"], a["solved"], a["backlog"]) == (4, 3, 1)
    assert (a["sla_met"], a["sla_total"]) == (2, 3)
    assert round(a["sla_compliance"], 4) == round(2 / 3, 4)
    assert (b["opened"], b["solved"], b["backlog"], b["sla_total"]) == (1, 1, 0, 0)
    assert b["sla_compliance"] is None
    assert report.table("rows").total["backlog"] == 1


def test_resolution_quantiles_are_business_hours_minus_pending_time(world, manager):
    report = build_report("tickets", {"from": "2021-03-01", "to": "2021-03-31"}, manager)
    rows = rows_by(report, "tenant")
    # A: 2 h, 2 h (16:00 → 17:00, then 9:00 → 10:00 the next day), 7 h (a whole working day)
    assert rows["tenant-a"]["median_hours"] == 2
    assert rows["tenant-a"]["p90_hours"] == 6  # 2 + (7 - 2) × 0.8
    assert rows["tenant-b"]["median_hours"] == 0.5  # 1 h open, 30 min pending
    assert report.table("rows").total["median_hours"] == 2


def test_ticket_backlog_per_month_is_taken_at_each_month_end(world, manager):
    params = {"from": "2021-02-01", "to": "2021-04-30", "group_by": "month"}
    rows = rows_by(build_report("tickets", params, manager), "month")
    assert rows["2021-03"]["backlog"] == 1
    assert rows["2021-04"]["backlog"] == 1
    assert "2021-02" not in rows or rows["2021-02"]["backlog"] == 0
    assert rows["2021-03"]["opened"] == 5


def test_ticket_months_are_local_months_of_the_calendar(db, make_tenant, manager):
    """1 April 00:30 in Paris is 31 March 22:30 UTC: it is an April ticket, inside an April
    period; 31 March 23:59 in Paris is a March one. Same for the solved counts and the
    satisfaction report's months."""
    import sqlalchemy as sa

    from config.db import db as _db
    from config.db import transaction
    from servicedesk.models import Satisfaction, Ticket, TicketStatus, TicketType
    from tests.reporting.conftest import local

    tenant = make_tenant("edge")
    with transaction():
        for n, (opened, solved) in enumerate(
            [
                (local(2021, 4, 1, 0, 30), local(2021, 4, 1, 0, 45)),
                (local(2021, 3, 31, 23, 59), local(2021, 3, 31, 23, 59)),
                (local(2021, 10, 31, 23, 30), local(2021, 11, 1, 0, 15)),  # winter time
            ]
        ):
            ticket_id = _db.session.execute(
                sa.insert(Ticket).returning(Ticket.id),
                [
                    {
                        "type": TicketType.INCIDENT,
                        "title": f"Edge {n}",
                        "tenant_id": tenant.id,
                        "opened_at": opened,
                        "solved_at": solved,
                        "status": TicketStatus.SOLVED,
                    }
                ],
            ).scalar_one()
            _db.session.execute(
                sa.insert(Satisfaction),
                [
                    {
                        "ticket_id": ticket_id,
                        "tenant_id": tenant.id,
                        "score": 5,
                        "answered_at": solved,
                    }
                ],
            )
    april = build_report(
        "tickets", {"from": "2021-04-01", "to": "2021-04-30", "group_by": "month"}, manager
    )
    assert [(r["month"], r["opened"], r["solved"]) for r in april.table("rows").rows] == [
        ("2021-04", 1, 1)
    ]
    year = build_report("tickets", {"year": "2021", "group_by": "month"}, manager)
    months = rows_by(year, "month")
    assert (months["2021-03"]["opened"], months["2021-03"]["solved"]) == (1, 1)
    assert (months["2021-04"]["opened"], months["2021-04"]["solved"]) == (1, 1)
    assert (months["2021-10"]["opened"], months["2021-10"]["solved"]) == (1, 0)
    assert (months["2021-11"]["opened"], months["2021-11"]["solved"]) == (0, 1)
    assert set(months) <= set(f"2021-{m:02d}" for m in range(1, 13))
    answers = build_report("satisfaction", {"year": "2021", "group_by": "month"}, manager)
    solved = {r["month"]: r for r in answers.table("rows").rows}
    assert sorted(solved) == ["2021-03", "2021-04", "2021-11"]


def test_tickets_by_type_and_category(world, manager):
    params = {"from": "2021-03-01", "to": "2021-03-31", "group_by": "type,category"}
    rows = build_report("tickets", params, manager).table("rows").rows
    assert [(r["type"], r["category"], r["opened"]) for r in rows] == [("incident", "", 5)]


# -- PMO ------------------------------------------------------------------------------------


def test_pmo_lists_active_projects_with_slip_days_milestones_and_note(world, manager):
    report = build_report("pmo", {"month": "2021-03"}, manager)
    projects = rows_by(report, "code", "projects")
    assert set(projects) == {"p1-a", "p4-b"}  # not the proposed one, not the finished one
    p1 = projects["p1-a"]
    assert p1["slip_days"] == 31
    assert (p1["days_month"], p1["days_to_date"]) == (2, 3)
    assert p1["milestones_due"].startswith("Recette (15/03")
    assert p1["note"] == "Avancement conforme."
    assert p1["tenants"] == "tenant-a"
    assert p1["progress"] == 0.4
    by_domain = rows_by(report, "domain", "by_domain")
    assert by_domain["Finances"]["days_month"] == 2 and by_domain["RH"]["days_month"] == 1
    assert round(by_domain["Finances"]["share_days"], 4) == round(2 / 3, 4)
    assert report.table("by_status").total["projects"] == 2
    assert [c.kind for c in report.charts] == ["gantt", "barh"]


def test_pmo_month_is_validated(db, manager):
    for bad in ("2021-13", "2021-1", "21-01", "2021-00"):
        with pytest.raises(BadRequest) as err:
            build_report("pmo", {"month": bad}, manager)
        assert "month" in err.value.errors


def test_pmo_of_a_bound_manager_shows_only_its_projects(world):
    report = build_report("pmo", {"month": "2021-03"}, bound_manager(world.a))
    assert set(rows_by(report, "code", "projects")) == {"p1-a"}


# -- chargeback -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    "key,a_total,b_total",
    [("proportional", 12, 4), ("equal", 11, 5), ("contribution", 12, 4)],
)
def test_chargeback_spreads_shared_days_by_the_key(world, manager, key, a_total, b_total):
    report = build_report("chargeback", {"year": "2021", "key": key}, manager)
    rows = rows_by(report, "tenant")
    assert set(rows) == {"tenant-a", "tenant-b"}  # the syndicate itself is not a member
    assert (rows["tenant-a"]["total_days"], rows["tenant-b"]["total_days"]) == (a_total, b_total)
    assert rows["tenant-a"]["direct_days"] == 6 + 3  # 6 of run + 3 of project A
    assert report.table("rows").total["shared_days"] == 4
    assert rows["tenant-a"]["share_contributions"] == 0.75
    assert "share_days" in report.denominators and "share_contributions" in report.denominators


def test_chargeback_default_key_comes_from_the_settings(world, manager):
    assert build_report("chargeback", {"year": "2021"}, manager).params["key"] == "proportional"


def test_chargeback_by_contribution_needs_recorded_contributions(world, manager):
    with pytest.raises(BadRequest):
        build_report("chargeback", {"year": "2019", "key": "contribution"}, manager)


def test_bound_manager_sees_its_line_and_the_others_only_as_totals(world):
    report = build_report("chargeback", {"year": "2021"}, bound_manager(world.a))
    assert [r["tenant"] for r in report.table("rows").rows] == ["tenant-a"]
    assert report.extra["other_tenants"] == 1
    assert report.extra["all_tenants_total"]["total_days"] == 16
    # the share keeps the whole syndicate as its denominator
    a = report.table("rows").rows[0]
    assert round(a["share_days"], 4) == round(a["total_days"] / 16, 4)


# -- training, satisfaction, time entries ------------------------------------------------------


def test_training_by_year_and_type_and_by_member(world, manager):
    report = build_report("training", {"from": "2020", "to": "2021"}, manager)
    years = rows_by(report, "year", "by_year")
    assert years["2021"]["office_tools_trainees"] == 10
    assert years["2021"]["business_software_days"] == 1.5
    assert years["2021"]["trainees"] == 15 and years["2021"]["days"] == 3.5
    assert years["2020"]["redeployment_trainees"] == 1
    members = rows_by(report, "tenant", "by_member")
    assert members["tenant-a"]["trainees"] == 11 and members["tenant-a"]["sessions"] == 2


def test_satisfaction_average_and_answer_rate(world, manager):
    params = {"from": "2021-03-01", "to": "2021-03-31", "group_by": "tenant"}
    rows = rows_by(build_report("satisfaction", params, manager), "tenant")
    assert rows["tenant-a"]["solved"] == 3 and rows["tenant-a"]["answered"] == 2
    assert rows["tenant-a"]["average_score"] == 3.0
    assert round(rows["tenant-a"]["answer_rate"], 4) == round(2 / 3, 4)
    assert rows["tenant-b"]["average_score"] is None and rows["tenant-b"]["answer_rate"] == 0


def test_time_entries_one_line_each_scoped_to_the_callers_tenants(world, manager):
    everything = build_report("time-entries", {"year": "2021"}, manager).table("rows")
    assert len(everything.rows) == 15
    mine = build_report("time-entries", {"year": "2021"}, bound_manager(world.b)).table("rows")
    assert {r["tenant"] for r in mine.rows} == {"tenant-b", ""}  # its own and shared time
    assert everything.total["minutes"] == sum(r["minutes"] for r in everything.rows)


def test_workload_tenant_filter_includes_sub_tenants(world, make_tenant, bulk_time, manager):
    import datetime as dt

    child = make_tenant("tenant-a-child", parent="tenant-a")
    bulk_time(
        [{"date": dt.date(2021, 5, 20), "minutes": 420, "activity": "mco", "tenant_id": child.id}]
    )
    report = build_report(
        "workload", {"year": "2021", "tenant": "tenant-a", "group_by": "tenant"}, manager
    )
    assert set(rows_by(report, "tenant")) == {"tenant-a", "tenant-a-child"}


def test_workload_by_domain_uses_the_projects_domain(world, manager):
    report = build_report("workload", {"year": "2021", "group_by": "domain"}, manager)
    rows = rows_by(report, "domain")
    assert rows["Finances"]["days"] == 3 and rows["RH"]["days"] == 1


def test_bound_manager_workload_counts_other_tenants(world):
    report = build_report(
        "workload", {"year": "2021", "group_by": "tenant"}, bound_manager(world.a)
    )
    assert set(rows_by(report, "tenant")) == {"tenant-a", ""}  # own and shared time only
    assert report.extra["other_tenants"] == 2  # tenant B and the syndicate
    assert report.extra["all_tenants_total"]["days"] == 16


# -- access ---------------------------------------------------------------------------------


@pytest.mark.parametrize("role", ["technician", "infra"])
def test_technicians_and_infra_may_not_read_reports(db, role):
    from config.auth import Actor, Role

    with pytest.raises(Forbidden):
        build_report("workload", {}, Actor(None, role, Role(role), True))


def test_unknown_report_is_404_listing_the_reports(db, manager):
    with pytest.raises(NotFound) as err:
        build_report("budget", {}, manager)
    assert err.value.extra["allowed"] == list(REPORTS)


@pytest.mark.parametrize("name", REPORTS)
def test_every_report_is_empty_not_an_error_on_an_empty_database(db, manager, name):
    params = {"month": "2021-03"} if name == "pmo" else {"year": "2021"}
    report = build_report(name, params, manager)
    assert report.tables and all(not t.rows for t in report.tables)


def test_training_and_satisfaction_of_a_bound_manager_count_the_others(world):
    actor = bound_manager(world.a)
    training = build_report("training", {"from": "2020", "to": "2021"}, actor)
    assert {r["tenant"] for r in training.table("by_member").rows} == {"tenant-a"}
    assert training.extra["other_tenants"] == 1
    params = {"from": "2021-03-01", "to": "2021-03-31", "group_by": "tenant"}
    satisfaction = build_report("satisfaction", params, actor)
    assert [r["tenant"] for r in satisfaction.table("rows").rows] == ["tenant-a"]
    assert satisfaction.extra["other_tenants"] == 1
