"""Formats: hostile cells never become formulas, HTML and PDF carry their charts."""

from __future__ import annotations

import csv
import io
import zipfile

import pytest

from reporting.model import Chart, Column, GanttBar, Report, Table
from reporting.render import FORMATS, neutralise, render
from tests.reporting.conftest import read_xlsx

HOSTILE = [
    '=HYPERLINK("http://evil")',
    "+1+1",
    "-2+3",
    "@SUM(A1)",
    "\tcmd",
    "\rcmd",
    "\x00=1+1",
    "ok\x00text",
]


def hostile_report() -> Report:
    columns = [Column("text", "Texte", "text"), Column("days", "Jours", "days")]
    rows = [{"text": t, "days": -1.5} for t in HOSTILE]
    table = Table("rows", "=Titre", columns, rows, {"text": "Total", "days": -12.0})
    return Report("workload", "=Rapport", {"from": "2021-01-01"}, {"share": "@total"}, [table])


@pytest.mark.parametrize(
    "text,expected",
    [
        ("=1+1", "'=1+1"),
        ("+33 1 23", "'+33 1 23"),
        ("-x", "'-x"),
        ("@a", "'@a"),
        ("\tx", "'\tx"),
        ("\rx", "'\rx"),
        ("\x00=x", "'=x"),
        ("\x00x", "'x"),
        ("a\x00b", "ab"),
        ("plain", "plain"),
        ("", ""),
    ],
)
def test_neutralise(text, expected):
    assert neutralise(text) == expected


def test_csv_cells_are_neutralised_but_numbers_stay_numbers():
    body, _, _ = render(hostile_report(), "csv")
    rows = list(csv.reader(io.StringIO(body.decode("utf-8-sig"))))
    texts = [r[0] for r in rows[1:-1]]
    assert all(t.startswith("'") for t in texts[:7]), texts
    assert texts[7] == "oktext"
    assert "\x00" not in body.decode("utf-8-sig")
    assert rows[1][1] == "-1.5"  # a number column is not text


def test_xlsx_never_writes_a_formula():
    body, _, _ = render(hostile_report(), "xlsx")
    with zipfile.ZipFile(io.BytesIO(body)) as zf:
        sheet = zf.read("xl/worksheets/sheet1.xml").decode()
    assert "<f>" not in sheet and "<f " not in sheet
    ws = read_xlsx(body).worksheets[0]
    values = [ws.cell(row=r, column=1).value for r in range(2, 2 + len(HOSTILE))]
    assert all(isinstance(v, str) for v in values)
    assert all(v.startswith("'") for v in values[:7]), values
    assert all(ws.cell(row=r, column=1).data_type == "s" for r in range(1, 2 + len(HOSTILE)))
    assert ws.cell(row=2, column=2).value == -1.5


def test_html_escapes_and_neutralises():
    body, mimetype, _ = render(hostile_report(), "html")
    html = body.decode()
    assert mimetype.startswith("text/html")
    assert "<script" not in html
    assert "<td>&#39;=HYPERLINK(&#34;http://evil&#34;)</td>" in html
    assert "\x00" not in html


def test_pdf_is_a_pdf_with_the_neutralised_text():
    from pypdf import PdfReader

    body, mimetype, _ = render(hostile_report(), "pdf")
    assert mimetype == "application/pdf" and body.startswith(b"%PDF")
    text = "".join(page.extract_text() for page in PdfReader(io.BytesIO(body)).pages)
    assert "'@SUM(A1)" in text
    assert "'=Rapport" in text


def test_unknown_format_and_separator_are_400_with_allowed_values():
    from config.errors import BadRequest

    with pytest.raises(BadRequest) as err:
        render(hostile_report(), "docx")
    assert err.value.extra["allowed"] == list(FORMATS)
    with pytest.raises(BadRequest) as err:
        render(hostile_report(), "csv", sep="tab")
    assert "sep" in err.value.errors
    with pytest.raises(BadRequest) as err:
        render(hostile_report(), "csv", table="nope")
    assert err.value.extra["allowed"] == ["rows"]


def test_charts_draw_as_svg_and_png():
    import datetime as dt

    bar = Chart("Jours", "Histogramme", categories=["mco", "projet"], series=[("2021", [3.0, 4.0])])
    gantt = Chart(
        "Calendrier",
        "Gantt",
        kind="gantt",
        bars=[
            GanttBar("p1", dt.date(2021, 1, 1), dt.date(2021, 6, 30), dt.date(2021, 7, 31), "red")
        ],
        marker=dt.date(2021, 3, 1),
    )
    for chart in (bar, gantt):
        svg = chart.svg()
        assert svg.startswith("<svg") and "</svg>" in svg
        assert chart.png(dpi=50).startswith(b"\x89PNG")


def test_pmo_html_and_pdf_embed_their_charts(world, manager):
    from pypdf import PdfReader

    from reporting.services import build_report

    report = build_report("pmo", {"month": "2021-03"}, manager)
    html = render(report, "html")[0].decode()
    assert html.count("<svg") == 2
    assert "Calendrier des projets" in html and "p1-a" in html
    assert 'lang="fr"' in html and "Jours du mois" in html
    pdf = PdfReader(io.BytesIO(render(report, "pdf")[0]))
    images = sum(len(page.images) for page in pdf.pages)
    assert images == 2
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "Projets actifs en 2021-03" in text and "Projet A" in text


def test_workload_pdf_and_html_show_the_published_shares(published_days, manager):
    from pypdf import PdfReader

    from reporting.services import build_report

    report = build_report("workload", {"year": "2021", "group_by": "activity_class"}, manager)
    html = render(report, "html")[0].decode()
    assert "43,7\u00a0%" in html and "1\u202f256,00" in html and "<svg" in html
    pdf = PdfReader(io.BytesIO(render(report, "pdf")[0]))
    text = "".join(page.extract_text() for page in pdf.pages)
    assert "43,7" in text and "Maintenance en condition opérationnelle" in text
    assert sum(len(page.images) for page in pdf.pages) == 1


def test_a_printed_report_of_too_many_lines_is_refused():
    from config.errors import BadRequest
    from reporting.render import MAX_PRINT_ROWS

    report = hostile_report()
    report.tables[0].rows = [{"text": "x", "days": 1.0}] * (MAX_PRINT_ROWS + 1)
    for fmt in ("html", "pdf"):
        with pytest.raises(BadRequest) as err:
            render(report, fmt)
        assert err.value.extra["allowed"] == ["json", "csv", "xlsx"]
    assert render(report, "xlsx")[0]
