"""CMDB analysis endpoints: impact, single points of failure, neighbourhood graphs."""

from __future__ import annotations

from typing import Any

from flask import Response
from flask.views import MethodView

from cmdb import analysis, imports, render, services
from cmdb.api import cis_blp
from cmdb.schemas import (
    GRAPH_FORMATS,
    FindingOut,
    FindingsQuery,
    GdprQuery,
    GdprRegisterOut,
    GraphOut,
    GraphQuery,
    ImpactIn,
    ImpactOut,
    ImpactQuery,
    ImportFile,
    ImportOut,
    ImportQuery,
    SpofOut,
    SpofQuery,
)
from cmdb.tabular import read_table
from config.api import Blueprint, page_schema
from config.auth import current_actor, require
from config.pagination import page_url
from config.settings import current_settings

__all__ = ["cmdb_blp"]


def _tuning() -> analysis.Tuning:
    return analysis.Tuning.of(current_settings().section("cmdb"))


def _page(entries: list[Any], args: dict[str, Any]) -> dict[str, Any]:
    limit, offset = args["limit"], args["offset"]
    count = len(entries)
    return {
        "count": count,
        "next": page_url(offset + limit, limit) if offset + limit < count else None,
        "previous": page_url(max(offset - limit, 0), limit) if offset > 0 else None,
        "results": entries[offset : offset + limit],
    }


cmdb_blp = Blueprint(
    "cmdb",
    __name__,
    url_prefix="/api/v1",
    description="Impact analysis, single points of failure and other CMDB analyses.",
)


@cmdb_blp.route("/impact")
class Impact(MethodView):
    @cmdb_blp.arguments(ImpactIn)
    @cmdb_blp.response(200, ImpactOut)
    @cmdb_blp.alt_response(404, description="Unknown CIs (listed in ``unknown``).")
    def post(self, data: dict[str, Any]) -> Any:
        """What stops, what is degraded and which tenants lose what if these CIs fail."""
        return analysis.impact_of(
            data["failed"], current_actor(), depth=data.get("depth"), tuning=_tuning()
        )


@cis_blp.route("/<int:ci_id>/impact")
class CIImpact(MethodView):
    @cis_blp.arguments(ImpactQuery, location="query", as_kwargs=False)
    @cis_blp.response(200, ImpactOut)
    def get(self, args: dict[str, Any], ci_id: int) -> Any:
        """The impact of this CI failing."""
        actor = current_actor()
        ci = services.get_ci(ci_id, actor)
        return analysis.impact_of([ci.id], actor, depth=args.get("depth"), tuning=_tuning())


@cmdb_blp.route("/cmdb/spof")
class SinglePointsOfFailure(MethodView):
    @cmdb_blp.arguments(SpofQuery, location="query", as_kwargs=False)
    @cmdb_blp.response(200, page_schema(SpofOut))
    def get(self, args: dict[str, Any]) -> Any:
        """CIs whose single failure stops at least one application, most damaging first."""
        entries, _token = analysis.spof_for(current_actor(), kind=args.get("kind"))
        return _page(entries, args)


@cmdb_blp.route("/cmdb/findings")
class Findings(MethodView):
    @cmdb_blp.arguments(FindingsQuery, location="query", as_kwargs=False)
    @cmdb_blp.response(200, page_schema(FindingOut))
    def get(self, args: dict[str, Any]) -> Any:
        """Fragility findings: false redundancy, double points of failure, capacity on host
        failure, clusters below min_healthy, applications hosted nowhere or unused."""
        found = analysis.findings_for(current_actor(), kind=args.get("kind"), tuning=_tuning())
        return _page(found, args)


@cmdb_blp.route("/cmdb/gdpr-register")
class GdprRegister(MethodView):
    @cmdb_blp.arguments(GdprQuery, location="query", as_kwargs=False)
    @cmdb_blp.response(200, GdprRegisterOut)
    @cmdb_blp.alt_response(404, description="Unknown tenant.")
    def get(self, args: dict[str, Any]) -> Any:
        """A member's processing activities (GDPR register): the applications it uses,
        their processing attributes and where they are hosted."""
        return analysis.gdpr_register(args["tenant"], current_actor())


_TEXT_FORMATS = {k: {"schema": {"type": "string"}} for k in list(GRAPH_FORMATS)[1:]}


@cis_blp.route("/<int:ci_id>/graph")
class CIGraph(MethodView):
    @cis_blp.arguments(GraphQuery, location="query", as_kwargs=False)
    @cis_blp.response(200, GraphOut)
    @cis_blp.doc(
        responses={
            "200": {
                "description": "The neighbourhood, in the format asked for.",
                "content": {
                    "application/json": {"schema": {"$ref": "#/components/schemas/GraphOut"}},
                    **{GRAPH_FORMATS[k]: v for k, v in _TEXT_FORMATS.items()},
                },
            }
        }
    )
    def get(self, args: dict[str, Any], ci_id: int) -> Any:
        """The CI's neighbourhood as JSON nodes/edges, Graphviz DOT, Mermaid or SVG."""
        actor = current_actor()
        ci = services.get_ci(ci_id, actor)
        doc = analysis.graph_of(ci, actor, depth=args["depth"], direction=args["direction"])
        fmt = args["format"]
        if fmt == "json":
            return doc
        if fmt == "dot":
            text = render.to_dot(doc["nodes"], doc["edges"], center=ci.key)
        elif fmt == "mermaid":
            text = render.to_mermaid(doc["nodes"], doc["edges"], center=ci.key)
        else:
            text = render.to_svg(doc["nodes"], doc["edges"], center=ci.key, title=ci.key)
        return Response(text, mimetype=GRAPH_FORMATS[fmt])


@cmdb_blp.route("/cmdb/imports")
class CmdbImports(MethodView):
    @cmdb_blp.arguments(ImportQuery, location="query", as_kwargs=False)
    @cmdb_blp.arguments(ImportFile, location="files")
    @cmdb_blp.response(200, ImportOut)
    def post(self, args: dict[str, Any], files: dict[str, Any]) -> Any:
        """Import CIs, relations and usage from a CSV or XLSX file (infra, admin), all or
        nothing; every bad row is reported with its line and column."""
        upload = files["file"]
        try:
            data = upload.read()
        finally:
            upload.close()  # a large upload is spooled to a temporary file
        actor = current_actor()
        require(actor, "cmdb.write")
        table = read_table(data, upload.filename or "")
        return imports.import_table(table, actor=actor, dry_run=args["dry_run"])
