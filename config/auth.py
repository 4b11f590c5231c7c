"""Users, roles, API tokens and the actor every service receives.

A user has one role and is bound to a set of tenants or to all of them. API tokens are
random, shown once, stored as a SHA-256 digest (a 256-bit random secret needs no slow
hash; the lookup is by digest), may expire, may be revoked. Passwords for the web pages
are hashed with argon2.
"""

from __future__ import annotations

import enum
import hashlib
import re
import secrets
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any, NamedTuple

import sqlalchemy as sa
from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError
from flask import g, has_request_context
from sqlalchemy import ForeignKey, String, select
from sqlalchemy.orm import Mapped, mapped_column, relationship

from config.changelog import RESTRICTED
from config.db import (
    ACTOR_KEY,
    EnumType,
    Model,
    TimestampMixin,
    UTCDateTime,
    VersionedMixin,
    db,
    known_object,
    transaction,
    utcnow,
)
from config.errors import (
    Conflict,
    Forbidden,
    NotFound,
    TooManyRequests,
    Unauthorized,
    ValidationFailed,
)

if TYPE_CHECKING:
    from config.tenancy import Tenant

__all__ = [
    "SYSTEM",
    "Actor",
    "AuthThrottle",
    "Role",
    "Token",
    "User",
    "UserRef",
    "authenticate_bearer",
    "can",
    "create_token",
    "create_user",
    "current_actor",
    "hash_password",
    "register_permission",
    "require",
    "revoke_token",
    "throttle_check",
    "throttle_failure",
    "update_user",
    "verify_password",
]


class Role(enum.StrEnum):
    """The four roles of API.md §1."""

    TECHNICIAN = "technician"
    INFRA = "infra"
    MANAGER = "manager"
    ADMIN = "admin"


# -- permissions ------------------------------------------------------------------------

_PERMISSIONS: dict[str, frozenset[Role]] = {
    "tenants.write": frozenset({Role.ADMIN}),
    "users.manage": frozenset({Role.ADMIN}),
    "tokens.manage": frozenset({Role.ADMIN}),
}


def register_permission(name: str, roles: Iterable[Role]) -> None:
    """Declare which roles hold a permission (domains call this at import time)."""
    roles = frozenset(roles) | {Role.ADMIN}
    if name in _PERMISSIONS and _PERMISSIONS[name] != roles:
        raise ValueError(f"permission {name!r} registered twice with different roles")
    _PERMISSIONS[name] = roles


def can(actor: Actor, permission: str) -> bool:
    try:
        return actor.role in _PERMISSIONS[permission]
    except KeyError:
        raise KeyError(f"unknown permission {permission!r}") from None


def require(actor: Actor, permission: str) -> None:
    """Raise Forbidden (403) unless the actor's role holds the permission.

    Call it only once the object is known to be visible (API.md §5: visibility first).
    """
    if not can(actor, permission):
        raise Forbidden(f"The {actor.role.value} role may not do this ({permission}).")


# -- models -----------------------------------------------------------------------------

user_tenants = sa.Table(
    "user_tenants",
    db.metadata,
    sa.Column("user_id", ForeignKey("users.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("tenant_id", ForeignKey("tenants.id", ondelete="RESTRICT"), primary_key=True),
)

USERNAME_RE = re.compile(r"^[a-z0-9][a-z0-9._@-]{0,149}$")


class User(TimestampMixin, VersionedMixin, Model):
    """A person (or integration) using syndic, with one role and a tenant binding."""

    __tablename__ = "users"
    __object_type__ = "user"
    __changelog_exclude__ = ("password_hash",)
    __changelog_relations__ = {"tenants": "code"}

    id: Mapped[int] = mapped_column(primary_key=True)
    username: Mapped[str] = mapped_column(String(150), unique=True)
    full_name: Mapped[str] = mapped_column(String(200), default="")
    email: Mapped[str | None] = mapped_column(String(254))
    role: Mapped[Role] = mapped_column(EnumType(Role, 20))
    all_tenants: Mapped[bool] = mapped_column(default=False)
    active: Mapped[bool] = mapped_column(default=True)
    password_hash: Mapped[str | None] = mapped_column(String(200))

    tenants: Mapped[list[Tenant]] = relationship(secondary=user_tenants, order_by="Tenant.code")
    tokens: Mapped[list[Token]] = relationship(back_populates="user", lazy="raise")

    def __changelog_tenant__(self) -> int:
        # Accounts are managed by admins: their history is for all-tenant readers only.
        return RESTRICTED


class Token(Model):
    """An API token. Only its SHA-256 digest is stored; ``prefix`` identifies it in lists."""

    __tablename__ = "tokens"
    __object_type__ = "token"
    __changelog_exclude__ = ("digest",)

    def __changelog_tenant__(self) -> int:
        return RESTRICTED

    id: Mapped[int] = mapped_column(primary_key=True)
    user_id: Mapped[int] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(100))
    prefix: Mapped[str] = mapped_column(String(16))
    digest: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime(), default=utcnow)
    expires_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime())
    last_used_at: Mapped[datetime | None] = mapped_column(UTCDateTime())

    user: Mapped[User] = relationship(back_populates="tokens", lazy="joined")

    def is_valid(self, now: datetime) -> bool:
        return self.revoked_at is None and (self.expires_at is None or self.expires_at > now)


class AuthThrottle(Model):
    """Failed authentication attempts per key (client address), in a fixed window.

    Kept in the database so that every gunicorn worker and every host shares the count.
    """

    __tablename__ = "auth_throttle"

    key: Mapped[str] = mapped_column(String(200), primary_key=True)
    window_start: Mapped[datetime] = mapped_column(UTCDateTime())
    failures: Mapped[int] = mapped_column(default=0)


# -- the actor --------------------------------------------------------------------------


class UserRef(NamedTuple):
    """A user by id and username (the acting user, known from authentication), for writes
    that need no more of the user than that."""

    id: int
    username: str


@dataclass(eq=False)
class Actor:
    """Who is acting: a user (from a token or a session) or the system (jobs, CLI).

    ``all_tenants`` actors see every tenant; the others see the tenants they are bound
    to and, recursively, their sub-tenants (see config.tenancy).
    """

    user_id: int | None
    username: str
    role: Role
    all_tenants: bool
    cache: dict[str, Any] = field(default_factory=dict, repr=False)

    @classmethod
    def of(cls, user: User) -> Actor:
        return cls(user.id, user.username, user.role, user.all_tenants or user.role is Role.ADMIN)

    @property
    def is_admin(self) -> bool:
        return self.role is Role.ADMIN


SYSTEM = Actor(None, "system", Role.ADMIN, True)


def current_actor() -> Actor:
    """The authenticated actor of this request (SYSTEM outside requests)."""
    if has_request_context():
        actor: Actor | None = g.get("actor")
        if actor is None:
            raise Unauthorized()
        return actor
    return SYSTEM


# -- passwords --------------------------------------------------------------------------

_hasher = PasswordHasher()


def hash_password(password: str) -> str:
    if len(password) < 10:
        raise ValidationFailed(
            "Password too short.", errors={"password": ["Use at least 10 characters."]}
        )
    return _hasher.hash(password)


def verify_password(user: User, password: str) -> bool:
    if not user.password_hash:
        # Spend the same time as a real check so that unknown users are not told apart.
        _hasher.hash(password)
        return False
    try:
        return _hasher.verify(user.password_hash, password)
    except (VerificationError, InvalidHashError):
        return False


# -- tokens -----------------------------------------------------------------------------

TOKEN_PREFIX = "syn_"  # noqa: S105 - a public prefix, not a secret
_TOKEN_RE = re.compile(r"^syn_[A-Za-z0-9_-]{40,60}$")
# Do not write last_used_at more often than this: a write on every GET would serialise reads.
LAST_USED_RESOLUTION = timedelta(minutes=10)


def _digest(raw: str) -> str:
    return hashlib.sha256(raw.encode("ascii")).hexdigest()


# A constant Core statement over the tables' own columns (cached compiled form, and no
# ORM compile or result layer: about half the cost of the same SELECT named through the
# mapped classes): this runs on every API request.
_TOKENS, _USERS = Token.__table__.c, User.__table__.c
_TOKEN_LOOKUP = (
    select(
        _TOKENS.id.label("token_id"),
        _TOKENS.expires_at,
        _TOKENS.revoked_at,
        _TOKENS.last_used_at,
        _USERS.id.label("user_id"),
        _USERS.username,
        _USERS.role,
        _USERS.all_tenants,
        _USERS.active,
    )
    .join(User.__table__, _USERS.id == _TOKENS.user_id)
    .where(_TOKENS.digest == sa.bindparam("digest"))
)


def actor_user(actor: Actor) -> User:
    """The acting user as an object of this session, without a SELECT: it holds the id and
    username the request was authenticated with (read a moment ago) and loads any other
    attribute from the database when first read."""
    if actor.user_id is None:
        raise ValueError("the system actor is no user")
    return known_object(User, id=actor.user_id, username=actor.username)


def authenticate_bearer(header: str | None, *, now: datetime) -> Actor:
    """Resolve an ``Authorization: Bearer`` header to an actor, or raise Unauthorized.

    One SQL statement (token joined to its user); unknown, malformed, expired and revoked
    tokens all answer the same 401.
    """
    if not header:
        raise Unauthorized()
    scheme, _, raw = header.partition(" ")
    raw = raw.strip()
    if scheme.lower() != "bearer" or not _TOKEN_RE.match(raw):
        raise Unauthorized("The bearer token is malformed, unknown, expired or revoked.")
    row = db.session.execute(_TOKEN_LOOKUP, {"digest": _digest(raw)}).first()
    if (
        row is None
        or row.revoked_at is not None
        or (row.expires_at is not None and row.expires_at <= now)
        or not row.active
    ):
        raise Unauthorized("The bearer token is malformed, unknown, expired or revoked.")
    actor = Actor(row.user_id, row.username, row.role, row.all_tenants or row.role is Role.ADMIN)
    if row.last_used_at is None or now - row.last_used_at > LAST_USED_RESOLUTION:
        with transaction(actor=actor):
            db.session.execute(
                sa.update(Token).where(Token.id == row.token_id).values(last_used_at=now)
            )
    return actor


# -- throttling of failed attempts ---------------------------------------------------------

THROTTLE_WINDOW = timedelta(minutes=5)
THROTTLE_LIMIT = 20  # failures per key and window before 429


def throttle_check(key: str, *, now: datetime) -> None:
    """Raise TooManyRequests (429 + Retry-After) while ``key`` is over the limit."""
    row = db.session.get(AuthThrottle, key)
    if row is not None and row.failures >= THROTTLE_LIMIT:
        remaining = row.window_start + THROTTLE_WINDOW - now
        if remaining.total_seconds() > 0:
            retry = str(int(remaining.total_seconds()) + 1)
            raise TooManyRequests(
                "Too many failed attempts; wait before retrying.", headers={"Retry-After": retry}
            )


def throttle_failure(key: str, *, now: datetime) -> None:
    """Count one failed attempt for ``key``; raise TooManyRequests once over the limit."""
    with transaction(actor=SYSTEM):
        row = db.session.get(AuthThrottle, key)
        if row is None:
            db.session.add(AuthThrottle(key=key, window_start=now, failures=1))
            db.session.flush()
        elif row.window_start + THROTTLE_WINDOW <= now:
            row.window_start, row.failures = now, 1
        else:
            row.failures += 1
    throttle_check(key, now=now)


def create_token(
    user: User, name: str, *, expires_days: int | None, now: datetime, actor: Actor
) -> tuple[Token, str]:
    """Issue a token for ``user``; returns the row and the clear token (shown once)."""
    if expires_days is not None and expires_days <= 0:
        raise ValidationFailed("Invalid expiry.", errors={"expires_days": ["Must be positive."]})
    raw = TOKEN_PREFIX + secrets.token_urlsafe(32)
    with transaction(actor=actor):
        token = Token(
            user_id=user.id,
            name=name[:100],
            prefix=raw[:12],
            digest=_digest(raw),
            created_at=now,
            expires_at=now + timedelta(days=expires_days) if expires_days else None,
        )
        db.session.add(token)
    return token, raw


def revoke_token(token_id: int, *, now: datetime, actor: Actor) -> Token:
    """Revoke a token. Users may revoke their own; admins any. Idempotent."""
    with transaction(actor=actor):
        token = db.session.get(Token, token_id)
        if token is None or (token.user_id != actor.user_id and not can(actor, "tokens.manage")):
            raise NotFound(f"Token {token_id} not found.")
        if token.revoked_at is None:
            token.revoked_at = now
    return token


# -- users ------------------------------------------------------------------------------


def _check_username(username: str) -> None:
    if not USERNAME_RE.match(username):
        raise ValidationFailed(
            "Invalid username.",
            errors={"username": ["Lowercase letters, digits and . _ @ - only (1-150)."]},
        )


def create_user(
    username: str,
    *,
    role: Role,
    tenants: list[Tenant],
    all_tenants: bool = False,
    full_name: str = "",
    email: str | None = None,
    password: str | None = None,
    actor: Actor,
) -> User:
    """Create a user. Raises Conflict if the username is taken, ValidationFailed on bad input."""
    _check_username(username)
    if role is Role.ADMIN:
        all_tenants = True
    if not all_tenants and not tenants:
        raise ValidationFailed(
            "A user must be bound to tenants.",
            errors={"tenants": ["Give at least one tenant, or all_tenants."]},
        )
    with transaction(actor=actor):
        if db.session.execute(select(User.id).where(User.username == username)).first():
            raise Conflict(f"The username {username!r} is taken.")
        user = User(
            username=username,
            role=role,
            all_tenants=all_tenants,
            full_name=full_name,
            email=email,
            password_hash=hash_password(password) if password else None,
            tenants=[] if all_tenants else list(tenants),
        )
        db.session.add(user)
    return user


def update_user(user: User, changes: dict[str, Any], *, actor: Actor) -> User:
    """Apply a partial update (role, tenants, all_tenants, full_name, email, active, password)."""
    with transaction(actor=actor):
        # Always touch the row: a change of tenants alone would not bump the version (the
        # ETag, and the pages' sessions, which end when their user changes).
        user.updated_at = utcnow()
        if "password" in changes:
            pw = changes.pop("password")
            user.password_hash = hash_password(pw) if pw else None
        for key in ("role", "all_tenants", "full_name", "email", "active"):
            if key in changes:
                setattr(user, key, changes[key])
        if "tenants" in changes:
            user.tenants = list(changes["tenants"])
        if user.role is Role.ADMIN:
            user.all_tenants = True
        if user.all_tenants:
            user.tenants = []
        if not user.all_tenants and not user.tenants:
            raise ValidationFailed(
                "A user must be bound to tenants.",
                errors={"tenants": ["Give at least one tenant, or all_tenants."]},
            )
    return user


def set_request_actor(actor: Actor) -> None:
    """Bind the actor to the request and to the session (for the change log)."""
    g.actor = actor
    db.session.info[ACTOR_KEY] = actor
