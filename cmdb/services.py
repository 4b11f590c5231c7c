"""CMDB use cases: create, change and delete CIs, relations and usage links; resolve keys.

Every write checks visibility first (a CI the caller cannot see is unknown), then the
``cmdb.write`` permission (infra and admin), then the rules, inside one transaction. The
graph version is bumped by the ``before_flush`` hook of ``cmdb.models`` in that same
transaction, so every process's cached graph notices the change.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa
from sqlalchemy import select

from cmdb.errors import CIKeyConflict, RelationCycle, UnknownCIs
from cmdb.kinds import check_relation_kinds, validate_attributes
from cmdb.models import (
    CI,
    CIKind,
    CIStatus,
    Relation,
    RelationType,
    Usage,
    UsageConfidence,
)
from config.auth import Actor, Role, register_permission, require
from config.db import db, transaction
from config.errors import Conflict, NotFound, ValidationFailed
from config.tenancy import Tenant, get_scoped, resolve_tenant, tenant_scope

__all__ = [
    "CODE_RE",
    "add_usage",
    "create_ci",
    "create_relation",
    "delete_ci",
    "delete_relation",
    "get_ci",
    "get_ci_by_key",
    "get_relation",
    "parse_key",
    "remove_usage",
    "resolve_ci",
    "resolve_cis",
    "update_ci",
    "update_relation",
]

register_permission("cmdb.write", [Role.INFRA])

CODE_RE = re.compile(r"^[a-z0-9](?:[a-z0-9._-]{0,62}[a-z0-9])?$")
KEY_RE = re.compile(r"^([a-z_]{2,20}):(.{1,64})$")
_KINDS = {k.value: k for k in CIKind}
MAX_ID = 2**31 - 1


# -- keys and lookups ---------------------------------------------------------------------


def parse_key(key: str) -> tuple[CIKind, str] | None:
    """``"host:hv-01"`` → (CIKind.HOST, "hv-01"); None if it is not a well-formed key."""
    match = KEY_RE.match(key)
    if not match or match.group(1) not in _KINDS:
        return None
    return _KINDS[match.group(1)], match.group(2)


def _ci_by_key_stmt(kind: CIKind, code: str) -> sa.Select[Any]:
    return select(CI).where(CI.kind == kind, CI.code == code)


def get_ci(ci_id: int, actor: Actor) -> CI:
    """A visible CI by id, or NotFound (missing and foreign look the same)."""
    return get_scoped(CI, ci_id, actor)


def get_ci_by_key(key: str, actor: Actor) -> CI:
    """A visible CI by its global key ``kind:code``, or NotFound."""
    parsed = parse_key(key)
    ci = None
    if parsed is not None:
        ci = db.session.execute(tenant_scope(_ci_by_key_stmt(*parsed), actor)).scalar()
    if ci is None:
        raise NotFound(f"CI {key!r} not found.")
    return ci


def _lookup(key_or_id: Any, actor: Actor) -> CI | None:
    if isinstance(key_or_id, bool):
        return None
    if isinstance(key_or_id, str) and key_or_id.isdigit() and len(key_or_id) <= 10:
        key_or_id = int(key_or_id)
    if isinstance(key_or_id, int):
        if not 0 < key_or_id <= MAX_ID:
            return None
        stmt = tenant_scope(select(CI).where(CI.id == key_or_id), actor)
        return db.session.execute(stmt).scalar()
    if isinstance(key_or_id, str):
        parsed = parse_key(key_or_id)
        if parsed is None:
            return None
        return db.session.execute(tenant_scope(_ci_by_key_stmt(*parsed), actor)).scalar()
    return None


def resolve_ci(key_or_id: Any, actor: Actor, *, field: str = "ci") -> CI:
    """A CI named in a request body by global key (``kind:code``) or integer id.

    Raises ValidationFailed (422) naming ``field`` when it is malformed, missing, or
    belongs to a tenant the actor cannot see (the two look the same).
    """
    ci = _lookup(key_or_id, actor)
    if ci is None:
        shown = key_or_id if isinstance(key_or_id, int | str) else type(key_or_id).__name__
        raise ValidationFailed(
            "Unknown configuration item.",
            errors={field: [f"Unknown CI {shown!r} (give an id or a kind:code key)."]},
        )
    return ci


def resolve_cis(keys_or_ids: Sequence[Any], actor: Actor) -> list[CI]:
    """Several CIs by key or id (two statements whatever their number), in the order given,
    without duplicates. Raises UnknownCIs (404) listing every one that is not visible."""
    ids: set[int] = set()
    pairs: set[tuple[CIKind, str]] = set()
    unknown: list[Any] = []
    for item in keys_or_ids:
        if isinstance(item, str) and item.isdigit() and len(item) <= 10:
            item = int(item)
        if isinstance(item, int) and not isinstance(item, bool) and 0 < item <= MAX_ID:
            ids.add(item)
        elif isinstance(item, str) and parse_key(item) is not None:
            pairs.add(parse_key(item))  # type: ignore[arg-type]
        else:
            unknown.append(item)
    found_by_id: dict[int, CI] = {}
    found_by_key: dict[tuple[CIKind, str], CI] = {}
    if ids:
        stmt = tenant_scope(select(CI).where(CI.id.in_(sorted(ids))), actor)
        found_by_id = {ci.id: ci for ci in db.session.execute(stmt).scalars()}
    if pairs:
        cond = sa.or_(*(sa.and_(CI.kind == k, CI.code == c) for k, c in sorted(pairs)))
        stmt = tenant_scope(select(CI).where(cond), actor)
        found_by_key = {(ci.kind, ci.code): ci for ci in db.session.execute(stmt).scalars()}
    result: dict[int, CI] = {}
    for item in keys_or_ids:
        if isinstance(item, str) and item.isdigit() and len(item) <= 10:
            item = int(item)
        ci = None
        if isinstance(item, int) and not isinstance(item, bool):
            ci = found_by_id.get(item)
        elif isinstance(item, str) and (parsed := parse_key(item)) is not None:
            ci = found_by_key.get(parsed)
        if ci is None:
            if item not in unknown:
                unknown.append(item)
        else:
            result.setdefault(ci.id, ci)
    if unknown:
        shown = [u if isinstance(u, int | str) else str(u) for u in unknown]
        raise UnknownCIs(
            f"Unknown configuration item(s): {', '.join(map(str, shown))}.",
            unknown=shown,
        )
    return list(result.values())


# -- CIs ------------------------------------------------------------------------------------


def _check_code(code: str, field: str = "code") -> None:
    if not isinstance(code, str) or not CODE_RE.match(code):
        raise ValidationFailed(
            "Invalid code.",
            errors={
                field: ["Lowercase letters, digits, '.', '_' and '-'; 1-64 characters."],
            },
        )


def _check_unique(kind: CIKind, code: str, *, exclude: int | None = None) -> None:
    stmt = select(CI.id).where(CI.kind == kind, CI.code == code)
    if exclude is not None:
        stmt = stmt.where(CI.id != exclude)
    if db.session.execute(stmt).first():
        # API.md §4: 409 without naming the other object or its tenant.
        raise CIKeyConflict(f"The key {kind.value}:{code} is taken.")


def _kind(value: Any) -> CIKind:
    if isinstance(value, CIKind):
        return value
    if isinstance(value, str) and value in _KINDS:
        return _KINDS[value]
    raise ValidationFailed(
        "Unknown kind.",
        errors={"kind": [f"Unknown kind {value!r}; one of: {', '.join(sorted(_KINDS))}."]},
    )


def create_ci(data: Mapping[str, Any], *, actor: Actor) -> CI:
    """Create a CI. ``data``: kind, code, name, tenant (code or None = shared), status,
    attributes. Raises ValidationFailed (unknown kind or tenant, bad attributes, bad code),
    Forbidden (role), CIKeyConflict (409, the kind:code key is taken)."""
    kind = _kind(data.get("kind"))
    tenant = resolve_tenant(data.get("tenant"), actor)
    require(actor, "cmdb.write")
    _check_code(data.get("code"))  # type: ignore[arg-type]
    attributes = validate_attributes(kind, data.get("attributes"))
    with transaction(actor=actor):
        _check_unique(kind, data["code"])
        ci = CI(
            kind=kind,
            code=data["code"],
            name=data.get("name") or data["code"],
            tenant=tenant,
            status=CIStatus(data.get("status") or CIStatus.ACTIVE),
            attributes=attributes,
        )
        db.session.add(ci)
        db.session.flush()
    return ci


def _merge_attributes(current: Mapping[str, Any], patch: Any) -> Any:
    """JSON merge patch (RFC 7396) of the attributes: ``null`` removes a key."""
    if not isinstance(patch, Mapping):
        return patch
    merged = dict(current)
    for key, value in patch.items():
        if value is None:
            merged.pop(key, None)
        elif isinstance(value, Mapping) and isinstance(merged.get(key), Mapping):
            merged[key] = _merge_attributes(merged[key], value)
        else:
            merged[key] = value
    return merged


def update_ci(ci: CI, changes: Mapping[str, Any], *, actor: Actor) -> CI:
    """Change a CI: code, name, tenant, status, attributes (merged: ``null`` removes one).

    The kind never changes. Moving a CI to a tenant is refused while it is linked to CIs of
    another tenant, or (an application) used by another tenant. Raises ValidationFailed,
    Forbidden, CIKeyConflict."""
    if "kind" in changes and _kind(changes["kind"]) is not ci.kind:
        raise ValidationFailed(
            "The kind cannot change.", errors={"kind": ["Read-only after creation."]}
        )
    new_tenant: Tenant | None = ci.tenant
    if "tenant" in changes:
        new_tenant = resolve_tenant(changes["tenant"], actor)
    require(actor, "cmdb.write")
    attributes = None
    if "attributes" in changes:
        attributes = validate_attributes(
            ci.kind, _merge_attributes(ci.attributes or {}, changes["attributes"])
        )
    with transaction(actor=actor):
        if "code" in changes and changes["code"] != ci.code:
            _check_code(changes["code"])
            _check_unique(ci.kind, changes["code"], exclude=ci.id)
            ci.code = changes["code"]
        if "name" in changes:
            ci.name = changes["name"]
        if "status" in changes:
            ci.status = CIStatus(changes["status"])
        if attributes is not None and attributes != ci.attributes:
            ci.attributes = attributes
        new_tenant_id = new_tenant.id if new_tenant is not None else None
        if new_tenant_id != ci.tenant_id:
            _retenant(ci, new_tenant_id)
            ci.tenant = new_tenant
        db.session.flush()
    return ci


def _retenant(ci: CI, tenant_id: int | None) -> None:
    """Move ``ci`` to ``tenant_id``: its relations follow; refuse if they cannot."""
    rels = list(
        db.session.execute(
            select(Relation).where(sa.or_(Relation.source_id == ci.id, Relation.target_id == ci.id))
        ).scalars()
    )
    for rel in rels:
        other = rel.target if rel.source_id == ci.id else rel.source
        if tenant_id is not None and other.tenant_id not in (None, tenant_id):
            raise ValidationFailed(
                "The CI is linked to CIs of another tenant.",
                errors={"tenant": ["Remove its relations to another tenant's CIs first."]},
            )
        wanted = tenant_id if tenant_id is not None else other.tenant_id
        if rel.tenant_id != wanted:
            rel.tenant_id = wanted
    if tenant_id is not None:
        foreign = db.session.execute(
            select(Usage.id).where(Usage.ci_id == ci.id, Usage.tenant_id != tenant_id)
        ).first()
        if foreign:
            raise ValidationFailed(
                "The application is used by other tenants.",
                errors={"tenant": ["A tenant's own application can only be used by it."]},
            )


def delete_ci(ci: CI, *, actor: Actor) -> None:
    """Delete a CI with its relations and usage links (each recorded in the change log).

    Raises Forbidden, or Conflict when something else still refers to it (tickets):
    retire it instead (status ``retired``)."""
    require(actor, "cmdb.write")
    with transaction(actor=actor):
        for rel in db.session.execute(
            select(Relation).where(sa.or_(Relation.source_id == ci.id, Relation.target_id == ci.id))
        ).scalars():
            db.session.delete(rel)
        for usage in db.session.execute(select(Usage).where(Usage.ci_id == ci.id)).scalars():
            db.session.delete(usage)
        db.session.flush()
        db.session.delete(ci)
        try:
            with db.session.begin_nested():
                db.session.flush()
        except sa.exc.IntegrityError:
            raise Conflict(
                "The CI is still referenced (tickets...); set its status to retired instead."
            ) from None


# -- relations ------------------------------------------------------------------------------


def get_relation(relation_id: int, actor: Actor) -> Relation:
    """A relation whose both ends the actor sees, or NotFound."""
    return get_scoped(Relation, relation_id, actor)


def _relation_type(value: Any) -> RelationType:
    try:
        return RelationType(value)
    except ValueError:
        raise ValidationFailed(
            "Unknown relation type.",
            errors={"type": [f"One of: {', '.join(t.value for t in RelationType)}."]},
        ) from None


def _edges_from(frontier: Iterable[int]) -> list[tuple[int, int]]:
    ids = sorted(set(frontier))
    out: list[tuple[int, int]] = []
    for start in range(0, len(ids), 5000):
        chunk = ids[start : start + 5000]
        rows = db.session.execute(
            select(Relation.source_id, Relation.target_id).where(Relation.source_id.in_(chunk))
        )
        out.extend((r[0], r[1]) for r in rows)
    return out


def find_path(start: int, goal: int, *, skip: int | None = None) -> list[int] | None:
    """A directed path of relations from ``start`` to ``goal`` (CI ids), or None.

    Breadth-first, one statement per level (never one per node). ``skip`` ignores one
    relation id (the one being changed)."""
    if start == goal:
        return [start]
    parent: dict[int, int] = {start: start}
    frontier = [start]
    skipped: tuple[int, int] | None = None
    if skip is not None:
        row = db.session.execute(
            select(Relation.source_id, Relation.target_id).where(Relation.id == skip)
        ).first()
        skipped = (row[0], row[1]) if row else None
    while frontier:
        nxt: list[int] = []
        for src, dst in _edges_from(frontier):
            if (src, dst) == skipped or dst in parent:
                continue
            parent[dst] = src
            if dst == goal:
                path = [goal]
                while path[-1] != start:
                    path.append(parent[path[-1]])
                return path[::-1]
            nxt.append(dst)
        frontier = nxt
    return None


def _keys_of(ids: Sequence[int]) -> list[str]:
    rows = db.session.execute(select(CI.id, CI.kind, CI.code).where(CI.id.in_(set(ids))))
    keys = {r.id: f"{r.kind.value}:{r.code}" for r in rows}
    return [keys[i] for i in ids]


def _check_relation(
    source: CI, target: CI, rel_type: RelationType, *, exclude: int | None = None
) -> int | None:
    """Every rule of a relation; returns the tenant it belongs to."""
    if source.id == target.id:
        raise ValidationFailed(
            "A CI cannot be related to itself.", errors={"target": ["Same CI as the source."]}
        )
    check_relation_kinds(rel_type, source.kind, target.kind)
    if (
        source.tenant_id is not None
        and target.tenant_id is not None
        and source.tenant_id != target.tenant_id
    ):
        raise ValidationFailed(
            "The two CIs belong to different tenants.",
            errors={"target": ["Link a tenant's CI only to shared CIs or CIs of that tenant."]},
        )
    dup = select(Relation.id).where(
        Relation.source_id == source.id,
        Relation.target_id == target.id,
        Relation.type == rel_type,
    )
    if exclude is not None:
        dup = dup.where(Relation.id != exclude)
    if db.session.execute(dup).first():
        raise Conflict(f"{source.key} is already {rel_type.value} {target.key}.")
    path = find_path(target.id, source.id, skip=exclude)
    if path is not None:
        cycle = [source.key, *_keys_of(path)]
        raise RelationCycle(
            f"The relation would close a cycle: {' → '.join(cycle)}.",
            errors={"target": [f"Cycle: {' → '.join(cycle)}."]},
            cycle=cycle,
        )
    return source.tenant_id if source.tenant_id is not None else target.tenant_id


def create_relation(data: Mapping[str, Any], *, actor: Actor) -> Relation:
    """Link two CIs: ``{"source": id|key, "target": id|key, "type": ...}``.

    Raises ValidationFailed (422) for an unknown or invisible CI (naming ``source`` or
    ``target``), a self-link, a type not allowed between the kinds, CIs of two tenants;
    RelationCycle (422 with ``cycle``) if it would close a loop; Conflict (409) for a
    duplicate; Forbidden (403) without ``cmdb.write``."""
    source = resolve_ci(data.get("source"), actor, field="source")
    target = resolve_ci(data.get("target"), actor, field="target")
    rel_type = _relation_type(data.get("type"))
    require(actor, "cmdb.write")
    with transaction(actor=actor):
        tenant_id = _check_relation(source, target, rel_type)
        rel = Relation(source=source, target=target, type=rel_type, tenant_id=tenant_id)
        db.session.add(rel)
        db.session.flush()
    return rel


def update_relation(rel: Relation, changes: Mapping[str, Any], *, actor: Actor) -> Relation:
    """Change a relation's source, target or type; every rule of creation applies."""
    source = resolve_ci(changes["source"], actor, field="source") if "source" in changes else None
    target = resolve_ci(changes["target"], actor, field="target") if "target" in changes else None
    rel_type = _relation_type(changes["type"]) if "type" in changes else rel.type
    require(actor, "cmdb.write")
    with transaction(actor=actor):
        source = source or rel.source
        target = target or rel.target
        tenant_id = _check_relation(source, target, rel_type, exclude=rel.id)
        if rel.source_id != source.id:
            rel.source = source
        if rel.target_id != target.id:
            rel.target = target
        if rel.type is not rel_type:
            rel.type = rel_type
        if rel.tenant_id != tenant_id:
            rel.tenant_id = tenant_id
        db.session.flush()
    return rel


def delete_relation(rel: Relation, *, actor: Actor) -> None:
    """Remove a relation. Raises Forbidden without ``cmdb.write``."""
    require(actor, "cmdb.write")
    with transaction(actor=actor):
        db.session.delete(rel)


# -- usage ----------------------------------------------------------------------------------


def get_usage(ci: CI, tenant_code: str, actor: Actor) -> Usage:
    stmt = tenant_scope(
        select(Usage)
        .join(Tenant, Tenant.id == Usage.tenant_id)
        .where(Usage.ci_id == ci.id, Tenant.code == tenant_code),
        actor,
    )
    usage = db.session.execute(stmt).scalar()
    if usage is None:
        raise NotFound(f"{ci.key} is not used by {tenant_code!r}.")
    return usage


def add_usage(
    ci: CI,
    tenant_code: str,
    *,
    confidence: UsageConfidence | str = UsageConfidence.CERTAIN,
    note: str = "",
    actor: Actor,
) -> Usage:
    """Record that a tenant uses an application CI (API.md §2 ``used_by``).

    Raises ValidationFailed (not an application; unknown or invisible tenant; a tenant's own
    application used by another), Forbidden, Conflict (already recorded)."""
    tenant = resolve_tenant(tenant_code or "", actor)
    if tenant is None:  # pragma: no cover - resolve_tenant raises for unknown codes
        raise ValidationFailed("Unknown tenant.", errors={"tenant": ["Required."]})
    require(actor, "cmdb.write")
    if ci.kind is not CIKind.APPLICATION:
        raise ValidationFailed(
            "Only applications are used by tenants.",
            errors={"ci": [f"{ci.key} is a {ci.kind.value}, not an application."]},
        )
    if ci.tenant_id is not None and ci.tenant_id != tenant.id:
        raise ValidationFailed(
            "A tenant's own application can only be used by it.",
            errors={"tenant": ["This application belongs to another tenant."]},
        )
    with transaction(actor=actor):
        exists = select(Usage.id).where(Usage.ci_id == ci.id, Usage.tenant_id == tenant.id)
        if db.session.execute(exists).first():
            raise Conflict(f"{ci.key} is already used by {tenant.code}.")
        usage = Usage(ci=ci, tenant=tenant, confidence=UsageConfidence(confidence), note=note or "")
        db.session.add(usage)
        db.session.flush()
    return usage


def remove_usage(usage: Usage, *, actor: Actor) -> None:
    """Remove a usage link. Raises Forbidden without ``cmdb.write``."""
    require(actor, "cmdb.write")
    with transaction(actor=actor):
        db.session.delete(usage)
