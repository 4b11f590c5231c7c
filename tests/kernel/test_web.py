"""The pages' kernel: sign-in, sessions, CSRF, languages, HTML error pages."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from babel.messages.mofile import read_mo
from babel.messages.pofile import read_po

from config.auth import SYSTEM, Role, User, create_user, update_user

BASE = "https://localhost"
ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture()
def browser(app, db):
    return app.test_client()


@pytest.fixture()
def alice(db, tenant_a):
    return create_user(
        "alice",
        role=Role.TECHNICIAN,
        tenants=[tenant_a],
        password="correct horse battery",
        full_name="Alice Martin",
        actor=SYSTEM,
    )


def csrf(client, path="/connexion") -> str:
    html = client.get(path, base_url=BASE).get_data(as_text=True)
    return re.search(r'name="csrf_token" value="([^"]+)"', html).group(1)


def sign_in(client, username="alice", password="correct horse battery", **kw):
    token = csrf(client)
    return client.post(
        "/connexion",
        base_url=BASE,
        data={"csrf_token": token, "username": username, "password": password},
        **kw,
    )


def test_pages_redirect_to_sign_in_when_signed_out(browser):
    resp = browser.get("/", base_url=BASE)
    assert resp.status_code == 302 and resp.headers["Location"].startswith("/connexion")


def test_sign_in_then_home_in_french(browser, alice):
    resp = sign_in(browser)
    assert resp.status_code == 302 and resp.headers["Location"] == "/"
    home = browser.get("/", base_url=BASE)
    assert home.status_code == 200
    html = home.get_data(as_text=True)
    assert 'lang="fr"' in html and "Bienvenue, Alice Martin" in html and "technicien" in html


def test_session_cookie_is_httponly_samesite_and_secure(browser, alice):
    cookie = sign_in(browser).headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Lax" in cookie and "Secure" in cookie


@pytest.mark.parametrize(
    ("username", "password"),
    [("alice", "wrong password!"), ("nobody", "correct horse battery"), ("ALICE ", "nope")],
)
def test_wrong_credentials_get_the_same_message(browser, alice, username, password):
    resp = sign_in(browser, username, password)
    assert resp.status_code == 401
    assert "Identifiant inconnu ou mot de passe erroné." in resp.get_data(as_text=True)
    assert browser.get("/", base_url=BASE).status_code == 302


def test_inactive_user_cannot_sign_in_with_a_right_password(browser, alice):
    update_user(alice, {"active": False}, actor=SYSTEM)
    assert sign_in(browser).status_code == 401


def test_sign_in_is_rate_limited(browser, alice):
    from config.auth import THROTTLE_LIMIT

    for _ in range(THROTTLE_LIMIT):
        sign_in(browser, "alice", "wrong password!")
    resp = sign_in(browser)  # even the right password waits now
    assert resp.status_code == 429 and int(resp.headers["Retry-After"]) > 0
    assert "Trop de tentatives" in resp.get_data(as_text=True)


def test_forms_without_csrf_token_are_refused(browser, alice):
    resp = browser.post(
        "/connexion", base_url=BASE, data={"username": "alice", "password": "correct horse battery"}
    )
    assert resp.status_code == 400 and resp.mimetype == "text/html"
    assert "formulaire a expiré" in resp.get_data(as_text=True)
    assert browser.get("/", base_url=BASE).status_code == 302


def test_tampered_session_cookie_means_signed_out(browser, alice):
    sign_in(browser)
    cookie = browser.get_cookie("syndic_session", domain="localhost")
    browser.set_cookie("syndic_session", cookie.value[:-3] + "abc", domain="localhost", secure=True)
    assert browser.get("/", base_url=BASE).status_code == 302


def test_changing_the_user_signs_its_sessions_out(browser, alice, db):
    sign_in(browser)
    assert browser.get("/", base_url=BASE).status_code == 200
    update_user(db.session.get(User, alice.id), {"role": Role.MANAGER}, actor=SYSTEM)
    assert browser.get("/", base_url=BASE).status_code == 302


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "javascript:alert(1)"]
)
def test_sign_in_never_redirects_off_site(browser, alice, target):
    token = csrf(browser)
    resp = browser.post(
        f"/connexion?next={target}",
        base_url=BASE,
        data={"csrf_token": token, "username": "alice", "password": "correct horse battery"},
    )
    assert resp.headers["Location"] == "/"


def test_sign_out_needs_a_post_with_csrf(browser, alice):
    sign_in(browser)
    assert browser.get("/deconnexion", base_url=BASE).status_code == 405
    token = csrf(browser, "/")
    assert (
        browser.post("/deconnexion", base_url=BASE, data={"csrf_token": token}).status_code == 302
    )
    assert browser.get("/", base_url=BASE).status_code == 302


def test_english_is_available(browser, alice):
    sign_in(browser)
    token = csrf(browser, "/")
    browser.post("/langue", base_url=BASE, data={"csrf_token": token, "lang": "en", "next": "/"})
    html = browser.get("/", base_url=BASE).get_data(as_text=True)
    assert 'lang="en"' in html and "Welcome, Alice Martin" in html


def test_unknown_pages_are_html_404_and_api_stays_problem_json(browser):
    page = browser.get("/nulle-part", base_url=BASE)
    assert page.status_code == 404 and page.mimetype == "text/html"
    assert "Page introuvable" in page.get_data(as_text=True)
    api = browser.get("/api/v1/nulle-part", base_url=BASE)
    assert api.mimetype == "application/problem+json"


def test_the_french_catalog_is_complete_and_compiled():
    """Every string the code marks has a French translation, and the .mo is up to date."""
    import subprocess
    import sys
    import tempfile

    po_path = ROOT / "config/translations/fr/LC_MESSAGES/messages.po"
    with tempfile.TemporaryDirectory() as tmp:
        pot = Path(tmp) / "messages.pot"
        subprocess.run(
            [
                sys.executable,
                "-m",
                "babel.messages.frontend",
                "extract",
                "-F",
                "babel.cfg",
                "-k",
                "lazy_gettext",
                "-k",
                "N_",
                "--no-location",
                "-o",
                str(pot),
                "config",
                "cmdb",
                "servicedesk",
                "connectors",
                "reporting",
            ],
            cwd=ROOT,
            check=True,
            capture_output=True,
        )
        with pot.open("rb") as fh:
            wanted = {m.id for m in read_po(fh) if m.id}
    with po_path.open("rb") as fh:
        po = {m.id: m.string for m in read_po(fh) if m.id}
    with po_path.with_suffix(".mo").open("rb") as fh:
        mo = {m.id: m.string for m in read_mo(fh) if m.id}
    missing = sorted(str(m) for m in wanted if not po.get(m))
    assert not missing, f"untranslated (run `make translations`): {missing}"
    stale = sorted(str(m) for m in wanted if mo.get(m) != po.get(m))
    assert not stale, f".mo out of date (run `make translations`): {stale}"
