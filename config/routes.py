"""The kernel's own routes: tenants, users, tokens, the change log, health and API docs."""

from __future__ import annotations

from typing import Any, NamedTuple

import sqlalchemy as sa
from flask import Blueprint as FlaskBlueprint
from flask import Response, current_app, render_template_string, url_for
from flask.views import MethodView
from marshmallow import fields, validate
from sqlalchemy import select
from sqlalchemy.orm import selectinload

from config.api import Blueprint, InSchema, OutSchema, code_field, page_schema
from config.auth import (
    Role,
    Token,
    User,
    can,
    create_token,
    create_user,
    current_actor,
    require,
    revoke_token,
    update_user,
)
from config.changelog import ChangeRecord
from config.db import db, utcnow
from config.errors import NotFound, ServiceUnavailable, ValidationFailed
from config.etag import check_if_match, etag_for
from config.extensions import head_revisions
from config.filters import Filter, FilterSet
from config.pagination import paginate, row_reader
from config.tenancy import (
    Tenant,
    TenantKind,
    create_tenant,
    delete_tenant,
    get_scoped,
    get_tenant_by_code,
    tenant_code_column,
    tenant_scope,
    update_tenant,
    visible_tenant_ids,
)

__all__ = ["changes_blp", "docs_bp", "health_blp", "tenants_blp", "tokens_blp", "users_blp"]


def _location(endpoint: str, **values: Any) -> dict[str, str]:
    return {"Location": url_for(endpoint, _external=True, **values)}


def _with_etag(obj: Any, extra: dict[str, str] | None = None) -> dict[str, str]:
    return {"ETag": etag_for(obj), **(extra or {})}


# == tenants ============================================================================

tenants_blp = Blueprint(
    "tenants", __name__, url_prefix="/api/v1/tenants", description="Member organisations."
)

YEAR_KEY = fields.String(validate=validate.Regexp(r"^(19|20|21)\d\d$", error="A year, YYYY."))


class TenantOut(OutSchema):
    id = fields.Integer()
    code = fields.String()
    name = fields.String()
    kind = fields.Enum(TenantKind, by_value=True)
    parent = fields.Function(lambda t: t.parent_code, allow_none=True)
    active = fields.Boolean()
    # Plain dicts on output (validated on input): per-item field dumping costs on lists.
    contributions = fields.Dict(metadata={"description": "Year → euros."})
    external_ids = fields.Dict(metadata={"description": "Source → id in that source."})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class TenantIn(InSchema):
    code = code_field(required=True)
    name = fields.String(required=True, validate=validate.Length(1, 200))
    kind = fields.Enum(TenantKind, by_value=True, required=True)
    parent = code_field(allow_none=True)
    active = fields.Boolean()
    contributions = fields.Dict(
        keys=YEAR_KEY,
        values=fields.Float(allow_nan=False, validate=validate.Range(0, 1e12)),
        metadata={"example": {"2021": 1318655.28}},
    )
    external_ids = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 40)),
        values=fields.String(validate=validate.Length(1, 100)),
        metadata={"example": {"glpi": "12"}},
    )


def _parent_filter(stmt: sa.Select[Any], codes: list[str]) -> sa.Select[Any]:
    parents = select(Tenant.id).where(Tenant.code.in_(codes))
    return stmt.where(Tenant.parent_id.in_(parents))


class TenantFilter(FilterSet):
    model = Tenant
    fields = {"code": ["exact", "ic"], "kind": ["exact"], "active": ["exact"], "name": ["ic"]}
    filters = {"parent": Filter(lambda: code_field(), _parent_filter)}
    ordering = ("id", "code", "name", "kind", "created_at", "updated_at")
    default_ordering = ("code",)
    search = ("code", "name")


class TenantPageRow(NamedTuple):
    """One tenant of a list page (what ``TenantOut`` shows, the parent by its code)."""

    id: int
    code: str
    name: str
    kind: TenantKind
    parent_code: str | None
    active: bool
    contributions: dict[str, Any]
    external_ids: dict[str, str]
    created_at: Any
    updated_at: Any


_tenant_page_rows = row_reader(
    (
        Tenant.id,
        Tenant.code,
        Tenant.name,
        Tenant.kind,
        tenant_code_column(Tenant.parent_id, "parent_code"),
        Tenant.active,
        Tenant.contributions,
        Tenant.external_ids,
        Tenant.created_at,
        Tenant.updated_at,
    ),
    TenantPageRow,
)


@tenants_blp.route("")
class Tenants(MethodView):
    @tenants_blp.arguments(TenantFilter.schema(), location="query", as_kwargs=False)
    @tenants_blp.response(200, page_schema(TenantOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List the tenants the caller is bound to (and their sub-tenants)."""
        stmt = tenant_scope(select(Tenant), current_actor())
        return paginate(TenantFilter.apply(stmt, args), args, rows=_tenant_page_rows)

    @tenants_blp.arguments(TenantIn)
    @tenants_blp.response(201, TenantOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a tenant (admin)."""
        tenant = create_tenant(data, actor=current_actor())
        return tenant, _with_etag(tenant, _location("tenants.TenantById", tenant_id=tenant.id))


@tenants_blp.route("/<int:tenant_id>")
class TenantById(MethodView):
    @tenants_blp.response(200, TenantOut)
    def get(self, tenant_id: int) -> Any:
        """Get one tenant."""
        tenant = get_scoped(Tenant, tenant_id, current_actor())
        return tenant, _with_etag(tenant)

    @tenants_blp.arguments(TenantIn(partial=True))
    @tenants_blp.response(200, TenantOut)
    def patch(self, data: dict[str, Any], tenant_id: int) -> Any:
        """Update a tenant (admin)."""
        actor = current_actor()
        tenant = get_scoped(Tenant, tenant_id, actor)
        check_if_match(tenant)
        tenant = update_tenant(tenant, data, actor=actor)
        return tenant, _with_etag(tenant)

    @tenants_blp.response(204)
    def delete(self, tenant_id: int) -> None:
        """Delete a tenant nothing refers to (admin); otherwise deactivate it."""
        actor = current_actor()
        tenant = get_scoped(Tenant, tenant_id, actor)
        check_if_match(tenant)
        delete_tenant(tenant, actor=actor)


@tenants_blp.route("/by-code/<string:code>")
class TenantByCode(MethodView):
    @tenants_blp.response(200, TenantOut)
    def get(self, code: str) -> Any:
        """Get one tenant by its code."""
        tenant = get_tenant_by_code(code, current_actor())
        return tenant, _with_etag(tenant)


# == users ==============================================================================

users_blp = Blueprint("users", __name__, url_prefix="/api/v1/users", description="Users.")


class UserOut(OutSchema):
    id = fields.Integer()
    username = fields.String()
    full_name = fields.String()
    email = fields.String(allow_none=True)
    role = fields.Enum(Role, by_value=True)
    all_tenants = fields.Boolean()
    tenants = fields.Function(lambda u: [t.code for t in u.tenants])
    active = fields.Boolean()
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class UserIn(InSchema):
    username = fields.String(required=True, validate=validate.Length(1, 150))
    full_name = fields.String(validate=validate.Length(max=200))
    email = fields.Email(allow_none=True, validate=validate.Length(max=254))
    role = fields.Enum(Role, by_value=True, required=True)
    tenants = fields.List(code_field(), validate=validate.Length(max=500))
    all_tenants = fields.Boolean()
    active = fields.Boolean()
    password = fields.String(load_only=True, allow_none=True, validate=validate.Length(10, 200))


def _user_tenant_filter(stmt: sa.Select[Any], codes: list[str]) -> sa.Select[Any]:
    from config.auth import user_tenants

    ids = select(user_tenants.c.user_id).join(Tenant, Tenant.id == user_tenants.c.tenant_id)
    return stmt.where(User.id.in_(ids.where(Tenant.code.in_(codes))))


class UserFilter(FilterSet):
    model = User
    fields = {"username": ["exact", "ic"], "role": ["exact"], "active": ["exact"]}
    filters = {"tenant": Filter(lambda: code_field(), _user_tenant_filter)}
    ordering = ("id", "username", "role", "created_at")
    default_ordering = ("username",)
    search = ("username", "full_name", "email")


def _users_scope(stmt: sa.Select[Any]) -> sa.Select[Any]:
    """Users the caller may see: all-tenant staff and users sharing one of its tenants."""
    from config.auth import user_tenants

    actor = current_actor()
    if actor.all_tenants:
        return stmt
    sharing = select(user_tenants.c.user_id).where(
        user_tenants.c.tenant_id.in_(sorted(visible_tenant_ids(actor) or ()))
    )
    return stmt.where(sa.or_(User.all_tenants.is_(True), User.id.in_(sharing)))


def _get_user(user_id: int) -> User:
    if not 0 < user_id < 2**31:
        raise NotFound(f"User {user_id} not found.")
    user = db.session.execute(_users_scope(select(User).where(User.id == user_id))).scalar()
    if user is None:
        raise NotFound(f"User {user_id} not found.")
    return user


def _tenants_from_codes(codes: list[str]) -> list[Tenant]:
    found = {
        t.code: t
        for t in db.session.execute(select(Tenant).where(Tenant.code.in_(codes))).scalars()
    }
    missing = [c for c in codes if c not in found]
    if missing:
        raise ValidationFailed(
            "Unknown tenant.", errors={"tenants": [f"Unknown tenant {c!r}." for c in missing]}
        )
    return [found[c] for c in dict.fromkeys(codes)]


@users_blp.route("")
class Users(MethodView):
    @users_blp.arguments(UserFilter.schema(), location="query", as_kwargs=False)
    @users_blp.response(200, page_schema(UserOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List the users the caller can see (those sharing one of its tenants)."""
        stmt = _users_scope(select(User).options(selectinload(User.tenants)))
        return paginate(UserFilter.apply(stmt, args), args)

    @users_blp.arguments(UserIn)
    @users_blp.response(201, UserOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a user (admin)."""
        actor = current_actor()
        require(actor, "users.manage")
        user = create_user(
            data["username"],
            role=data["role"],
            tenants=_tenants_from_codes(data.get("tenants", [])),
            all_tenants=data.get("all_tenants", False),
            full_name=data.get("full_name", ""),
            email=data.get("email"),
            password=data.get("password"),
            actor=actor,
        )
        return user, _with_etag(user, _location("users.UserById", user_id=user.id))


@users_blp.route("/me")
class Me(MethodView):
    @users_blp.response(200, UserOut)
    def get(self) -> Any:
        """The authenticated user."""
        return _get_user(current_actor().user_id or 0)


@users_blp.route("/<int:user_id>")
class UserById(MethodView):
    @users_blp.response(200, UserOut)
    def get(self, user_id: int) -> Any:
        """Get one user."""
        user = _get_user(user_id)
        return user, _with_etag(user)

    @users_blp.arguments(UserIn(partial=True))
    @users_blp.response(200, UserOut)
    def patch(self, data: dict[str, Any], user_id: int) -> Any:
        """Update a user (admin): role, tenants, activity, password."""
        actor = current_actor()
        user = _get_user(user_id)
        require(actor, "users.manage")
        check_if_match(user)
        if "username" in data and data["username"] != user.username:
            raise ValidationFailed(
                "Usernames cannot change.", errors={"username": ["Read-only after creation."]}
            )
        data.pop("username", None)
        if "tenants" in data:
            data["tenants"] = _tenants_from_codes(data["tenants"])
        user = update_user(user, data, actor=actor)
        return user, _with_etag(user)


# == tokens =============================================================================

tokens_blp = Blueprint("tokens", __name__, url_prefix="/api/v1/tokens", description="API tokens.")


class TokenOut(OutSchema):
    id = fields.Integer()
    name = fields.String()
    prefix = fields.String(metadata={"description": "First characters, to recognise it."})
    user = fields.Function(lambda t: t.user.username)
    created_at = fields.AwareDateTime()
    expires_at = fields.AwareDateTime(allow_none=True)
    revoked_at = fields.AwareDateTime(allow_none=True)
    last_used_at = fields.AwareDateTime(allow_none=True)


class NewTokenOut(TokenOut):
    token = fields.String(metadata={"description": "The token itself: shown this once."})


class TokenIn(InSchema):
    name = fields.String(required=True, validate=validate.Length(1, 100))
    expires_days = fields.Integer(allow_none=True, validate=validate.Range(1, 3650))
    user = fields.String(
        validate=validate.Length(1, 150), metadata={"description": "Another user (admin)."}
    )


class TokenFilter(FilterSet):
    model = Token
    fields = {"name": ["ic"]}
    filters = {
        "user": Filter(
            lambda: fields.String(validate=validate.Length(1, 150)),
            lambda stmt, names: stmt.where(
                Token.user_id.in_(select(User.id).where(User.username.in_(names)))
            ),
        )
    }
    ordering = ("id", "created_at", "expires_at", "name")
    default_ordering = ("-created_at",)


@tokens_blp.route("")
class Tokens(MethodView):
    @tokens_blp.arguments(TokenFilter.schema(), location="query", as_kwargs=False)
    @tokens_blp.response(200, page_schema(TokenOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List the caller's tokens (admins: everyone's)."""
        actor = current_actor()
        stmt = select(Token)
        if not can(actor, "tokens.manage"):
            stmt = stmt.where(Token.user_id == actor.user_id)
        return paginate(TokenFilter.apply(stmt, args), args)

    @tokens_blp.arguments(TokenIn)
    @tokens_blp.response(201, NewTokenOut)
    def post(self, data: dict[str, Any]) -> Any:
        """Create a token for the caller (admins: for any user). The token is shown once."""
        actor = current_actor()
        user = _get_user(actor.user_id or 0)
        if data.get("user") and data["user"] != user.username:
            require(actor, "tokens.manage")
            other = db.session.execute(select(User).where(User.username == data["user"])).scalar()
            if other is None:
                raise ValidationFailed("Unknown user.", errors={"user": ["Unknown user."]})
            user = other
        token, raw = create_token(
            user, data["name"], expires_days=data.get("expires_days"), now=utcnow(), actor=actor
        )
        token.token = raw  # type: ignore[attr-defined]  # dumped once by NewTokenOut
        return token, _location("tokens.TokenById", token_id=token.id)


@tokens_blp.route("/<int:token_id>")
class TokenById(MethodView):
    @tokens_blp.response(200, TokenOut)
    def get(self, token_id: int) -> Any:
        """Get one of the caller's tokens."""
        actor = current_actor()
        token = db.session.get(Token, token_id) if token_id < 2**31 else None
        if token is None or (token.user_id != actor.user_id and not can(actor, "tokens.manage")):
            raise NotFound(f"Token {token_id} not found.")
        return token

    @tokens_blp.response(204)
    def delete(self, token_id: int) -> None:
        """Revoke a token (the caller's own; admins any)."""
        if token_id >= 2**31:
            raise NotFound(f"Token {token_id} not found.")
        revoke_token(token_id, now=utcnow(), actor=current_actor())


# == change log =========================================================================

changes_blp = Blueprint(
    "changes", __name__, url_prefix="/api/v1/changes", description="The change log (read-only)."
)


class ChangeOut(OutSchema):
    id = fields.Integer()
    at = fields.AwareDateTime()
    user = fields.String(attribute="username")
    action = fields.String()
    object_type = fields.String()
    object_id = fields.Integer()
    before = fields.Dict(allow_none=True)
    after = fields.Dict(allow_none=True)


class ChangeFilter(FilterSet):
    model = ChangeRecord
    fields = {
        "object_type": ["exact"],
        "object_id": ["exact"],
        "action": ["exact"],
        "at": ["gte", "lte"],
    }
    filters = {
        "user": Filter(
            lambda: fields.String(validate=validate.Length(1, 150)),
            lambda stmt, names: stmt.where(ChangeRecord.username.in_(names)),
        )
    }
    ordering = ("id", "at")
    default_ordering = ("-id",)


@changes_blp.route("")
class Changes(MethodView):
    @changes_blp.arguments(ChangeFilter.schema(), location="query", as_kwargs=False)
    @changes_blp.response(200, page_schema(ChangeOut))
    def get(self, args: dict[str, Any]) -> Any:
        """List change-log entries of the objects the caller can see, newest first."""
        stmt = tenant_scope(select(ChangeRecord), current_actor())
        return paginate(ChangeFilter.apply(stmt, args), args)


@changes_blp.route("/<int:change_id>")
class ChangeById(MethodView):
    @changes_blp.response(200, ChangeOut)
    def get(self, change_id: int) -> Any:
        """Get one change-log entry."""
        return get_scoped(ChangeRecord, change_id, current_actor())


# == health and docs (no auth) ==========================================================

health_blp = Blueprint("health", __name__, description="Liveness and readiness.")


@health_blp.route("/healthz")
class Healthz(MethodView):
    @health_blp.response(200)
    def get(self) -> Any:
        """The process is alive."""
        return {"status": "ok"}


@health_blp.route("/readyz")
class Readyz(MethodView):
    @health_blp.response(200)
    def get(self) -> Any:
        """The database answers and its schema is at the latest migration."""
        try:
            current = set(
                db.session.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
            )
        except sa.exc.SQLAlchemyError:
            db.session.rollback()
            raise ServiceUnavailable("The database is unreachable or not initialised.") from None
        heads = head_revisions()
        if current != heads:
            raise ServiceUnavailable(
                "The database schema is not at the latest migration; run `syndic db upgrade`."
            )
        return {"status": "ok", "database": "ok", "migrations": sorted(heads)}


_DOCS = """<!doctype html>
<html lang="en"><head><meta charset="utf-8"><title>{{ spec.info.title }} API</title>
<meta name="viewport" content="width=device-width, initial-scale=1">
<style>
body{font:15px/1.5 system-ui,sans-serif;max-width:70rem;margin:auto;padding:1rem;color:#1b1b1b}
h2{border-bottom:1px solid #ccc;margin-top:2rem} code{background:#f3f3f3;padding:0 .2em}
.op{margin:.6rem 0;padding:.4rem .6rem;border-left:4px solid #0b5fa5;background:#f7f9fc}
.m{display:inline-block;min-width:4.5em;font-weight:bold;text-transform:uppercase}
table{border-collapse:collapse} td,th{border:1px solid #ddd;padding:.1rem .4rem;text-align:left}
</style></head><body>
<h1>{{ spec.info.title }} API {{ spec.info.version }}</h1>
<p>Machine-readable document: <a href="{{ json_url }}">openapi.json</a> (OpenAPI
{{ spec.openapi }}). Every <code>/api/v1</code> call needs
<code>Authorization: Bearer &lt;token&gt;</code>; errors are
<code>application/problem+json</code>.</p>
<nav aria-label="Resources"><ul>{% for tag in tags %}
<li><a href="#{{ tag }}">{{ tag }}</a></li>{% endfor %}</ul></nav>
{% for tag in tags %}<section id="{{ tag }}"><h2>{{ tag }}</h2>
{% for path, method, op in ops[tag] %}<div class="op"><span class="m">{{ method }}</span>
<code>{{ path }}</code> — {{ op.summary or "" }}
{% if op.parameters %}<details><summary>Parameters</summary><table>
<tr><th>name</th><th>in</th><th>type</th></tr>
{% for p in op.parameters if p.name %}<tr><td>{{ p.name }}</td><td>{{ p.in }}</td>
<td>{{ (p.schema or {}).type or "" }}</td></tr>{% endfor %}</table></details>{% endif %}
<div>Responses: {% for code in op.responses %}<code>{{ code }}</code> {% endfor %}</div>
</div>{% endfor %}</section>{% endfor %}
</body></html>"""


docs_bp = FlaskBlueprint("docs", __name__)


@docs_bp.get("/api/docs")
def api_docs() -> Response:
    """A browsable page of the API, generated from the OpenAPI document (no CDN)."""
    api = current_app.extensions["syndic.api"]
    spec = api.openapi_dict()
    ops: dict[str, list[tuple[str, str, Any]]] = {}
    for path, methods in spec.get("paths", {}).items():
        for method, op in methods.items():
            if isinstance(op, dict) and "responses" in op:
                tag = (op.get("tags") or ["other"])[0]
                ops.setdefault(tag, []).append((path, method, op))
    html = render_template_string(
        _DOCS, spec=spec, ops=ops, tags=sorted(ops), json_url="/api/v1/openapi.json"
    )
    return Response(html, mimetype="text/html")
