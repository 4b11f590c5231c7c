"""CMDB HTTP API: CIs, relations, usage links (``/api/v1/cis``, ``/api/v1/relations``).

The impact, SPOF, graph, GDPR and import endpoints live in ``cmdb.api_analysis`` (they
add routes to ``cis_blp`` too, so it imports this module and is registered with it).
"""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from sqlalchemy import select

from cmdb import queries, services
from cmdb.models import CI, Relation, Usage
from cmdb.schemas import (
    CIFilter,
    CIIn,
    CIOut,
    CIPatch,
    RelationFilter,
    RelationIn,
    RelationOut,
    UsageDeleteArgs,
    UsageFilter,
    UsageIn,
    UsageOut,
)
from config.api import Blueprint, page_schema
from config.auth import current_actor
from config.etag import check_if_match, etag_for
from config.pagination import paginate
from config.tenancy import Tenant, tenant_scope

__all__ = ["cis_blp", "relations_blp"]


def _location(endpoint: str, **values: Any) -> dict[str, str]:
    return {"Location": url_for(endpoint, _external=True, **values)}


def _with_etag(obj: Any, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"ETag": etag_for(obj), **(extra or {})}


# == CIs ===================================================================================

cis_blp = Blueprint(
    "cis",
    __name__,
    url_prefix="/api/v1/cis",
    description="Configuration items (sites, clusters, hosts, servers, databases, "
    "applications, services, network links) and the tenants using applications.",
)


# Query schemas are given as instances: webargs instantiates a schema class on every
# request, deep-copying its fields (dozens here, one per filterable attribute).


@cis_blp.route("")
class CIs(MethodView):
    @cis_blp.arguments(CIFilter.schema()(), location="query", as_kwargs=False)
    @cis_blp.response(200, page_schema(CIOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List the CIs the caller sees (shared ones and its tenants')."""
        actor = current_actor()
        stmt = CIFilter.apply(tenant_scope(select(CI), actor), args)
        # Counts are cached per graph version, except where filters name tenants (codes
        # can change without touching the CMDB).
        cacheable = not (args.get("tenant") or args.get("used_by"))
        return queries.counted_page(
            stmt, args, actor=actor, cacheable=cacheable, rows=queries.ci_page_rows
        )

    @cis_blp.arguments(CIIn)
    @cis_blp.response(201, CIOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a CI (infra, admin)."""
        ci = services.create_ci(data, actor=current_actor())
        return ci, _with_etag(ci, _location("cis.CIById", ci_id=ci.id))


@cis_blp.route("/<int:ci_id>")
class CIById(MethodView):
    @cis_blp.response(200, CIOut)
    def get(self, ci_id: int) -> Any:
        """Get one CI."""
        ci = services.get_ci(ci_id, current_actor())
        return ci, _with_etag(ci)

    @cis_blp.arguments(CIPatch(partial=True))
    @cis_blp.response(200, CIOut)
    def patch(self, data: dict[str, Any], ci_id: int) -> Any:
        """Update a CI (infra, admin); attributes are merged, null removes one."""
        actor = current_actor()
        ci = services.get_ci(ci_id, actor)
        check_if_match(ci)
        ci = services.update_ci(ci, data, actor=actor)
        return ci, _with_etag(ci)

    @cis_blp.response(204)
    def delete(self, ci_id: int) -> None:
        """Delete a CI with its relations and usage links (infra, admin)."""
        actor = current_actor()
        ci = services.get_ci(ci_id, actor)
        check_if_match(ci)
        services.delete_ci(ci, actor=actor)


@cis_blp.route("/by-code/<string:key>")
class CIByCode(MethodView):
    @cis_blp.response(200, CIOut)
    def get(self, key: str) -> Any:
        """Get one CI by its global key ``kind:code`` (e.g. ``host:hv-ivry-03``)."""
        ci = services.get_ci_by_key(key, current_actor())
        return ci, _with_etag(ci)


@cis_blp.route("/<int:ci_id>/tenants")
class CITenants(MethodView):
    @cis_blp.arguments(UsageFilter.schema()(), location="query", as_kwargs=False)
    @cis_blp.response(200, page_schema(UsageOut))
    def get(self, args: dict[str, Any], ci_id: int) -> Any:
        """List the tenants (the caller sees) using an application."""
        actor = current_actor()
        ci = services.get_ci(ci_id, actor)
        stmt = tenant_scope(
            select(Usage).join(Tenant, Tenant.id == Usage.tenant_id).where(Usage.ci_id == ci.id),
            actor,
            Usage,
        )
        return paginate(UsageFilter.apply(stmt, args), args)

    @cis_blp.arguments(UsageIn)
    @cis_blp.response(201, UsageOut)
    def post(self, data: dict[str, Any], ci_id: int) -> Any:
        """Record that a tenant uses this application (infra, admin)."""
        actor = current_actor()
        ci = services.get_ci(ci_id, actor)
        usage = services.add_usage(
            ci, data["tenant"], confidence=data["confidence"], note=data["note"], actor=actor
        )
        return usage, _with_etag(
            usage, _location("cis.CITenantByCode", ci_id=ci.id, tenant=usage.tenant.code)
        )

    @cis_blp.arguments(UsageDeleteArgs, location="query", as_kwargs=False)
    @cis_blp.response(204)
    def delete(self, args: dict[str, Any], ci_id: int) -> None:
        """Remove the usage link of ``?tenant=CODE`` (infra, admin)."""
        actor = current_actor()
        usage = services.get_usage(services.get_ci(ci_id, actor), args["tenant"], actor)
        check_if_match(usage)
        services.remove_usage(usage, actor=actor)


@cis_blp.route("/<int:ci_id>/tenants/<string:tenant>")
class CITenantByCode(MethodView):
    @cis_blp.response(200, UsageOut)
    def get(self, ci_id: int, tenant: str) -> Any:
        """Get one usage link of an application."""
        actor = current_actor()
        usage = services.get_usage(services.get_ci(ci_id, actor), tenant, actor)
        return usage, _with_etag(usage)

    @cis_blp.response(204)
    def delete(self, ci_id: int, tenant: str) -> None:
        """Remove a usage link (infra, admin)."""
        actor = current_actor()
        usage = services.get_usage(services.get_ci(ci_id, actor), tenant, actor)
        check_if_match(usage)
        services.remove_usage(usage, actor=actor)


# == relations =============================================================================

relations_blp = Blueprint(
    "relations",
    __name__,
    url_prefix="/api/v1/relations",
    description="Typed, directed relations between CIs (the impact graph).",
)


@relations_blp.route("")
class Relations(MethodView):
    @relations_blp.arguments(RelationFilter.schema()(), location="query", as_kwargs=False)
    @relations_blp.response(200, page_schema(RelationOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List the relations whose both ends the caller sees."""
        stmt = tenant_scope(select(Relation), current_actor())
        return paginate(RelationFilter.apply(stmt, args), args)

    @relations_blp.arguments(RelationIn)
    @relations_blp.response(201, RelationOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a relation (infra, admin); cycles are refused (422 naming the cycle)."""
        rel = services.create_relation(data, actor=current_actor())
        return rel, _with_etag(rel, _location("relations.RelationById", relation_id=rel.id))


@relations_blp.route("/<int:relation_id>")
class RelationById(MethodView):
    @relations_blp.response(200, RelationOut)
    def get(self, relation_id: int) -> Any:
        """Get one relation."""
        rel = services.get_relation(relation_id, current_actor())
        return rel, _with_etag(rel)

    @relations_blp.arguments(RelationIn(partial=True))
    @relations_blp.response(200, RelationOut)
    def patch(self, data: dict[str, Any], relation_id: int) -> Any:
        """Change a relation's source, target or type (infra, admin)."""
        actor = current_actor()
        rel = services.get_relation(relation_id, actor)
        check_if_match(rel)
        rel = services.update_relation(rel, data, actor=actor)
        return rel, _with_etag(rel)

    @relations_blp.response(204)
    def delete(self, relation_id: int) -> None:
        """Delete a relation (infra, admin)."""
        actor = current_actor()
        rel = services.get_relation(relation_id, actor)
        check_if_match(rel)
        services.delete_relation(rel, actor=actor)
