"""Bulk import of CIs, relations and usage links from one table (``syndic import cmdb``,
``POST /api/v1/cmdb/imports``).

All or nothing: every row is checked against the database and the rest of the file first
(every error is reported with its line and column), then everything is written in one
transaction. Rows that match what is stored change nothing, so importing the same file
twice writes nothing the second time (no change-log entry, no graph version bump).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import marshmallow as ma
import networkx as nx
from sqlalchemy import select

from cmdb import analysis
from cmdb.impact import MEMBER_OF
from cmdb.kinds import SCHEMAS, check_relation_kinds, validate_attributes
from cmdb.models import (
    CI,
    CIKind,
    CIStatus,
    Relation,
    RelationType,
    Usage,
    UsageConfidence,
)
from cmdb.services import CODE_RE, parse_key, update_ci
from cmdb.tabular import ATTR_PREFIX, Row, TableFile
from config.auth import Actor, require
from config.db import db, transaction
from config.errors import ValidationFailed
from config.tenancy import Tenant, tenant_scope, visible_tenant_ids

__all__ = ["MAX_REPORTED_ERRORS", "import_table"]

MAX_REPORTED_ERRORS = 200
Progress = Callable[[int, int], None]

_TRUE = {"true", "yes", "oui", "vrai", "1", "x"}
_FALSE = {"false", "no", "non", "faux", "0"}


def _text(value: Any) -> str:
    if isinstance(value, float) and value.is_integer():
        return str(int(value))
    return str(value).strip()


def _convert(field: ma.fields.Field, value: Any) -> Any:
    """A cell value converted to what the attribute's field expects; left as is when it
    cannot be (validation then names the type error)."""
    if isinstance(field, ma.fields.Boolean):
        if isinstance(value, bool):
            return value
        text = _text(value).lower()
        return True if text in _TRUE else False if text in _FALSE else value
    if isinstance(field, ma.fields.Integer):
        if isinstance(value, bool):
            return value
        if isinstance(value, float) and value.is_integer():
            return int(value)
        text = _text(value)
        return int(text) if text.lstrip("-").isdigit() else value
    if isinstance(field, ma.fields.Float):
        if isinstance(value, int | float) and not isinstance(value, bool):
            return float(value)
        try:
            return float(_text(value).replace(",", ".").replace(" ", ""))
        except ValueError:
            return value
    if isinstance(field, ma.fields.List):
        items = value if isinstance(value, list) else _text(value).split(";")
        return [i.strip() for i in items if i.strip()]
    return _text(value) if not isinstance(value, str) else value


@dataclass
class _Counts:
    created: int = 0
    updated: int = 0
    unchanged: int = 0

    def as_dict(self) -> dict[str, int]:
        return {"created": self.created, "updated": self.updated, "unchanged": self.unchanged}


@dataclass
class _Plan:
    new_cis: list[dict[str, Any]] = field(default_factory=list)
    changed_cis: list[tuple[CI, dict[str, Any]]] = field(default_factory=list)
    new_relations: list[tuple[str, str, RelationType, int]] = field(default_factory=list)
    new_usage: list[tuple[str, Tenant, UsageConfidence]] = field(default_factory=list)
    changed_usage: list[tuple[Usage, UsageConfidence]] = field(default_factory=list)
    counts: dict[str, _Counts] = field(
        default_factory=lambda: {"cis": _Counts(), "relations": _Counts(), "usage": _Counts()}
    )


class _Checker:
    """Validates every row against the database and the rest of the file."""

    def __init__(self, table: TableFile, actor: Actor) -> None:
        self.table = table
        self.actor = actor
        self.errors: dict[str, list[str]] = {}
        self.plan = _Plan()
        self.visible = visible_tenant_ids(actor)

    def error(self, row: Row, column: str | None, message: str) -> None:
        if column is None or column not in self.table.columns:
            where = f"line {row.line}"
        else:
            where = f"line {row.line}, column {self.table.columns[column]} ({column})"
        self.errors.setdefault(where, []).append(message)

    # -- loading ------------------------------------------------------------------------

    def _load(self, rows: list[Row]) -> None:
        keys: set[tuple[CIKind, str]] = set()
        tenant_codes: set[str] = set()
        for row in rows:
            for column in ("key", "target"):
                parsed = parse_key(_text(row.cells.get(column, "")))
                if parsed:
                    keys.add(parsed)
            if "tenant" in row.cells:
                tenant_codes.add(_text(row.cells["tenant"]))
        self.existing: dict[str, CI] = {}
        by_kind: dict[CIKind, list[str]] = {}
        for kind, code in keys:
            by_kind.setdefault(kind, []).append(code)
        for kind, codes in by_kind.items():
            for start in range(0, len(codes), 2000):
                stmt = select(CI).where(CI.kind == kind, CI.code.in_(codes[start : start + 2000]))
                for ci in db.session.execute(stmt).scalars():
                    self.existing[ci.key] = ci
        self.tenants: dict[str, Tenant] = {}
        codes = sorted(tenant_codes)
        for start in range(0, len(codes), 2000):
            stmt = tenant_scope(
                select(Tenant).where(Tenant.code.in_(codes[start : start + 2000])), self.actor
            )
            self.tenants.update({t.code: t for t in db.session.execute(stmt).scalars()})

    def _sees(self, ci: CI) -> bool:
        return self.visible is None or ci.tenant_id is None or ci.tenant_id in self.visible

    def _tenant(self, row: Row) -> Tenant | None | bool:
        """The tenant named on the row; None if none; False (error recorded) if unknown."""
        if "tenant" not in row.cells:
            return None
        code = _text(row.cells["tenant"])
        tenant = self.tenants.get(code)
        if tenant is None:
            self.error(row, "tenant", f"Unknown tenant {code!r}.")
            return False
        return tenant

    # -- rows ---------------------------------------------------------------------------

    def check(self) -> _Plan:
        rows = self.table.rows
        self._load(rows)
        by_record: dict[str, list[Row]] = {"ci": [], "relation": [], "usage": []}
        for row in rows:
            record = _text(row.cells.get("record", "")).lower()
            if record not in by_record:
                self.error(row, "record", "Give ci, relation or usage.")
                continue
            by_record[record].append(row)
        # What each key will be once the file is applied: (kind, tenant id, ci or None).
        self.final: dict[str, tuple[CIKind, int | None]] = {}
        for key, ci in self.existing.items():
            if self._sees(ci):
                self.final[key] = (ci.kind, ci.tenant_id)
        self.ci_lines: dict[str, int] = {}
        for row in by_record["ci"]:
            self._ci_row(row)
        self._relation_rows(by_record["relation"])
        self._usage_rows(by_record["usage"])
        return self.plan

    def _attributes(self, row: Row, kind: CIKind) -> dict[str, Any]:
        schema = SCHEMAS[kind]
        attrs: dict[str, Any] = {}
        for column, value in row.cells.items():
            if not column.startswith(ATTR_PREFIX):
                continue
            path = column[len(ATTR_PREFIX) :].split(".")
            field_ = schema.fields.get(path[0])
            if field_ is None:
                self.error(row, column, f"Unknown attribute {path[0]!r} for a {kind.value}.")
                continue
            if len(path) == 2:
                nested = getattr(field_, "schema", None)
                sub = nested.fields.get(path[1]) if nested is not None else None
                if sub is None:
                    self.error(row, column, f"Unknown attribute {'.'.join(path)!r}.")
                    continue
                attrs.setdefault(path[0], {})[path[1]] = _convert(sub, value)
            else:
                attrs[path[0]] = _convert(field_, value)
        return attrs

    def _ci_row(self, row: Row) -> None:
        key = _text(row.cells.get("key", ""))
        parsed = parse_key(key)
        if parsed is None:
            self.error(row, "key", f"Not a CI key kind:code: {key!r}.")
            return
        kind, code = parsed
        if not CODE_RE.match(code):
            self.error(row, "key", "Codes use lowercase letters, digits, '.', '_' and '-'.")
            return
        if key in self.ci_lines:
            self.error(row, "key", f"{key} is already defined on line {self.ci_lines[key]}.")
            return
        self.ci_lines[key] = row.line
        existing = self.existing.get(key)
        if existing is not None and not self._sees(existing):
            # API.md §4: a taken key is reported without naming its owner.
            self.error(row, "key", f"The key {key} is taken.")
            return
        tenant = self._tenant(row)
        if tenant is False:
            return
        status = None
        if "status" in row.cells:
            try:
                status = CIStatus(_text(row.cells["status"]).lower())
            except ValueError:
                self.error(row, "status", f"One of: {', '.join(s.value for s in CIStatus)}.")
                return
        attrs = self._attributes(row, kind)
        base = dict(existing.attributes or {}) if existing is not None else {}
        for name, value in attrs.items():
            if isinstance(value, dict) and isinstance(base.get(name), dict):
                base[name] = {**base[name], **value}
            else:
                base[name] = value
        try:
            attributes = validate_attributes(kind, base)
        except ValidationFailed as exc:
            for name, messages in (exc.errors or {}).items():
                column = ATTR_PREFIX + name.removeprefix("attributes.")
                for message in messages:
                    self.error(row, column, message)
            return
        name = _text(row.cells["name"]) if "name" in row.cells else None
        if name is not None and len(name) > 200:
            self.error(row, "name", "At most 200 characters.")
            return
        counts = self.plan.counts["cis"]
        if existing is None:
            tenant_id = tenant.id if isinstance(tenant, Tenant) else None
            self.plan.new_cis.append(
                {
                    "kind": kind,
                    "code": code,
                    "name": name or code,
                    "tenant_id": tenant_id,
                    "status": status or CIStatus.ACTIVE,
                    "attributes": attributes,
                }
            )
            self.final[key] = (kind, tenant_id)
            counts.created += 1
            return
        changes: dict[str, Any] = {}
        if name is not None and name != existing.name:
            changes["name"] = name
        if status is not None and status is not existing.status:
            changes["status"] = status
        if attributes != (existing.attributes or {}):
            changes["attributes"] = attributes
        if isinstance(tenant, Tenant) and tenant.id != existing.tenant_id:
            changes["tenant"] = tenant.code
            self.final[key] = (kind, tenant.id)
        if changes:
            self.plan.changed_cis.append((existing, changes))
            counts.updated += 1
        else:
            counts.unchanged += 1

    def _endpoint(self, row: Row, column: str) -> str | None:
        if column not in row.cells:
            self.error(row, column, "Required for a relation.")
            return None
        key = _text(row.cells[column])
        if key not in self.final:
            self.error(row, column, f"Unknown CI {key!r} (not in the file nor visible).")
            return None
        return key

    def _relation_rows(self, rows: list[Row]) -> None:
        checked: list[tuple[Row, str, str, RelationType]] = []
        seen: dict[tuple[str, str, RelationType], int] = {}
        for row in rows:
            source = self._endpoint(row, "key")
            target = self._endpoint(row, "target")
            if "relation" not in row.cells:
                self.error(row, "relation", "Required for a relation.")
                continue
            try:
                rel_type = RelationType(_text(row.cells["relation"]).lower())
            except ValueError:
                self.error(row, "relation", f"One of: {', '.join(t.value for t in RelationType)}.")
                continue
            if source is None or target is None:
                continue
            if source == target:
                self.error(row, "target", "A CI cannot be related to itself.")
                continue
            (s_kind, s_tenant), (t_kind, t_tenant) = self.final[source], self.final[target]
            try:
                check_relation_kinds(rel_type, s_kind, t_kind)
            except ValidationFailed as exc:
                for message in (exc.errors or {}).get("type", []):
                    self.error(row, "relation", message)
                continue
            if s_tenant is not None and t_tenant is not None and s_tenant != t_tenant:
                self.error(row, "target", "The two CIs belong to different tenants.")
                continue
            triple = (source, target, rel_type)
            if triple in seen:
                self.error(row, "key", f"The same relation is on line {seen[triple]}.")
                continue
            seen[triple] = row.line
            checked.append((row, source, target, rel_type))
        stored = self._stored_relations({k for _, s, t, _ in checked for k in (s, t)})
        for row, source, target, rel_type in checked:
            counts = self.plan.counts["relations"]
            if (source, target, rel_type) in stored:
                counts.unchanged += 1
                continue
            self.plan.new_relations.append((source, target, rel_type, row.line))
            counts.created += 1
        if self.plan.new_relations and not self.errors:
            self._check_cycles()

    def _stored_relations(self, keys: set[str]) -> set[tuple[str, str, RelationType]]:
        ids = {self.existing[k].id: k for k in keys if k in self.existing}
        found: set[tuple[str, str, RelationType]] = set()
        id_list = sorted(ids)
        for start in range(0, len(id_list), 2000):
            chunk = id_list[start : start + 2000]
            rows = db.session.execute(
                select(Relation.source_id, Relation.target_id, Relation.type).where(
                    Relation.source_id.in_(chunk)
                )
            )
            for s, t, ty in rows:
                if t in ids:
                    found.add((ids[s], ids[t], ty))
        return found

    def _check_cycles(self) -> None:
        """Refuse the file if its new relations close a dependency cycle (a relation is
        "source depends on target", member_of "the cluster depends on its member")."""
        graph = analysis.current_graph()
        deps = nx.DiGraph()
        for source, targets in graph.g._succ.items():  # noqa: SLF001
            for target, data in targets.items():
                if data["type"] == MEMBER_OF:
                    deps.add_edge(graph.info[target].key, graph.info[source].key)
                else:
                    deps.add_edge(graph.info[source].key, graph.info[target].key)
        lines: dict[tuple[str, str], int] = {}
        for source, target, rel_type, line in self.plan.new_relations:
            edge = (target, source) if rel_type is RelationType.MEMBER_OF else (source, target)
            deps.add_edge(*edge)
            lines.setdefault(edge, line)
        try:
            cycle = nx.find_cycle(deps)
        except nx.NetworkXNoCycle:
            return
        keys = [edge[0] for edge in cycle] + [cycle[0][0]]
        line = max(lines.get((a, b), 0) for a, b, *_ in cycle)
        self.errors.setdefault(f"line {line}", []).append(
            f"The relations close a cycle: {' → '.join(keys)}."
        )

    def _usage_rows(self, rows: list[Row]) -> None:
        seen: dict[tuple[str, str], int] = {}
        wanted: list[tuple[Row, str, Tenant, UsageConfidence | None]] = []
        for row in rows:
            key = _text(row.cells.get("key", ""))
            if key not in self.final:
                self.error(row, "key", f"Unknown CI {key!r} (not in the file nor visible).")
                continue
            kind, app_tenant = self.final[key]
            if kind is not CIKind.APPLICATION:
                self.error(row, "key", f"{key} is a {kind.value}, not an application.")
                continue
            if "tenant" not in row.cells:
                self.error(row, "tenant", "Required for a usage row.")
                continue
            tenant = self._tenant(row)
            if not isinstance(tenant, Tenant):
                continue
            if app_tenant is not None and app_tenant != tenant.id:
                self.error(row, "tenant", "This application belongs to another tenant.")
                continue
            confidence = None
            if "confidence" in row.cells:
                try:
                    confidence = UsageConfidence(_text(row.cells["confidence"]).lower())
                except ValueError:
                    self.error(
                        row,
                        "confidence",
                        f"One of: {', '.join(c.value for c in UsageConfidence)}.",
                    )
                    continue
            pair = (key, tenant.code)
            if pair in seen:
                self.error(row, "key", f"The same usage is on line {seen[pair]}.")
                continue
            seen[pair] = row.line
            wanted.append((row, key, tenant, confidence))
        app_ids = {self.existing[k].id for _, k, _, _ in wanted if k in self.existing}
        stored: dict[tuple[int, int], Usage] = {}
        id_list = sorted(app_ids)
        for start in range(0, len(id_list), 2000):
            stmt = select(Usage).where(Usage.ci_id.in_(id_list[start : start + 2000]))
            stored.update({(u.ci_id, u.tenant_id): u for u in db.session.execute(stmt).scalars()})
        counts = self.plan.counts["usage"]
        for _row, key, tenant, confidence in wanted:
            ci = self.existing.get(key)
            usage = stored.get((ci.id, tenant.id)) if ci is not None else None
            if usage is None:
                self.plan.new_usage.append((key, tenant, confidence or UsageConfidence.CERTAIN))
                counts.created += 1
            elif confidence is not None and confidence is not usage.confidence:
                self.plan.changed_usage.append((usage, confidence))
                counts.updated += 1
            else:
                counts.unchanged += 1


def _raise(errors: Mapping[str, list[str]]) -> None:
    def line_of(where: str) -> int:
        number = where.split(",")[0].removeprefix("line ")
        return int(number) if number.isdigit() else 0

    ordered = sorted(errors.items(), key=lambda item: (line_of(item[0]), item[0]))
    shown = dict(ordered[:MAX_REPORTED_ERRORS])
    more = len(ordered) - len(shown)
    if more:
        shown["file"] = [f"… and {more} more error(s)."]
    raise ValidationFailed(
        f"The import file has {len(ordered)} error(s); nothing was written.", errors=shown
    )


def import_table(
    table: TableFile,
    *,
    actor: Actor,
    dry_run: bool = False,
    only_create: bool = False,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Check then apply an import table; returns counts per record type.

    ``only_create`` leaves existing CIs and usage links as they are even where the table
    differs (the demo loader: what someone changed since stays changed).

    Raises Forbidden without ``cmdb.write`` and ValidationFailed listing every bad row
    (``"line 12, column C (tenant)": [...]``); nothing is written unless all rows pass."""
    require(actor, "cmdb.write")
    checker = _Checker(table, actor)
    plan = checker.check()
    if checker.errors:
        _raise(checker.errors)
    summary: dict[str, Any] = {
        "dry_run": dry_run,
        "rows": len(table.rows),
        **{name: counts.as_dict() for name, counts in plan.counts.items()},
    }
    if only_create:
        for name, changed in (("cis", plan.changed_cis), ("usage", plan.changed_usage)):
            summary[name]["unchanged"] += len(changed)
            summary[name]["updated"] = 0
        plan.changed_cis, plan.changed_usage = [], []
    if dry_run:
        return summary
    total = (
        len(plan.new_cis)
        + len(plan.changed_cis)
        + len(plan.new_relations)
        + len(plan.new_usage)
        + len(plan.changed_usage)
    )
    done = 0

    def step(n: int = 1) -> None:
        nonlocal done
        done += n
        if progress is not None and (done % 200 == 0 or done == total):
            progress(done, total)

    if total == 0:
        return summary
    with transaction(actor=actor):
        cis = {key: ci for key, ci in checker.existing.items()}
        for data in plan.new_cis:
            ci = CI(**data)
            db.session.add(ci)
            cis[f"{data['kind'].value}:{data['code']}"] = ci
            step()
        db.session.flush()
        for ci, changes in plan.changed_cis:
            update_ci(ci, changes, actor=actor)
            step()
        for source, target, rel_type, _line in plan.new_relations:
            src, dst = cis[source], cis[target]
            tenant_id = src.tenant_id if src.tenant_id is not None else dst.tenant_id
            db.session.add(
                Relation(source_id=src.id, target_id=dst.id, type=rel_type, tenant_id=tenant_id)
            )
            step()
        for key, tenant, confidence in plan.new_usage:
            db.session.add(Usage(ci_id=cis[key].id, tenant_id=tenant.id, confidence=confidence))
            step()
        for usage, confidence in plan.changed_usage:
            usage.confidence = confidence
            step()
        db.session.flush()
    return summary
