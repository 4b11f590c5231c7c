"""A GLPI REST API v1 on loopback, imitating what GLPI's code does (shared/glpi/README.md):

- ``initSession`` needs the App-Token and ``Authorization: user_token …``; sessions die after
  ``session_calls`` calls (PHP's GC) and then answer 401 ``ERROR_SESSION_TOKEN_INVALID``;
- listings page with ``range`` (default 0-14: ``list_limit`` 15), answer 206 unless one page
  holds everything, ``Content-Range: start-end/total``, 400 ``ERROR_RANGE_EXCEED_TOTAL`` when
  start > total, and hide trashed tickets unless ``is_deleted=true``;
- ``search/Ticket`` with criteria on ``date_mod`` (19), raw ids, no ``data`` when empty;
- strings HTML-encoded (``&#60;``) on 10.0, raw on 11.0; private tasks visible only with the
  right; task changes bump their ticket's ``date_mod``;
- injected faults: 503s, slow answers (client timeouts), malformed JSON, PHP notices.

Rows of big instances are generated from their id (``generate``), so that the server stays
small whatever the size of the instance.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import secrets
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

APP_TOKEN = "app-token-7f3c9a1e5b"
USER_TOKEN = "user-token-q56hqkniwot8wntb3z1q"
ENCODED_FIELDS = ("name", "content", "completename", "comment", "realname", "firstname")


def encode10(text: str) -> str:
    return text.replace("&", "&#38;").replace("<", "&#60;").replace(">", "&#62;")


@dataclass
class Fault:
    path: str  # prefix of the resource path ("Ticket", "search/Ticket", "TicketTask")
    kind: str  # 503 | timeout | malformed | notice | error500
    times: int = 1
    delay: float = 0.0


@dataclass
class FakeGlpi:
    version: str = "10.0.18"
    session_calls: int = 10_000
    see_private: bool = True
    list_limit: int = 15
    entities: dict[int, dict[str, Any]] = field(default_factory=dict)
    categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    task_categories: dict[int, dict[str, Any]] = field(default_factory=dict)
    users: dict[int, dict[str, Any]] = field(default_factory=dict)
    tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    tasks: dict[int, dict[str, Any]] = field(default_factory=dict)
    item_tickets: dict[int, dict[str, Any]] = field(default_factory=dict)
    ticket_users: dict[int, dict[str, Any]] = field(default_factory=dict)
    followups: dict[int, dict[str, Any]] = field(default_factory=dict)
    satisfactions: dict[int, dict[str, Any]] = field(default_factory=dict)
    items: dict[tuple[str, int], dict[str, Any]] = field(default_factory=dict)
    faults: list[Fault] = field(default_factory=list)
    # Generated instance: tickets 1..n_generated, tasks_per_ticket tasks each, and two
    # Ticket_User rows each (ids 2i-1: requester, 2i: assigned technician) when
    # actors_generated.
    actors_generated: bool = True
    n_generated: int = 0
    tasks_per_ticket: int = 3
    purged: set[int] = field(default_factory=set)
    sessions: dict[str, int] = field(default_factory=dict)
    log: list[str] = field(default_factory=list)
    hooks: list[Callable[[str, dict[str, str]], None]] = field(default_factory=list)
    clock: dt.datetime = dt.datetime(2025, 3, 3, 9, 0, 0)
    lock: threading.Lock = field(default_factory=threading.Lock)
    killed: int = 0

    # -- data helpers ----------------------------------------------------------------

    def tick(self, minutes: int = 1) -> str:
        self.clock += dt.timedelta(minutes=minutes)
        return self.clock.strftime("%Y-%m-%d %H:%M:%S")

    def add_entity(self, id: int, name: str, parent: int | None = 0) -> None:  # noqa: A002
        parent_name = self.entities[parent]["completename"] if parent is not None else None
        self.entities[id] = {
            "id": id,
            "name": name,
            "entities_id": None if id == 0 else parent,
            "completename": name if parent_name is None else f"{parent_name} > {name}",
            "level": 1 if id == 0 else self.entities[parent]["level"] + 1,
            "date_mod": self.tick(0),
        }

    def add_user(
        self,
        id: int,
        login: str,
        realname: str = "",
        firstname: str = "",  # noqa: A002
        entity: int = 0,
    ) -> None:
        self.users[id] = {
            "id": id,
            "name": login,
            "realname": realname,
            "firstname": firstname,
            "entities_id": entity,
            "is_active": 1,
            "is_deleted": 0,
        }

    def add_ticket(self, id: int, **kw: Any) -> dict[str, Any]:  # noqa: A002
        now = self.tick()
        row = {
            "id": id,
            "entities_id": 1,
            "name": f"Ticket {id}",
            "date": now,
            "closedate": None,
            "solvedate": None,
            "date_mod": now,
            "users_id_lastupdater": 2,
            "status": 2,
            "users_id_recipient": 2,
            "requesttypes_id": 1,
            "content": f"<p>Content {id}</p>",
            "urgency": 3,
            "impact": 3,
            "priority": 3,
            "itilcategories_id": 0,
            "type": 1,
            "actiontime": 0,
            "is_deleted": 0,
            "date_creation": now,
        }
        row.update(kw)
        self.tickets[id] = row
        return row

    def add_task(self, id: int, ticket: int, seconds: int, **kw: Any) -> dict[str, Any]:  # noqa: A002
        now = self.tick()
        row = {
            "id": id,
            "uuid": f"uuid-{id}",
            "tickets_id": ticket,
            "taskcategories_id": 0,
            "date": now,
            "users_id": 2,
            "users_id_editor": 0,
            "content": f"<p>Task {id}</p>",
            "is_private": 0,
            "actiontime": seconds,
            "begin": None,
            "end": None,
            "state": 2,
            "users_id_tech": 2,
            "groups_id_tech": 0,
            "date_mod": now,
            "date_creation": now,
        }
        row.update(kw)
        self.tasks[id] = row
        if ticket in self.tickets:
            t = self.tickets[ticket]
            t["date_mod"] = now  # GLPI updates the parent's date_mod on task changes
            t["actiontime"] = sum(
                r["actiontime"]
                for r in self.tasks.values()
                if r["tickets_id"] == ticket and isinstance(r["actiontime"], int)
            )
        return row

    def add_actor(
        self,
        id: int,  # noqa: A002
        ticket: int,
        user: int,
        type: int = 1,  # noqa: A002
        **kw: Any,
    ) -> dict[str, Any]:
        """A Ticket_User row (type 1 requester, 2 assigned, 3 observer); like GLPI, a
        change of actors bumps the ticket's date_mod."""
        row = {
            "id": id,
            "tickets_id": ticket,
            "users_id": user,
            "type": type,
            "use_notification": 1,
            "alternative_email": "",
        }
        row.update(kw)
        self.ticket_users[id] = row
        if ticket in self.tickets:
            self.tickets[ticket]["date_mod"] = self.tick()
        return row

    def add_followup(
        self,
        id: int,  # noqa: A002
        ticket: int,
        content: str,
        **kw: Any,
    ) -> dict[str, Any]:
        """An ITILFollowup row of a ticket (``itemtype``/``items_id``, as in GLPI); it bumps
        the ticket's date_mod."""
        now = self.tick()
        row = {
            "id": id,
            "itemtype": "Ticket",
            "items_id": ticket,
            "date": now,
            "users_id": 2,
            "users_id_editor": 0,
            "content": content,
            "is_private": 0,
            "requesttypes_id": 1,
            "date_mod": now,
            "date_creation": now,
            "timeline_position": 1,
            "sourceitems_id": 0,
            "sourceof_items_id": 0,
        }
        row.update(kw)
        self.followups[id] = row
        if ticket in self.tickets:
            self.tickets[ticket]["date_mod"] = now
        return row

    def add_satisfaction(
        self,
        id: int,  # noqa: A002
        ticket: int,
        score: int | None,
        comment: str = "",
        **kw: Any,
    ) -> dict[str, Any]:
        """A TicketSatisfaction row (one per ticket; ``satisfaction`` null until answered)."""
        now = self.tick()
        row = {
            "id": id,
            "tickets_id": ticket,
            "type": 1,
            "date_begin": now,
            "date_answered": now if score is not None else None,
            "satisfaction": score,
            "comment": comment,
        }
        row.update(kw)
        self.satisfactions[id] = row
        return row

    def touch(self, ticket: int, **changes: Any) -> None:
        self.tickets[ticket].update(changes)
        self.tickets[ticket]["date_mod"] = self.tick()

    def generate(self, n_tickets: int, tasks_per_ticket: int = 3) -> None:
        """A big instance whose rows are computed from their ids."""
        self.n_generated = n_tickets
        self.tasks_per_ticket = tasks_per_ticket

    def _gen_ticket(self, i: int) -> dict[str, Any]:
        base = dt.datetime(2024, 1, 1, 8, 0) + dt.timedelta(minutes=7 * i)
        date = base.strftime("%Y-%m-%d %H:%M:%S")
        return {
            "id": i,
            "entities_id": 1 + i % 3,
            "name": f"Incident {i} & co",
            "date": date,
            "closedate": None,
            "solvedate": None,
            "date_mod": date,
            "users_id_lastupdater": 2,
            "status": 1 + i % 6,
            "users_id_recipient": 2,
            "requesttypes_id": 1,
            "content": f"<p>Problème n°{i} sur le poste</p>",
            "urgency": 1 + i % 5,
            "impact": 1 + (i // 5) % 5,
            "priority": 1 + i % 6,
            "itilcategories_id": 1 + i % 2,
            "type": 1 + i % 2,
            "actiontime": sum(self._gen_seconds(i, k) for k in range(self.tasks_per_ticket)),
            "is_deleted": 0,
            "date_creation": date,
        }

    def _gen_seconds(self, ticket: int, k: int) -> int:
        return 300 * (1 + (ticket * 7 + k * 3) % 24)

    def _gen_task(self, task_id: int) -> dict[str, Any]:
        ticket = (task_id - 1) // self.tasks_per_ticket + 1
        k = (task_id - 1) % self.tasks_per_ticket
        base = dt.datetime(2024, 1, 1, 9, 0) + dt.timedelta(minutes=7 * ticket + k)
        date = base.strftime("%Y-%m-%d %H:%M:%S")
        return {
            "id": task_id,
            "uuid": f"u{task_id}",
            "tickets_id": ticket,
            "taskcategories_id": 1 + k % 2,
            "date": date,
            "users_id": 2 + ticket % 2,
            "users_id_editor": 0,
            "content": f"<p>Travail {task_id}</p>",
            "is_private": k % 2,
            "actiontime": self._gen_seconds(ticket, k),
            "begin": None,
            "end": None,
            "state": 2,
            "users_id_tech": 2 + ticket % 2,
            "groups_id_tech": 0,
            "date_mod": date,
            "date_creation": date,
        }

    def _gen_actor(self, actor_id: int) -> dict[str, Any]:
        ticket = (actor_id + 1) // 2
        requester = actor_id % 2 == 1
        return {
            "id": actor_id,
            "tickets_id": ticket,
            "users_id": (2 + ticket % 2) if requester else (3 - ticket % 2),
            "type": 1 if requester else 2,
            "use_notification": 1,
            "alternative_email": "",
        }

    def actor_ids(self) -> list[int]:
        ids = sorted(self.ticket_users)
        if self.n_generated and self.actors_generated:
            ids += [
                i
                for i in range(1, 2 * self.n_generated + 1)
                if i not in self.ticket_users and (i + 1) // 2 not in self.purged
            ]
        return sorted(ids)

    def actor(self, i: int) -> dict[str, Any] | None:
        if i in self.ticket_users:
            return self.ticket_users[i]
        if self.n_generated and self.actors_generated and 1 <= i <= 2 * self.n_generated:
            return self._gen_actor(i)
        return None

    # -- visible rows ----------------------------------------------------------------

    def ticket_ids(self, deleted: bool) -> list[int]:
        ids = [i for i, t in self.tickets.items() if bool(t.get("is_deleted")) == deleted]
        if self.n_generated and not deleted:
            ids += [i for i in range(1, self.n_generated + 1) if i not in self.purged]
        return sorted(ids)

    def ticket(self, i: int) -> dict[str, Any] | None:
        if i in self.tickets:
            return self.tickets[i]
        if self.n_generated and 1 <= i <= self.n_generated and i not in self.purged:
            return self._gen_ticket(i)
        return None

    def task_ids(self) -> list[int]:
        ids = [i for i, t in self.tasks.items() if self._task_visible(t)]
        if self.n_generated:
            n = self.n_generated * self.tasks_per_ticket
            ids += [
                i
                for i in range(1, n + 1)
                if (i - 1) // self.tasks_per_ticket + 1 not in self.purged
                and (self.see_private or (i - 1) % self.tasks_per_ticket % 2 == 0)
            ]
        return sorted(ids)

    def task(self, i: int) -> dict[str, Any] | None:
        if i in self.tasks:
            return self.tasks[i]
        if self.n_generated and 1 <= i <= self.n_generated * self.tasks_per_ticket:
            return self._gen_task(i)
        return None

    def _task_visible(self, t: dict[str, Any]) -> bool:
        return self.see_private or not t.get("is_private")

    def expected_minutes(self) -> int:
        """Minutes the connector should hold: visible tasks with time, live tickets."""
        total = 0
        for i in self.task_ids():
            t = self.task(i)
            assert t is not None
            ticket = self.ticket(t["tickets_id"])
            s = t["actiontime"]
            if ticket is None or ticket.get("is_deleted") or not isinstance(s, int) or s <= 0:
                continue
            total += max(1, (s + 30) // 60)
        return total

    # -- HTTP ------------------------------------------------------------------------

    def out(self, row: dict[str, Any]) -> dict[str, Any]:
        if not self.version.startswith("10"):
            return dict(row)
        return {
            k: encode10(v) if k in ENCODED_FIELDS and isinstance(v, str) else v
            for k, v in row.items()
        }

    def __call__(self, environ: Any, start_response: Any) -> Any:
        request = Request(environ)
        with self.lock:
            response = self.dispatch(request)
        return response(environ, start_response)

    def _err(self, status: int, code: str, message: str) -> Response:
        return Response(json.dumps([code, message]), status, mimetype="application/json")

    def _json(
        self, body: Any, status: int = 200, headers: dict[str, str] | None = None, prefix: str = ""
    ) -> Response:
        return Response(
            prefix + json.dumps(body),
            status,
            headers=headers or {},
            content_type="application/json; charset=UTF-8",
        )

    def _fault(self, path: str) -> Fault | None:
        for fault in self.faults:
            rest = path[len(fault.path) :]
            # "Ticket" hits Ticket and Ticket/5/..., not TicketTask or Ticket_User.
            if fault.times > 0 and path.startswith(fault.path) and not rest[:1].isidentifier():
                fault.times -= 1
                return fault
        return None

    def dispatch(self, req: Request) -> Response:
        path = req.path.split("apirest.php/", 1)[-1].strip("/")
        self.log.append(f"{req.method} {path}?{req.query_string.decode()}")
        args = req.args.to_dict()
        for hook in list(self.hooks):
            hook(path, args)
        if req.headers.get("App-Token") != APP_TOKEN:
            return self._err(400, "ERROR_WRONG_APP_TOKEN_PARAMETER", "app_token seems invalid")
        if path == "initSession":
            auth = req.headers.get("Authorization", "")
            if "user_token" not in auth:
                return self._err(400, "ERROR_LOGIN_PARAMETERS_MISSING", "missing parameter")
            if auth.split(" ", 1)[-1] != USER_TOKEN:
                return self._err(
                    401, "ERROR_GLPI_LOGIN_USER_TOKEN", "parameter user_token seems invalid"
                )
            token = secrets.token_hex(20)
            self.sessions[token] = self.session_calls
            return self._json({"session_token": token})
        token = req.headers.get("Session-Token")
        if not token:
            return self._err(
                400, "ERROR_SESSION_TOKEN_MISSING", "parameter session_token is missing"
            )
        left = self.sessions.get(token)
        if left is None or left <= 0:
            self.sessions.pop(token, None)
            return self._err(401, "ERROR_SESSION_TOKEN_INVALID", "session_token seems invalid")
        self.sessions[token] = left - 1
        if path == "killSession":
            self.sessions.pop(token, None)
            self.killed += 1
            return self._json(True)
        if path == "changeActiveEntities":
            body = json.loads(req.get_data() or b"{}")
            if not isinstance(body.get("is_recursive"), bool):
                return self._err(400, "ERROR", "Bad Request")
            return self._json(True)
        if req.method == "GET" and req.get_data():
            return self._err(
                400, "ERROR_JSON_PAYLOAD_FORBIDDEN", "GET Request should not have json payload"
            )
        fault = self._fault(path)
        prefix = ""
        if fault is not None:
            if fault.kind == "503":
                return Response("<html>Service Unavailable</html>", 503)
            if fault.kind == "timeout":
                self.lock.release()
                try:
                    time.sleep(fault.delay)
                finally:
                    self.lock.acquire()
            if fault.kind == "malformed":
                return Response('[{"id": 1, "name": "trunc', 200, content_type="application/json")
            if fault.kind == "notice":
                prefix = (
                    "<br />\n<b>Notice</b>:  Undefined index: x in "
                    "<b>/var/www/glpi/src/Search.php</b> on line <b>123</b><br />\n"
                )
            if fault.kind == "error500":
                return self._err(500, "ERROR_SQL", "Unexpected SQL Error")
        if path == "getGlpiConfig":
            return self._json(
                {"cfg_glpi": {"version": self.version, "list_limit": self.list_limit}}
            )
        if path == "getActiveProfile":
            rights = 1 | (8192 if self.see_private else 0)
            return self._json({"active_profile": {"id": 4, "name": "Sync", "task": rights}})
        if path == "getMultipleItems":
            return self._multiple(req, prefix)
        if path == "search/Ticket":
            return self._search(args, prefix)
        m = re.fullmatch(
            r"Ticket/(\d+)/(TicketTask|Item_Ticket|Ticket_User|ITILFollowup|TicketSatisfaction)",
            path,
        )
        if m:
            ticket_id = int(m.group(1))
            if self.ticket(ticket_id) is None:
                return self._err(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
            if m.group(2) == "TicketTask":
                rows = [
                    t
                    for i in self.task_ids()
                    if (t := self.task(i)) and t["tickets_id"] == ticket_id
                ]
            elif m.group(2) == "TicketSatisfaction":
                rows = [
                    r for _, r in sorted(self.satisfactions.items()) if r["tickets_id"] == ticket_id
                ]
            elif m.group(2) == "ITILFollowup":
                rows = [
                    r
                    for _, r in sorted(self.followups.items())
                    if r["itemtype"] == "Ticket" and r["items_id"] == ticket_id
                ]
            elif m.group(2) == "Ticket_User":
                rows = [
                    a
                    for i in self._actor_ids_of(ticket_id)
                    if (a := self.actor(i)) and a["tickets_id"] == ticket_id
                ]
            else:
                rows = [r for r in self.item_tickets.values() if r["tickets_id"] == ticket_id]
            return self._page(m.group(2), rows, args, prefix)
        m = re.fullmatch(r"(\w+)/(\d+)", path)
        if m:
            row = self._one(m.group(1), int(m.group(2)))
            if row is None:
                return self._err(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
            return self._json(self.out(row), prefix=prefix)
        if path in (
            "Entity",
            "ITILCategory",
            "TaskCategory",
            "User",
            "Ticket",
            "TicketTask",
            "Item_Ticket",
            "Ticket_User",
            "ITILFollowup",
            "TicketSatisfaction",
        ):
            return self._collection(path, args, prefix)
        return self._err(400, "ERROR_RESOURCE_NOT_FOUND_NOR_COMMONDBTM", "resource not found")

    def _actor_ids_of(self, ticket_id: int) -> list[int]:
        ids = [i for i, a in self.ticket_users.items() if a["tickets_id"] == ticket_id]
        if self.n_generated and self.actors_generated and 1 <= ticket_id <= self.n_generated:
            ids += [2 * ticket_id - 1, 2 * ticket_id]
        return sorted(set(ids))

    def _one(self, itemtype: str, i: int) -> dict[str, Any] | None:
        if itemtype == "Ticket":
            return self.ticket(i)
        if itemtype == "TicketTask":
            return self.task(i)
        return self.items.get((itemtype, i))

    def _multiple(self, req: Request, prefix: str) -> Response:
        out = []
        for n in range(10_000):
            itemtype = req.args.get(f"items[{n}][itemtype]")
            if itemtype is None:
                break
            row = self._one(itemtype, int(req.args[f"items[{n}][items_id]"]))
            if row is None:
                return self._err(404, "ERROR_ITEM_NOT_FOUND", "Item not found")
            out.append(self.out(row))
        return self._json(out, prefix=prefix)

    def _collection(self, itemtype: str, args: dict[str, str], prefix: str) -> Response:
        deleted = args.get("is_deleted") in ("true", "1")
        if itemtype == "Ticket":
            ids = self.ticket_ids(deleted)
            return self._page_lazy(itemtype, ids, self.ticket, args, prefix)
        if itemtype == "TicketTask":
            return self._page_lazy(itemtype, self.task_ids(), self.task, args, prefix)
        if itemtype == "Ticket_User":
            return self._page_lazy(itemtype, self.actor_ids(), self.actor, args, prefix)
        source = {
            "Entity": self.entities,
            "ITILCategory": self.categories,
            "TaskCategory": self.task_categories,
            "User": self.users,
            "Item_Ticket": self.item_tickets,
            "ITILFollowup": self.followups,
            "TicketSatisfaction": self.satisfactions,
        }[itemtype]
        rows = [r for _, r in sorted(source.items())]
        if itemtype == "User":
            rows = [r for r in rows if bool(r.get("is_deleted")) == deleted]
        return self._page(itemtype, rows, args, prefix)

    def _range(self, args: dict[str, str], total: int) -> tuple[int, int] | Response:
        raw = args.get("range", f"0-{self.list_limit - 1}")
        if not re.fullmatch(r"\d+-\d+", raw):
            return self._err(400, "ERROR", "range must be in format : [start-end] with integers")
        start, end = (int(x) for x in raw.split("-"))
        if start > total:
            return self._err(
                400,
                "ERROR_RANGE_EXCEED_TOTAL",
                f"Provided range exceed total count of data: {total}",
            )
        return start, end

    def _page(
        self, itemtype: str, rows: list[dict[str, Any]], args: dict[str, str], prefix: str
    ) -> Response:
        return self._page_lazy(itemtype, list(range(len(rows))), lambda i: rows[i], args, prefix)

    def _page_lazy(
        self,
        itemtype: str,
        ids: list[int],
        get: Callable[[int], Any],
        args: dict[str, str],
        prefix: str,
    ) -> Response:
        total = len(ids)
        rng = self._range(args, total)
        if isinstance(rng, Response):
            return rng
        start, end = rng
        window = ids[start : end + 1]
        body = [self.out(get(i)) for i in window]
        headers = {"Accept-Range": f"{itemtype} 1000"}
        if total > 0:
            headers["Content-Range"] = f"{start}-{min(end, total - 1)}/{total}"
        status = 206 if (end - start + 1) < total else 200
        return self._json(body, status, headers, prefix)

    def _search(self, args: dict[str, str], prefix: str) -> Response:
        deleted = args.get("is_deleted") in ("true", "1")
        since = None
        if (
            args.get("criteria[0][field]") == "19"
            and args.get("criteria[0][searchtype]") == "morethan"
        ):
            since = args.get("criteria[0][value]")
        rows = []
        for i in self.ticket_ids(deleted):
            t = self.ticket(i)
            assert t is not None
            if since is None or t["date_mod"] > since:
                rows.append(
                    {
                        "1": encode10(t["name"]) if self.version.startswith("10") else t["name"],
                        "2": t["id"],
                        "19": t["date_mod"],
                        "80": "Entité racine",
                    }
                )
        rows.sort(key=lambda r: (r["19"], r["2"]))
        total = len(rows)
        rng = self._range(args, total)
        if isinstance(rng, Response):
            return rng
        start, end = rng
        window = rows[start : end + 1]
        body: dict[str, Any] = {
            "totalcount": total,
            "count": len(window),
            "sort": [19],
            "order": ["ASC"],
        }
        headers = {"Accept-Range": "Ticket 1000"}
        if total:
            body["data"] = window
            body["content-range"] = f"{start}-{min(end, total - 1)}/{total}"
            headers["Content-Range"] = body["content-range"]
        status = 200 if len(window) >= total else 206
        return self._json(body, status, headers, prefix)


class FakeGlpiServer:
    """The fake served by a threaded werkzeug server on 127.0.0.1 (a free port)."""

    def __init__(self, fake: FakeGlpi) -> None:
        self.fake = fake
        self.server = make_server("127.0.0.1", 0, fake, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/apirest.php"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> FakeGlpiServer:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)


def small_instance(version: str = "10.0.18") -> FakeGlpi:
    """Root + two member entities + a sub-entity, categories, users, a few tickets."""
    fake = FakeGlpi(version=version)
    fake.add_entity(0, "Entité racine", None)
    fake.add_entity(1, "Ville de Saint-Aubin", 0)
    fake.add_entity(2, "OPH Val-d'Orge Habitat", 0)
    fake.add_entity(3, "CCAS Saint-Aubin", 1)
    fake.categories[1] = {
        "id": 1,
        "name": "Applications métier",
        "itilcategories_id": 0,
        "completename": "Applications métier",
        "level": 1,
    }
    fake.categories[2] = {
        "id": 2,
        "name": "ERP Finances",
        "itilcategories_id": 1,
        "completename": "Applications métier > ERP Finances",
        "level": 2,
    }
    fake.task_categories[1] = {"id": 1, "name": "Projet ERP", "completename": "Projet ERP"}
    fake.task_categories[2] = {"id": 2, "name": "Support", "completename": "Support"}
    fake.add_user(2, "jleroy", "Leroy", "Julien", entity=1)
    fake.add_user(3, "mdupont", "Dupont", "Marie", entity=2)
    return fake
