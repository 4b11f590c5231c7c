"""Helpers for page tests with the Flask test client (signed-in browsers, forms)."""

from __future__ import annotations

import re
from typing import Any

from config.auth import SYSTEM, update_user

BASE = "https://localhost"
PASSWORD = "a long demo password"


def csrf(client: Any, path: str = "/connexion") -> str:
    html = client.get(path, base_url=BASE).get_data(as_text=True)
    match = re.search(r'name="csrf_token" value="([^"]+)"', html)
    assert match, f"no CSRF token on {path}"
    return match.group(1)


def signed_in(app: Any, db: Any, user: Any) -> Any:
    """A browser-like client signed in as ``user`` (given a password first)."""
    from config.auth import User

    update_user(db.session.get(User, user.id), {"password": PASSWORD}, actor=SYSTEM)
    client = app.test_client()
    token = csrf(client)
    resp = client.post(
        "/connexion",
        base_url=BASE,
        data={"csrf_token": token, "username": user.username, "password": PASSWORD},
    )
    assert resp.status_code == 302, resp.get_data(as_text=True)[:500]
    client.csrf = csrf(client, "/")
    return client


def post_form(client: Any, path: str, **data: Any) -> Any:
    return client.post(path, base_url=BASE, data={"csrf_token": client.csrf, **data})


def get(client: Any, path: str) -> Any:
    return client.get(path, base_url=BASE)
