"""The sync status page (admins, as the sync API): each configured source with its state and
last runs, the newest run's errors, and a button that queues a run for ``syndic scheduler``
through the same rule as ``POST /api/v1/sync/sources/{name}/runs``."""

from __future__ import annotations

from typing import Any

from flask import Blueprint, flash, redirect, render_template, url_for
from flask_babel import lazy_gettext as _l
from sqlalchemy import select

from config.auth import Role, current_actor, require
from config.db import db
from config.errors import AppError
from config.settings import current_settings
from config.web import login_required, register_nav
from connectors import runner
from connectors.control import start_run
from connectors.models import SyncError, SyncRun, SyncSource

pages = Blueprint("sync_pages", __name__, template_folder="templates")

RECENT_RUNS = 20
SHOWN_ERRORS = 50
STATUS_LABELS = {
    "queued": _l("queued"),
    "running": _l("running"),
    "succeeded": _l("succeeded"),
    "failed": _l("failed"),
    "interrupted": _l("interrupted"),
}


def _sources() -> list[dict[str, Any]]:
    settings = current_settings()
    names = sorted(n for n, s in settings.sources.items() if s.kind in runner.KINDS)
    states = {
        s.name: s
        for s in db.session.execute(select(SyncSource).where(SyncSource.name.in_(names))).scalars()
    }
    out = []
    for name in names:
        last = db.session.execute(
            select(SyncRun).where(SyncRun.source == name).order_by(SyncRun.id.desc()).limit(1)
        ).scalar()
        out.append(
            {
                "name": name,
                "public": settings.sources[name].public(),
                "state": states.get(name),
                "last": last,
            }
        )
    return out


@pages.get("/synchronisation")
@login_required
def status() -> Any:
    require(current_actor(), "connectors.sources.read")
    runs = (
        db.session.execute(select(SyncRun).order_by(SyncRun.id.desc()).limit(RECENT_RUNS))
        .scalars()
        .all()
    )
    newest = runs[0] if runs else None
    errors = []
    if newest is not None:
        errors = (
            db.session.execute(
                select(SyncError)
                .where(SyncError.run_id == newest.id)
                .order_by(SyncError.id)
                .limit(SHOWN_ERRORS)
            )
            .scalars()
            .all()
        )
    return render_template(
        "connectors/status.html",
        sources=_sources(),
        runs=runs,
        newest=newest,
        errors=errors,
        status_labels=STATUS_LABELS,
    )


@pages.post("/synchronisation/<string:name>")
@login_required
def start(name: str) -> Any:
    from flask import request

    actor = current_actor()
    try:
        run = start_run(
            name, full=request.form.get("full") == "1", allow_mass_delete=False, actor=actor
        )
    except AppError as err:
        if err.status != 503:
            raise
        flash(
            str(
                _l(
                    "No scheduler is running: start `syndic scheduler`, or run `syndic sync` "
                    "from the command line."
                )
            ),
            "error",
        )
        return redirect(url_for("sync_pages.status"))
    flash(str(_l("Run %(id)s queued for %(name)s.", id=run.id, name=name)), "info")
    return redirect(url_for("sync_pages.status"))


def init_pages(app: Any) -> None:
    app.register_blueprint(pages)
    register_nav(app, "sync_pages.status", _l("Synchronisation"), roles={Role.ADMIN}, order=45)
