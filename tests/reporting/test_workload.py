"""Workload shares against the syndicate's published figures (the issue's "done means")."""

from __future__ import annotations

import csv
import io

import pytest

from config.errors import BadRequest
from reporting.render import render
from reporting.services import build_report
from tests.reporting.conftest import read_xlsx


def _by(report, key="activity_class"):
    return {row[key]: row for row in report.table("rows").rows}


def test_published_pole_si_days_come_back_for_2021(published_days, manager):
    report = build_report("workload", {"year": "2021", "group_by": "activity_class"}, manager)
    rows = _by(report)
    assert {k: r["days"] for k, r in rows.items()} == {
        "mco": 1256,
        "project": 1050,
        "internal": 414,
        "domain_management": 153,
    }
    assert report.table("rows").total["days"] == 2873


def test_mco_is_43_7_percent_of_all_days_in_2021_with_the_denominator_named(
    published_days, manager
):
    report = build_report("workload", {"year": "2021", "group_by": "activity_class"}, manager)
    assert round(_by(report)["mco"]["share"] * 100, 1) == 43.7
    assert "2021-01-01" in report.denominators["share"]
    assert "hors" not in report.denominators["share"]


def test_mco_is_51_5_percent_of_mco_and_project_in_2020(published_days, manager):
    params = {"year": "2020", "group_by": "activity_class", "exclude": "internal,domain_management"}
    report = build_report("workload", params, manager)
    rows = _by(report)
    assert set(rows) == {"mco", "project"}  # excluded rows are not listed
    assert round(rows["mco"]["share"] * 100, 1) == 51.5
    assert report.table("rows").total["days"] == 1169 + 1103
    assert "hors internal, domain_management" in report.denominators["share"]


def test_compare_to_previous_year_shows_both_years_side_by_side(published_days, manager):
    params = {
        "from": "2021-01",
        "to": "2021-12",
        "group_by": "activity_class",
        "compare_to": "previous_year",
    }
    report = build_report("workload", params, manager)
    mco = _by(report)["mco"]
    assert (mco["days"], mco["previous_days"]) == (1256, 1169)
    assert round(mco["previous_share"] * 100, 1) == round(1169 / 2707 * 100, 1)
    assert round(mco["change"], 4) == round((1256 - 1169) / 1169, 4)
    assert "2020-01-01" in report.denominators["previous_share"]


def test_the_same_figures_through_csv(published_days, manager):
    report = build_report("workload", {"year": "2021", "group_by": "activity_class"}, manager)
    body, mimetype, filename = render(report, "csv")
    assert body.startswith("\ufeff".encode())
    assert mimetype.startswith("text/csv") and filename.endswith(".csv")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig"))))
    by_class = {r["activity_class"]: r for r in rows}
    assert float(by_class["mco"]["days"]) == 1256
    assert round(float(by_class["mco"]["share"]) * 100, 1) == 43.7
    assert float(by_class["Total"]["days"]) == 2873


def test_semicolon_csv_uses_decimal_commas(published_days, manager):
    report = build_report("workload", {"year": "2021", "group_by": "activity_class"}, manager)
    body, _, _ = render(report, "csv", sep="semicolon")
    rows = list(csv.DictReader(io.StringIO(body.decode("utf-8-sig")), delimiter=";"))
    mco = next(r for r in rows if r["activity_class"] == "mco")
    assert mco["share"] == "0,437174"


def test_the_same_figures_through_xlsx_as_typed_cells(published_days, manager):
    report = build_report("workload", {"year": "2021", "group_by": "activity_class"}, manager)
    body, mimetype, _ = render(report, "xlsx")
    assert "spreadsheetml" in mimetype
    sheet = read_xlsx(body).worksheets[0]
    header = [c.value for c in sheet[1]]
    assert header[:2] == ["Classe d'activité", "Libellé"]
    assert sheet[1][0].font.bold
    data = {row[0].value: row for row in sheet.iter_rows(min_row=2)}
    days_col = header.index("Jours")
    share_col = header.index("Part")
    assert data["mco"][days_col].value == 1256
    assert data["mco"][days_col].data_type == "n"
    assert round(data["mco"][share_col].value * 100, 1) == 43.7
    assert data["mco"][share_col].number_format == "0.0%"
    assert data["Total"][days_col].value == 2873


def test_group_by_several_dimensions_and_month_keys(published_days, manager):
    params = {"from": "2021-01-01", "to": "2021-02-28", "group_by": "month,activity"}
    report = build_report("workload", params, manager)
    months = {r["month"] for r in report.table("rows").rows}
    assert months == {"2021-01", "2021-02"}
    total = report.table("rows").total["minutes"]
    assert sum(r["minutes"] for r in report.table("rows").rows) == total
    assert abs(sum(r["share"] for r in report.table("rows").rows) - 1) < 0.001


def test_an_empty_period_is_an_empty_report(published_days, manager):
    report = build_report("workload", {"year": "2015"}, manager)
    assert report.table("rows").rows == []
    assert report.table("rows").total["minutes"] == 0
    for fmt in ("json", "csv", "xlsx"):
        assert render(report, fmt)[0]


@pytest.mark.parametrize(
    "params,field",
    [
        ({"group_by": "colour"}, "group_by"),
        ({"from": "2021-05-01", "to": "2021-04-30"}, "to"),
        ({"from": "2021-13"}, "from"),
        ({"from": "2010-01-01", "to": "2020-12-31"}, "to"),
        ({"compare_to": "last_decade"}, "compare_to"),
        ({"exclude": "gardening"}, "exclude"),
        ({"pole": "nope"}, "pole"),
        ({"tenant": "nobody"}, "tenant"),
        ({"colour": "red"}, "colour"),
        ({"from": "2021-02-30"}, "from"),
        ({"to": "9999-12"}, "to"),
        ({"from": "9999-12-31"}, "from"),
        ({"from": "1899-12-31"}, "from"),
        ({"year": "2021", "from": "2021-01-01"}, "year"),
    ],
)
def test_bad_parameters_are_400_naming_the_parameter(db, manager, params, field):
    with pytest.raises(BadRequest) as err:
        build_report("workload", params, manager)
    assert field in err.value.errors


def test_unknown_group_by_lists_the_allowed_values(db, manager):
    with pytest.raises(BadRequest) as err:
        build_report("workload", {"group_by": "colour"}, manager)
    assert "activity_class" in err.value.extra["allowed"]
