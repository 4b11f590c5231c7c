"""HTTP routes of reporting: ``/api/v1/reports/<name>`` in any format, and the archive."""

from __future__ import annotations

from typing import Any

from flask import Response, request
from flask.views import MethodView
from marshmallow import fields

from config.api import Blueprint, OutSchema, page_schema
from config.auth import current_actor
from config.filters import FilterSet
from config.pagination import paginate
from reporting import services
from reporting.models import ReportArchive
from reporting.render import FORMATS, MIMETYPES, render

__all__ = ["blueprints"]

blp = Blueprint(
    "reports",
    __name__,
    url_prefix="/api/v1/reports",
    description="Reports (managers and admins): JSON, CSV, XLSX, HTML, PDF.",
)

# JSON first: ``Accept: */*`` (curl, scripts) must get JSON.
_ACCEPT = {
    "application/json": "json",
    "text/csv": "csv",
    MIMETYPES["xlsx"]: "xlsx",
    "text/html": "html",
    "application/pdf": "pdf",
}


def negotiate(args: dict[str, str]) -> str:
    """``?format=`` wins; else the best Accept match; JSON by default."""
    if args.get("format"):
        return args["format"]
    best = request.accept_mimetypes.best_match(list(_ACCEPT), default="application/json")
    return _ACCEPT.get(best or "application/json", "json")


def query_params() -> dict[str, str]:
    """The query string as one string per name (repeated names joined with commas)."""
    return {k: ",".join(request.args.getlist(k)) for k in request.args}


def send(body: bytes, mimetype: str, filename: str, fmt: str) -> Response:
    resp = Response(body, mimetype=mimetype)
    disposition = "inline" if fmt in ("json", "html", "pdf") else "attachment"
    resp.headers["Content-Disposition"] = f'{disposition}; filename="{filename}"'
    resp.headers["X-Content-Type-Options"] = "nosniff"
    if fmt == "html":
        # The page is self-contained: inline styles and SVG only, no script.
        resp.headers["Content-Security-Policy"] = (
            "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
        )
    return resp


_REPORT_PARAMS = [
    {"name": n, "in": "query", "required": False, "schema": {"type": "string"}, "description": d}
    for n, d in (
        ("format", f"One of {', '.join(FORMATS)} (or send an Accept header)."),
        ("sep", "CSV only: comma (default, `.` decimals) or semicolon (`,` decimals)."),
        ("table", "CSV only: which table (default: the first)."),
        ("from", "First day (YYYY-MM-DD), month (YYYY-MM) or year."),
        ("to", "Last day (YYYY-MM-DD), month (YYYY-MM) or year."),
        ("year", "A calendar year (instead of from/to)."),
        ("month", "pmo: the month (YYYY-MM)."),
        (
            "group_by",
            "workload: activity, activity_class, tenant, pole, domain, month; "
            "tickets: tenant, month, category, type (comma-separated).",
        ),
        ("tenant", "Tenant codes (sub-tenants included)."),
        ("pole", "Pole codes."),
        ("exclude", "workload: activity codes or classes left out of rows and denominator."),
        ("compare_to", "workload: previous_year."),
        ("key", "chargeback: proportional, equal or contribution."),
        ("activity", "time-entries: activity codes."),
    )
]


@blp.route("/<string:name>")
class ReportByName(MethodView):
    @blp.doc(
        parameters=_REPORT_PARAMS,
        responses={
            "200": {
                "description": "The report in the requested format.",
                "content": {m.split(";")[0]: {} for m in MIMETYPES.values()},
            },
            "400": {"description": "Bad parameter (the allowed values are listed)."},
            "403": {"description": "Technicians and infra may not read reports."},
            "404": {"description": "No such report."},
        },
    )
    def get(self, name: str) -> Any:
        """One report (workload, tickets, pmo, chargeback, training, satisfaction, time-entries)."""
        params = query_params()
        fmt = negotiate(params)
        report = services.build_report(name, params, current_actor())
        body, mimetype, filename = render(
            report, fmt, sep=params.get("sep") or "comma", table=params.get("table") or None
        )
        return send(body, mimetype, filename, fmt)


class ArchiveFilter(FilterSet):
    model = ReportArchive
    fields = {"report": ["exact"], "period": ["exact", "gte", "lte"], "format": ["exact"]}
    ordering = ("id", "period", "created_at")
    default_ordering = ("-period", "id")


class ArchiveOut(OutSchema):
    id = fields.Integer()
    report = fields.String()
    period = fields.String()
    tenant = fields.Method("_tenant")
    format = fields.String()
    filename = fields.String()
    size = fields.Integer()
    sha256 = fields.String()
    created_at = fields.DateTime()

    def _tenant(self, obj: ReportArchive) -> str | None:
        from config.tenancy import tenant_codes

        return tenant_codes().get(obj.tenant_id) if obj.tenant_id is not None else None


@blp.route("/archive")
class Archives(MethodView):
    @blp.arguments(ArchiveFilter.schema(), location="query", as_kwargs=False)
    @blp.response(200, page_schema(ArchiveOut))
    @blp.alt_response(403, description="Technicians and infra may not read reports.")
    def get(self, args: dict[str, Any]) -> Any:
        """List archived report files (a member sees only its own views)."""
        stmt = services.archives_select(current_actor())
        return paginate(ArchiveFilter.apply(stmt, args), args)


@blp.route("/archive/<int:archive_id>")
class ArchiveById(MethodView):
    @blp.doc(
        responses={
            "200": {
                "description": "The archived file.",
                "content": {m.split(";")[0]: {} for m in MIMETYPES.values()},
            },
            "403": {"description": "Technicians and infra may not read reports."},
        }
    )
    def get(self, archive_id: int) -> Any:
        """Download one archived report file."""
        row, body = services.get_archive(archive_id, current_actor())
        return send(
            body, MIMETYPES.get(row.format, "application/octet-stream"), row.filename, row.format
        )


blueprints = [blp]
