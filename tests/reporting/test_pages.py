"""Management pages: the reports on screen in French, their downloads through the signed-in
session, bad parameters shown next to the form, and the roles that may read them."""

from __future__ import annotations

import io
import zipfile

import pytest

from config.auth import SYSTEM, Role, create_user
from tests.pages_support import BASE, get, signed_in

NNBSP = "\u202f"  # French thousands separator (narrow no-break space)


@pytest.fixture()
def manager_browser(app, db):
    user = create_user("boss", role=Role.MANAGER, tenants=[], all_tenants=True, actor=SYSTEM)
    return signed_in(app, db, user)


def _text(resp):
    return resp.get_data(as_text=True)


def test_the_reports_index_lists_the_four_pages(manager_browser):
    resp = get(manager_browser, "/rapports")
    assert resp.status_code == 200
    html = _text(resp)
    for slug in ("charge", "tickets", "pmo", "refacturation"):
        assert f'href="/rapports/{slug}"' in html
    assert "Rapports" in html


def test_workload_page_shows_the_published_days_and_shares(manager_browser, published_days):
    resp = get(
        manager_browser, "/rapports/charge?from=2021-01-01&to=2021-12-31&group_by=activity_class"
    )
    assert resp.status_code == 200, _text(resp)[:800]
    html = _text(resp)
    for days in ("1" + NNBSP + "256,0", "1" + NNBSP + "050,0", "414,0", "153,0"):
        assert days in html, days
    assert "43,7" in html and "%" in html  # MCO's share of all 2021 days
    assert "<svg" in html  # the chart, inline
    assert "telecharger.pdf" in html and "telecharger.xlsx" in html and "telecharger.csv" in html


def test_workload_page_with_the_published_2020_denominator(manager_browser, published_days):
    resp = get(
        manager_browser,
        "/rapports/charge?from=2020-01-01&to=2020-12-31&group_by=activity_class"
        "&exclude=internal&exclude=domain_management",
    )
    assert resp.status_code == 200
    assert "51,5" in _text(resp)  # MCO's share of MCO + project in 2020


def test_downloads_are_the_reports_in_each_format(manager_browser, published_days):
    query = "from=2021-01-01&to=2021-12-31&group_by=activity_class"
    pdf = get(manager_browser, f"/rapports/charge/telecharger.pdf?{query}")
    assert pdf.status_code == 200
    assert pdf.mimetype == "application/pdf" and pdf.data.startswith(b"%PDF-")
    assert pdf.headers["Content-Disposition"].startswith("attachment;")
    xlsx = get(manager_browser, f"/rapports/charge/telecharger.xlsx?{query}")
    assert xlsx.status_code == 200
    with zipfile.ZipFile(io.BytesIO(xlsx.data)) as zf:
        assert "xl/workbook.xml" in zf.namelist()
    csv = get(manager_browser, f"/rapports/charge/telecharger.csv?{query}")
    assert csv.data.startswith(b"\xef\xbb\xbf")  # BOM for Excel
    assert b"1256" in csv.data
    semicolon = get(manager_browser, f"/rapports/charge/telecharger.csv?{query}&sep=semicolon")
    assert b";" in semicolon.data and b"1256,0" in semicolon.data


def test_pmo_page_and_its_pdf(manager_browser):
    resp = get(manager_browser, "/rapports/pmo?month=2021-06")
    assert resp.status_code == 200
    assert 'value="2021-06"' in _text(resp)
    pdf = get(manager_browser, "/rapports/pmo/telecharger.pdf?month=2021-06")
    assert pdf.status_code == 200 and pdf.data.startswith(b"%PDF-")


@pytest.mark.parametrize(
    ("path", "kept", "said"),
    [
        ("/rapports/pmo?month=2021-13", 'value="2021-13"', "month"),
        ("/rapports/charge?group_by=bogus", "bogus", "activity_class"),
        ("/rapports/charge?from=2021-12-31&to=2021-01-01", 'value="2021-12-31"', "to"),
        ("/rapports/charge?from=2001-01-01&to=2021-12-31", 'value="2001-01-01"', "10"),
        ("/rapports/refacturation?year=abcd&key=proportional", 'value="abcd"', "year"),
        ("/rapports/refacturation?year=2021&key=bogus", "bogus", "proportional"),
    ],
)
def test_bad_parameters_show_the_form_again_with_the_problem(manager_browser, path, kept, said):
    resp = get(manager_browser, path)
    assert resp.status_code == 400
    html = _text(resp)
    assert 'role="alert"' in html
    assert said in html
    assert kept in html or kept.strip('"') in html  # what the user typed is kept
    assert "telecharger" not in html  # no download of a report that could not be built


def test_an_empty_period_is_an_empty_report(manager_browser):
    resp = get(manager_browser, "/rapports/charge?from=1999-01-01&to=1999-12-31")
    assert resp.status_code == 200
    assert "Rien sur cette période." in _text(resp)


def test_technicians_and_infra_get_the_403_page(app, db):
    for role in (Role.TECHNICIAN, Role.INFRA):
        user = create_user(f"r-{role.value}", role=role, tenants=[], all_tenants=True, actor=SYSTEM)
        browser = signed_in(app, db, user)
        for path in ("/rapports", "/rapports/charge", "/rapports/pmo/telecharger.pdf"):
            resp = get(browser, path)
            assert resp.status_code == 403, (role, path)
        assert 'href="/rapports"' not in _text(get(browser, "/"))  # not in the navigation


def test_anonymous_visitors_are_sent_to_sign_in(app, db):
    resp = app.test_client().get("/rapports/pmo/telecharger.pdf?month=2021-06", base_url=BASE)
    assert resp.status_code == 302
    assert "/connexion" in resp.headers["Location"]


def test_unknown_report_or_format_is_a_404_page(manager_browser):
    assert get(manager_browser, "/rapports/nope").status_code == 404
    assert get(manager_browser, "/rapports/pmo/telecharger.exe").status_code == 404
    assert get(manager_browser, "/rapports/pmo/telecharger.json").status_code == 404


def test_english_on_request(manager_browser):
    manager_browser.post(
        "/langue", base_url=BASE, data={"csrf_token": manager_browser.csrf, "lang": "en"}
    )
    html = _text(get(manager_browser, "/rapports"))
    assert "Reports" in html and "Workload" in html
