"""Bulk upserts of a source's pages (connectors, API.md §4): the rules and results of
:func:`servicedesk.services.upsert_external_tickets` and
:func:`servicedesk.services.upsert_external_time_entries`, with the new rows of a page
written by one Core INSERT (executemany, ids returned in parameter order) instead of one ORM
object each. The change log records each of them as the single-object path does (same
content: every column of the new row), through :func:`config.changelog.record_created`.

Rows that already exist (updates, trash, restore, unchanged) go through the ORM upserts of
``services``: a page of a second run writes nothing, and the trash rules stay in one place.
A record that breaks a rule comes back with its error and is not written; the others are.
A source's ticket comments (follow-ups) and satisfaction answers have no single-object
upsert: theirs are here.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable, Mapping
from types import SimpleNamespace
from typing import Any, cast

from sqlalchemy import select

from config.auth import Actor, User
from config.changelog import insert_created
from config.db import db, transaction, utcnow
from config.errors import ValidationFailed
from config.tenancy import Tenant
from servicedesk import services
from servicedesk.models import Comment, Satisfaction, Ticket, TimeEntry
from servicedesk.services import Result
from servicedesk.settings import ServiceDeskSettings

__all__ = [
    "TicketRef",
    "upsert_external_comments",
    "upsert_external_satisfactions",
    "upsert_external_tickets",
    "upsert_external_time_entries",
]

CHUNK = 500

# A ticket as the time-entry rules see it (id, tenant, trash state, external id).
TicketRef = SimpleNamespace


def _chunks(values: Iterable[str]) -> Iterable[list[str]]:
    ordered = sorted(set(values))
    for start in range(0, len(ordered), CHUNK):
        yield ordered[start : start + CHUNK]


def _existing(model: Any, source: str, ids: Iterable[str]) -> set[str]:
    found: set[str] = set()
    for chunk in _chunks(ids):
        found.update(
            db.session.execute(
                select(model.external_id).where(
                    model.source == source, model.external_id.in_(chunk)
                )
            ).scalars()
        )
    return found


def _split(
    items: list[tuple[str, Mapping[str, Any]]], existing: set[str]
) -> tuple[list[int], list[int]]:
    """Indexes of the items to insert (first sight of a new id) and of those for the ORM
    path (known ids, and repeats of a new id within the page, applied after the insert)."""
    new: list[int] = []
    later: list[int] = []
    seen: set[str] = set()
    for i, (ext, _data) in enumerate(items):
        if ext in existing or ext in seen:
            later.append(i)
        else:
            seen.add(ext)
            new.append(i)
    return new, later


def _insert(model: Any, params: list[dict[str, Any]]) -> list[int]:
    """One INSERT for the rows (ids in their order), logged in the change log."""
    return insert_created(db.session(), model, params)


def _stamped(values: dict[str, Any], source: str, ext: str, stamp: dt.datetime) -> dict[str, Any]:
    return {
        **values,
        "source": source,
        "external_id": ext,
        "created_at": stamp,
        "updated_at": stamp,
        "version": 1,
    }


def upsert_external_tickets(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    source: str,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> list[tuple[Result | None, Ticket | None, Exception | None]]:
    """:func:`servicedesk.services.upsert_external_tickets` for a page; the ticket of a new
    row is not returned (None): it was written without an object."""
    items = list(items)
    out: list[tuple[Result | None, Ticket | None, Exception | None]] = [(None, None, None)] * len(
        items
    )
    with transaction(actor=actor):
        new, later = _split(items, _existing(Ticket, source, (ext for ext, _ in items)))
        tenants = {
            t.code: t
            for t in db.session.execute(
                select(Tenant).where(
                    Tenant.code.in_(sorted({str(items[i][1].get("tenant")) for i in new}))
                )
            ).scalars()
        }
        names = sorted({str(items[i][1]["assignee"]) for i in new if items[i][1].get("assignee")})
        assignees = {
            u.username: u
            for u in db.session.execute(select(User).where(User.username.in_(names))).scalars()
        }
        stamp = utcnow()
        params: list[dict[str, Any]] = []
        placed: list[int] = []
        for i in new:
            ext, data = items[i]
            try:
                tenant = tenants.get(str(data["tenant"]))
                if tenant is None:
                    raise services._fail(
                        "tenant", f"Unknown tenant {data['tenant']!r}.", "Unknown tenant."
                    )
                ci = None
                if data.get("ci") is not None:
                    try:
                        ci = services._ci_for(data["ci"], tenant.id, actor)
                    except ValidationFailed:
                        ci = None  # an item the CMDB does not know stays unlinked
                assignee = (
                    assignees.get(str(data.get("assignee"))) if data.get("assignee") else None
                )
                values = services._external_ticket_values(data, tenant, ci, assignee, rules)
            except (ValidationFailed, ValueError, KeyError) as exc:
                out[i] = (None, None, exc)
                continue
            row = {
                **values,
                "paused_minutes": 0.0,
                "sla_breached": False,
                "pending_since": None,
                "deleted_at": now if data.get("deleted") else None,
            }
            # The SLA of a new ticket, computed by the same function as for an object.
            probe = SimpleNamespace(**row, tenant=tenant)
            services.refresh_sla(cast(Ticket, probe), rules, now)
            row["due_to_own_at"] = probe.due_to_own_at
            row["due_to_resolve_at"] = probe.due_to_resolve_at
            row["sla_breached"] = probe.sla_breached
            params.append(_stamped(row, source, ext, stamp))
            placed.append(i)
        _insert(Ticket, params)
        for i in placed:
            out[i] = ("created", None, None)
        if later:
            done = services.upsert_external_tickets(
                [items[i] for i in later], source=source, actor=actor, now=now, rules=rules
            )
            for i, result in zip(later, done, strict=True):
                out[i] = result
    return out


def upsert_external_time_entries(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    source: str,
    actor: Actor,
    now: dt.datetime,
    rules: ServiceDeskSettings,
) -> list[tuple[Result | None, Any, Exception | None]]:
    """:func:`servicedesk.services.upsert_external_time_entries` for a page; each result
    carries the entry's ticket (a :data:`TicketRef` for new rows: ``id``, ``tenant_id``,
    ``deleted_at``, ``external_id``) instead of the entry, or None without a ticket."""
    items = list(items)
    out: list[tuple[Result | None, Any, Exception | None]] = [(None, None, None)] * len(items)
    with transaction(actor=actor):
        new, later = _split(items, _existing(TimeEntry, source, (ext for ext, _ in items)))
        users: dict[str, User] = {}
        for chunk in _chunks(str(items[i][1].get("user")) for i in new):
            for user in db.session.execute(select(User).where(User.username.in_(chunk))).scalars():
                users[user.username] = user
        tenants: dict[str, Tenant] = {}
        for chunk in _chunks(str(items[i][1]["tenant"]) for i in new if items[i][1].get("tenant")):
            for tenant in db.session.execute(
                select(Tenant).where(Tenant.code.in_(chunk))
            ).scalars():
                tenants[tenant.code] = tenant
        tickets = _tickets_of(
            source,
            (
                str(items[i][1]["ticket_external_id"])
                for i in new
                if items[i][1].get("ticket_external_id")
            ),
        )
        stamp = utcnow()
        params: list[dict[str, Any]] = []
        placed: list[tuple[int, Any]] = []
        for i in new:
            ext, data = items[i]
            try:
                user = users.get(str(data["user"]))
                if user is None or not user.active:
                    raise services._fail("user", f"Unknown user {data['user']!r}.", "Unknown user.")
                tenant: Any = None
                if data.get("tenant"):
                    tenant = tenants.get(str(data["tenant"]))
                    if tenant is None:
                        raise services._fail(
                            "tenant", f"Unknown tenant {data['tenant']!r}.", "Unknown tenant."
                        )
                ticket = None
                if data.get("ticket_external_id"):
                    ticket = tickets.get(str(data["ticket_external_id"]))
                    if ticket is None:
                        raise services._fail(
                            "ticket", f"Unknown ticket {data['ticket_external_id']!r} in {source}."
                        )
                    if tenant is None:
                        tenant = SimpleNamespace(id=ticket.tenant_id)
                values = services._external_entry_values(
                    data, user, tenant, cast(Ticket, ticket), None, now
                )
                # The rules every entry obeys, checked by the same function as for an object.
                probe = SimpleNamespace(**values, ticket=ticket, project=None, id=None)
                services._check_entry(cast(TimeEntry, probe), rules, now, check_day=False)
            except ValidationFailed as exc:
                out[i] = (None, None, exc)
                continue
            params.append(_stamped({**values, "project_id": None}, source, ext, stamp))
            placed.append((i, ticket))
        _insert(TimeEntry, params)
        for i, ticket in placed:
            out[i] = ("created", ticket, None)
        if later:
            done = services.upsert_external_time_entries(
                [items[i] for i in later], source=source, actor=actor, now=now, rules=rules
            )
            for i, (result, entry, error) in zip(later, done, strict=True):
                out[i] = (result, entry.ticket if entry is not None else None, error)
    return out


def _tickets_of(source: str, external_ids: Iterable[str]) -> dict[str, TicketRef]:
    """The source's tickets with these external ids (id, tenant, trash), by external id."""
    tickets: dict[str, TicketRef] = {}
    for chunk in _chunks(external_ids):
        stmt = select(Ticket.id, Ticket.tenant_id, Ticket.deleted_at, Ticket.external_id).where(
            Ticket.source == source, Ticket.external_id.in_(chunk)
        )
        for row in db.session.execute(stmt):
            tickets[str(row.external_id)] = TicketRef(
                id=row.id,
                tenant_id=row.tenant_id,
                deleted_at=row.deleted_at,
                external_id=row.external_id,
            )
    return tickets


def upsert_external_comments(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    source: str,
    actor: Actor,
    now: dt.datetime,
) -> list[tuple[Result | None, Any, Exception | None]]:
    """Create or update a page of a source's ticket comments (follow-ups), matched by
    (source, external_id); new ones in one INSERT, changed ones through the ORM.

    ``data``: ``ticket_external_id`` (a ticket of the same source, required), ``body``
    (sanitised here), ``private`` (bool), ``author`` (username or None: an unknown one is
    left out), ``author_name``, ``at`` (when it was written; default ``now``). Each result
    carries the comment's ticket (a :data:`TicketRef`). A comment on a ticket in the trash is
    kept with it."""
    items = list(items)
    out: list[tuple[Result | None, Any, Exception | None]] = [(None, None, None)] * len(items)
    with transaction(actor=actor):
        tickets = _tickets_of(source, (str(d.get("ticket_external_id")) for _, d in items))
        authors: dict[str, int] = {}
        for chunk in _chunks(str(d["author"]) for _, d in items if d.get("author")):
            for user_id, username in db.session.execute(
                select(User.id, User.username).where(User.username.in_(chunk))
            ):
                authors[username] = user_id
        existing: dict[str, Comment] = {}
        for chunk in _chunks(ext for ext, _ in items):
            stmt = select(Comment).where(Comment.source == source, Comment.external_id.in_(chunk))
            for comment in db.session.execute(stmt).scalars():
                existing[str(comment.external_id)] = comment
        stamp = utcnow()
        params: list[dict[str, Any]] = []
        placed: list[tuple[int, Any]] = []
        pending: set[str] = set()
        for i, (ext, data) in enumerate(items):
            ticket = tickets.get(str(data.get("ticket_external_id")))
            if ticket is None:
                out[i] = (
                    None,
                    None,
                    services._fail(
                        "ticket", f"Unknown ticket {data.get('ticket_external_id')!r} in {source}."
                    ),
                )
                continue
            body = services.sanitize_html(str(data.get("body") or ""))
            if not body.strip():
                out[i] = (None, None, services._fail("body", "Empty comment."))
                continue
            values = {
                "ticket_id": ticket.id,
                "tenant_id": ticket.tenant_id,
                "author_id": authors.get(str(data.get("author"))) if data.get("author") else None,
                "author_name": str(data.get("author_name") or "")[:200],
                "body": body,
                "private": bool(data.get("private")),
                "kind": "comment",
            }
            at = data.get("at") or now
            comment = existing.get(ext)
            if comment is None and ext not in pending:
                pending.add(ext)
                params.append(
                    {
                        **values,
                        "source": source,
                        "external_id": ext,
                        "created_at": at,
                        "updated_at": stamp,
                    }
                )
                placed.append((i, ticket))
                continue
            if comment is None:  # the same id twice in one page: the first one counts
                out[i] = ("unchanged", ticket, None)
                continue
            changed = services._changed(comment, {**values, "created_at": at})
            out[i] = ("updated" if changed else "unchanged", ticket, None)
        _insert(Comment, params)
        for i, ticket in placed:
            out[i] = ("created", ticket, None)
        db.session.flush()
    return out


def upsert_external_satisfactions(
    items: Iterable[tuple[str, Mapping[str, Any]]],
    *,
    source: str,
    actor: Actor,
    now: dt.datetime,
) -> list[tuple[Result | None, Any, Exception | None]]:
    """Record a page of a source's satisfaction answers, one per ticket (matched by the
    ticket: a ticket has at most one answer); new ones in one INSERT, changed ones through
    the ORM. Keys are the answers' external ids (for errors only).

    ``data``: ``ticket_external_id`` (a ticket of the same source), ``score`` (1–5),
    ``comment``, ``answered_at`` (default ``now``). The source is the authority: no status
    check (GLPI only surveys closed tickets; a reopened one keeps its answer)."""
    items = list(items)
    out: list[tuple[Result | None, Any, Exception | None]] = [(None, None, None)] * len(items)
    with transaction(actor=actor):
        tickets = _tickets_of(source, (str(d.get("ticket_external_id")) for _, d in items))
        existing: dict[int, Satisfaction] = {}
        for chunk in _chunks(str(t.id) for t in tickets.values()):
            stmt = select(Satisfaction).where(Satisfaction.ticket_id.in_([int(i) for i in chunk]))
            for answer in db.session.execute(stmt).scalars():
                existing[answer.ticket_id] = answer
        stamp = utcnow()
        params: list[dict[str, Any]] = []
        placed: list[tuple[int, Any]] = []
        pending: set[int] = set()
        for i, (_ext, data) in enumerate(items):
            ticket = tickets.get(str(data.get("ticket_external_id")))
            if ticket is None:
                error = services._fail(
                    "ticket", f"Unknown ticket {data.get('ticket_external_id')!r} in {source}."
                )
                out[i] = (None, None, error)
                continue
            score = data.get("score")
            if isinstance(score, bool) or not isinstance(score, int) or not 1 <= score <= 5:
                out[i] = (None, None, services._fail("score", f"Score {score!r} outside 1..5."))
                continue
            values = {
                "tenant_id": ticket.tenant_id,
                "score": score,
                "comment": str(data.get("comment") or "")[:2000],
                "answered_at": data.get("answered_at") or now,
            }
            answer = existing.get(ticket.id)
            if answer is None and ticket.id not in pending:
                pending.add(ticket.id)
                params.append(
                    {
                        **values,
                        "ticket_id": ticket.id,
                        "created_at": stamp,
                        "updated_at": stamp,
                        "version": 1,
                    }
                )
                placed.append((i, ticket))
                continue
            if answer is None:  # two answers for one ticket in one page: the first counts
                out[i] = ("unchanged", ticket, None)
                continue
            changed = services._changed(answer, values)
            out[i] = ("updated" if changed else "unchanged", ticket, None)
        _insert(Satisfaction, params)
        for i, ticket in placed:
            out[i] = ("created", ticket, None)
        db.session.flush()
    return out
