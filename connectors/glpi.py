"""The GLPI connector: entities → tenants, ITIL categories, users, tickets, tasks → time
entries, ticket ↔ item links → CIs; incremental by ``date_mod`` through ``search/Ticket`` with
an overlap window, and a full listing (nightly) that also applies trash and purges.

Mappings (API.md §4): status 1–6 → new … closed; type 1 → incident, 2 → request; urgency and
impact 6 − GLPI; priority 6 − GLPI, GLPI 6 (major) → 1; dates are GLPI's naive local time
(the source's ``timezone``, Europe/Paris by default) → UTC; text is HTML-entity decoded for
GLPI ≤ 10.0; content is sanitised HTML; a task's ``actiontime`` (seconds) → minutes.
"""

from __future__ import annotations

import datetime as dt
import functools
import html
import logging
from collections.abc import Callable, Iterator
from typing import Any

import nh3
import sqlalchemy as sa
from sqlalchemy import select

from config.auth import SYSTEM, User
from config.db import db, utcnow
from config.errors import AppError
from config.tenancy import Tenant
from connectors.engine import Run, RunFailed, record_message
from connectors.glpi_client import GlpiClient, GlpiError, Page, keyed_pages
from connectors.models import SyncLink
from connectors.services import slug, upsert_source_tenant, upsert_source_user
from connectors.settings import SourceConfig, activity_for
from servicedesk import bulk
from servicedesk import services as desk
from servicedesk.models import Category, Ticket, TimeEntry
from servicedesk.settings import ServiceDeskSettings

__all__ = ["GlpiSync", "RecordError", "glpi_datetime", "map_ticket"]

log = logging.getLogger("syndic.connectors.glpi")

STATUS = {1: "new", 2: "assigned", 3: "in_progress", 4: "pending", 5: "solved", 6: "closed"}
TYPE = {1: "incident", 2: "request"}
SEE_PRIVATE_TASKS = 8192
GLPI_FORMAT = "%Y-%m-%d %H:%M:%S"
MAX_MINUTES = 24 * 60


class RecordError(ValueError):
    """A record from the source that cannot be applied as it is."""


def glpi_datetime(value: Any, tz: dt.tzinfo, *, field: str) -> dt.datetime | None:
    """GLPI's naive local ``YYYY-MM-DD HH:MM:SS`` → aware UTC (None for null/empty).

    A wall-clock time that happens twice (the autumn DST change) is taken as the first one
    (``fold=0``); one that does not exist (spring) is shifted forward by the gap, as
    ``zoneinfo`` does.
    """
    if value in (None, "", "0000-00-00 00:00:00"):
        return None
    if not isinstance(value, str):
        raise RecordError(f"{field}: not a date: {value!r}")
    try:
        naive = dt.datetime.strptime(value.strip(), GLPI_FORMAT)
    except ValueError:
        try:
            naive = dt.datetime.strptime(value.strip(), "%Y-%m-%d")
        except ValueError:
            raise RecordError(f"{field}: not a date: {value[:40]!r}") from None
    local = naive.replace(tzinfo=tz)
    # zoneinfo accepts non-existent times; normalise them through UTC and back.
    return local.astimezone(dt.UTC)


def _int(row: dict[str, Any], key: str, *, default: Any = ...) -> int:
    if key not in row:
        if default is ...:
            raise RecordError(f"missing field {key!r}")
        return int(default)
    value = row[key]
    if isinstance(value, bool) or value is None:
        if default is ...:
            raise RecordError(f"{key}: not an integer: {value!r}")
        return int(default)
    if isinstance(value, str) and value.strip().lstrip("-").isdigit():
        return int(value)
    if not isinstance(value, int):
        raise RecordError(f"{key}: not an integer: {value!r}")
    return value


def decode_text(value: Any, *, encoded: bool) -> str:
    """A GLPI string as its author typed it: entities decoded for GLPI ≤ 10.0."""
    if value is None:
        return ""
    text = str(value)
    return html.unescape(text) if encoded else text


def plain_text(value: str) -> str:
    """Text without markup (titles, notes): tags and script/style contents removed."""
    return html.unescape(nh3.clean(value, tags=set())).strip()


def _scale(row: dict[str, Any], key: str, *, top: int = 5) -> int:
    value = _int(row, key, default=3)
    if key == "priority" and value == 6:
        return 1
    if not 1 <= value <= top:
        raise RecordError(f"{key}: {value} is outside 1..{top}")
    return 6 - value


def map_ticket(
    row: dict[str, Any],
    *,
    tenant_code: Callable[[int], str | None],
    category_id: Callable[[int], int | None],
    tz: dt.tzinfo,
    encoded: bool,
    warn: Callable[[str], None],
    ci: str | None = None,
) -> dict[str, Any]:
    """The data of ``upsert_external_ticket`` for one GLPI ticket row; RecordError if the
    row cannot be applied (the message says why)."""
    status_code = _int(row, "status")
    if status_code not in STATUS:
        raise RecordError(f"unknown status {row.get('status')!r}")
    type_code = _int(row, "type")
    if type_code not in TYPE:
        raise RecordError(f"unknown type {row.get('type')!r}")
    entity = _int(row, "entities_id")
    tenant = tenant_code(entity)
    if tenant is None:
        raise RecordError(f"unknown entity {entity} (vanished, or not visible to the account)")
    if "name" not in row:
        raise RecordError("missing field 'name'")
    raw_title = decode_text(row.get("name"), encoded=encoded)
    title = plain_text(raw_title) if "<" in raw_title else raw_title.strip()
    if title != raw_title.strip():
        warn("markup removed from the title")
    if not title:
        title = f"(GLPI ticket {row.get('id')})"
    content = decode_text(row.get("content"), encoded=encoded)
    opened_at = glpi_datetime(row.get("date"), tz, field="date") or glpi_datetime(
        row.get("date_creation"), tz, field="date_creation"
    )
    if opened_at is None:
        raise RecordError("missing field 'date'")
    category = _int(row, "itilcategories_id", default=0)
    category_local = category_id(category) if category else None
    if category and category_local is None:
        warn(f"unknown category {category}: ticket left without category")
    return {
        "tenant": tenant,
        "type": TYPE[type_code],
        "title": title,
        "description": desk.sanitize_html(content) if content else "",
        "description_format": "html",
        "status": STATUS[status_code],
        "urgency": _scale(row, "urgency"),
        "impact": _scale(row, "impact"),
        "priority": _scale(row, "priority", top=5 if row.get("priority") != 6 else 6),
        "category_id": category_local,
        "ci": ci,
        "opened_at": opened_at,
        "owned_at": glpi_datetime(row.get("takeintoaccountdate"), tz, field="takeintoaccountdate"),
        "solved_at": glpi_datetime(row.get("solvedate"), tz, field="solvedate"),
        "closed_at": glpi_datetime(row.get("closedate"), tz, field="closedate"),
        "deleted": bool(_int(row, "is_deleted", default=0)),
    }


def task_minutes(seconds: int, warn: Callable[[str], None]) -> int:
    """``actiontime`` (s) → whole minutes (half up). Under 60 s counts 1 minute and is
    flagged (GLPI 11.0.3–11.0.4 stored 10 minutes as 9 seconds)."""
    if seconds < 0:
        raise RecordError(f"negative duration ({seconds} s)")
    if seconds < 60:
        warn(
            f"duration of {seconds} s (under a minute; GLPI 11.0.3-11.0.4 stored some "
            "durations wrongly): counted as 1 minute, check it in GLPI"
        )
        return 1
    minutes = (seconds + 30) // 60
    if minutes > MAX_MINUTES:
        raise RecordError(f"absurd duration ({seconds} s = {minutes} min, over 24 h)")
    return minutes


def _date_mod(row: dict[str, Any]) -> str:
    value = row.get("date_mod") or row.get("19") or row.get("Ticket.date_mod") or ""
    return str(value)


class GlpiSync:
    """One run of the GLPI connector."""

    def __init__(
        self,
        conf: SourceConfig,
        run: Run,
        client: GlpiClient,
        rules: ServiceDeskSettings,
    ) -> None:
        self.conf = conf
        self.run = run
        self.client = client
        self.rules = rules
        self.source = conf.name
        self.encoded = True
        self.tenants: dict[int, str] = {}  # entity id → tenant code
        self.tenant_ids: dict[int, int] = {}
        self.categories: dict[int, int] = {}  # ITIL category id → local id
        self.task_categories: dict[int, str] = {}  # task category id → complete name
        self.users: dict[int, str] = {}  # GLPI user id → username
        self.ci_links: dict[int, str] = {}  # ticket id → CI key (full runs)
        self.user_names: dict[int, str] = {}  # GLPI user id → display name
        # Ticket actors (Ticket_User): ticket id → GLPI user id (or the e-mail of an
        # anonymous requester) of its first requester, and of its first assigned technician.
        self.requester_of: dict[int, int | str] = {}
        self.assignee_of: dict[int, int] = {}
        self.item_names: dict[tuple[str, int], str | None] = {}
        self.max_mod: str | None = None
        self.size = conf.page_size

    # -- the run ---------------------------------------------------------------------

    def execute(self) -> str | None:
        """Run every phase; returns the new watermark (GLPI local time)."""
        self.encoded = self.client.version() < 11
        self._check_rights()
        resume = self.run.resume or {}
        self.max_mod = resume.get("max_mod")
        self._reference_data()
        if self.run.mode == "incremental" and not self.run.watermark and not resume:
            self.run.record.mode = "full"
            self._set_mode("full")
        if self.run.mode == "full":
            self._item_links()
            self._ticket_users()
            phases = ["tickets", "tickets_trash", "tasks", "followups", "satisfactions", "sweep"]
        else:
            phases = ["search", "search_trash"]
        start_phase = str(resume.get("phase") or "")
        if start_phase not in phases:
            start_phase = phases[0]
        for phase in phases[phases.index(start_phase) :]:
            state = resume if resume.get("phase") == phase else {}
            getattr(self, f"_phase_{phase}")(state)
        if self.run.partial:
            return None
        candidates = [w for w in (self.run.watermark, self.max_mod) if w]
        return max(candidates) if candidates else None

    def _set_mode(self, mode: str) -> None:
        from connectors.models import SyncRun

        with self.run.page(None):
            db.session.execute(
                sa.update(SyncRun).where(SyncRun.id == self.run.run_id).values(mode=mode)
            )

    def _check_rights(self) -> None:
        try:
            profile = self.client.active_profile()
        except GlpiError as exc:
            self.run.warning("profile", None, f"could not read the active profile: {exc}")
            return
        task_right = profile.get("task")
        if isinstance(task_right, int) and not task_right & SEE_PRIVATE_TASKS:
            self.run.warning(
                "profile",
                profile.get("id"),
                "the GLPI account cannot see private tasks: their time will be missing "
                "(give its profile 'See private' on tasks)",
            )

    def _list(self, path: str, params: dict[str, Any]) -> Iterator[Page]:
        """Every page of a small listing (sorted by id), read without skipping rows."""
        query = {"get_hateoas": "false", "sort": "id", "order": "ASC", **params}
        for page, new, _pos in keyed_pages(
            lambda start, size: self.client.page(path, start, size, query),
            lambda r: _int(r, "id"),
            size=self.size,
        ):
            page.rows = new
            yield page

    # -- reference data ----------------------------------------------------------------

    def _reference_data(self) -> None:
        self._entities()
        self._categories()
        self._task_categories()
        self._users()

    def _fetch_all(self, path: str, params: dict[str, Any] | None = None) -> list[dict[str, Any]]:
        rows: list[dict[str, Any]] = []
        for page in self._list(path, params or {}):
            rows.extend(page.rows)
        return rows

    def _entities(self) -> None:
        try:
            rows = self._fetch_all("Entity")
        except GlpiError as exc:
            raise RunFailed(f"cannot list the GLPI entities: {exc}") from None
        by_id: dict[int, dict[str, Any]] = {}
        for row in rows:
            try:
                by_id[_int(row, "id")] = row
            except RecordError as exc:
                self.run.error("entity", row.get("id"), str(exc))
        # Parents first (GLPI's level; the root, id 0, has no parent).
        order = sorted(by_id.values(), key=lambda r: (_int(r, "level", default=1), r["id"]))
        with self.run.page(None):
            for row in order:
                ext = _int(row, "id")
                self.run.apply("entity", ext, lambda row=row, ext=ext: self._entity(row, ext))
        links = db.session.execute(
            select(SyncLink.external_id, Tenant.id, Tenant.code)
            .join(Tenant, Tenant.id == SyncLink.local_id)
            .where(SyncLink.source == self.source, SyncLink.kind == "entity")
        ).all()
        gone = []
        for ext_id, tenant_id, code in links:
            if ext_id.lstrip("-").isdigit():
                self.tenants[int(ext_id)] = code
                self.tenant_ids[int(ext_id)] = tenant_id
                if int(ext_id) not in by_id:
                    gone.append((int(ext_id), code))
        # A sync never deletes a tenant: one whose entity vanished is kept, and said so.
        for ext, code in sorted(gone):
            self.run.warning(
                "entity",
                ext,
                f"entity no longer listed by GLPI (deleted, or not visible to the account): "
                f"tenant {code} kept",
            )

    def _entity(self, row: dict[str, Any], ext: int) -> str:
        parent = row.get("entities_id")
        parent_code = None
        if ext != 0 and parent is not None and parent != -1:
            parent_code = self.tenants.get(int(parent))
            if parent_code is None:
                raise RecordError(f"parent entity {parent} unknown")
        name = decode_text(row.get("name"), encoded=self.encoded)
        if not name:
            raise RecordError("missing field 'name'")
        result, tenant = upsert_source_tenant(
            source=self.source,
            external_id=str(ext),
            name=plain_text(name) if "<" in name else name,
            parent_code=parent_code,
            kind="internal" if ext == 0 else self.conf.entity_kind,
        )
        self.tenants[ext] = tenant.code
        return result

    def _categories(self) -> None:
        try:
            rows = self._fetch_all("ITILCategory")
        except GlpiError as exc:
            raise RunFailed(f"cannot list the GLPI categories: {exc}") from None
        order = sorted(rows, key=lambda r: (_int(r, "level", default=1), _int(r, "id", default=0)))
        with self.run.page(None):
            for row in order:
                self.run.apply("category", row.get("id"), lambda row=row: self._category(row))
        for ext_id, local_id in db.session.execute(
            select(Category.external_id, Category.id).where(Category.source == self.source)
        ):
            if ext_id and ext_id.isdigit():
                self.categories[int(ext_id)] = local_id

    def _category(self, row: dict[str, Any]) -> str:
        ext = _int(row, "id")
        parent = _int(row, "itilcategories_id", default=0)
        name = plain_text(decode_text(row.get("name"), encoded=self.encoded))
        if not name:
            raise RecordError("missing field 'name'")
        result, _cat = desk.upsert_external_category(
            {"name": name[:200], "parent_external_id": str(parent) if parent else None},
            source=self.source,
            external_id=str(ext),
            actor=SYSTEM,
            now=utcnow(),
        )
        return result

    def _task_categories(self) -> None:
        try:
            rows = self._fetch_all("TaskCategory")
        except GlpiError as exc:
            raise RunFailed(f"cannot list the GLPI task categories: {exc}") from None
        for row in rows:
            name = row.get("completename") or row.get("name") or ""
            self.task_categories[_int(row, "id", default=0)] = decode_text(
                name, encoded=self.encoded
            )

    def _users(self) -> None:
        rows: list[dict[str, Any]] = []
        try:
            for deleted in ("false", "true"):
                rows.extend(self._fetch_all("User", {"is_deleted": deleted}))
        except GlpiError as exc:
            raise RunFailed(f"cannot list the GLPI users: {exc}") from None
        with self.run.page(None):
            for row in rows:
                self.run.apply("user", row.get("id"), lambda row=row: self._user(row))
        self._load_user_links()

    def _load_user_links(self) -> None:
        for ext_id, username in db.session.execute(
            select(SyncLink.external_id, User.username)
            .join(User, User.id == SyncLink.local_id)
            .where(SyncLink.source == self.source, SyncLink.kind == "user")
        ):
            if ext_id.isdigit():
                self.users[int(ext_id)] = username

    def _root_tenant(self) -> Tenant | None:
        tenant_id = self.tenant_ids.get(0) or next(iter(self.tenant_ids.values()), None)
        return db.session.get(Tenant, tenant_id) if tenant_id else None

    def _user(self, row: dict[str, Any]) -> str:
        ext = _int(row, "id")
        login = decode_text(row.get("name"), encoded=self.encoded)
        if not login:
            raise RecordError("missing field 'name'")
        full = " ".join(
            decode_text(row.get(k), encoded=self.encoded).strip()
            for k in ("realname", "firstname")
            if row.get(k)
        )
        entity = _int(row, "entities_id", default=0)
        tenant_id = self.tenant_ids.get(entity)
        tenant = db.session.get(Tenant, tenant_id) if tenant_id else self._root_tenant()
        result, user = upsert_source_user(
            source=self.source, external_id=str(ext), login=login, full_name=full, tenant=tenant
        )
        self.users[ext] = user.username
        self.user_names[ext] = full or login
        return result

    def _username(self, glpi_user: int, task_id: Any) -> str:
        """The username for a GLPI user id; an account the listing did not show (deleted,
        or invisible) gets a placeholder user so that no minute is lost."""
        if glpi_user in self.users:
            return self.users[glpi_user]
        placeholder = {"id": glpi_user, "name": f"{self.source}-user-{glpi_user}"}
        self.run.apply("user", glpi_user, lambda: self._user(placeholder))
        if glpi_user not in self.users:
            raise RecordError(f"no user for GLPI user {glpi_user}")
        self.run.warning(
            "task", task_id, f"GLPI user {glpi_user} not listed: placeholder user created"
        )
        return self.users[glpi_user]

    # -- CMDB links ------------------------------------------------------------------

    def _ci_key(self, itemtype: str, items_id: int) -> str | None:
        kind = self.conf.item_kinds.get(itemtype)
        if kind is None:
            return None
        key = (itemtype, items_id)
        if key not in self.item_names:
            try:
                item = self.client.item(itemtype, items_id, {"get_hateoas": "false"})
            except GlpiError:
                item = None
            name = decode_text((item or {}).get("name"), encoded=self.encoded)
            self.item_names[key] = slug(name, max_len=64) or None if name else None
        code = self.item_names[key]
        return f"{kind}:{code}" if code else None

    def _item_links(self) -> None:
        """Full runs: the Item_Ticket links, ticket → CI key (first mapped item)."""
        try:
            for page in self._list("Item_Ticket", {}):
                for row in page.rows:
                    ticket_id = row.get("tickets_id")
                    if not isinstance(ticket_id, int) or ticket_id in self.ci_links:
                        continue
                    key = self._ci_key(str(row.get("itemtype")), _int(row, "items_id", default=0))
                    if key:
                        self.ci_links[ticket_id] = key
        except GlpiError as exc:
            self.run.warning("item_ticket", None, f"ticket-item links not read: {exc}")

    # -- ticket actors (Ticket_User) ----------------------------------------------------

    def _ticket_users(self) -> None:
        """Full runs: the Ticket_User listing (requesters, type 1; assigned technicians,
        type 2). Without it every ticket would lose its actors: the run stops."""
        self.requester_of.clear()
        self.assignee_of.clear()
        try:
            for page in self._list("Ticket_User", {}):
                self._add_actors(page.rows)
        except GlpiError as exc:
            raise RunFailed(f"cannot list the ticket actors (Ticket_User): {exc}") from None

    def _add_actors(self, rows: list[dict[str, Any]]) -> None:
        """Remember the first requester and the first technician of each ticket; a row
        that cannot be read is recorded with its id and left out."""
        for row in rows:
            try:
                ticket_id = _int(row, "tickets_id")
                kind = _int(row, "type")
                user_id = _int(row, "users_id", default=0)
            except RecordError as exc:
                self.run.error("ticket_user", row.get("id"), str(exc))
                continue
            if kind == 1 and ticket_id not in self.requester_of:
                email = str(row.get("alternative_email") or "").strip()
                if user_id:
                    self.requester_of[ticket_id] = user_id
                elif email:
                    self.requester_of[ticket_id] = email
            elif kind == 2 and user_id and ticket_id not in self.assignee_of:
                self.assignee_of[ticket_id] = user_id
            elif kind not in (1, 2, 3):
                self.run.warning("ticket_user", row.get("id"), f"unknown actor type {kind}")

    def _actors(self, ticket_id: int) -> dict[str, Any]:
        """The requester and assignee of a ticket's data; a GLPI user the listing did not
        show is left out, with a warning."""
        out: dict[str, Any] = {"requester": None, "assignee": None}
        requester = self.requester_of.get(ticket_id)
        if isinstance(requester, str):
            out["requester"] = {"name": requester[:200], "email": requester[:254]}
        elif requester is not None:
            name = self.user_names.get(requester) or self.users.get(requester)
            if name is None:
                self.run.warning(
                    "ticket", ticket_id, f"requester: GLPI user {requester} unknown, left empty"
                )
            else:
                out["requester"] = {"name": name[:200], "email": None}
        assignee = self.assignee_of.get(ticket_id)
        if assignee is not None:
            username = self.users.get(assignee)
            if username is None:
                self.run.warning(
                    "ticket", ticket_id, f"assignee: GLPI user {assignee} unknown, left empty"
                )
            out["assignee"] = username
        return out

    # -- tickets and tasks -------------------------------------------------------------

    def _ticket(self, row: dict[str, Any], ci: str | None = None) -> str:
        ext = _int(row, "id")
        data = map_ticket(
            row,
            tenant_code=self.tenants.get,
            category_id=self.categories.get,
            tz=self.conf.timezone,
            encoded=self.encoded,
            warn=lambda m: self.run.warning("ticket", ext, m),
            ci=ci if ci is not None else self.ci_links.get(ext),
        )
        data.update(self._actors(ext))
        result, _ticket = desk.upsert_external_ticket(
            data,
            source=self.source,
            external_id=str(ext),
            actor=SYSTEM,
            now=utcnow(),
            rules=self.rules,
        )
        mod = _date_mod(row)
        if mod and (self.max_mod is None or mod > self.max_mod):
            self.max_mod = mod
        return result

    def _tickets(
        self, rows: list[dict[str, Any]], links: dict[int, str | None] | None = None
    ) -> set[int]:
        """A page of tickets: mapped one by one (errors recorded with the ticket id), written
        in one batch (record by record if the batch fails as a whole); returns the ids
        applied."""
        batch: list[tuple[str, dict[str, Any]]] = []
        by_id: dict[str, dict[str, Any]] = {}
        for row in rows:
            ext = row.get("id")
            try:
                ticket_id = _int(row, "id")
                ci = (links or {}).get(ticket_id)
                data = map_ticket(
                    row,
                    tenant_code=self.tenants.get,
                    category_id=self.categories.get,
                    tz=self.conf.timezone,
                    encoded=self.encoded,
                    warn=lambda m, e=ext: self.run.warning("ticket", e, m),
                    ci=ci if ci is not None else self.ci_links.get(ticket_id),
                )
                data.update(self._actors(ticket_id))
            except (RecordError, AppError, KeyError, TypeError, ValueError) as exc:
                self.run.error("ticket", ext, record_message(exc))
                self.run.count("ticket", "skipped")
                continue
            batch.append((str(ticket_id), data))
            by_id[str(ticket_id)] = row
        applied: set[int] = set()
        if not batch:
            return applied
        try:
            with db.session.begin_nested():
                results = bulk.upsert_external_tickets(
                    batch, source=self.source, actor=SYSTEM, now=utcnow(), rules=self.rules
                )
        except sa.exc.SQLAlchemyError as exc:
            if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
                raise
            for ext, _data in batch:
                row = by_id[ext]
                ci = (links or {}).get(int(ext))
                if self.run.apply("ticket", ext, functools.partial(self._ticket, row, ci)):
                    applied.add(int(ext))
            return applied
        for (ext, _data), (result, _ticket, error) in zip(batch, results, strict=True):
            if error is not None or result is None:
                self.run.error("ticket", ext, record_message(error or ValueError("refused")))
                self.run.count("ticket", "skipped")
                continue
            self.run.count("ticket", result)
            applied.add(int(ext))
            mod = _date_mod(by_id[ext])
            if mod and (self.max_mod is None or mod > self.max_mod):
                self.max_mod = mod
        return applied

    def _task_data(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The time entry of a task, or None when it has no time (0 s)."""
        ext = _int(row, "id")
        seconds = _int(row, "actiontime")
        if seconds == 0:
            return None
        minutes = task_minutes(seconds, lambda m: self.run.warning("task", ext, m))
        ticket_id = _int(row, "tickets_id")
        when = glpi_datetime(row.get("date") or row.get("begin"), self.conf.timezone, field="date")
        if when is None:
            raise RecordError("missing field 'date'")
        glpi_user = _int(row, "users_id_tech", default=0) or _int(row, "users_id", default=0)
        if not glpi_user:
            raise RecordError("task without a user (users_id and users_id_tech are 0)")
        username = self._username(glpi_user, ext)
        category = self.task_categories.get(_int(row, "taskcategories_id", default=0))
        private = bool(_int(row, "is_private", default=0))
        note = "" if private else plain_text(decode_text(row.get("content"), encoded=self.encoded))
        return {
            "user": username,
            "date": when.astimezone(self.conf.local_timezone).date(),
            "minutes": minutes,
            "activity": activity_for(category, self.conf.activity_map, self.conf.default_activity),
            "pole": self.conf.pole,
            "ticket_external_id": str(ticket_id),
            "note": note[:2000],
        }

    def _no_time(self, ext: int) -> str:
        gone = desk.soft_delete_external_time_entries(
            self.source, [str(ext)], actor=SYSTEM, now=utcnow()
        )
        return "deleted" if gone else "skipped"

    def _task(self, row: dict[str, Any]) -> str:
        """One task, through the single-record service (the fallback of :meth:`_tasks`)."""
        ext = _int(row, "id")
        data = self._task_data(row)
        if data is None:
            return self._no_time(ext)
        result, entry = desk.upsert_external_time_entry(
            data,
            source=self.source,
            external_id=str(ext),
            actor=SYSTEM,
            now=utcnow(),
            rules=self.rules,
        )
        self._trash_warning(ext, result, entry.ticket)
        return result

    def _trash_warning(self, ext: Any, result: str, ticket: Any) -> None:
        if result != "unchanged" and ticket is not None and ticket.deleted_at:
            self.run.warning(
                "task",
                ext,
                f"task of ticket {ticket.external_id}, which is in GLPI's trash: kept deleted",
            )

    def _tasks(self, rows: list[dict[str, Any]]) -> None:
        """A page of tasks (see :meth:`_write_page`); a task without time deletes its entry.
        Mapping writes nothing (placeholder users have their own savepoint)."""
        self._write_page(
            "task",
            rows,
            self._task_data,
            lambda batch: bulk.upsert_external_time_entries(
                batch, source=self.source, actor=SYSTEM, now=utcnow(), rules=self.rules
            ),
            self._task,
            after=self._trash_warning,
            no_data=self._no_time,
        )

    def _write_page(
        self,
        kind: str,
        rows: list[dict[str, Any]],
        data_of: Callable[[dict[str, Any]], dict[str, Any] | None],
        upsert: Callable[[list[tuple[str, dict[str, Any]]]], list[Any]],
        single: Callable[[dict[str, Any]], str],
        *,
        after: Callable[[str, str, Any], None] | None = None,
        no_data: Callable[[int], str] | None = None,
    ) -> None:
        """A page of sub-items: mapped one by one (errors recorded with the item's id), the
        good ones written in one batch by ``upsert`` (``(result, ticket, error)`` per item);
        if the batch fails as a whole, record by record through ``single``. A row that maps
        to nothing is counted by ``no_data`` when given, else not at all."""
        batch: list[tuple[str, dict[str, Any]]] = []
        for row in rows:
            ext = row.get("id")
            try:
                record_id = _int(row, "id")
                data = data_of(row)
                if data is None:
                    if no_data is not None:
                        self.run.count(kind, no_data(record_id))
                    continue
            except (RecordError, AppError, KeyError, TypeError, ValueError) as exc:
                self.run.error(kind, ext, record_message(exc))
                self.run.count(kind, "skipped")
                continue
            batch.append((str(record_id), data))
        if not batch:
            return
        try:
            with db.session.begin_nested():
                results = upsert(batch)
        except sa.exc.SQLAlchemyError as exc:
            if isinstance(exc, sa.exc.OperationalError | sa.exc.InterfaceError):
                raise
            by_id = {str(r.get("id")): r for r in rows}
            for ext, _data in batch:
                self.run.apply(kind, ext, functools.partial(single, by_id[ext]))
            return
        for (ext, _data), (result, ticket, error) in zip(batch, results, strict=True):
            if error is not None or result is None:
                self.run.error(kind, ext, record_message(error or ValueError("refused")))
                self.run.count(kind, "skipped")
                continue
            self.run.count(kind, result)
            if after is not None:
                after(ext, result, ticket)

    # -- follow-ups (ITILFollowup → comments) -------------------------------------------

    def _followup_data(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The comment of a ticket's follow-up; None for another item's (a change, a
        problem)."""
        if row.get("itemtype") != "Ticket":
            return None
        ticket_id = _int(row, "items_id")
        if "content" not in row:
            raise RecordError("missing field 'content'")
        body = decode_text(row.get("content"), encoded=self.encoded)
        if not body.strip():
            raise RecordError("empty follow-up")
        user_id = _int(row, "users_id", default=0)
        author = self.users.get(user_id) if user_id else None
        if user_id and author is None:
            self.run.warning(
                "followup", row.get("id"), f"author: GLPI user {user_id} unknown, left empty"
            )
        return {
            "ticket_external_id": str(ticket_id),
            "body": body,
            "private": bool(_int(row, "is_private", default=0)),
            "author": author,
            "author_name": (self.user_names.get(user_id) or author or "") if user_id else "",
            "at": glpi_datetime(row.get("date"), self.conf.timezone, field="date"),
        }

    def _followup(self, row: dict[str, Any]) -> str:
        """One follow-up on its own (the fallback of :meth:`_followups`)."""
        data = self._followup_data(row)
        if data is None:
            return "skipped"
        ((result, ticket, error),) = bulk.upsert_external_comments(
            [(str(_int(row, "id")), data)], source=self.source, actor=SYSTEM, now=utcnow()
        )
        if error is not None or result is None:
            raise error or RecordError("refused")
        self._followup_trash_warning(row.get("id"), result, ticket)
        return result

    def _followup_trash_warning(self, ext: Any, result: str, ticket: Any) -> None:
        if result == "created" and ticket is not None and ticket.deleted_at:
            self.run.warning(
                "followup",
                ext,
                f"follow-up of ticket {ticket.external_id}, which is in GLPI's trash: kept with it",
            )

    def _followups(self, rows: list[dict[str, Any]]) -> None:
        """A page of follow-ups (see :meth:`_write_page`); those of other items than tickets
        are not counted."""
        self._write_page(
            "followup",
            rows,
            self._followup_data,
            lambda batch: bulk.upsert_external_comments(
                batch, source=self.source, actor=SYSTEM, now=utcnow()
            ),
            self._followup,
            after=self._followup_trash_warning,
        )

    def _phase_followups(self, state: dict[str, Any]) -> None:
        query = {"get_hateoas": "false", "sort": "id", "order": "ASC"}
        pages = keyed_pages(
            lambda start, size: self.client.page("ITILFollowup", start, size, query),
            lambda r: _int(r, "id"),
            size=self.size,
            start=int(state.get("position", 0)),
            after=state.get("after"),
        )
        self._walk("followups", "followup", pages, self._followup, batch=self._followups)

    # -- satisfaction surveys (TicketSatisfaction) -------------------------------------

    def _satisfaction_data(self, row: dict[str, Any]) -> dict[str, Any] | None:
        """The answer of a survey; None while it is not answered (``satisfaction`` null)."""
        ticket_id = _int(row, "tickets_id")
        if "satisfaction" not in row:
            raise RecordError("missing field 'satisfaction'")
        if row["satisfaction"] is None:
            return None
        comment = decode_text(row.get("comment"), encoded=self.encoded)
        return {
            "ticket_external_id": str(ticket_id),
            "score": _int(row, "satisfaction"),
            "comment": plain_text(comment) if "<" in comment else comment.strip(),
            "answered_at": glpi_datetime(
                row.get("date_answered"), self.conf.timezone, field="date_answered"
            ),
        }

    def _satisfaction(self, row: dict[str, Any]) -> str:
        """One answer on its own (the fallback of :meth:`_satisfactions`)."""
        data = self._satisfaction_data(row)
        if data is None:
            return "skipped"
        ((result, _ticket, error),) = bulk.upsert_external_satisfactions(
            [(str(_int(row, "id")), data)], source=self.source, actor=SYSTEM, now=utcnow()
        )
        if error is not None or result is None:
            raise error or RecordError("refused")
        return result

    def _satisfactions(self, rows: list[dict[str, Any]]) -> None:
        """A page of surveys (see :meth:`_write_page`); unanswered ones are not counted."""
        self._write_page(
            "satisfaction",
            rows,
            self._satisfaction_data,
            lambda batch: bulk.upsert_external_satisfactions(
                batch, source=self.source, actor=SYSTEM, now=utcnow()
            ),
            self._satisfaction,
        )

    def _phase_satisfactions(self, state: dict[str, Any]) -> None:
        query = {"get_hateoas": "false", "sort": "id", "order": "ASC"}
        pages = keyed_pages(
            lambda start, size: self.client.page("TicketSatisfaction", start, size, query),
            lambda r: _int(r, "id"),
            size=self.size,
            start=int(state.get("position", 0)),
            after=state.get("after"),
        )
        self._walk(
            "satisfactions", "satisfaction", pages, self._satisfaction, batch=self._satisfactions
        )

    def _phase_tickets(self, state: dict[str, Any], *, trash: bool = False) -> None:
        phase = "tickets_trash" if trash else "tickets"
        query = {
            "get_hateoas": "false",
            "expand_dropdowns": "false",
            "sort": "id",
            "order": "ASC",
            "is_deleted": "true" if trash else "false",
        }
        pages = keyed_pages(
            lambda start, size: self.client.page("Ticket", start, size, query),
            lambda r: _int(r, "id"),
            size=self.size,
            start=int(state.get("position", 0)),
            after=state.get("after"),
        )
        self._walk(phase, "ticket", pages, self._ticket, batch=self._tickets)

    def _phase_tickets_trash(self, state: dict[str, Any]) -> None:
        self._phase_tickets(state, trash=True)

    def _phase_tasks(self, state: dict[str, Any]) -> None:
        query = {"get_hateoas": "false", "sort": "id", "order": "ASC"}
        pages = keyed_pages(
            lambda start, size: self.client.page("TicketTask", start, size, query),
            lambda r: _int(r, "id"),
            size=self.size,
            start=int(state.get("position", 0)),
            after=state.get("after"),
        )
        self._walk("tasks", "task", pages, self._task, batch=self._tasks)

    def _walk(
        self,
        phase: str,
        object_type: str,
        pages: Iterator[tuple[Page, list[dict[str, Any]], int]],
        apply: Callable[[dict[str, Any]], str],
        batch: Callable[[list[dict[str, Any]]], Any] | None = None,
    ) -> None:
        """Apply a full listing page by page; remember the ids listed (deletion sweep)."""
        try:
            for _page, rows, position in pages:
                ids = []
                after = None
                for row in rows:
                    ext = row.get("id")
                    if isinstance(ext, int):
                        ids.append(ext)
                        after = ext
                checkpoint = {
                    "phase": phase,
                    "position": position,
                    "after": after,
                    "max_mod": self.max_mod,
                }
                with self.run.page(checkpoint):
                    if batch is not None:
                        batch(rows)
                    else:
                        for row in rows:
                            self.run.apply(
                                object_type, row.get("id"), functools.partial(apply, row)
                            )
                    self.run.seen(object_type, ids)
                    checkpoint["max_mod"] = self.max_mod
                self.run.tick(object_type, len(rows))
        except GlpiError as exc:
            self.run.listing_failed(object_type, f"listing of {phase} stopped: {exc}")

    def _phase_sweep(self, state: dict[str, Any]) -> None:
        """API.md §4: after complete listings only, soft-delete what vanished (purged in
        GLPI), unless too much would vanish at once."""
        if self.run.partial:
            self.run.warning("sweep", None, "listing incomplete: no deletion in this run")
            return
        for object_type, model in (("ticket", Ticket), ("task", TimeEntry)):
            live = select(model.external_id).where(
                model.source == self.source, model.deleted_at.is_(None)
            )
            live_count = db.session.execute(
                select(sa.func.count()).select_from(live.subquery())
            ).scalar_one()
            vanished = [
                ext
                for (ext,) in db.session.execute(
                    live.where(model.external_id.not_in(self.run.seen_select(object_type)))
                ).all()
            ]
            self.run.guard_mass_delete(object_type, len(vanished), live_count)
            for start in range(0, len(vanished), 500):
                chunk = vanished[start : start + 500]
                with self.run.page({"phase": "sweep", "max_mod": self.max_mod}):
                    if model is Ticket:
                        n = desk.soft_delete_external_tickets(
                            self.source, chunk, actor=SYSTEM, now=utcnow()
                        )
                    else:
                        n = desk.soft_delete_external_time_entries(
                            self.source, chunk, actor=SYSTEM, now=utcnow()
                        )
                    self.run.count(object_type, "deleted", n)
                self.run.tick(f"{object_type} deleted", len(chunk))

    # -- incremental -------------------------------------------------------------------

    def _since(self, state: dict[str, Any]) -> str:
        if state.get("since"):
            return str(state["since"])
        if not self.run.watermark:
            raise RunFailed("an incremental run needs a watermark")
        mark = dt.datetime.strptime(self.run.watermark, GLPI_FORMAT) - self.conf.overlap
        return mark.strftime(GLPI_FORMAT)

    def _phase_search(self, state: dict[str, Any], *, trash: bool = False) -> None:
        phase = "search_trash" if trash else "search"
        since = self._since(state)
        query: list[tuple[str, Any]] = [
            ("criteria[0][field]", 19),
            ("criteria[0][searchtype]", "morethan"),
            ("criteria[0][value]", since),
            ("criteria[1][link]", "AND"),
            ("criteria[1][field]", 12),
            ("criteria[1][searchtype]", "equals"),
            ("criteria[1][value]", "all"),
            ("forcedisplay[0]", 2),
            ("forcedisplay[1]", 19),
            ("sort[0]", 19),
            ("sort[1]", 2),
            ("order[0]", "ASC"),
            ("order[1]", "ASC"),
            ("is_deleted", "true" if trash else "false"),
        ]

        def fetch(start: int, size: int) -> Page:
            return self.client.page("search/Ticket", start, size, dict(query))

        def key(row: dict[str, Any]) -> tuple[str, int]:
            return (str(row.get("19") or ""), _int(row, "2"))

        after = state.get("after")
        pages = keyed_pages(
            fetch,
            key,
            size=self.size,
            start=int(state.get("position", 0)),
            after=tuple(after) if after else None,
        )
        try:
            for _page, rows, position in pages:
                ids = [_int(r, "2") for r in rows]
                full = {r["id"]: r for r in self.client.items("Ticket", ids) if "id" in r}
                tasks = {i: self._ticket_items(i, "TicketTask", "task", "tasks") for i in full}
                followups = {
                    i: self._ticket_items(i, "ITILFollowup", "followup", "follow-ups") for i in full
                }
                surveys = {
                    i: self._ticket_items(i, "TicketSatisfaction", "satisfaction", "satisfaction")
                    for i in full
                }
                links = {i: self._ticket_ci(i) for i in full}
                self.requester_of.clear()
                self.assignee_of.clear()
                # A ticket whose actors could not be read is left for the next run (it would
                # lose them): the listing is partial, the watermark stays.
                unread = {i for i in full if not self._ticket_actors(i)}
                last = key(rows[-1]) if rows else after
                checkpoint = {
                    "phase": phase,
                    "position": position,
                    "after": list(last) if last else None,
                    "since": since,
                    "max_mod": self.max_mod,
                }
                with self.run.page(checkpoint):
                    # purged meanwhile (not in `full`): the nightly sweep deletes them
                    present = [full[i] for i in ids if i in full and i not in unread]
                    applied = self._tickets(present, links)
                    for ticket_id in ids:
                        if ticket_id not in applied:
                            continue
                        task_rows = tasks.get(ticket_id)
                        if task_rows is None:
                            self.run.partial = True
                            continue
                        self._apply_ticket_tasks(ticket_id, full[ticket_id], task_rows)
                        followup_rows = followups.get(ticket_id)
                        if followup_rows is None:
                            self.run.partial = True
                            continue
                        self._followups(followup_rows)
                        survey_rows = surveys.get(ticket_id)
                        if survey_rows is None:
                            self.run.partial = True
                            continue
                        self._satisfactions(survey_rows)
                    checkpoint["max_mod"] = self.max_mod
                self.run.tick("ticket", len(rows))
        except GlpiError as exc:
            self.run.listing_failed("ticket", f"search of modified tickets stopped: {exc}")

    def _phase_search_trash(self, state: dict[str, Any]) -> None:
        self._phase_search(state, trash=True)

    def _ticket_items(
        self, ticket_id: int, itemtype: str, kind: str, what: str
    ) -> list[dict[str, Any]] | None:
        """A ticket's sub-items (``Ticket/{id}/{itemtype}``), or None when the listing failed
        (recorded in the run log as a failed listing)."""
        try:
            return self._fetch_all(f"Ticket/{ticket_id}/{itemtype}")
        except GlpiError as exc:
            self.run.listing_failed(kind, f"{what} of ticket {ticket_id} not read: {exc}")
            return None

    def _ticket_actors(self, ticket_id: int) -> bool:
        """Read one ticket's Ticket_User rows into the actor maps; False if they could not
        be read (recorded: the listing is partial)."""
        try:
            rows = self._fetch_all(f"Ticket/{ticket_id}/Ticket_User")
        except GlpiError as exc:
            self.run.listing_failed("ticket", f"actors of ticket {ticket_id} not read: {exc}")
            return False
        self._add_actors(rows)
        return True

    def _ticket_ci(self, ticket_id: int) -> str | None:
        try:
            rows = self._fetch_all(f"Ticket/{ticket_id}/Item_Ticket")
        except GlpiError:
            return None
        for row in rows:
            key = self._ci_key(str(row.get("itemtype")), _int(row, "items_id", default=0))
            if key:
                return key
        return None

    def _apply_ticket_tasks(
        self, ticket_id: int, ticket: dict[str, Any], rows: list[dict[str, Any]]
    ) -> None:
        """A ticket's complete task list: apply each, delete the entries of tasks gone
        from it, and check that the time adds up to the ticket's own total."""
        listed = set()
        seconds = 0
        for row in rows:
            listed.add(str(row.get("id")))
            if isinstance(row.get("actiontime"), int) and row["actiontime"] > 0:
                seconds += row["actiontime"]
        self._tasks(rows)
        known = db.session.execute(
            select(TimeEntry.external_id)
            .join(Ticket, Ticket.id == TimeEntry.ticket_id)
            .where(
                Ticket.source == self.source,
                Ticket.external_id == str(ticket_id),
                TimeEntry.source == self.source,
                TimeEntry.deleted_at.is_(None),
            )
        ).scalars()
        gone = [e for e in known if e is not None and e not in listed]
        if gone:
            n = desk.soft_delete_external_time_entries(
                self.source, gone, actor=SYSTEM, now=utcnow()
            )
            self.run.count("task", "deleted", n)
        total = ticket.get("actiontime")
        if isinstance(total, int) and total > seconds:
            self.run.warning(
                "ticket",
                ticket_id,
                f"GLPI counts {total} s on this ticket but the account sees tasks for "
                f"{seconds} s: private tasks hidden from it?",
            )
