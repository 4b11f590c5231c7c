"""Pages for the infra team: the CMDB browser, a CI with its relations and dependency map,
the what-if page (fail CIs or a whole site and see what stops, what is degraded and which
members lose which applications) and the fragility list. Same services as the API."""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from flask import Blueprint, render_template, request
from flask_babel import lazy_gettext as _l
from markupsafe import Markup
from sqlalchemy import select

from cmdb import analysis, render, services
from cmdb.errors import UnknownCIs
from cmdb.models import CI, CIKind, CIStatus, Relation, Usage
from config.auth import current_actor
from config.db import db
from config.errors import AppError
from config.filters import like_escape
from config.settings import current_settings
from config.tenancy import Tenant, tenant_scope
from config.web import login_required, register_nav

pages = Blueprint("cmdb_pages", __name__, template_folder="templates")
PAGE = 100

KIND_LABELS = {
    "site": _l("site"),
    "cluster": _l("cluster"),
    "host": _l("host"),
    "server": _l("server"),
    "database": _l("database"),
    "application": _l("application"),
    "service": _l("service"),
    "network_link": _l("network link"),
}
STATUS_LABELS = {
    "planned": _l("planned"),
    "active": _l("active"),
    "maintenance": _l("maintenance"),
    "retired": _l("retired"),
}
RELATION_LABELS = {
    "runs_on": _l("runs on"),
    "member_of": _l("member of"),
    "located_in": _l("located in"),
    "depends_on": _l("depends on"),
    "hosted_on": _l("hosted on"),
}


def init_pages(app: Any) -> None:
    app.register_blueprint(pages)
    register_nav(app, "cmdb_pages.browse", _l("CMDB"), order=20)
    register_nav(app, "cmdb_pages.what_if", _l("What if…"), order=21)
    register_nav(app, "cmdb_pages.fragility", _l("Weak points"), order=22)


@pages.app_context_processor
def _labels() -> dict[str, Any]:
    return {
        "kind_labels": KIND_LABELS,
        "ci_status_labels": STATUS_LABELS,
        "relation_labels": RELATION_LABELS,
    }


def _tenants() -> list[tuple[str, str]]:
    stmt = tenant_scope(select(Tenant), current_actor()).order_by(Tenant.name)
    return [(t.code, t.name) for t in db.session.execute(stmt).unique().scalars()]


@pages.get("/cmdb")
@login_required
def browse() -> Any:
    """Search the configuration items (text, kind, member, status)."""
    actor = current_actor()
    q = request.args.get("q", "").strip()[:200]
    kind = request.args.get("kind", "")
    tenant = request.args.get("tenant", "")
    status = request.args.get("status", "")
    try:
        offset = max(0, min(int(request.args.get("offset", "0") or 0), 10**6))
    except ValueError:
        offset = 0
    stmt = tenant_scope(select(CI), actor)
    if q:
        pattern = f"%{like_escape(q)}%"
        stmt = stmt.where(
            sa.or_(CI.code.ilike(pattern, escape="\\"), CI.name.ilike(pattern, escape="\\"))
        )
    if kind in KIND_LABELS:
        stmt = stmt.where(CI.kind == CIKind(kind))
    if status in STATUS_LABELS:
        stmt = stmt.where(CI.status == CIStatus(status))
    if tenant == "-":
        stmt = stmt.where(CI.tenant_id.is_(None))
    elif tenant:
        stmt = stmt.where(CI.tenant_id.in_(select(Tenant.id).where(Tenant.code == tenant)))
    total = db.session.execute(
        select(sa.func.count()).select_from(stmt.with_only_columns(CI.id).subquery())
    ).scalar_one()
    rows = (
        db.session.execute(stmt.order_by(CI.kind, CI.code).limit(PAGE).offset(offset))
        .unique()
        .scalars()
        .all()
    )
    return render_template(
        "cmdb/browse.html",
        rows=rows,
        total=total,
        offset=offset,
        page=PAGE,
        args={"q": q, "kind": kind, "tenant": tenant, "status": status},
        tenants=_tenants(),
    )


@pages.get("/cmdb/<int:ci_id>")
@login_required
def ci(ci_id: int) -> Any:
    """A CI: its attributes, relations, users and a dependency map."""
    actor = current_actor()
    item = services.get_ci(ci_id, actor)
    try:
        depth = max(1, min(int(request.args.get("depth", "2")), 4))
    except ValueError:
        depth = 2
    direction = request.args.get("direction", "both")
    if direction not in ("up", "down", "both"):
        direction = "both"
    outgoing = (
        db.session.execute(
            tenant_scope(select(Relation).where(Relation.source_id == item.id), actor)
        )
        .unique()
        .scalars()
        .all()
    )
    incoming = (
        db.session.execute(
            tenant_scope(select(Relation).where(Relation.target_id == item.id), actor)
        )
        .unique()
        .scalars()
        .all()
    )
    users = (
        db.session.execute(tenant_scope(select(Usage).where(Usage.ci_id == item.id), actor))
        .unique()
        .scalars()
        .all()
    )
    doc = analysis.graph_of(item, actor, depth=depth, direction=direction)
    svg = render.to_svg(doc["nodes"], doc["edges"], center=item.key, title=item.key)
    return render_template(
        "cmdb/ci.html",
        ci=item,
        outgoing=outgoing,
        incoming=incoming,
        users=users,
        svg=Markup(svg),  # noqa: S704 - every text in it is escaped by cmdb.render
        depth=depth,
        direction=direction,
    )


@pages.get("/cmdb/simulation")
@login_required
def what_if() -> Any:
    """Fail some CIs (or a whole site) and see what stops and who loses what."""
    actor = current_actor()
    keys = [k.strip() for k in request.args.getlist("ci") if k.strip()][:50]
    site = request.args.get("site", "").strip()
    if site:
        keys.append(site)
    sites = (
        db.session.execute(
            tenant_scope(select(CI).where(CI.kind == CIKind.SITE), actor).order_by(CI.code)
        )
        .unique()
        .scalars()
        .all()
    )
    result, error, status = None, None, 200
    if keys:
        try:
            tuning = analysis.Tuning.of(current_settings().section("cmdb"))
            result = analysis.impact_of(keys, actor, tuning=tuning)
        except UnknownCIs as exc:
            error, status = exc.detail, 404
        except AppError as exc:
            if exc.status >= 500:
                raise
            error, status = exc.detail, exc.status
    return render_template(
        "cmdb/what_if.html",
        keys=[k for k in keys if k != site],
        site=site,
        sites=sites,
        result=result,
        error=error,
    ), status


@pages.get("/cmdb/fragilites")
@login_required
def fragility() -> Any:
    """Single points of failure (most damaging first) and the other weak points."""
    actor = current_actor()
    spof, _token = analysis.spof_for(actor)
    findings = analysis.findings_for(
        actor, tuning=analysis.Tuning.of(current_settings().section("cmdb"))
    )
    return render_template(
        "cmdb/fragility.html",
        spof=spof[:200],
        spof_count=len(spof),
        findings=findings[:300],
        findings_count=len(findings),
    )
