"""Pages for management: workload shares with the year-over-year view, ticket indicators,
the monthly PMO report and chargeback, each with its downloads (PDF, XLSX, CSV).

The forms use the API's own parameter names, so a page and its downloads go through the same
``build_report`` as ``/api/v1/reports`` (never a second copy of the rules), with the signed-in
user's tenant scoping. Bad parameters show the form again with the problem next to it.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from flask import Blueprint, Response, abort, render_template, request, url_for
from flask_babel import format_decimal, format_percent
from flask_babel import lazy_gettext as _l
from markupsafe import Markup

from config.auth import Role, current_actor
from config.errors import AppError, Forbidden
from config.web import login_required, register_nav
from reporting.render import render
from reporting.services import build_report

pages = Blueprint("reporting_pages", __name__, template_folder="templates")

MANAGEMENT = {Role.MANAGER, Role.ADMIN}
DOWNLOADS = (
    ("pdf", _l("PDF"), {}),
    ("xlsx", _l("Excel (XLSX)"), {}),
    ("csv", _l("CSV"), {}),
    ("csv", _l("CSV for French Excel (;)"), {"sep": "semicolon"}),
)


@dataclass(frozen=True)
class Field:
    """One parameter of a report's form (named as in the API)."""

    name: str
    label: Any
    kind: str  # "month" | "date" | "year" | "select" | "multi" | "text"
    choices: tuple[tuple[str, Any], ...] = ()
    hint: Any = None


GROUPS = (
    ("activity_class", _l("activity class")),
    ("activity", _l("activity")),
    ("tenant", _l("member")),
    ("pole", _l("team")),
    ("domain", _l("domain")),
    ("month", _l("month")),
)
EXCLUDABLE = (
    ("internal", _l("internal")),
    ("domain_management", _l("domain management")),
    ("assistance", _l("assistance")),
    ("training", _l("training")),
)


@dataclass(frozen=True)
class PageSpec:
    name: str  # the report's name in the API
    slug: str  # the page's URL
    title: Any
    fields: tuple[Field, ...]
    defaults: Mapping[str, Any]


def _last_year() -> str:
    return str(dt.date.today().year - 1)


def _last_month() -> str:
    first = dt.date.today().replace(day=1)
    return (first - dt.timedelta(days=1)).strftime("%Y-%m")


SPECS = {
    spec.slug: spec
    for spec in (
        PageSpec(
            "workload",
            "charge",
            _l("Workload"),
            (
                Field("from", _l("From"), "date"),
                Field("to", _l("To"), "date"),
                Field("group_by", _l("Group by"), "multi", GROUPS),
                Field(
                    "exclude",
                    _l("Leave out of the total"),
                    "multi",
                    EXCLUDABLE,
                    _l("The shares are computed on what remains."),
                ),
                Field(
                    "compare_to",
                    _l("Compare with"),
                    "select",
                    (("", _l("nothing")), ("previous_year", _l("the previous year"))),
                ),
            ),
            {
                "from": lambda: f"{_last_year()}-01-01",
                "to": lambda: f"{_last_year()}-12-31",
                "group_by": lambda: "activity_class",
                "compare_to": lambda: "previous_year",
            },
        ),
        PageSpec(
            "tickets",
            "tickets",
            _l("Ticket indicators"),
            (
                Field("from", _l("From"), "date"),
                Field("to", _l("To"), "date"),
                Field(
                    "group_by",
                    _l("Group by"),
                    "select",
                    (
                        ("tenant", _l("member")),
                        ("month", _l("month")),
                        ("category", _l("category")),
                        ("type", _l("type")),
                    ),
                ),
            ),
            {
                "from": lambda: f"{_last_year()}-01-01",
                "to": lambda: f"{_last_year()}-12-31",
                "group_by": lambda: "month",
            },
        ),
        PageSpec(
            "pmo",
            "pmo",
            _l("Project portfolio (PMO)"),
            (Field("month", _l("Month"), "month"),),
            {"month": _last_month},
        ),
        PageSpec(
            "chargeback",
            "refacturation",
            _l("Chargeback per member"),
            (
                Field("year", _l("Year"), "year"),
                Field(
                    "key",
                    _l("Shared time spread"),
                    "select",
                    (
                        ("proportional", _l("in proportion to direct days")),
                        ("equal", _l("equally between members")),
                        ("contribution", _l("in proportion to contributions")),
                    ),
                ),
            ),
            {"year": _last_year, "key": lambda: "proportional"},
        ),
    )
}


def _params(spec: PageSpec) -> dict[str, str]:
    """The form's values: what the user chose, else the page's defaults; lists comma-joined."""
    params: dict[str, str] = {}
    for f in spec.fields:
        values = [v for v in request.args.getlist(f.name) if v != ""]
        if values:
            params[f.name] = ",".join(values)
        elif f.name not in request.args and f.name in spec.defaults:
            params[f.name] = spec.defaults[f.name]()
    return params


def _query(params: Mapping[str, str], **extra: str) -> dict[str, Any]:
    return {**{k: v for k, v in params.items() if v}, **extra}


def _problem(err: AppError) -> tuple[str, dict[str, list[str]]]:
    """A report's refusal as a message and errors by field (the problem's ``errors``)."""
    fields = {
        str(k): [str(m) for m in (v if isinstance(v, list) else [v])]
        for k, v in (err.errors or {}).items()
    }
    allowed = err.extra.get("allowed")
    message = str(err.detail)
    if allowed:
        message += " " + str(_l("Allowed values: %(values)s.", values=", ".join(map(str, allowed))))
    return message, fields


def _management_only() -> None:
    """Reports are for managers and admins; others get the 403 page."""
    if current_actor().role not in MANAGEMENT:
        raise Forbidden(str(_l("Reports are for managers and admins.")))


@pages.get("/rapports")
@login_required
def index() -> Any:
    _management_only()
    return render_template("reporting/pages/index.html", specs=SPECS.values())


@pages.get("/rapports/<slug>")
@login_required
def report_page(slug: str) -> Any:
    _management_only()
    spec = SPECS.get(slug)
    if spec is None:
        abort(404)
    params = _params(spec)
    report, message, errors, status = None, None, {}, 200
    try:
        report = build_report(spec.name, params, current_actor())
    except AppError as err:
        if err.status not in (400, 422):
            raise
        message, errors = _problem(err)
        status = 400
    downloads = [
        (label, url_for("reporting_pages.download", slug=slug, fmt=fmt, **_query(params, **extra)))
        for fmt, label, extra in DOWNLOADS
    ]
    labels = {}
    if report is not None:
        labels = {c.key: str(c.label) for t in report.tables for c in t.columns}
    html = render_template(
        "reporting/pages/report.html",
        labels=labels,
        spec=spec,
        params=params,
        report=report,
        message=message,
        errors=errors,
        downloads=downloads if report is not None else [],
        selected=lambda name: set(params.get(name, "").split(",")),
    )
    return html, status


@pages.get("/rapports/<slug>/telecharger.<fmt>")
@login_required
def download(slug: str, fmt: str) -> Response:
    _management_only()
    spec = SPECS.get(slug)
    if spec is None or fmt not in {f for f, _label, _extra in DOWNLOADS}:
        abort(404)
    params = _params(spec)
    report = build_report(spec.name, params, current_actor())
    body, mimetype, filename = render(report, fmt, sep=request.args.get("sep", "comma"))
    resp = Response(body, mimetype=mimetype)
    resp.headers["Content-Disposition"] = f'attachment; filename="{filename}"'
    resp.headers["Cache-Control"] = "private, no-store"
    return resp


# -- formatting of cells (French by default, from the user's locale) -----------------------


@pages.app_template_filter("report_cell")
def report_cell(value: Any, kind: str) -> Any:
    if value is None or value == "":
        return "—"
    try:
        if kind == "share":
            return format_percent(float(value), format="#,##0.0 %")
        if kind in ("days", "decimal"):
            return format_decimal(float(value), format="#,##0.0")
        if kind == "eur":
            return format_decimal(float(value), format="#,##0 €")
        if kind == "int":
            return format_decimal(int(value), format="#,##0")
    except (TypeError, ValueError):
        return str(value)
    return str(value)


@pages.app_template_filter("chart_svg")
def chart_svg(chart: Any) -> Markup:
    """A chart's SVG, made by matplotlib from the report's own numbers (no user markup)."""
    return Markup(chart.svg())  # noqa: S704 - generated by matplotlib from numbers and escaped labels


def init_pages(app: Any) -> None:
    app.register_blueprint(pages)
    register_nav(app, "reporting_pages.index", _l("Reports"), roles=MANAGEMENT, order=40)
