"""Request and response schemas of the CMDB API, and the list filters."""

from __future__ import annotations

import re
from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from flask_smorest.fields import Upload
from marshmallow import fields, validate
from sqlalchemy import select

from cmdb.kinds import FILTERABLE_ATTRIBUTES, AttributeSpec
from cmdb.models import CI, CIKind, CIStatus, Relation, RelationType, Usage, UsageConfidence
from config.api import InSchema, OutSchema, QuerySchema, code_field
from config.filters import INT64, Filter, FilterSet, like_escape
from config.tenancy import Tenant

KEY_PATTERN = r"^[a-z_]{2,20}:[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
CI_CODE_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
_KEY_RE = re.compile(KEY_PATTERN)


class CIRef(fields.Field):
    """A CI named by integer id or by global key ``kind:code``."""

    default_error_messages = {"invalid": "Give a CI id (integer) or a key kind:code."}

    def _deserialize(self, value: Any, attr: Any, data: Any, **kwargs: Any) -> Any:
        if isinstance(value, bool):
            raise self.make_error("invalid")
        if isinstance(value, int):
            if not 0 < value < 2**31:
                raise ma.ValidationError("Not a CI id.")
            return value
        if isinstance(value, str) and _KEY_RE.match(value):
            return value
        raise self.make_error("invalid")


CI_REF_DOC = {
    "oneOf": [
        {"type": "integer", "minimum": 1, "maximum": 2**31 - 1},
        {"type": "string", "pattern": KEY_PATTERN, "example": "host:hv-ivry-03"},
    ]
}


def ci_ref(**kwargs: Any) -> CIRef:
    metadata = {**CI_REF_DOC, **kwargs.pop("metadata", {})}
    return CIRef(metadata=metadata, **kwargs)


# -- CIs ------------------------------------------------------------------------------------


class CIOut(OutSchema):
    id = fields.Integer()
    key = fields.String(metadata={"description": "Global key kind:code."})
    kind = fields.Enum(CIKind, by_value=True)
    code = fields.String()
    name = fields.String()
    tenant = fields.Function(lambda ci: ci.tenant_code, allow_none=True)
    status = fields.Enum(CIStatus, by_value=True)
    attributes = fields.Dict(metadata={"description": "Validated per kind (see docs/cmdb.md)."})
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()

    @staticmethod
    def fast_dump(ci: Any) -> dict[str, Any]:
        """The document the declared fields give (checked against them under test), built
        directly: per-field steps were most of the cost of a list page. ``ci`` is a CI or
        a row of ``cmdb.queries.ci_page_rows``."""
        created, updated = ci.created_at, ci.updated_at
        return {
            "id": ci.id,
            "key": ci.key,
            "kind": ci.kind.value,
            "code": ci.code,
            "name": ci.name,
            "tenant": ci.tenant_code,
            "status": ci.status.value,
            "attributes": ci.attributes,
            "created_at": None if created is None else created.isoformat(),
            "updated_at": None if updated is None else updated.isoformat(),
        }


class CIIn(InSchema):
    kind = fields.Enum(CIKind, by_value=True, required=True)
    code = fields.String(
        required=True,
        validate=[
            validate.Length(1, 64),
            validate.Regexp(
                CI_CODE_PATTERN,
                error="Lowercase letters, digits, '.', '_' and '-'; 1-64 characters.",
            ),
        ],
    )
    name = fields.String(required=True, validate=validate.Length(1, 200))
    tenant = code_field(allow_none=True, metadata={"description": "Tenant code; null = shared."})
    status = fields.Enum(CIStatus, by_value=True)
    attributes = fields.Dict(
        keys=fields.String(validate=validate.Length(1, 64)),
        metadata={"description": "Per-kind attributes; unknown ones are refused."},
    )


class CIPatch(CIIn):
    """Partial update; ``attributes`` is merged (a null value removes the attribute)."""


def _attribute_column(spec: AttributeSpec) -> Any:
    element = CI.attributes[spec.name]
    if spec.type == "integer":
        return element.as_integer()
    if spec.type == "number":
        return element.as_float()
    if spec.type == "boolean":
        return element.as_boolean()
    return element.as_string()


def _attribute_field(spec: AttributeSpec) -> fields.Field:
    if spec.type == "integer":
        return fields.Integer(strict=False, validate=validate.Range(*INT64))
    if spec.type == "number":
        return fields.Float(allow_nan=False)
    if spec.type == "boolean":
        return fields.Boolean()
    return fields.String(validate=validate.Length(max=200))


def _attribute_filters() -> dict[str, Filter]:
    found: dict[str, Filter] = {}
    for name, spec in FILTERABLE_ATTRIBUTES.items():
        kinds = ", ".join(k.value for k in spec.kinds)

        def exact(stmt: sa.Select[Any], values: list[Any], spec: AttributeSpec = spec) -> Any:
            return stmt.where(_attribute_column(spec).in_(values))

        found[f"attr__{name}"] = Filter(
            lambda spec=spec, name=name, kinds=kinds: fields.List(
                _attribute_field(spec),
                data_key=f"attributes.{name}",
                metadata={"description": f"Attribute {name} of {kinds} (repeat = OR)."},
            ),
            exact,
            many=False,
        )
        if spec.type == "string":

            def contains(stmt: sa.Select[Any], value: str, spec: AttributeSpec = spec) -> Any:
                pattern = f"%{like_escape(value)}%"
                return stmt.where(_attribute_column(spec).ilike(pattern, escape="\\"))

            found[f"attr__{name}__ic"] = Filter(
                lambda name=name: fields.String(
                    validate=validate.Length(1, 200),
                    data_key=f"attributes.{name}__ic",
                    metadata={"description": f"Attribute {name} contains (case-insensitive)."},
                ),
                contains,
                many=False,
            )
    return found


def _tenant_filter(stmt: sa.Select[Any], codes: list[str]) -> sa.Select[Any]:
    return stmt.where(CI.tenant_id.in_(select(Tenant.id).where(Tenant.code.in_(codes))))


def _shared_filter(stmt: sa.Select[Any], shared: bool) -> sa.Select[Any]:
    return stmt.where(CI.tenant_id.is_(None) if shared else CI.tenant_id.is_not(None))


def _used_by_filter(stmt: sa.Select[Any], codes: list[str]) -> sa.Select[Any]:
    users = (
        select(Usage.ci_id).join(Tenant, Tenant.id == Usage.tenant_id).where(Tenant.code.in_(codes))
    )
    return stmt.where(CI.id.in_(users))


class CIFilter(FilterSet):
    model = CI
    fields = {
        "kind": ["exact"],
        "status": ["exact"],
        "code": ["exact", "ic"],
        "name": ["ic"],
        "created_at": ["gte", "lte"],
        "updated_at": ["gte", "lte"],
    }
    filters = {
        "tenant": Filter(lambda: code_field(), _tenant_filter, description="Tenant code."),
        "shared": Filter(lambda: fields.Boolean(), _shared_filter, many=False),
        "used_by": Filter(lambda: code_field(), _used_by_filter),
        **_attribute_filters(),
    }
    ordering = ("id", "kind", "code", "name", "status", "created_at", "updated_at")
    default_ordering = ("kind", "code")
    search = ("code", "name")


# -- relations ------------------------------------------------------------------------------


class RelationOut(OutSchema):
    id = fields.Integer()
    source = fields.Integer(attribute="source_id")
    target = fields.Integer(attribute="target_id")
    type = fields.Enum(RelationType, by_value=True)
    source_key = fields.Function(lambda r: r.source.key)
    target_key = fields.Function(lambda r: r.target.key)
    created_at = fields.AwareDateTime()
    updated_at = fields.AwareDateTime()


class RelationIn(InSchema):
    source = ci_ref(required=True)
    target = ci_ref(required=True)
    type = fields.Enum(RelationType, by_value=True, required=True)


def _ci_ref_condition(column: Any, refs: list[str]) -> Any:
    ids = [int(r) for r in refs if r.isdigit() and len(r) <= 10]
    keys = [r.split(":", 1) for r in refs if not r.isdigit() and ":" in r]
    conds = []
    if ids:
        conds.append(column.in_(ids))
    if keys:
        by_key = select(CI.id).where(
            sa.or_(*(sa.and_(sa.cast(CI.kind, sa.String(20)) == k, CI.code == c) for k, c in keys))
        )
        conds.append(column.in_(by_key))
    return sa.or_(*conds) if conds else sa.false()


_REF_FIELD = {
    "validate": validate.Regexp(
        r"^(\d{1,10}|[a-z_]{2,20}:[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?)$",
        error="A CI id or key kind:code.",
    )
}


class RelationFilter(FilterSet):
    model = Relation
    fields = {"type": ["exact"], "created_at": ["gte", "lte"]}
    filters = {
        "source": Filter(
            lambda: fields.String(**_REF_FIELD),
            lambda stmt, refs: stmt.where(_ci_ref_condition(Relation.source_id, refs)),
            description="Source CI id or key.",
        ),
        "target": Filter(
            lambda: fields.String(**_REF_FIELD),
            lambda stmt, refs: stmt.where(_ci_ref_condition(Relation.target_id, refs)),
            description="Target CI id or key.",
        ),
        "ci": Filter(
            lambda: fields.String(**_REF_FIELD),
            lambda stmt, refs: stmt.where(
                sa.or_(
                    _ci_ref_condition(Relation.source_id, refs),
                    _ci_ref_condition(Relation.target_id, refs),
                )
            ),
            description="Either end (CI id or key).",
        ),
    }
    ordering = ("id", "type", "created_at")
    default_ordering = ("id",)


# -- usage ----------------------------------------------------------------------------------


class UsageOut(OutSchema):
    id = fields.Integer()
    ci = fields.Function(lambda u: u.ci.key)
    ci_id = fields.Integer()
    tenant = fields.Function(lambda u: u.tenant.code)
    confidence = fields.Enum(UsageConfidence, by_value=True)
    note = fields.String()
    created_at = fields.AwareDateTime()


class UsageIn(InSchema):
    tenant = code_field(required=True)
    confidence = fields.Enum(UsageConfidence, by_value=True, load_default=UsageConfidence.CERTAIN)
    note = fields.String(validate=validate.Length(max=500), load_default="")


class UsageFilter(FilterSet):
    model = Usage
    fields = {"confidence": ["exact"]}
    ordering = {"id": Usage.id, "tenant": Tenant.code, "created_at": Usage.created_at}
    default_ordering = ("tenant",)


class UsageDeleteArgs(QuerySchema):
    tenant = code_field(required=True, metadata={"description": "The tenant to unlink."})


# -- impact and analyses --------------------------------------------------------------------


class ImpactIn(InSchema):
    failed = fields.List(
        ci_ref(),
        required=True,
        validate=validate.Length(1, 1000),
        metadata={"description": "CI ids or keys failing at once."},
    )
    depth = fields.Integer(
        validate=validate.Range(1, 100),
        metadata={"description": "Stop after this many relation hops (default: no limit)."},
    )


class ImpactQuery(QuerySchema):
    depth = fields.Integer(
        strict=False,
        validate=validate.Range(1, 100),
        metadata={"description": "Stop after this many relation hops (default: no limit)."},
    )


class DownOut(OutSchema):
    ci = fields.String(required=True)
    kind = fields.String(required=True)
    because = fields.List(fields.String(), required=True)


class DegradedOut(OutSchema):
    ci = fields.String(required=True)
    kind = fields.String(required=True)
    members_down = fields.Integer(required=True)
    members = fields.Integer(required=True)
    min_healthy = fields.Integer(required=True)


class TenantImpactOut(OutSchema):
    code = fields.String(required=True)
    applications = fields.List(fields.String(), required=True)


class OvercommitOut(OutSchema):
    ci = fields.String(required=True)
    resource = fields.String(required=True)
    demand = fields.Float(required=True)
    capacity = fields.Float(required=True)


class ImpactOut(OutSchema):
    failed = fields.List(fields.String(), required=True)
    down = fields.List(fields.Nested(DownOut), required=True)
    degraded = fields.List(fields.Nested(DegradedOut), required=True)
    tenants = fields.List(fields.Nested(TenantImpactOut), required=True)
    paths = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.List(fields.String())),
        required=True,
        metadata={"description": "Application key → paths from a failed CI to it."},
    )
    other_tenants = fields.Integer(
        required=True, metadata={"description": "Impacted tenants hidden from the caller."}
    )
    other_cis = fields.Integer(metadata={"description": "Down CIs hidden from the caller."})
    overcommitted = fields.List(
        fields.Nested(OvercommitOut),
        metadata={"description": "Clusters still up whose survivors cannot carry the load."},
    )


class SpofQuery(QuerySchema):
    kind = fields.Enum(CIKind, by_value=True)
    limit = fields.Integer(load_default=50, strict=False, validate=validate.Range(1, 1000))
    offset = fields.Integer(load_default=0, strict=False, validate=validate.Range(0, 2**31 - 1))


class SpofOut(OutSchema):
    ci = fields.String(required=True)
    kind = fields.String(required=True)
    applications = fields.List(fields.String(), required=True)
    tenants = fields.List(fields.String(), required=True)
    score = fields.Integer(required=True)
    other_tenants = fields.Integer()
    other_applications = fields.Integer()


GRAPH_FORMATS = {
    "json": "application/json",
    "dot": "text/vnd.graphviz",
    "mermaid": "text/vnd.mermaid",
    "svg": "image/svg+xml",
}


class GraphQuery(QuerySchema):
    depth = fields.Integer(load_default=2, strict=False, validate=validate.Range(0, 10))
    direction = fields.String(load_default="both", validate=validate.OneOf(("up", "down", "both")))
    format = fields.String(load_default="json", validate=validate.OneOf(tuple(GRAPH_FORMATS)))


class GraphNodeOut(OutSchema):
    key = fields.String(required=True)
    kind = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)


class GraphEdgeOut(OutSchema):
    source = fields.String(required=True)
    target = fields.String(required=True)
    type = fields.String(required=True)


class GraphOut(OutSchema):
    center = fields.String(required=True)
    depth = fields.Integer(required=True)
    direction = fields.String(required=True)
    nodes = fields.List(fields.Nested(GraphNodeOut), required=True)
    edges = fields.List(fields.Nested(GraphEdgeOut), required=True)


# -- imports --------------------------------------------------------------------------------


class ImportFile(ma.Schema):
    file = Upload(
        required=True,
        metadata={"description": "The CSV (UTF-8 or Windows-1252) or XLSX file; see docs."},
    )


class ImportQuery(QuerySchema):
    dry_run = fields.Boolean(
        load_default=False, metadata={"description": "Check every row, write nothing."}
    )


class ImportCountsOut(OutSchema):
    created = fields.Integer(required=True)
    updated = fields.Integer(required=True)
    unchanged = fields.Integer(required=True)


class ImportOut(OutSchema):
    dry_run = fields.Boolean(required=True)
    rows = fields.Integer(required=True)
    cis = fields.Nested(ImportCountsOut, required=True)
    relations = fields.Nested(ImportCountsOut, required=True)
    usage = fields.Nested(ImportCountsOut, required=True)


# -- findings and GDPR ----------------------------------------------------------------------

FINDING_KINDS = (
    "false_redundancy",
    "double_point_of_failure",
    "overcommitted",
    "overcommitted_on_host_failure",
    "below_min_healthy",
    "application_not_hosted",
    "application_unused",
    "analysis_truncated",
)


class FindingsQuery(QuerySchema):
    kind = fields.String(validate=validate.OneOf(FINDING_KINDS))
    limit = fields.Integer(load_default=50, strict=False, validate=validate.Range(1, 1000))
    offset = fields.Integer(load_default=0, strict=False, validate=validate.Range(0, 2**31 - 1))


class FindingOut(OutSchema):
    kind = fields.String(required=True, metadata={"enum": list(FINDING_KINDS)})
    severity = fields.String(required=True, metadata={"enum": ["high", "medium", "low"]})
    ci = fields.String(required=True, allow_none=True)
    cis = fields.List(fields.String(), required=True)
    applications = fields.List(fields.String())
    score = fields.Integer()
    resources = fields.List(fields.Nested(OvercommitOut))
    detail = fields.String(required=True)


class GdprQuery(QuerySchema):
    tenant = code_field(required=True, metadata={"description": "The member (tenant code)."})


class HostingOut(OutSchema):
    sites = fields.List(fields.String())
    clusters = fields.List(fields.String())
    hosts = fields.List(fields.String())
    servers = fields.List(fields.String())
    databases = fields.List(fields.String())
    network_links = fields.List(fields.String())
    depends_on = fields.List(fields.String())


class ActivityOut(OutSchema):
    application = fields.String(required=True)
    name = fields.String(required=True)
    status = fields.String(required=True)
    domain = fields.String(allow_none=True)
    function = fields.String(allow_none=True)
    product = fields.String(allow_none=True)
    vendor = fields.String(allow_none=True)
    usage_confidence = fields.String(required=True)
    processing = fields.Dict(
        allow_none=True, metadata={"description": "The application's gdpr attributes, if any."}
    )
    hosting = fields.Nested(HostingOut, required=True)


class GdprRegisterOut(OutSchema):
    tenant = fields.String(required=True)
    tenant_name = fields.String(required=True)
    activities = fields.List(fields.Nested(ActivityOut), required=True)
    documented = fields.Integer(required=True)
    undocumented = fields.Integer(required=True)
