"""The isolation matrix (issue 8): every route and page × every principal × tenant B's objects.

Routes are enumerated from the application itself, so a new route is probed as soon as it
exists; a path parameter the matrix cannot fill with one of B's objects fails the test (the
route audit of the matrix). For each probe:

- anonymous, expired, revoked and random tokens: 401 on every API route, the sign-in page
  (302) on every page;
- technician, infra and manager of tenant A: 403 or 404 on B's objects, the same status as for
  an object that does not exist (no existence oracle), refusals for writes that point at B's
  objects, and nothing written by a refused request (row counts of every table, change log
  included);
- admin (sees everything): never a server error;
- for everyone: no server error, and no marker of B's data in any body, whatever its format.
"""

from __future__ import annotations

import datetime as dt
import io
import itertools
import re
import secrets
import zipfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from typing import Any

import pytest
import sqlalchemy as sa

from config.auth import SYSTEM, Role, create_token, create_user, revoke_token
from config.db import db as sqla
from config.db import utcnow
from tests.pages_support import BASE, signed_in

# B's data carries SECRET in every free-text field: it must never appear in a body served to
# A. B's codes carry CODE; they may appear only where the request itself named them.
SECRET = "ZQXBSECRET"
CODE = "zqxbcode"
MISSING_ID = 987_654_321
# Tables that a refused request may legitimately touch (the failure counter of the throttle).
VOLATILE_TABLES = {"auth_throttle"}
# Pages with no object and no tenant data, or the sign-in machinery itself.
PAGE_SKIP = {"/connexion", "/deconnexion", "/langue", "/healthz", "/readyz", "/api/docs"}
PUBLIC_API = {"/api/v1/openapi.json"}


@dataclass
class World:
    a: Any
    b: Any
    ids: dict[str, Any] = field(default_factory=dict)  # values of B's objects by param name
    own: dict[str, Any] = field(default_factory=dict)  # A's objects


def _seed(app: Any, make_tenant: Callable[..., Any]) -> World:
    from cmdb import services as cmdb
    from servicedesk import services as sd
    from servicedesk.models import TicketStatus
    from servicedesk.queries import current_rules

    rules = current_rules()
    now = utcnow()
    a = make_tenant("tenant-a", name="Tenant A")
    b = make_tenant(f"{CODE}-b", name=f"{SECRET} member")
    world = World(a=a, b=b)

    def ci(tenant: Any, kind: str, code: str, name: str) -> Any:
        return cmdb.create_ci(
            {"kind": kind, "code": code, "name": name, "tenant": tenant.code}, actor=SYSTEM
        )

    for t, code, label in ((a, "a", "Application A"), (b, CODE, f"{SECRET} app")):
        host = ci(t, "server", f"{code}-host", label + " host")
        appl = ci(t, "application", f"{code}-app", label)
        rel = cmdb.create_relation(
            {"source": appl.id, "target": host.id, "type": "depends_on"}, actor=SYSTEM
        )
        cmdb.add_usage(appl, t.code, note=f"{label} usage", actor=SYSTEM)
        ticket = sd.open_ticket(
            {
                "tenant": t.code,
                "type": "incident",
                "title": f"{label} ticket",
                "description": f"{label} description",
                "ci": appl.id,
            },
            actor=SYSTEM,
            now=now,
            rules=rules,
        )
        sd.add_comment(ticket, {"body": f"{label} comment"}, actor=SYSTEM, now=now)
        project = sd.create_project(
            {
                "code": f"{code}-prj",
                "name": f"{label} project",
                "tenants": [t.code],
                "description": f"{label} project description",
            },
            actor=SYSTEM,
            now=now,
        )
        user = create_user(
            f"{code}-user",
            role=Role.TECHNICIAN,
            tenants=[t],
            full_name=f"{label} user",
            actor=SYSTEM,
        )
        entry = sd.log_time(
            {
                "user": user.username,
                "date": now.date() - dt.timedelta(days=1),
                "minutes": 45,
                "activity": "mco",
                "ticket": ticket.id,
                "note": f"{label} note",
            },
            actor=SYSTEM,
            now=now,
            rules=rules,
        )
        training = sd.create_training(
            {
                "tenant": t.code,
                "date": dt.date(2021, 3, 4),
                "type": "office_tools",
                "title": f"{label} training",
                "trainees": 4,
                "days": 1,
            },
            actor=SYSTEM,
        )
        token, _raw = create_token(user, f"{label} token", expires_days=None, now=now, actor=SYSTEM)
        solved = sd.open_ticket(
            {"tenant": t.code, "type": "request", "title": f"{label} solved"},
            actor=SYSTEM,
            now=now,
            rules=rules,
        )
        for status in (TicketStatus.IN_PROGRESS, TicketStatus.SOLVED):
            sd.transition_ticket(
                solved, status, comment=f"{label} fix", actor=SYSTEM, now=now, rules=rules
            )
        sd.record_satisfaction(
            solved, {"score": 4, "comment": f"{label} satisfied"}, actor=SYSTEM, now=now
        )
        values = {
            "ci_id": appl.id,
            "key": appl.key,
            "relation_id": rel.id,
            "ticket_id": ticket.id,
            "project_id": project.id,
            "entry_id": entry.id,
            "session_id": training.id,
            "user_id": user.id,
            "token_id": token.id,
            "tenant_id": t.id,
            "tenant": t.code,
            "host_id": host.id,
            "project_code": project.code,
            "solved_id": solved.id,
        }
        (world.ids if t is b else world.own).update(values)
    from config.changelog import ChangeRecord

    # Archived reports: B's own view, and the syndicate's (every member's rows, B's included).
    from reporting.services import archive_report

    today = now.date()
    params = {
        "from": (today - dt.timedelta(days=60)).isoformat(),
        "to": today.isoformat(),
        "group_by": "tenant",
    }
    (b_file,) = archive_report(
        "workload", params, "matrix", now=now, tenant_id=b.id, formats=["pdf"]
    )
    (all_file,) = archive_report("workload", params, "matrix", now=now, formats=["pdf"])
    world.ids["archive_id"] = b_file.id
    world.ids["all_archive_id"] = all_file.id
    world.ids["change_id"] = sqla.session.execute(
        sa.select(sa.func.max(ChangeRecord.id)).where(ChangeRecord.tenant_id == b.id)
    ).scalar_one()
    return world


# -- bodies ----------------------------------------------------------------------------------
# Writes on B's objects carry a body valid in itself, so that the refusal comes from isolation
# and not from validation. ``{x}`` placeholders are filled with B's (or a missing) object.

# Query strings some object routes need to reach their object.
OBJECT_QUERIES: dict[tuple[str, str], str] = {
    ("DELETE", "/api/v1/cis/<ci_id>/tenants"): "?tenant=tenant-a",
}

OBJECT_BODIES: dict[tuple[str, str], Any] = {
    ("PATCH", "/api/v1/cis/<ci_id>"): {"name": "renamed"},
    ("POST", "/api/v1/cis/<ci_id>/tenants"): {"tenant": "tenant-a"},
    ("PATCH", "/api/v1/projects/<project_id>"): {"name": "renamed"},
    ("POST", "/api/v1/projects/<project_id>/notes"): {"month": "2026-01", "text": "note"},
    ("PATCH", "/api/v1/relations/<relation_id>"): {"type": "depends_on"},
    ("PATCH", "/api/v1/tenants/<tenant_id>"): {"name": "renamed"},
    ("PATCH", "/api/v1/tickets/<ticket_id>"): {"title": "renamed"},
    ("POST", "/api/v1/tickets/<ticket_id>/comments"): {"body": "a comment"},
    ("PUT", "/api/v1/tickets/<ticket_id>/satisfaction"): {"score": 3},
    ("POST", "/api/v1/tickets/<ticket_id>/transitions"): {"to": "in_progress"},
    ("PATCH", "/api/v1/time-entries/<entry_id>"): {"minutes": 30},
    ("PATCH", "/api/v1/training-sessions/<session_id>"): {"trainees": 3},
    ("PATCH", "/api/v1/users/<user_id>"): {"full_name": "renamed"},
    ("PATCH", "/api/v1/categories/<category_id>"): {"name": "renamed"},
}


def _yesterday() -> str:
    return (utcnow().date() - dt.timedelta(days=1)).isoformat()


# Writes on collections (or on A's own objects) that point at B's objects: (method, path,
# body); ``{b:name}`` is B's value, replaced by a missing one for the oracle comparison.
def pointing_writes() -> list[tuple[str, str, Any]]:
    day = _yesterday()
    return [
        ("POST", "/api/v1/tickets", {"tenant": "{b:tenant}", "type": "incident", "title": "t"}),
        (
            "POST",
            "/api/v1/tickets",
            {"tenant": "tenant-a", "type": "incident", "title": "t", "ci": "{b:ci_id}"},
        ),
        (
            "POST",
            "/api/v1/tickets",
            {"tenant": "tenant-a", "type": "incident", "title": "t", "ci": "{b:key}"},
        ),
        (
            "POST",
            "/api/v1/time-entries",
            {"date": day, "minutes": 30, "activity": "mco", "ticket": "{b:ticket_id}"},
        ),
        (
            "POST",
            "/api/v1/time-entries",
            {
                "date": day,
                "minutes": 30,
                "activity": "project",
                "tenant": "tenant-a",
                "project": "{b:project_code}",
            },
        ),
        (
            "POST",
            "/api/v1/time-entries",
            {"date": day, "minutes": 30, "activity": "mco", "tenant": "{b:tenant}"},
        ),
        (
            "POST",
            "/api/v1/cis",
            {"kind": "application", "code": "new-app", "name": "n", "tenant": "{b:tenant}"},
        ),
        (
            "POST",
            "/api/v1/relations",
            {"source": "{a:ci_id}", "target": "{b:host_id}", "type": "depends_on"},
        ),
        (
            "POST",
            "/api/v1/relations",
            {"source": "{b:ci_id}", "target": "{a:host_id}", "type": "depends_on"},
        ),
        ("POST", "/api/v1/cis/{a:ci_id}/tenants", {"tenant": "{b:tenant}"}),
        ("POST", "/api/v1/projects", {"code": "new-prj", "name": "n", "tenants": ["{b:tenant}"]}),
        (
            "POST",
            "/api/v1/training-sessions",
            {
                "tenant": "{b:tenant}",
                "date": "2021-01-05",
                "type": "office_tools",
                "trainees": 1,
                "days": 1,
            },
        ),
        ("POST", "/api/v1/impact", {"failed": ["{b:ci_id}"]}),
        ("POST", "/api/v1/impact", {"failed": ["{b:key}"]}),
        ("POST", "/api/v1/tokens", {"name": "n", "user": "{b:username}"}),
        (
            "POST",
            "/api/v1/users",
            {"username": "new-user", "role": "technician", "tenants": ["{b:tenant}"]},
        ),
        ("PATCH", "/api/v1/cis/{a:ci_id}", {"tenant": "{b:tenant}"}),
        ("PATCH", "/api/v1/tickets/{a:ticket_id}", {"tenant": "{b:tenant}"}),
        ("PATCH", "/api/v1/tickets/{a:ticket_id}", {"ci": "{b:ci_id}"}),
        ("PATCH", "/api/v1/time-entries/{a:entry_id}", {"tenant": "{b:tenant}"}),
        ("PATCH", "/api/v1/time-entries/{a:entry_id}", {"ticket": "{b:ticket_id}"}),
        ("PATCH", "/api/v1/time-entries/{a:entry_id}", {"project": "{b:project_code}"}),
        ("PATCH", "/api/v1/training-sessions/{a:session_id}", {"tenant": "{b:tenant}"}),
        ("PATCH", "/api/v1/relations/{a:relation_id}", {"target": "{b:host_id}"}),
        ("PATCH", "/api/v1/projects/{a:project_id}", {"tenants": ["tenant-a", "{b:tenant}"]}),
    ]


# Reads of objects that are not B's but show B's rows (bound callers must not see them).
def hidden_reads() -> list[tuple[str, str, Any]]:
    return [("GET", "/api/v1/reports/archive/{b:all_archive_id}", None)]


# Reads of collections with B named in filters or matched by a search.
LIST_QUERIES = ("", f"?tenant={CODE}-b", "?q=QXBSECRE", "?limit=200", "?include_deleted=true")


# -- principals ------------------------------------------------------------------------------


@dataclass
class Principal:
    name: str
    headers: dict[str, str]
    kind: str  # "anonymous" | "bound" | "admin"
    user: Any = None


def _principals(app: Any, world: World) -> list[Principal]:
    now = utcnow()
    out = [Principal("anonymous", {}, "anonymous")]
    expired_user = create_user(
        "expired", role=Role.ADMIN, tenants=[], all_tenants=True, actor=SYSTEM
    )
    _t, raw = create_token(
        expired_user, "old", expires_days=1, now=now - dt.timedelta(days=3), actor=SYSTEM
    )
    out.append(Principal("expired token", {"Authorization": f"Bearer {raw}"}, "anonymous"))
    revoked_user = create_user(
        "revoked", role=Role.ADMIN, tenants=[], all_tenants=True, actor=SYSTEM
    )
    tok, raw = create_token(revoked_user, "gone", expires_days=None, now=now, actor=SYSTEM)
    revoke_token(tok.id, now=now, actor=SYSTEM)
    out.append(Principal("revoked token", {"Authorization": f"Bearer {raw}"}, "anonymous"))
    out.append(
        Principal(
            "random token",
            {"Authorization": f"Bearer syn_{secrets.token_urlsafe(32)}"},
            "anonymous",
        )
    )
    for role in (Role.TECHNICIAN, Role.INFRA, Role.MANAGER):
        user = create_user(f"{role.value}-of-a", role=role, tenants=[world.a], actor=SYSTEM)
        _t, raw = create_token(user, "matrix", expires_days=None, now=now, actor=SYSTEM)
        out.append(
            Principal(f"{role.value} of A", {"Authorization": f"Bearer {raw}"}, "bound", user)
        )
    root = create_user("matrix-admin", role=Role.ADMIN, tenants=[], all_tenants=True, actor=SYSTEM)
    _t, raw = create_token(root, "matrix", expires_days=None, now=now, actor=SYSTEM)
    out.append(Principal("admin", {"Authorization": f"Bearer {raw}"}, "admin", root))
    return out


# -- bodies of every format as text ----------------------------------------------------------


def body_text(resp: Any) -> str:
    data: bytes = resp.get_data()
    ctype = resp.headers.get("Content-Type", "")
    if data[:2] == b"PK":  # XLSX and other zip containers
        with zipfile.ZipFile(io.BytesIO(data)) as zf:
            return "\n".join(zf.read(n).decode("utf-8", "replace") for n in zf.namelist())
    if data[:5] == b"%PDF-" or "pdf" in ctype:
        from pypdf import PdfReader

        reader = PdfReader(io.BytesIO(data))
        text = "\n".join(page.extract_text() or "" for page in reader.pages)
        return text + "\n" + data.decode("latin-1")
    return data.decode("utf-8", "replace")


def leaks(resp: Any, request_text: str) -> list[str]:
    text = body_text(resp).lower()
    found = []
    if SECRET.lower() in text:
        found.append(SECRET)
    if CODE in text and CODE not in request_text.lower():
        found.append(CODE)
    return found


# -- the matrix ------------------------------------------------------------------------------


def _row_counts() -> dict[str, int]:
    counts = {}
    for table in sqla.metadata.sorted_tables:
        if table.name in VOLATILE_TABLES:
            continue
        counts[table.name] = sqla.session.execute(
            sa.select(sa.func.count()).select_from(table)
        ).scalar_one()
    sqla.session.rollback()
    return counts


def _fill(template: Any, world: World, *, missing: bool) -> Any:
    """Replace ``{b:name}`` / ``{a:name}`` in a path or a body."""

    def value(side: str, name: str) -> Any:
        if side == "a":
            return world.own[name]
        if name == "username":
            return f"{CODE}-nobody" if missing else f"{CODE}-user"
        v = world.ids[name]
        if missing:
            if isinstance(v, int):
                return MISSING_ID
            if name == "key":
                return "application:zz-missing"
            return f"{CODE}-missing"
        return v

    if isinstance(template, str):
        whole = re.fullmatch(r"\{([ab]):(\w+)\}", template)
        if whole:
            return value(whole.group(1), whole.group(2))
        return re.sub(r"\{([ab]):(\w+)\}", lambda m: str(value(m.group(1), m.group(2))), template)
    if isinstance(template, list):
        return [_fill(v, world, missing=missing) for v in template]
    if isinstance(template, dict):
        return {k: _fill(v, world, missing=missing) for k, v in template.items()}
    return template


PARAM_VALUES = {
    "ci_id": "ci_id",
    "key": "key",
    "relation_id": "relation_id",
    "ticket_id": "ticket_id",
    "project_id": "project_id",
    "entry_id": "entry_id",
    "session_id": "session_id",
    "user_id": "user_id",
    "token_id": "token_id",
    "tenant_id": "tenant_id",
    "change_id": "change_id",
    "tenant": "tenant",
    "archive_id": "archive_id",
}
GLOBAL_PARAMS = {"category_id"}  # categories are shared by all tenants


_CONVERTED = r"<(?:\w+(?:\([^)]*\))?:)?{}>"


def _choice_values(rule: Any, arg: str) -> list[str] | None:
    """Parameters that name a kind of thing rather than an object: every value is probed."""
    path = rule.rule
    if arg == "slug":
        from reporting.pages import SPECS

        return sorted(SPECS)
    if arg == "fmt":
        return ["pdf", "xlsx", "csv"]
    if arg == "name" and "/reports/" in path:
        from reporting.services import REPORTS

        return list(REPORTS)
    if arg == "name":  # a sync source (admins only, no tenant)
        return ["glpi", "nope"]
    if arg == "run_id":  # sync runs have no tenant; admins only
        return ["1"]
    return None


def _variants(rule: Any) -> list[tuple[str, set[str]]]:
    """The rule's path with every value of its choice parameters, and the object parameters
    left to fill."""
    choice_args = [a for a in sorted(rule.arguments) if _choice_values(rule, a) is not None]
    out = []
    for combo in itertools.product(*(_choice_values(rule, a) or [] for a in choice_args)):
        path = rule.rule
        for arg, value in zip(choice_args, combo, strict=True):
            path = re.sub(_CONVERTED.format(arg), value, path)
        out.append((path, set(rule.arguments) - set(choice_args)))
    return out


def _concrete(path: str, args: set[str], world: World, *, missing: bool) -> str | None:
    """The path with B's objects (or missing ones) in ``args``; None for a global object."""
    for arg in sorted(args):
        if arg in GLOBAL_PARAMS:
            return None
        if arg == "code":  # by-code routes: tenants or projects
            name = "project_code" if "/projects/" in path else "tenant"
        elif arg in PARAM_VALUES:
            name = PARAM_VALUES[arg]
        else:
            pytest.fail(f"the isolation matrix has no B object for <{arg}> in {path}")
        value = _fill(f"{{b:{name}}}", world, missing=missing)
        path = re.sub(_CONVERTED.format(arg), str(value), path)
    return path


def _report_query() -> str:
    """A period that holds the seeded entries, grouped by member (so names would show)."""
    today = utcnow().date()
    start = today - dt.timedelta(days=60)
    return (
        f"?from={start.isoformat()}&to={today.isoformat()}&month={today.strftime('%Y-%m')}"
        f"&year={today.year}&group_by=tenant"
    )


@dataclass
class Matrix:
    probes: int = 0
    failures: list[str] = field(default_factory=list)

    def fail(self, who: Principal, method: str, path: str, resp: Any, why: str) -> None:
        self.failures.append(f"{who.name:16} {method:6} {path} → {resp.status_code}: {why}")


def _api_rules(app: Any) -> Iterator[tuple[str, Any]]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if not rule.rule.startswith("/api/v1/") or rule.rule in PUBLIC_API:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def _template(rule: Any) -> str:
    return re.sub(r"<(?:\w+:)?(\w+)>", r"<\1>", rule.rule)


def _expect_refusal(
    m: Matrix,
    app: Any,
    who: Principal,
    method: str,
    path: str,
    body: Any,
    missing_path: str,
    missing_body: Any,
    *,
    allowed: Iterable[int],
) -> None:
    client = app.test_client()
    before = _row_counts() if method != "GET" else None
    resp = client.open(path, method=method, headers=who.headers, json=body)
    m.probes += 1
    request_text = path + repr(body)
    if resp.status_code not in allowed:
        m.fail(who, method, path, resp, f"expected one of {sorted(allowed)}")
    for marker in leaks(resp, request_text):
        m.fail(who, method, path, resp, f"body shows {marker}")
    if before is not None and _row_counts() != before:
        m.fail(who, method, path, resp, "a refused request wrote rows")
    twin = client.open(missing_path, method=method, headers=who.headers, json=missing_body)
    m.probes += 1
    if twin.status_code != resp.status_code:
        m.fail(
            who, method, path, resp, f"existence oracle: {twin.status_code} for a missing object"
        )


def test_api_isolation_matrix(app, db, make_tenant, capsys):
    world = _seed(app, make_tenant)
    principals = _principals(app, world)
    m = Matrix()
    probes = [(m_, r_, b_, a_) for m_, r_ in _api_rules(app) for b_, a_ in _variants(r_)]
    for method, rule, base, args in probes:
        template = _template(rule)
        path = _concrete(base, args, world, missing=False)
        if path is None:  # a shared object: only no server error and no leak
            path = re.sub(r"<[^>]+>", "1", base)
        missing_path = _concrete(base, args, world, missing=True) or path
        has_object = bool(args - GLOBAL_PARAMS)
        body = OBJECT_BODIES.get((method, template), None if method in ("GET", "DELETE") else {})
        queries = LIST_QUERIES if method == "GET" and not rule.arguments else ("",)
        if (method, template) in OBJECT_QUERIES:
            queries = (OBJECT_QUERIES[method, template],)
        if "/reports/" in rule.rule and method == "GET" and "name" in rule.arguments:
            queries = tuple(
                _report_query() + f"&format={fmt}" for fmt in ("json", "csv", "xlsx", "html", "pdf")
            )
        for who in principals:
            for query in queries:
                client = app.test_client()
                url = path + query
                if who.kind == "bound" and has_object:
                    _expect_refusal(
                        m,
                        app,
                        who,
                        method,
                        url,
                        body,
                        missing_path + query,
                        body,
                        allowed={403, 404},
                    )
                    continue
                before = _row_counts() if method != "GET" and who.kind != "admin" else None
                # Each refused token comes from its own address, so that the throttle (tested
                # in tests/kernel) answers 401 and not 429.
                environ = {"REMOTE_ADDR": f"10.9.{m.probes // 250}.{m.probes % 250}"}
                resp = client.open(
                    url, method=method, headers=who.headers, json=body, environ_base=environ
                )
                m.probes += 1
                if resp.status_code >= 500:
                    m.fail(who, method, url, resp, "server error")
                if who.kind == "anonymous" and resp.status_code != 401:
                    m.fail(who, method, url, resp, "expected 401")
                if who.kind != "admin":
                    for marker in leaks(resp, url + repr(body)):
                        m.fail(who, method, url, resp, f"body shows {marker}")
                if before is not None and resp.status_code >= 400 and _row_counts() != before:
                    m.fail(who, method, url, resp, "a refused request wrote rows")
    for method, path_t, body_t in pointing_writes() + hidden_reads():
        for who in principals:
            if who.kind != "bound":
                continue
            _expect_refusal(
                m,
                app,
                who,
                method,
                _fill(path_t, world, missing=False),
                _fill(body_t, world, missing=False),
                _fill(path_t, world, missing=True),
                _fill(body_t, world, missing=True),
                allowed={403, 404, 422},
            )
    with capsys.disabled():
        print(f"\nisolation matrix (API): {m.probes} probes, {len(m.failures)} failures")
    assert not m.failures, "\n".join(m.failures)


# -- pages -----------------------------------------------------------------------------------

PAGE_FORMS: dict[tuple[str, str], dict[str, str]] = {
    ("POST", "/tickets/<ticket_id>/commentaires"): {"body": "a comment"},
    ("POST", "/tickets/<ticket_id>/etat"): {"to": "in_progress"},
    ("POST", "/tickets/<ticket_id>/temps"): {"minutes": "30", "activity": "mco"},
}
PAGE_QUERIES = ("", f"?tenant={CODE}-b", "?q=QXBSECRE", f"?ci={CODE}-app")


def _page_rules(app: Any) -> Iterator[tuple[str, Any]]:
    for rule in sorted(app.url_map.iter_rules(), key=lambda r: r.rule):
        if rule.rule.startswith(("/api/", "/static/")) or rule.rule in PAGE_SKIP:
            continue
        for method in sorted(rule.methods - {"HEAD", "OPTIONS"}):
            yield method, rule


def test_page_isolation_matrix(app, db, make_tenant, capsys):
    world = _seed(app, make_tenant)
    m = Matrix()
    browsers: list[tuple[Principal, Any]] = [
        (Principal("anonymous", {}, "anonymous"), app.test_client())
    ]
    for role in (Role.TECHNICIAN, Role.INFRA, Role.MANAGER):
        user = create_user(f"{role.value}-page-a", role=role, tenants=[world.a], actor=SYSTEM)
        browsers.append(
            (Principal(f"{role.value} of A", {}, "bound", user), signed_in(app, db, user))
        )
    root = create_user("page-admin", role=Role.ADMIN, tenants=[], all_tenants=True, actor=SYSTEM)
    browsers.append((Principal("admin", {}, "admin", root), signed_in(app, db, root)))
    probes = [(m_, r_, b_, a_) for m_, r_ in _page_rules(app) for b_, a_ in _variants(r_)]
    for method, rule, base, args in probes:
        template = _template(rule)
        path = _concrete(base, args, world, missing=False)
        missing_path = _concrete(base, args, world, missing=True)
        assert path is not None and missing_path is not None
        form = PAGE_FORMS.get((method, template), {})
        queries = PAGE_QUERIES if method == "GET" and not rule.arguments else ("",)
        if rule.rule.startswith("/rapports/") and method == "GET":
            queries = (_report_query(),)
        for who, browser in browsers:
            data = {**form, "csrf_token": getattr(browser, "csrf", "")}
            for query in queries:
                url = path + query
                before = _row_counts() if method == "POST" and who.kind != "admin" else None
                resp = browser.open(
                    url, method=method, base_url=BASE, data=data if method == "POST" else None
                )
                m.probes += 1
                if resp.status_code >= 500:
                    m.fail(who, method, url, resp, "server error")
                if who.kind == "anonymous":
                    if resp.status_code not in (302, 303, 400, 401, 403):
                        m.fail(who, method, url, resp, "an anonymous visitor got through")
                    location = resp.headers.get("Location", "")
                    if resp.status_code in (302, 303) and "/connexion" not in location:
                        m.fail(who, method, url, resp, f"redirected to {location}")
                if who.kind != "admin":
                    for marker in leaks(resp, url):
                        m.fail(who, method, url, resp, f"page shows {marker}")
                if before is not None and _row_counts() != before:
                    m.fail(who, method, url, resp, "a refused form wrote rows")
                if who.kind == "bound" and args:
                    if resp.status_code not in (403, 404):
                        m.fail(who, method, url, resp, "expected a 403 or 404 page")
                    twin = browser.open(
                        missing_path,
                        method=method,
                        base_url=BASE,
                        data=data if method == "POST" else None,
                    )
                    m.probes += 1
                    if twin.status_code != resp.status_code:
                        m.fail(
                            who,
                            method,
                            url,
                            resp,
                            f"existence oracle: {twin.status_code} for a missing object",
                        )
    with capsys.disabled():
        print(f"\nisolation matrix (pages): {m.probes} probes, {len(m.failures)} failures")
    assert not m.failures, "\n".join(m.failures)
