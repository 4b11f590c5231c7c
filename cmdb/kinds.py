"""Per-kind attribute schemas of CIs and the relation-type/kind compatibility table.

Every CI kind declares which attributes it accepts, of which type; unknown attributes and
wrong types are a 422 naming ``attributes.<name>``. The same declarations drive the list
filters (``?attributes.domain=Finances``), so a filter on an attribute no kind has is a 400.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import marshmallow as ma
from marshmallow import fields, validate

from cmdb.models import CIKind, RelationType
from config.errors import ValidationFailed

__all__ = [
    "ALLOWED_RELATIONS",
    "ENVIRONMENTS",
    "FILTERABLE_ATTRIBUTES",
    "AttributeSpec",
    "allowed_targets",
    "check_relation_kinds",
    "validate_attributes",
]

ENVIRONMENTS = ("production", "preproduction", "test", "development", "training")
LEGAL_BASES = (
    "consent",
    "contract",
    "legal_obligation",
    "vital_interests",
    "public_task",
    "legitimate_interests",
)
DB_ENGINES = (
    "postgresql",
    "oracle",
    "sqlserver",
    "mysql",
    "mariadb",
    "sqlite",
    "mongodb",
    "other",
)


def _text(max_len: int = 200, **kw: Any) -> fields.String:
    return fields.String(validate=validate.Length(max=max_len), **kw)


def _validate_ip(value: str) -> None:
    try:
        ipaddress.ip_address(value)
    except ValueError:
        raise ma.ValidationError("Not a valid IP address.") from None


class _Attrs(ma.Schema):
    class Meta:
        unknown = ma.RAISE


class GdprAttrs(_Attrs):
    """GDPR processing record of an application (what the members' DPOs need)."""

    purpose = _text(500, required=True)
    data_categories = fields.List(_text(100), validate=validate.Length(max=50))
    data_subjects = fields.List(_text(100), validate=validate.Length(max=50))
    sensitive = fields.Boolean(load_default=False)
    retention = _text(200)
    legal_basis = fields.String(validate=validate.OneOf(LEGAL_BASES))
    recipients = fields.List(_text(200), validate=validate.Length(max=50))
    transfers_outside_eu = fields.Boolean(load_default=False)


class SiteAttrs(_Attrs):
    address = _text(300)
    city = _text(100)
    role = fields.String(validate=validate.OneOf(("primary", "secondary", "member", "other")))


class ClusterAttrs(_Attrs):
    min_healthy = fields.Integer(strict=True, load_default=1, validate=validate.Range(1, 10_000))
    technology = _text(100)


class HostAttrs(_Attrs):
    vendor = _text(100)
    model = _text(100)
    serial = _text(100)
    cpu_cores = fields.Integer(strict=True, validate=validate.Range(1, 100_000))
    memory_gb = fields.Float(allow_nan=False, validate=validate.Range(0, 1e7))


class ServerAttrs(_Attrs):
    environment = fields.String(load_default="production", validate=validate.OneOf(ENVIRONMENTS))
    virtual = fields.Boolean(load_default=True)
    os = _text(100)
    ip = fields.String(validate=[validate.Length(max=45), _validate_ip])
    role = _text(100)
    vcpus = fields.Integer(strict=True, validate=validate.Range(1, 100_000))
    memory_gb = fields.Float(allow_nan=False, validate=validate.Range(0, 1e7))


class DatabaseAttrs(_Attrs):
    engine = fields.String(validate=validate.OneOf(DB_ENGINES))
    version = _text(50)
    size_gb = fields.Float(allow_nan=False, validate=validate.Range(0, 1e9))
    environment = fields.String(load_default="production", validate=validate.OneOf(ENVIRONMENTS))


class ApplicationAttrs(_Attrs):
    domain = _text(100)
    function = _text(200)
    product = _text(200)
    vendor = _text(200)
    url = fields.Url(validate=validate.Length(max=500))
    criticality = fields.Integer(strict=True, validate=validate.Range(1, 5))
    gdpr = fields.Nested(GdprAttrs)


class ServiceAttrs(_Attrs):
    description = _text(1000)
    owner = _text(200)


class NetworkLinkAttrs(_Attrs):
    provider = _text(100)
    link_type = fields.String(
        validate=validate.OneOf(("fiber", "mpls", "vpn", "internet", "radio", "other"))
    )
    bandwidth_mbps = fields.Integer(strict=True, validate=validate.Range(1, 10_000_000))


SCHEMAS: dict[CIKind, ma.Schema] = {
    CIKind.SITE: SiteAttrs(),
    CIKind.CLUSTER: ClusterAttrs(),
    CIKind.HOST: HostAttrs(),
    CIKind.SERVER: ServerAttrs(),
    CIKind.DATABASE: DatabaseAttrs(),
    CIKind.APPLICATION: ApplicationAttrs(),
    CIKind.SERVICE: ServiceAttrs(),
    CIKind.NETWORK_LINK: NetworkLinkAttrs(),
}


def _prefixed(messages: Any, prefix: str = "attributes") -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    if isinstance(messages, Mapping):
        for key, value in messages.items():
            name = prefix if key == "_schema" else f"{prefix}.{key}"
            for k, v in _prefixed(value, name).items():
                out.setdefault(k, []).extend(v)
    elif isinstance(messages, list | tuple):
        for item in messages:
            if isinstance(item, str):
                out.setdefault(prefix, []).append(item)
            else:
                for k, v in _prefixed(item, prefix).items():
                    out.setdefault(k, []).extend(v)
    else:
        out.setdefault(prefix, []).append(str(messages))
    return out


def validate_attributes(kind: CIKind, attributes: Any) -> dict[str, Any]:
    """Check ``attributes`` against the kind's schema; return them with defaults filled.

    Raises ValidationFailed (422) naming each bad ``attributes.<name>``: unknown names,
    wrong types, out-of-range or unlisted values.
    """
    if attributes is None:
        attributes = {}
    if not isinstance(attributes, Mapping):
        raise ValidationFailed("Invalid attributes.", errors={"attributes": ["Must be an object."]})
    try:
        loaded = SCHEMAS[kind].load(dict(attributes))
    except ma.ValidationError as err:
        raise ValidationFailed(
            f"Invalid attributes for a {kind.value}.", errors=_prefixed(err.messages)
        ) from None
    return _plain(loaded)


def _plain(value: Any) -> Any:
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


# -- filterable attributes ------------------------------------------------------------------


@dataclass(frozen=True)
class AttributeSpec:
    """A scalar attribute that lists can filter on, and its JSON type."""

    name: str
    type: str  # "string" | "integer" | "number" | "boolean"
    kinds: tuple[CIKind, ...]


def _scalar_type(field: fields.Field) -> str | None:
    if isinstance(field, fields.Boolean):
        return "boolean"
    if isinstance(field, fields.Integer):
        return "integer"
    if isinstance(field, fields.Float):
        return "number"
    if isinstance(field, fields.String):
        return "string"
    return None


def _filterable() -> dict[str, AttributeSpec]:
    found: dict[str, AttributeSpec] = {}
    for kind, schema in SCHEMAS.items():
        for name, field in schema.fields.items():
            kind_type = _scalar_type(field)
            if kind_type is None:
                continue
            prior = found.get(name)
            if prior is not None and prior.type != kind_type:
                raise TypeError(f"attribute {name!r} has two types across kinds")
            kinds = (prior.kinds if prior else ()) + (kind,)
            found[name] = AttributeSpec(name, kind_type, kinds)
    return dict(sorted(found.items()))


FILTERABLE_ATTRIBUTES: dict[str, AttributeSpec] = _filterable()


# -- which relation may join which kinds ----------------------------------------------------

_ANY = frozenset(CIKind)

# API.md §2, extended: a server or database may be a member of a cluster (a farm, a
# replica set), and an application or database may be hosted on a cluster (of servers).
ALLOWED_RELATIONS: dict[RelationType, tuple[frozenset[CIKind], frozenset[CIKind]]] = {
    RelationType.RUNS_ON: (
        frozenset({CIKind.SERVER}),
        frozenset({CIKind.HOST, CIKind.CLUSTER}),
    ),
    RelationType.MEMBER_OF: (
        frozenset({CIKind.HOST, CIKind.SERVER, CIKind.DATABASE}),
        frozenset({CIKind.CLUSTER}),
    ),
    RelationType.LOCATED_IN: (
        frozenset({CIKind.HOST, CIKind.CLUSTER, CIKind.SERVER, CIKind.NETWORK_LINK}),
        frozenset({CIKind.SITE}),
    ),
    RelationType.DEPENDS_ON: (
        frozenset({CIKind.APPLICATION, CIKind.SERVICE, CIKind.DATABASE}),
        _ANY,
    ),
    RelationType.HOSTED_ON: (
        frozenset({CIKind.DATABASE, CIKind.APPLICATION}),
        frozenset({CIKind.SERVER, CIKind.CLUSTER}),
    ),
}


def allowed_targets(rel_type: RelationType, source_kind: CIKind) -> frozenset[CIKind]:
    sources, targets = ALLOWED_RELATIONS[rel_type]
    return targets if source_kind in sources else frozenset()


def check_relation_kinds(
    rel_type: RelationType, source_kind: CIKind, target_kind: CIKind, *, field: str = "type"
) -> None:
    """Raise ValidationFailed (422) when ``rel_type`` may not join these kinds."""
    sources, targets = ALLOWED_RELATIONS[rel_type]
    if source_kind in sources and target_kind in targets:
        return
    allowed = ", ".join(sorted(k.value for k in targets)) if source_kind in sources else ""
    if allowed:
        message = (
            f"A {source_kind.value} may be {rel_type.value} only a CI of kind: {allowed} "
            f"(not a {target_kind.value})."
        )
    else:
        message = (
            f"A {source_kind.value} cannot be the source of {rel_type.value}; sources are: "
            f"{', '.join(sorted(k.value for k in sources))}."
        )
    raise ValidationFailed(
        "Relation type not allowed between these kinds.", errors={field: [message]}
    )
