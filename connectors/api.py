"""``/api/v1/sync``: the configured sources (secrets never shown), their runs, queueing a
run for ``syndic scheduler`` (API.md §2, §4). Admins only: sources carry the syndicate's
integration settings and run errors name objects of every tenant."""

from __future__ import annotations

from typing import Any

from flask import url_for
from flask.views import MethodView
from marshmallow import fields
from sqlalchemy import select

from config.api import Blueprint, InSchema, OutSchema, page_schema
from config.auth import current_actor, require
from config.db import db
from config.errors import NotFound
from config.filters import FilterSet
from config.pagination import paginate
from config.settings import current_settings
from connectors import runner
from connectors.control import start_run
from connectors.models import SyncError, SyncRun, SyncSource

sync_blp = Blueprint(
    "sync", __name__, url_prefix="/api/v1/sync", description="Sync sources and their runs."
)

MAX_ERRORS_IN_DETAIL = 1000


class SourceOut(OutSchema):
    name = fields.String()
    kind = fields.String()
    url = fields.String(allow_none=True)
    options = fields.Dict()
    secrets = fields.List(fields.String(), metadata={"description": "Names of the secrets set."})
    watermark = fields.String(allow_none=True)
    last_run_at = fields.AwareDateTime(allow_none=True)
    last_success_at = fields.AwareDateTime(allow_none=True)
    last_full_at = fields.AwareDateTime(allow_none=True)
    resume_phase = fields.String(allow_none=True)


class SourceList(OutSchema):
    count = fields.Integer()
    results = fields.List(fields.Nested(SourceOut))


class ErrorOut(OutSchema):
    level = fields.String()
    object_type = fields.String()
    external_id = fields.String(allow_none=True)
    line = fields.Integer(allow_none=True)
    message = fields.String()
    at = fields.AwareDateTime()


class RunOut(OutSchema):
    id = fields.Integer()
    source = fields.String()
    mode = fields.String()
    trigger = fields.String()
    status = fields.String()
    requested_by = fields.String(allow_none=True)
    queued_at = fields.AwareDateTime()
    started_at = fields.AwareDateTime(allow_none=True)
    finished_at = fields.AwareDateTime(allow_none=True)
    duration_ms = fields.Integer(allow_none=True)
    created = fields.Integer()
    updated = fields.Integer()
    deleted = fields.Integer()
    unchanged = fields.Integer()
    skipped = fields.Integer()
    error_count = fields.Integer()
    warning_count = fields.Integer()
    pages = fields.Integer()
    by_type = fields.Dict()
    detail = fields.String(allow_none=True)
    resumed_from = fields.Integer(allow_none=True)


class RunDetailOut(RunOut):
    errors = fields.List(fields.Nested(ErrorOut))


class RunFilter(FilterSet):
    model = SyncRun
    fields = {"source": ["exact"], "status": ["exact"], "mode": ["exact"]}
    ordering = ("id", "started_at", "queued_at")
    default_ordering = ("-id",)


class ErrorFilter(FilterSet):
    model = SyncError
    fields = {"level": ["exact"], "object_type": ["exact"], "external_id": ["exact"]}
    ordering = ("id",)
    default_ordering = ("id",)


class RunIn(InSchema):
    full = fields.Boolean(load_default=False)
    allow_mass_delete = fields.Boolean(load_default=False)


def _source_out(name: str) -> dict[str, Any]:
    source = current_settings().sources[name]
    state = db.session.execute(select(SyncSource).where(SyncSource.name == name)).scalar()
    out = source.public()
    out.update(
        watermark=state.watermark if state else None,
        last_run_at=state.last_run_at if state else None,
        last_success_at=state.last_success_at if state else None,
        last_full_at=state.last_full_at if state else None,
        resume_phase=(state.checkpoint or {}).get("phase") if state else None,
    )
    return out


@sync_blp.route("/sources")
class Sources(MethodView):
    @sync_blp.response(200, SourceList)
    @sync_blp.alt_response(403, description="Admins only.")
    def get(self) -> Any:
        """The configured sources and their state (secrets named, never shown)."""
        require(current_actor(), "connectors.sources.read")
        names = sorted(n for n, s in current_settings().sources.items() if s.kind in runner.KINDS)
        return {"count": len(names), "results": [_source_out(n) for n in names]}


@sync_blp.route("/sources/<name>/runs")
class SourceRuns(MethodView):
    @sync_blp.arguments(RunIn)
    @sync_blp.response(202, RunOut)
    @sync_blp.alt_response(503, description="No scheduler holds the lease.")
    def post(self, data: dict[str, Any], name: str) -> Any:
        """Queue a run for `syndic scheduler` (503 while no scheduler holds the lease)."""
        run = start_run(
            name,
            full=data["full"],
            allow_mass_delete=data["allow_mass_delete"],
            actor=current_actor(),
        )
        return run, {"Location": url_for("sync.RunById", run_id=run.id, _external=True)}


@sync_blp.route("/runs")
class Runs(MethodView):
    @sync_blp.arguments(RunFilter.schema(), location="query", as_kwargs=False)
    @sync_blp.response(200, page_schema(RunOut))
    @sync_blp.alt_response(403, description="Admins only.")
    def get(self, args: dict[str, Any]) -> Any:
        """Runs, newest first (`source=`, `status=`, `mode=`)."""
        require(current_actor(), "connectors.runs.read")
        return paginate(RunFilter.apply(select(SyncRun), args), args)


def _run(run_id: int) -> SyncRun:
    require(current_actor(), "connectors.runs.read")
    run = db.session.get(SyncRun, run_id)
    if run is None:
        raise NotFound("No such run.")
    return run


@sync_blp.route("/runs/<int:run_id>")
class RunById(MethodView):
    @sync_blp.response(200, RunDetailOut)
    @sync_blp.alt_response(403, description="Admins only.")
    def get(self, run_id: int) -> Any:
        """One run with its counts and its first errors and warnings (all under /errors)."""
        run = _run(run_id)
        errors = db.session.execute(
            select(SyncError)
            .where(SyncError.run_id == run.id)
            .order_by(SyncError.id)
            .limit(MAX_ERRORS_IN_DETAIL)
        ).scalars()
        out: dict[str, Any] = {c.key: getattr(run, c.key) for c in SyncRun.__table__.columns}
        out["errors"] = list(errors)
        return out


@sync_blp.route("/runs/<int:run_id>/errors")
class RunErrors(MethodView):
    @sync_blp.arguments(ErrorFilter.schema(), location="query", as_kwargs=False)
    @sync_blp.response(200, page_schema(ErrorOut))
    @sync_blp.alt_response(403, description="Admins only.")
    def get(self, args: dict[str, Any], run_id: int) -> Any:
        """Every error and warning of a run (`level=`, `object_type=`, `external_id=`)."""
        run = _run(run_id)
        stmt = select(SyncError).where(SyncError.run_id == run.id)
        return paginate(ErrorFilter.apply(stmt, args), args)


__all__ = ["sync_blp"]
