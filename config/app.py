"""The application factory: settings, extensions, error handlers, auth and every domain."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from flask import Flask, Response, request
from werkzeug.routing import IntegerConverter

from config import changelog, jobs, tenancy  # noqa: F401  (kernel models)
from config.api import Api
from config.auth import authenticate_bearer, set_request_actor, throttle_failure
from config.db import db, install_engine_tuning, utcnow
from config.errors import AppError, register_error_handlers, render_app_error, request_id
from config.extensions import make_api, migrate
from config.jsonio import FastJSONProvider
from config.settings import Settings
from config.web import init_web

__all__ = ["create_app"]

API_PREFIX = "/api/v1/"
PUBLIC_API_PATHS = {"/api/v1/openapi.json"}


class BoundedIntConverter(IntegerConverter):
    """``<int:...>`` that does not match ids beyond 32 bits (they cannot exist: 404)."""

    def __init__(self, map: Any, *args: Any, **kwargs: Any) -> None:  # noqa: A002
        kwargs.setdefault("max", 2**31 - 1)
        super().__init__(map, *args, **kwargs)


def create_app(
    overrides: Mapping[str, Any] | None = None, *, settings: Settings | None = None
) -> Flask:
    """Build a syndic application.

    ``settings`` defaults to :meth:`Settings.from_env`; ``overrides`` are Flask config
    keys applied last (tests use them, as flaskr's ``create_app(test_config)`` does).
    """
    app = Flask("syndic", instance_relative_config=True, static_folder=None)
    app.json = FastJSONProvider(app)
    settings = settings or Settings.from_env()
    if settings.instance_path:
        app.instance_path = settings.instance_path
    app.extensions["syndic.settings"] = settings
    app.url_map.converters["int"] = BoundedIntConverter
    app.url_map.strict_slashes = False
    app.config.from_mapping(settings.flask_config(app.instance_path))
    app.config.update(
        API_TITLE="syndic",
        API_VERSION="v1",
        OPENAPI_VERSION="3.1.0",
        OPENAPI_URL_PREFIX="/api/v1",
        OPENAPI_JSON_PATH="openapi.json",
        API_SPEC_OPTIONS={
            "info": {
                "description": "Service desk and CMDB for shared public-sector IT. "
                "Contract: design/API.md."
            }
        },
    )
    if overrides:
        app.config.update(overrides)
    if app.config["SQLALCHEMY_DATABASE_URI"].startswith("sqlite:///"):
        import os

        os.makedirs(app.instance_path, exist_ok=True)
    logging.getLogger("syndic").setLevel(settings.log_level.upper())

    db.init_app(app)
    with app.app_context():
        install_engine_tuning(db.engine)
    migrate.init_app(app, db)
    api = make_api()
    api.init_app(app)
    app.extensions["syndic.api"] = api
    register_error_handlers(app)
    init_web(app)
    _install_request_hooks(app)
    _register_blueprints(app, api)
    return app


def _register_blueprints(app: Flask, api: Api) -> None:
    from config.routes import changes_blp, docs_bp, health_blp, tenants_blp, tokens_blp, users_blp

    for blp in (health_blp, tenants_blp, users_blp, tokens_blp, changes_blp):
        api.register_blueprint(blp)
    app.register_blueprint(docs_bp)
    # Domains register their own blueprints, CLI commands and jobs (STYLE.md §3.4).
    import cmdb
    import connectors
    import reporting
    import servicedesk

    for domain in (cmdb, servicedesk, connectors, reporting):
        init = getattr(domain, "init_app", None)
        if init is not None:
            init(app, api)


def _install_request_hooks(app: Flask) -> None:
    @app.before_request
    def _authenticate() -> Response | None:
        path = request.path
        if not path.startswith(API_PREFIX) or path in PUBLIC_API_PATHS:
            return None
        now = utcnow()
        try:
            set_request_actor(authenticate_bearer(request.headers.get("Authorization"), now=now))
        except AppError as err:
            if request.headers.get("Authorization"):
                # A wrong token (not a missing one) counts against the client address;
                # past the limit the answer is 429 with Retry-After, in every worker.
                try:
                    throttle_failure(f"token:{request.remote_addr}", now=now)
                except AppError as throttled:
                    return render_app_error(throttled)
            return render_app_error(err)
        return None

    @app.after_request
    def _headers(resp: Response) -> Response:
        headers = resp.headers
        headers["X-Content-Type-Options"] = "nosniff"
        if request.path.startswith("/api/"):
            headers["X-Request-Id"] = request_id()
            headers.setdefault("Cache-Control", "no-store")
        return resp
