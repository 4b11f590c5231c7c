"""Writes of the connectors that no domain service covers: tenants made from a source's
entities (matched by the entity id, never by name; the tree kept) and users made from a
source's accounts, both remembered in ``sync_links``. Tenants and users are written through
the kernel's own services, so their rules and the change log apply."""

from __future__ import annotations

import re
import unicodedata
from typing import Any, Literal

from sqlalchemy import select

from config.auth import SYSTEM, Role, User, create_user, update_user
from config.db import db
from config.tenancy import Tenant, create_tenant, update_tenant
from connectors.models import SyncLink

__all__ = ["link_of", "slug", "upsert_source_tenant", "upsert_source_user"]

Result = Literal["created", "updated", "unchanged"]


def slug(text: str, *, max_len: int = 60) -> str:
    """``"Ville de Saint-Aubin"`` → ``"ville-de-saint-aubin"``."""
    ascii_text = unicodedata.normalize("NFKD", text).encode("ascii", "ignore").decode()
    out = re.sub(r"[^a-z0-9]+", "-", ascii_text.lower()).strip("-")
    return out[:max_len].strip("-")


def link_of(source: str, kind: str, external_id: str) -> SyncLink | None:
    return db.session.execute(
        select(SyncLink).where(
            SyncLink.source == source, SyncLink.kind == kind, SyncLink.external_id == external_id
        )
    ).scalar()


def _link(source: str, kind: str, external_id: str, local_id: int) -> None:
    link = link_of(source, kind, external_id)
    if link is None:
        db.session.add(
            SyncLink(source=source, kind=kind, external_id=external_id, local_id=local_id)
        )
    elif link.local_id != local_id:
        link.local_id = local_id
    db.session.flush()


def _free_code(base: str, external_id: str) -> str:
    candidates = [base] if base else []
    candidates.append(f"{(base or 'entity')[:50]}-{external_id}"[:64].strip("-"))
    for code in candidates:
        if not db.session.execute(select(Tenant.id).where(Tenant.code == code)).first():
            return code
    return f"{base[:40]}-{source_suffix(external_id)}"


def source_suffix(external_id: str) -> str:
    return re.sub(r"[^a-z0-9]", "", external_id.lower())[:20] or "x"


def upsert_source_tenant(
    *,
    source: str,
    external_id: str,
    name: str,
    parent_code: str | None,
    kind: str,
) -> tuple[Result, Tenant]:
    """The tenant of a source's entity: linked by id (an existing tenant whose
    ``external_ids[source]`` is that id is adopted), created otherwise; the name and the
    parent follow the source. Codes are never changed once made. Call in a transaction."""
    link = link_of(source, "entity", external_id)
    tenant = db.session.get(Tenant, link.local_id) if link else None
    if tenant is None:
        tenant = db.session.execute(
            select(Tenant).where(Tenant.external_ids[source].as_string() == external_id)
        ).scalar()
    name = name.strip()[:200] or f"{source} entity {external_id}"
    if tenant is None:
        code = _free_code(slug(name), external_id)
        tenant = create_tenant(
            {
                "code": code,
                "name": name,
                "kind": kind,
                "parent": parent_code,
                "external_ids": {source: external_id},
            },
            actor=SYSTEM,
        )
        db.session.flush()
        _link(source, "entity", external_id, tenant.id)
        return "created", tenant
    changes: dict[str, Any] = {}
    if tenant.name != name:
        changes["name"] = name
    current_parent = tenant.parent.code if tenant.parent else None
    if current_parent != parent_code:
        changes["parent"] = parent_code
    if (tenant.external_ids or {}).get(source) != external_id:
        changes["external_ids"] = {**(tenant.external_ids or {}), source: external_id}
    if link is None:
        _link(source, "entity", external_id, tenant.id)
    if not changes:
        return "unchanged", tenant
    update_tenant(tenant, changes, actor=SYSTEM)
    db.session.flush()
    return "updated", tenant


def upsert_source_user(
    *,
    source: str,
    external_id: str,
    login: str,
    full_name: str,
    tenant: Tenant | None,
) -> tuple[Result, User]:
    """The syndic user of a source's account, linked by the account id. A local user with
    the same login that no other account claims is adopted (technicians exist in both);
    new users are technicians of ``tenant`` without password or token (they cannot log in
    until an admin says so). Call in a transaction."""
    link = link_of(source, "user", external_id)
    user = db.session.get(User, link.local_id) if link else None
    full_name = full_name.strip()[:200]
    if user is None:
        username = slug(login, max_len=120).replace("--", "-") or f"{source}-user-{external_id}"
        if not re.match(r"^[a-z0-9]", username):
            username = f"{source}-{username}"
        existing = db.session.execute(select(User).where(User.username == username)).scalar()
        if existing is not None:
            claimed = db.session.execute(
                select(SyncLink.id).where(
                    SyncLink.source == source,
                    SyncLink.kind == "user",
                    SyncLink.local_id == existing.id,
                )
            ).first()
            if claimed:
                username = f"{username[:100]}-{source}-{external_id}"
                existing = None
        if existing is not None:
            _link(source, "user", external_id, existing.id)
            return "unchanged", existing
        if tenant is None:
            raise ValueError(f"no tenant to bind the user {login!r} to")
        user = create_user(
            username,
            role=Role.TECHNICIAN,
            tenants=[tenant],
            full_name=full_name,
            actor=SYSTEM,
        )
        db.session.flush()
        _link(source, "user", external_id, user.id)
        return "created", user
    if full_name and user.full_name != full_name:
        update_user(user, {"full_name": full_name}, actor=SYSTEM)
        return "updated", user
    return "unchanged", user
