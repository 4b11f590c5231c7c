"""Request and response schemas of the CMDB API, and the list filters."""

from __future__ import annotations

from typing import Any

import marshmallow as ma
import sqlalchemy as sa
from marshmallow import fields, validate
from sqlalchemy import select

from cmdb.kinds import FILTERABLE_ATTRIBUTES, AttributeSpec
from cmdb.models import CI, CIKind, CIStatus, Relation, RelationType, Usage, UsageConfidence
from config.api import InSchema, OutSchema, QuerySchema, code_field
from config.filters import INT64, Filter, FilterSet, like_escape
from config.tenancy import Tenant

KEY_PATTERN = r"^[a-z_]{2,20}:[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"
CI_CODE_PATTERN = r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$"


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
        if isinstance(value, str) and validate.Regexp(KEY_PATTERN).regex.match(value):
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


class CIIn(InSchema):
    kind = fields.Enum(CIKind, by_value=True, required=True)
    code = fields.String(
        required=True,
        validate=validate.Regexp(
            CI_CODE_PATTERN,
            error="Lowercase letters, digits, '.', '_' and '-'; 1-64 characters.",
        ),
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
