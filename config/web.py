"""The web pages' kernel: sign-in with argon2 passwords, signed session cookies, CSRF on every
form, French by default (English available), the base layout and HTML error pages.

Pages call the same services as the API; each domain adds its own ``pages.py`` blueprint
using :func:`page_actor` (tenant isolation is the same: another tenant's object is a 404
page). Nothing here imports a domain.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Iterable, Mapping
from functools import wraps
from pathlib import Path
from typing import Any, TypeVar, cast
from urllib.parse import urlsplit

import sqlalchemy as sa
from flask import (
    Blueprint,
    Flask,
    Request,
    Response,
    abort,
    current_app,
    flash,
    g,
    redirect,
    render_template,
    request,
    session,
    url_for,
)
from flask.sessions import SecureCookieSession, SecureCookieSessionInterface
from flask_babel import Babel, get_translations, lazy_gettext
from flask_babel import gettext as _
from jinja2 import pass_context
from jinja2.runtime import Context
from markupsafe import Markup

from config.auth import (
    Actor,
    Role,
    User,
    throttle_check,
    throttle_failure,
    verify_password,
)
from config.db import db, utcnow
from config.errors import AppError, TooManyRequests

__all__ = [
    "LANGUAGES",
    "errors_of",
    "form_values",
    "init_web",
    "login_required",
    "non_empty",
    "page_actor",
    "register_nav",
    "web_bp",
]

LANGUAGES = {"fr": "Français", "en": "English"}
F = TypeVar("F", bound=Callable[..., Any])

web_bp = Blueprint(
    "web",
    __name__,
    template_folder="templates",
    static_folder="static",
    static_url_path="/static",
)
babel = Babel()


def N_(message: str) -> str:  # noqa: N802 - gettext's conventional name for "mark only"
    """Mark a string for extraction; it is translated where it is displayed."""
    return message


# Strings displayed through a variable (role names, HTTP titles on error pages).
_MARKED = (
    N_("technician"),
    N_("infra"),
    N_("manager"),
    N_("admin"),
    N_("Bad Request"),
    N_("Unauthorized"),
    N_("Forbidden"),
    N_("Not Found"),
    N_("Method Not Allowed"),
    N_("Conflict"),
    N_("Precondition Failed"),
    N_("Content Too Large"),
    N_("Unsupported Media Type"),
    N_("Unprocessable Content"),
    N_("Too Many Requests"),
    N_("Internal Server Error"),
    N_("Service Unavailable"),
)

_UNSAFE = {"POST", "PUT", "PATCH", "DELETE"}
_NO_PAGES = ("/api/", "/healthz", "/readyz")


def is_page_request() -> bool:
    """A browser page (not the JSON API nor the probes)."""
    return not request.path.startswith(_NO_PAGES)


def select_locale() -> str:
    """French unless the user chose another language from the menu (kept in the session)."""
    lang = session.get("lang")
    return str(lang) if lang in LANGUAGES else "fr"


# -- the signed-in user ---------------------------------------------------------------


# What a page needs of the signed-in user, built once (the id is a bound parameter) and read
# as a plain row through the session's connection: a quarter of the cost of ``session.get``,
# which builds and hashes a new statement and maps a whole User on every request.
_SESSION_USER = sa.select(
    User.id,
    User.username,
    User.full_name,
    User.role,
    User.all_tenants,
    User.active,
    User.version,
).where(User.id == sa.bindparam("uid"))


def page_actor() -> Actor | None:
    """The actor of this page request, from the session cookie (None when signed out).

    The session holds the user id and the user's ``version``: any change to the user
    (role, tenants, password, deactivation) signs its sessions out.
    """
    if "page_actor" in g:
        return g.page_actor  # type: ignore[no-any-return,unused-ignore]
    actor = None
    uid, version = session.get("uid"), session.get("uv")
    if isinstance(uid, int) and isinstance(version, int):
        user = db.session.connection().execute(_SESSION_USER, {"uid": uid}).first()
        if user is not None and user.active and user.version == version:
            # Actor.of reads the id, username, role and all_tenants, which the row has.
            actor = Actor.of(cast(User, user))
            g.page_user = user  # the row: templates read its full_name
        else:
            session.clear()
    g.page_actor = actor
    if actor is not None:
        from config.auth import set_request_actor

        set_request_actor(actor)
    return actor


def login_required(view: F) -> F:
    """Redirect to the sign-in page when nobody is signed in."""

    @wraps(view)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        if page_actor() is None:
            return redirect(url_for("web.signin", next=request.full_path.rstrip("?")))
        return view(*args, **kwargs)

    return wrapper  # type: ignore[return-value]


# -- CSRF -----------------------------------------------------------------------------


def csrf_token() -> str:
    token = session.get("csrf")
    if not isinstance(token, str):
        token = secrets.token_urlsafe(32)
        session["csrf"] = token
    return token


def _check_csrf() -> None:
    sent = request.form.get("csrf_token") or request.headers.get("X-CSRF-Token")
    expected = session.get("csrf")
    if not sent or not isinstance(expected, str) or not secrets.compare_digest(sent, expected):
        abort(
            400,
            description=_(
                "The form has expired or was not sent from syndic. Reload the page and try again."
            ),
        )


# -- pages ----------------------------------------------------------------------------


def _safe_next(target: str | None) -> str:
    """Only local paths: never redirect to another site after sign-in."""
    if not target:
        return url_for("web.home")
    parts = urlsplit(target)
    if parts.scheme or parts.netloc or not target.startswith("/") or target.startswith("//"):
        return url_for("web.home")
    return target


@web_bp.route("/connexion", methods=["GET", "POST"])
def signin() -> Any:
    """Sign in with a username and a password."""
    error = None
    username = ""
    status = 200
    if request.method == "POST":
        username = request.form.get("username", "").strip().lower()[:150]
        password = request.form.get("password", "")[:500]
        now = utcnow()
        keys = [f"signin:{request.remote_addr}", f"signin-user:{username}"]
        try:
            for key in keys:
                throttle_check(key, now=now)
            user = db.session.execute(sa.select(User).where(User.username == username)).scalar()
            if user is not None and user.active and verify_password(user, password):
                session.clear()
                session.permanent = True
                session["uid"], session["uv"] = user.id, user.version
                session["lang"] = select_locale()
                # A fresh CSRF token for the new session, so that the pages after sign-in
                # do not have to add one (and re-sign the cookie) on their first GET.
                session["csrf"] = secrets.token_urlsafe(32)
                return redirect(_safe_next(request.args.get("next")))
            if user is None:
                verify_password(User(password_hash=None), password)  # same time either way
            for key in keys:
                throttle_failure(key, now=now)
            # Same message whatever was wrong: unknown user, wrong password, inactive.
            error = _("Unknown username or wrong password.")
            status = 401
        except TooManyRequests as exc:
            error = _("Too many failed attempts. Wait a few minutes before trying again.")
            status = 429
            resp = Response(render_template("signin.html", error=error, username=username), status)
            resp.headers["Retry-After"] = exc.headers.get("Retry-After", "60")
            return resp
    return render_template("signin.html", error=error, username=username), status


@web_bp.post("/deconnexion")
def signout() -> Any:
    """Sign out (a POST with the CSRF token, so that no link can sign anyone out)."""
    lang = session.get("lang")
    session.clear()
    if lang:
        session["lang"] = lang
    flash(_("You are signed out."))
    return redirect(url_for("web.signin"))


@web_bp.post("/langue")
def set_language() -> Any:
    """Choose the language of the pages."""
    lang = request.form.get("lang")
    if lang in LANGUAGES:
        session["lang"] = lang
    return redirect(_safe_next(request.form.get("next")))


@web_bp.get("/")
@login_required
def home() -> Any:
    """The start page: what this role can do."""
    return render_template("home.html", sections=current_app.extensions["syndic.nav"])


# -- forms ------------------------------------------------------------------------------


def form_values(names: Iterable[str]) -> dict[str, str]:
    """The submitted values of ``names`` (stripped; missing ones as empty strings)."""
    return {name: request.form.get(name, "").strip() for name in names}


def non_empty(values: Mapping[str, str]) -> dict[str, str]:
    """Drop empty fields, so that the schemas treat them as not given."""
    return {k: v for k, v in values.items() if v != ""}


def errors_of(exc: Exception) -> dict[str, list[str]]:
    """Field → messages from a marshmallow ValidationError or a kernel AppError."""
    from marshmallow import ValidationError

    from config.errors import flatten_messages

    if isinstance(exc, ValidationError):
        return flatten_messages(exc.messages)
    errors = getattr(exc, "errors", None)
    if errors:
        return {k: list(v) for k, v in errors.items()}
    return {"_form": [getattr(exc, "detail", str(exc))]}


# -- navigation registry ----------------------------------------------------------------


def register_nav(
    app: Flask, endpoint: str, label: Any, roles: set[Role] | None = None, order: int = 50
) -> None:
    """Add a page to the navigation (domains call this from ``init_app``)."""
    app.extensions.setdefault("syndic.nav", []).append(
        {"endpoint": endpoint, "label": label, "roles": roles, "order": order}
    )
    app.extensions["syndic.nav"].sort(key=lambda item: item["order"])


def _nav_for(actor: Actor | None) -> list[dict[str, Any]]:
    if actor is None:
        return []
    return [
        item
        for item in current_app.extensions.get("syndic.nav", [])
        if item["roles"] is None or actor.role in item["roles"]
    ]


# -- translations in templates ----------------------------------------------------------


def _format(rv: str, variables: dict[str, Any]) -> str:
    # Jinja always applies ``%`` (so that "%%" reads "%"); without a "%" in the message
    # and without variables the result is the message itself, so skip the formatting.
    return rv % variables if variables or "%" in rv else rv


def render_gettext(translations: Any) -> dict[str, Any]:
    """Jinja's newstyle gettext callables bound to one catalog, for one render.

    Flask-Babel's own callables (the Jinja globals) look the catalog up again for every
    string: the request context, the locale (``force_locale`` aware), its identifier, then
    the per-locale cache. A page translates dozens of strings, all in the locale in force
    when it starts rendering, so the catalog is looked up once (with Flask-Babel's
    ``get_translations``, so the same per-locale object) and each string is one dictionary
    lookup. Same results as the globals: marked safe under autoescape, then ``%`` applied.
    """

    @pass_context
    def gettext(ctx: Context, string: str, **variables: Any) -> str:
        rv = translations.ugettext(string)
        if ctx.eval_ctx.autoescape:
            rv = Markup(rv)  # noqa: S704 - our own catalog, as Jinja's i18n does
        return _format(rv, variables)

    @pass_context
    def ngettext(ctx: Context, singular: str, plural: str, num: int, **variables: Any) -> str:
        variables.setdefault("num", num)
        rv = translations.ungettext(singular, plural, num)
        if ctx.eval_ctx.autoescape:
            rv = Markup(rv)  # noqa: S704 - our own catalog, as Jinja's i18n does
        return _format(rv, variables)

    @pass_context
    def pgettext(ctx: Context, context: str, string: str, **variables: Any) -> str:
        variables.setdefault("context", context)
        rv = translations.upgettext(context, string)
        if ctx.eval_ctx.autoescape:
            rv = Markup(rv)  # noqa: S704 - our own catalog, as Jinja's i18n does
        return _format(rv, variables)

    @pass_context
    def npgettext(
        ctx: Context, context: str, singular: str, plural: str, num: int, **variables: Any
    ) -> str:
        variables.setdefault("context", context)
        variables.setdefault("num", num)
        rv = translations.unpgettext(context, singular, plural, num)
        if ctx.eval_ctx.autoescape:
            rv = Markup(rv)  # noqa: S704 - our own catalog, as Jinja's i18n does
        return _format(rv, variables)

    return {
        "_": gettext,
        "gettext": gettext,
        "ngettext": ngettext,
        "pgettext": pgettext,
        "npgettext": npgettext,
    }


# -- wiring -----------------------------------------------------------------------------


class CookieSessions(SecureCookieSessionInterface):
    """Flask's signed-cookie sessions, except that a request without the session cookie (every
    API call, whose bearer token is its credential) gets its empty session without building
    the cookie's signing serializer first (an HMAC key derivation per request)."""

    def open_session(self, app: Flask, request: Request) -> SecureCookieSession | None:
        if app.secret_key and not request.cookies.get(self.get_cookie_name(app)):
            return self.session_class()
        return super().open_session(app, request)


def init_web(app: Flask) -> None:
    """Install sessions, CSRF, languages and the base pages on the app."""
    app.config.update(
        BABEL_DEFAULT_LOCALE="fr",
        BABEL_DEFAULT_TIMEZONE="Europe/Paris",
        BABEL_TRANSLATION_DIRECTORIES=str(Path(__file__).with_name("translations")),
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Lax",
        SESSION_COOKIE_NAME="syndic_session",
        PERMANENT_SESSION_LIFETIME=12 * 3600,  # a working day, then sign in again
        # The cookie is re-signed only when the session changes (sign-in, language, CSRF
        # token), not on every page: the working day counts from the sign-in, and a page
        # view costs no HMAC nor Set-Cookie.
        SESSION_REFRESH_EACH_REQUEST=False,
    )
    app.session_interface = CookieSessions()
    babel.init_app(app, locale_selector=select_locale)
    app.extensions.setdefault("syndic.nav", [])
    app.jinja_env.globals["csrf_token"] = csrf_token  # also inside imported macros
    app.register_blueprint(web_bp)
    register_nav(app, "web.home", lazy_gettext("Home"), order=0)

    @app.before_request
    def _csrf() -> None:
        if request.method in _UNSAFE and is_page_request():
            _check_csrf()

    @app.context_processor
    def _globals() -> dict[str, Any]:
        actor = page_actor() if is_page_request() else None
        return {
            "csrf_token": csrf_token,
            "actor": actor,
            "nav": _nav_for(actor),
            "languages": LANGUAGES,
            "lang": select_locale(),
            **render_gettext(get_translations()),
        }


def render_error_page(status: int, title: str, detail: str | None) -> Response:
    """An HTML error page for browsers (the API answers problem+json instead)."""
    try:
        html = render_template("error.html", status=status, title=title, detail=detail)
    except Exception:  # noqa: BLE001 - never fail while rendering an error
        html = f"<!doctype html><title>{status}</title><h1>{status}</h1>"
    return Response(html, status=status, mimetype="text/html")


def app_error_page(err: AppError) -> Response:
    return render_error_page(err.status, err.title, err.detail)
