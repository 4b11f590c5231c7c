"""Tokens and passwords (service tier)."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import pytest
import sqlalchemy as sa

from config.auth import (
    SYSTEM,
    Role,
    Token,
    authenticate_bearer,
    create_token,
    create_user,
    revoke_token,
    verify_password,
)
from config.db import utcnow
from config.errors import Unauthorized, ValidationFailed


@pytest.fixture()
def user(db, tenant_a):
    return create_user("alice", role=Role.TECHNICIAN, tenants=[tenant_a], actor=SYSTEM)


def test_tokens_are_random_and_stored_only_as_digests(db, user):
    now = utcnow()
    _t1, raw1 = create_token(user, "a", expires_days=None, now=now, actor=SYSTEM)
    _t2, raw2 = create_token(user, "b", expires_days=None, now=now, actor=SYSTEM)
    assert raw1 != raw2 and len(raw1) > 40
    dump = " ".join(str(r) for r in db.session.execute(sa.text("SELECT * FROM tokens")).all())
    dump += " ".join(str(r) for r in db.session.execute(sa.text("SELECT * FROM changes")).all())
    assert raw1 not in dump and raw2 not in dump
    assert hashlib.sha256(raw1.encode()).hexdigest() in dump  # the digest, in the tokens table


def test_a_token_authenticates_its_user(db, user):
    _token, raw = create_token(user, "a", expires_days=None, now=utcnow(), actor=SYSTEM)
    actor = authenticate_bearer(f"Bearer {raw}", now=utcnow())
    assert (actor.username, actor.role, actor.all_tenants) == ("alice", Role.TECHNICIAN, False)


def test_expired_revoked_and_inactive_tokens_are_refused(db, user):
    now = utcnow()
    token, raw = create_token(user, "a", expires_days=1, now=now, actor=SYSTEM)
    assert authenticate_bearer(f"Bearer {raw}", now=now + timedelta(hours=23))
    with pytest.raises(Unauthorized):
        authenticate_bearer(f"Bearer {raw}", now=now + timedelta(days=1, seconds=1))
    revoke_token(token.id, now=now, actor=SYSTEM)
    with pytest.raises(Unauthorized):
        authenticate_bearer(f"Bearer {raw}", now=now)


@pytest.mark.parametrize(
    "header", [None, "", "Bearer", "Bearer syn_short", "Token abc", "Bearer syn_" + "A" * 43]
)
def test_malformed_or_unknown_tokens_are_refused(db, header):
    with pytest.raises(Unauthorized):
        authenticate_bearer(header, now=utcnow())


def test_expiry_must_be_positive(db, user):
    with pytest.raises(ValidationFailed):
        create_token(user, "a", expires_days=0, now=utcnow(), actor=SYSTEM)


def test_passwords_are_hashed_with_argon2(db, tenant_a):
    user = create_user(
        "bob", role=Role.MANAGER, tenants=[tenant_a], password="a long passphrase", actor=SYSTEM
    )
    assert user.password_hash.startswith("$argon2")
    assert verify_password(user, "a long passphrase")
    assert not verify_password(user, "a long passphrasE")


def test_short_passwords_are_refused(db, tenant_a):
    with pytest.raises(ValidationFailed):
        create_user("bob", role=Role.MANAGER, tenants=[tenant_a], password="short", actor=SYSTEM)


def test_last_use_is_recorded_without_writing_on_every_request(db, user):
    token, raw = create_token(user, "a", expires_days=None, now=utcnow(), actor=SYSTEM)
    token_id = token.id
    authenticate_bearer(f"Bearer {raw}", now=utcnow())
    db.session.remove()
    first = db.session.get(Token, token_id).last_used_at
    authenticate_bearer(f"Bearer {raw}", now=utcnow())
    db.session.remove()
    assert first is not None and db.session.get(Token, token_id).last_used_at == first


def test_wrong_tokens_are_throttled_per_address_with_retry_after(client, db):
    from config.auth import THROTTLE_LIMIT

    bad = {"Authorization": "Bearer syn_" + "x" * 43}
    for _ in range(THROTTLE_LIMIT - 1):
        assert client.get("/api/v1/tenants", headers=bad).status_code == 401
    resp = client.get("/api/v1/tenants", headers=bad)
    assert resp.status_code == 429
    assert resp.mimetype == "application/problem+json"
    assert 0 < int(resp.headers["Retry-After"]) <= 300
    # another address is not affected
    other = client.get("/api/v1/tenants", headers=bad, environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 401


def test_a_missing_token_is_not_counted(client, db):
    from config.auth import THROTTLE_LIMIT

    for _ in range(THROTTLE_LIMIT + 2):
        assert client.get("/api/v1/tenants").status_code == 401
