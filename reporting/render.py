"""A report → bytes in JSON, CSV, XLSX, HTML or PDF.

API.md §4: text cells that begin with ``= + - @``, a tab, a carriage return or NUL are
neutralised in every export (a leading ``'``, NULs removed) and no format ever writes a
formula. CSV is UTF-8 with a BOM (Excel), comma-separated with ``.`` decimals, or under
``sep=semicolon`` ``;``-separated with ``,`` decimals (French Excel). XLSX uses typed cells
(reporting.xlsx), HTML is a print-ready French page with inline SVG charts, PDF is made by
fpdf2 (pure Python) with the same charts as PNG images.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import os
from collections.abc import Iterable, Iterator, Sequence
from decimal import Decimal
from operator import itemgetter
from typing import Any

import orjson
from flask_babel import lazy_gettext as _l
from markupsafe import escape

from config.errors import BadRequest
from reporting.i18n import report_locale
from reporting.model import Column, Report, Table
from reporting.xlsx import XlsxSheet, write_xlsx

__all__ = ["FORMATS", "MIMETYPES", "SEPARATORS", "neutralise", "render", "report_json"]

FORMATS = ("json", "csv", "xlsx", "html", "pdf")
SEPARATORS = ("comma", "semicolon")
MIMETYPES = {
    "json": "application/json",
    "csv": "text/csv; charset=utf-8",
    "xlsx": "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
    "html": "text/html; charset=utf-8",
    "pdf": "application/pdf",
}

_DANGEROUS_START = ("=", "+", "-", "@", "\t", "\r")
# A printed report (HTML, PDF) of more lines than this is refused: use CSV or XLSX.
MAX_PRINT_ROWS = 5000


def neutralise(text: str) -> str:
    """The text as a spreadsheet must show it: NULs removed, and a leading ``'`` when it
    would start with ``= + - @``, a tab or a carriage return (or started with NUL)."""
    if "\x00" in text:
        stripped = text.replace("\x00", "")
        if text.startswith("\x00") and stripped and not stripped.startswith(_DANGEROUS_START):
            return "'" + stripped
        text = stripped
    if text.startswith(_DANGEROUS_START):
        return "'" + text
    return text


def render(
    report: Report, fmt: str, *, sep: str = "comma", table: str | None = None
) -> tuple[bytes, str, str]:
    """``(body, mimetype, filename)`` of the report in format ``fmt``.

    ``table`` picks the table a CSV holds (the first by default: CSV has one table).
    Raises BadRequest (400, listing the allowed values) for an unknown format, separator
    or table.
    """
    if fmt not in FORMATS:
        raise BadRequest(
            f"format: {fmt[:40]!r} is not one of {', '.join(FORMATS)}.",
            errors={"format": [f"Allowed: {', '.join(FORMATS)}."]},
            allowed=list(FORMATS),
        )
    if sep not in SEPARATORS:
        raise BadRequest(
            f"sep: {sep[:40]!r} is not one of {', '.join(SEPARATORS)}.",
            errors={"sep": [f"Allowed: {', '.join(SEPARATORS)}."]},
            allowed=list(SEPARATORS),
        )
    with report_locale():
        return _render(report, fmt, sep, table)


def _render(report: Report, fmt: str, sep: str, table: str | None) -> tuple[bytes, str, str]:
    filename = f"{report.file_stem()}.{fmt}"
    if fmt in ("html", "pdf") and any(len(t.rows) > MAX_PRINT_ROWS for t in report.tables):
        raise BadRequest(
            f"format: more than {MAX_PRINT_ROWS} lines cannot be printed; use csv or xlsx.",
            errors={"format": [f"At most {MAX_PRINT_ROWS} lines in html or pdf."]},
            allowed=["json", "csv", "xlsx"],
        )
    if fmt == "json":
        body = orjson.dumps(report_json(report), default=_json_default)
    elif fmt == "csv":
        body = render_csv(_pick_table(report, table), semicolon=sep == "semicolon")
    elif fmt == "xlsx":
        body = render_xlsx(report)
    elif fmt == "html":
        body = render_html(report).encode("utf-8")
    else:
        body = render_pdf(report)
    return body, MIMETYPES[fmt], filename


def _pick_table(report: Report, name: str | None) -> Table:
    if not report.tables:
        raise BadRequest("This report has no table.")
    if name is None or name == "":
        return report.tables[0]
    for t in report.tables:
        if t.name == name:
            return t
    names = [t.name for t in report.tables]
    raise BadRequest(
        f"table: {name[:40]!r} is not one of {', '.join(names)}.",
        errors={"table": [f"Allowed: {', '.join(names)}."]},
        allowed=names,
    )


# -- JSON -------------------------------------------------------------------------------


def _json_default(value: Any) -> Any:
    if isinstance(value, Decimal):
        return float(value)
    if hasattr(value, "__html__") or type(value).__name__ == "LazyString":
        return str(value)
    raise TypeError(type(value).__name__)


def _table_json(table: Table) -> dict[str, Any]:
    return {
        "title": str(table.title),
        "columns": [{"key": c.key, "label": str(c.label), "type": c.type} for c in table.columns],
        "rows": table.rows,
        "total": table.total,
    }


def report_json(report: Report) -> dict[str, Any]:
    """The JSON document (API.md §4: ``rows``, ``total``, ``denominator`` at the top)."""
    main = report.tables[0] if report.tables else None
    denominators = {k: str(v) for k, v in report.denominators.items()}
    out: dict[str, Any] = {
        "report": report.name,
        "title": str(report.title),
        "params": report.params,
        "rows": main.rows if main else [],
        "total": main.total if main else None,
        "denominator": denominators.get("share"),
        "denominators": denominators,
        "columns": [
            {"key": c.key, "label": str(c.label), "type": c.type}
            for c in (main.columns if main else [])
        ],
        "tables": {t.name: _table_json(t) for t in report.tables[1:]},
        "charts": [c.spec() for c in report.charts],
        "notes": [str(n) for n in report.notes],
    }
    out.update(report.extra)
    return out


# -- CSV --------------------------------------------------------------------------------


_DANGER_FIRST = frozenset(_DANGEROUS_START)


def _text(value: Any) -> str:
    """A text cell's value: '' for None, neutralised otherwise."""
    if value is None:
        return ""
    return neutralise(value if isinstance(value, str) else str(value))


def column_values(rows: Sequence[dict[str, Any]], key: str) -> list[Any]:
    """The values of one key over all rows (missing keys are None)."""
    try:
        return list(map(itemgetter(key), rows))
    except KeyError:
        return [r.get(key) for r in rows]


def safe_texts(values: Sequence[Any]) -> list[Any]:
    """Neutralised text cells of one column (fast path: the common, harmless string)."""
    return [
        v if v.__class__ is str and v[:1] not in _DANGER_FIRST and "\x00" not in v else _text(v)
        for v in values
    ]


def _csv_numbers(values: Sequence[Any], semicolon: bool) -> list[Any]:
    if not semicolon:
        return [int(v) if v.__class__ is bool else v for v in values]
    return [str(v).replace(".", ",") if v.__class__ in (float, Decimal) else v for v in values]


def _csv_columns(table: Table, rows: Sequence[dict[str, Any]], semicolon: bool) -> list[list[Any]]:
    """Column-major cell values (comprehensions per column are much faster than a Python
    call per cell); None becomes an empty field in the csv module."""
    columns = []
    for c in table.columns:
        values = column_values(rows, c.key)
        if c.type in ("text", "month"):
            columns.append(safe_texts(values))
        elif c.type in ("date",):
            columns.append([v.isoformat() if hasattr(v, "isoformat") else v for v in values])
        else:
            columns.append(_csv_numbers(values, semicolon))
    return columns


def render_csv(table: Table, *, semicolon: bool = False) -> bytes:
    buf = io.StringIO()
    buf.write("\ufeff")
    writer = csv.writer(buf, delimiter=";" if semicolon else ",", lineterminator="\r\n")
    writer.writerow([c.key for c in table.columns])
    chunk = 20_000
    for start in range(0, len(table.rows), chunk):
        columns = _csv_columns(table, table.rows[start : start + chunk], semicolon)
        writer.writerows(zip(*columns, strict=True))
    if table.total is not None:
        writer.writerows(zip(*_csv_columns(table, [table.total], semicolon), strict=True))
    return buf.getvalue().encode("utf-8")


# -- XLSX -------------------------------------------------------------------------------


def render_xlsx(report: Report) -> bytes:
    sheets = []
    for table in report.tables:
        columns = [column_values(table.rows, c.key) for c in table.columns]
        for i, c in enumerate(table.columns):
            if c.type in ("text", "month"):
                columns[i] = safe_texts(columns[i])
        total = None
        if table.total is not None:
            total = [
                _text(v) if c.type in ("text", "month") else v
                for c, v in ((c, table.total.get(c.key)) for c in table.columns)
            ]
        sheets.append(
            XlsxSheet(
                name=str(table.title),
                headers=[neutralise(str(c.label)) for c in table.columns],
                types=[c.type for c in table.columns],
                columns=columns,
                total=total,
            )
        )
    if not sheets:
        sheets.append(XlsxSheet(str(report.title), [], [], []))
    return write_xlsx(sheets, title=neutralise(str(report.title)))


# -- HTML and PDF: French formatting ---------------------------------------------------------


def format_value(value: Any, typ: str) -> str:
    """A value as a French reader expects it (``1 256,00``, ``43,7 %``, ``12/03/2021``)."""
    if value is None or value == "":
        return ""
    if typ == "share" and isinstance(value, (int, float, Decimal)):
        return _fr_number(float(value) * 100, 1) + "\u00a0%"
    if typ in ("days", "decimal") and isinstance(value, (int, float, Decimal)):
        return _fr_number(float(value), 2)
    if typ == "eur" and isinstance(value, (int, float, Decimal)):
        return _fr_number(float(value), 2) + "\u00a0€"
    if typ == "int" and isinstance(value, (int, float, Decimal)):
        return _fr_number(float(value), 0)
    if typ == "date" and isinstance(value, str) and len(value) == 10:
        return f"{value[8:10]}/{value[5:7]}/{value[0:4]}"
    if isinstance(value, dt.date):
        return value.strftime("%d/%m/%Y")
    return neutralise(str(value))


def _fr_number(value: float, decimals: int) -> str:
    text = f"{value:,.{decimals}f}"
    return text.replace(",", "\u202f").replace(".", ",")


def _numeric(typ: str) -> bool:
    return typ in ("int", "days", "decimal", "share", "eur")


def _html_table(table: Table) -> str:
    parts = [f"<section><h2>{escape(str(table.title))}</h2>"]
    if not table.rows:
        empty = _l("No data for this period.")
        parts.append(f'<p class="empty">{escape(str(empty))}</p>')
    parts.append("<table><thead><tr>")
    for c in table.columns:
        cls = ' class="num"' if _numeric(c.type) else ""
        parts.append(f'<th scope="col"{cls}>{escape(str(c.label))}</th>')
    parts.append("</tr></thead><tbody>")

    def line(row: dict[str, Any], tag: str = "td") -> None:
        parts.append("<tr>")
        for c in table.columns:
            cls = ' class="num"' if _numeric(c.type) else ""
            parts.append(f"<{tag}{cls}>{escape(format_value(row.get(c.key), c.type))}</{tag}>")
        parts.append("</tr>")

    for row in table.rows:
        line(row)
    parts.append("</tbody>")
    if table.total is not None:
        parts.append('<tfoot class="total">')
        line(table.total)
        parts.append("</tfoot>")
    parts.append("</table></section>")
    return "".join(parts)


_CSS = """
@page { size: A4 landscape; margin: 12mm; }
body { font-family: "DejaVu Sans", Arial, sans-serif; font-size: 10pt; color: #1a1a1a;
       margin: 1.5em; }
h1 { font-size: 16pt; color: #1f4e79; margin-bottom: .2em; }
h2 { font-size: 12pt; color: #1f4e79; margin-top: 1.2em; }
.meta, .notes, .denominators { font-size: 9pt; color: #444; }
table { border-collapse: collapse; width: 100%; margin: .4em 0 1em; page-break-inside: auto; }
tr { page-break-inside: avoid; }
thead { display: table-header-group; }
th { background: #dce6f1; text-align: left; border-bottom: 1px solid #555; padding: 3px 5px; }
td { border-bottom: 1px solid #ddd; padding: 2px 5px; vertical-align: top; }
.num { text-align: right; white-space: nowrap; }
th.num { white-space: normal; }
tfoot td { font-weight: bold; border-top: 2px solid #555; }
figure { margin: 1em 0; page-break-inside: avoid; }
figure svg { max-width: 100%; height: auto; }
figcaption { font-size: 9pt; color: #444; }
@media print { body { margin: 0; } }
"""


def render_html(report: Report) -> str:
    """A standalone, print-ready French HTML page (no external resources)."""
    title = escape(neutralise(str(report.title)))
    head = (
        '<!DOCTYPE html>\n<html lang="fr"><head><meta charset="utf-8">'
        f"<title>{title}</title><style>{_CSS}</style></head><body>"
    )
    parts = [head, f"<header><h1>{title}</h1>"]
    if report.params:
        params = ", ".join(f"{k} = {v}" for k, v in report.params.items())
        label = _l("Parameters")
        parts.append(f'<p class="meta">{escape(str(label))} : {escape(neutralise(params))}</p>')
    parts.append("</header><main>")
    if report.denominators:
        heading = _l("Denominators")
        parts.append(f'<section class="denominators"><h2>{escape(str(heading))}</h2><ul>')
        for key, text in report.denominators.items():
            parts.append(
                f"<li><strong>{escape(key)}</strong> : {escape(neutralise(str(text)))}</li>"
            )
        parts.append("</ul></section>")
    for table in report.tables:
        parts.append(_html_table(table))
    for chart in report.charts:
        parts.append(
            f'<figure role="img" aria-label="{escape(str(chart.alt))}">{chart.svg()}'
            f"<figcaption>{escape(str(chart.title))}</figcaption></figure>"
        )
    if report.notes:
        parts.append('<section class="notes"><ul>')
        parts.extend(f"<li>{escape(neutralise(str(n)))}</li>" for n in report.notes)
        parts.append("</ul></section>")
    parts.append("</main></body></html>")
    return "".join(str(p) for p in parts)


# -- PDF --------------------------------------------------------------------------------


def _font_paths() -> tuple[str, str]:
    import matplotlib

    base = os.path.join(os.path.dirname(matplotlib.__file__), "mpl-data", "fonts", "ttf")
    return os.path.join(base, "DejaVuSans.ttf"), os.path.join(base, "DejaVuSans-Bold.ttf")


def _col_widths(
    pdf: Any, table: Table, rows: Sequence[Sequence[str]], total: Sequence[str]
) -> list[float]:
    """Column widths: numbers and dates get what their longest value needs (they never
    wrap); text columns share the rest in proportion to their content, wrapping past about
    28 characters. Headers wrap between words."""
    pad = 2.2
    sample = rows[:300]
    fixed: dict[int, float] = {}
    weights: dict[int, float] = {}
    for i, c in enumerate(table.columns):
        words = str(c.label).split() or [""]
        header = max(pdf.get_string_width(w) for w in words) * 1.15 + pad
        if c.type == "text":
            longest = max((len(r[i]) for r in sample), default=0)
            weights[i] = max(min(longest, 28), 4)
            fixed[i] = header
        else:
            values = max((pdf.get_string_width(r[i]) for r in sample), default=0.0)
            if total:  # bold is wider
                values = max(values, pdf.get_string_width(total[i]) * 1.12)
            fixed[i] = max(header, values + pad)
    numeric_width = sum(w for i, w in fixed.items() if i not in weights)
    rest = max(pdf.epw - numeric_width, 0.0)
    total_weight = sum(weights.values()) or 1
    out = []
    for i in range(len(table.columns)):
        if i in weights:
            out.append(max(rest * weights[i] / total_weight, fixed[i]))
        else:
            out.append(fixed[i])
    scale = pdf.epw / sum(out) if sum(out) > pdf.epw else 1.0
    return [w * scale * 0.9999 for w in out]


def render_pdf(report: Report) -> bytes:
    """A landscape A4 PDF: title, parameters, denominators, tables, charts, notes."""
    from fpdf import FPDF
    from fpdf.fonts import FontFace

    pdf = FPDF(orientation="L", unit="mm", format="A4")
    pdf.set_auto_page_break(auto=True, margin=12)
    regular, bold = _font_paths()
    pdf.add_font("DejaVu", "", regular)
    pdf.add_font("DejaVu", "B", bold)
    pdf.set_title(neutralise(str(report.title)))
    pdf.set_creator("syndic")
    pdf.add_page()
    pdf.set_font("DejaVu", "B", 15)
    pdf.set_text_color(31, 78, 121)
    pdf.multi_cell(0, 8, neutralise(str(report.title)), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(0, 0, 0)
    pdf.set_font("DejaVu", "", 8)
    if report.params:
        params = ", ".join(f"{k} = {v}" for k, v in report.params.items())
        pdf.multi_cell(
            0,
            4.5,
            str(_l("Parameters")) + " : " + neutralise(params),
            new_x="LMARGIN",
            new_y="NEXT",
        )
    for key, text in report.denominators.items():
        pdf.multi_cell(
            0,
            4.5,
            str(_l("Denominator")) + f" ({key}) : {neutralise(str(text))}",
            new_x="LMARGIN",
            new_y="NEXT",
        )
    heading = FontFace(emphasis="BOLD", fill_color=(220, 230, 241))
    total_style = FontFace(emphasis="BOLD")
    for table in report.tables:
        pdf.ln(3)
        pdf.set_font("DejaVu", "B", 11)
        pdf.set_text_color(31, 78, 121)
        pdf.multi_cell(0, 6, neutralise(str(table.title)), new_x="LMARGIN", new_y="NEXT")
        pdf.set_text_color(0, 0, 0)
        pdf.set_font("DejaVu", "", 7)
        if not table.columns:
            continue
        body = [[format_value(row.get(c.key), c.type) for c in table.columns] for row in table.rows]
        if not body:
            pdf.multi_cell(0, 5, str(_l("No data for this period.")), new_x="LMARGIN", new_y="NEXT")
        total_cells = (
            [format_value(table.total.get(c.key), c.type) for c in table.columns]
            if table.total is not None
            else []
        )
        widths = _col_widths(pdf, table, body, total_cells)
        with pdf.table(
            col_widths=widths,
            headings_style=heading,
            line_height=3.8,
            text_align="LEFT",
            width=sum(widths),
            align="LEFT",
            padding=0.8,
        ) as t:
            head = t.row()
            for c in table.columns:
                head.cell(neutralise(str(c.label)))
            aligns = ["RIGHT" if _numeric(c.type) else "LEFT" for c in table.columns]
            for values in body:
                r = t.row()
                for v, a in zip(values, aligns, strict=True):
                    r.cell(v, align=a)
            if table.total is not None:
                r = t.row()
                for v, a in zip(total_cells, aligns, strict=True):
                    r.cell(v, align=a, style=total_style)
    for chart in report.charts:
        png = chart.png(dpi=150)
        pdf.ln(3)
        if pdf.get_y() > pdf.h - 80:
            pdf.add_page()
        pdf.image(io.BytesIO(png), w=min(pdf.epw, 230), alt_text=str(chart.alt))
    if report.notes:
        pdf.ln(3)
        pdf.set_font("DejaVu", "", 8)
        for note in report.notes:
            pdf.multi_cell(0, 4.5, "• " + neutralise(str(note)), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def iter_rows(rows: Iterable[dict[str, Any]], columns: Sequence[Column]) -> Iterator[list[Any]]:
    """Row dicts as lists in column order (used by bulk exports)."""
    keys = [c.key for c in columns]
    for row in rows:
        yield [row.get(k) for k in keys]
