"""A file source: tickets or time entries exported from another tool, as CSV or XLSX.

``[sources.NAME]`` with ``kind = "csv"`` and the options ``path`` (the file; ``syndic sync
NAME --file F`` overrides it), ``object`` (``tickets`` or ``time_entries``; guessed from the
header when absent), ``columns`` (the file's header → our column name), ``delimiter`` (CSV;
guessed between ``,`` and ``;``), ``timezone`` (of naive date-times; default the configured
one), ``default_activity``, ``complete`` (true: the file holds every object of the source,
so the ones missing from it are soft-deleted, with the mass-delete guard).

Columns (header names, case-insensitive; see docs/connectors.md):

- tickets: ``external_id``, ``tenant`` (code), ``title``, ``opened_at`` (required);
  ``type``, ``status``, ``urgency``, ``impact``, ``priority``, ``description``,
  ``solved_at``, ``closed_at``, ``deleted``;
- time entries: ``external_id``, ``user`` (username), ``date``, and one of ``minutes``,
  ``hours``, ``days`` (required); ``activity``, ``pole``, ``ticket`` (a ticket's external
  id in the same source), ``tenant``, ``channel``, ``note``, ``deleted``.

Each bad line is recorded with its line number and external id; the other lines go through.
The same (source, external id) idempotency as every source: a second run of the same file
creates, updates and deletes nothing.
"""

from __future__ import annotations

import csv
import datetime as dt
from collections.abc import Iterator
from pathlib import Path
from typing import Any

from sqlalchemy import select

from config.auth import SYSTEM
from config.db import db, utcnow
from connectors.engine import Run, RunFailed
from connectors.settings import SourceConfig
from servicedesk import services as desk
from servicedesk.models import Ticket, TimeEntry
from servicedesk.settings import ServiceDeskSettings

__all__ = ["FileSync", "read_rows"]

TICKET_COLUMNS = {
    "external_id", "tenant", "title", "opened_at", "type", "status", "urgency", "impact",
    "priority", "description", "solved_at", "closed_at", "deleted",
}  # fmt: skip
ENTRY_COLUMNS = {
    "external_id", "user", "date", "minutes", "hours", "days", "activity", "pole", "ticket",
    "tenant", "channel", "note", "deleted",
}  # fmt: skip
TRUE = {"1", "true", "yes", "oui", "y", "x"}
FALSE = {"", "0", "false", "no", "non", "n"}
PAGE = 500


class LineError(ValueError):
    """A value of a line that cannot be used (the message names the column)."""


def read_rows(path: Path, *, delimiter: str | None = None) -> Iterator[tuple[int, dict[str, Any]]]:
    """(line number, {header: value}) for every data line of a CSV or XLSX file, streamed.

    Line numbers are the file's (the header is line 1)."""
    if path.suffix.lower() in (".xlsx", ".xlsm"):
        from openpyxl import load_workbook

        book = load_workbook(path, read_only=True, data_only=True)
        try:
            sheet = book.worksheets[0]
            rows = sheet.iter_rows(values_only=True)
            header = next(rows, None)
            if header is None:
                return
            names = [str(h).strip().lower() if h is not None else "" for h in header]
            for n, values in enumerate(rows, start=2):
                if values is None or all(v in (None, "") for v in values):
                    continue
                yield n, dict(zip(names, values, strict=False))
        finally:
            book.close()
        return
    with path.open(encoding="utf-8-sig", newline="") as fh:
        sample = fh.read(4096)
        fh.seek(0)
        if delimiter is None:
            delimiter = ";" if sample.count(";") > sample.count(",") else ","
        reader = csv.reader(fh, delimiter=delimiter)
        header = next(reader, None)
        if header is None:
            return
        names = [h.strip().lower() for h in header]
        for values in reader:
            if not any(v.strip() for v in values):
                continue
            if len(values) > len(names):
                yield reader.line_num, {"__extra__": values[len(names) :]}
                continue
            yield reader.line_num, dict(zip(names, values, strict=False))


def _text(row: dict[str, Any], name: str, *, required: bool = False) -> str:
    value = row.get(name)
    text = "" if value is None else str(value).strip()
    if required and not text:
        raise LineError(f"{name}: required")
    return text


def _int(row: dict[str, Any], name: str, default: int | None = None) -> int | None:
    text = _text(row, name)
    if not text:
        return default
    try:
        number = float(text.replace(",", "."))
    except ValueError:
        raise LineError(f"{name}: not a number: {text[:40]!r}") from None
    if number != int(number):
        raise LineError(f"{name}: not a whole number: {text[:40]!r}")
    return int(number)


def _bool(row: dict[str, Any], name: str) -> bool:
    text = _text(row, name).lower()
    if text in TRUE:
        return True
    if text in FALSE:
        return False
    raise LineError(f"{name}: true or false, not {text[:20]!r}")


class FileSync:
    """One run of a file source."""

    def __init__(
        self, conf: SourceConfig, run: Run, rules: ServiceDeskSettings, *, path: str | None
    ) -> None:
        self.conf = conf
        self.run = run
        self.rules = rules
        self.source = conf.name
        raw = path or conf.options.get("path")
        if not raw:
            raise RunFailed(f"source {conf.name}: no file (option 'path' or --file)")
        self.path = Path(str(raw))
        mapping = conf.options.get("columns") or {}
        self.columns = {str(k).strip().lower(): str(v) for k, v in dict(mapping).items()}
        self.object = conf.options.get("object")

    def _rows(self) -> Iterator[tuple[int, dict[str, Any]]]:
        if not self.path.is_file():
            raise RunFailed(f"file not found: {self.path.name}")
        try:
            for line, row in read_rows(self.path, delimiter=self.conf.options.get("delimiter")):
                yield line, {self.columns.get(k, k): v for k, v in row.items()}
        except (UnicodeDecodeError, csv.Error, OSError, ValueError) as exc:
            raise RunFailed(f"{self.path.name}: unreadable ({exc})") from None

    def execute(self) -> str | None:
        rows = self._rows()
        first = next(rows, None)
        if first is None:
            raise RunFailed(f"{self.path.name}: no data line")
        kind = self.object or (
            "time_entries"
            if {"minutes", "hours", "days"} & set(first[1]) or "user" in first[1]
            else "tickets"
        )
        if kind not in ("tickets", "time_entries"):
            raise RunFailed(f"source {self.source}: object must be tickets or time_entries")
        expected = TICKET_COLUMNS if kind == "tickets" else ENTRY_COLUMNS
        unknown = sorted(set(first[1]) - expected - {"", "__extra__"})
        if unknown:
            self.run.warning("file", None, f"columns ignored: {', '.join(unknown)}", line=1)
        object_type = "ticket" if kind == "tickets" else "time_entry"
        resume_line = int((self.run.resume or {}).get("position") or 0)
        seen_lines: dict[str, int] = {}
        page: list[tuple[int, dict[str, Any]]] = []

        def flush() -> None:
            if not page:
                return
            last = page[-1][0]
            with self.run.page({"phase": "rows", "position": last}):
                ids = []
                for line, row in page:
                    ext = _text(row, "external_id")
                    if ext:
                        if ext in seen_lines:
                            self.run.error(
                                object_type,
                                ext,
                                f"external_id repeated (first on line {seen_lines[ext]})",
                                line=line,
                            )
                            self.run.count(object_type, "skipped")
                            continue
                        seen_lines[ext] = line
                        ids.append(ext)
                    self.run.apply(
                        object_type,
                        ext or None,
                        lambda row=row, ext=ext: self._apply(kind, row, ext),
                        line=line,
                    )
                self.run.seen(object_type, ids)
            self.run.tick(object_type, len(page))
            page.clear()

        for line, row in _chain(first, rows):
            if line <= resume_line:
                ext = _text(row, "external_id")
                if ext:
                    seen_lines.setdefault(ext, line)
                continue
            page.append((line, row))
            if len(page) >= PAGE:
                flush()
        flush()
        if self.conf.options.get("complete"):
            self._sweep(kind)
        return None

    # -- lines ---------------------------------------------------------------------------

    def _when(
        self, row: dict[str, Any], name: str, *, required: bool = False
    ) -> dt.datetime | None:
        value = row.get(name)
        if isinstance(value, dt.datetime):
            moment = value
        else:
            text = _text(row, name, required=required)
            if not text:
                return None
            try:
                moment = dt.datetime.fromisoformat(text.replace("Z", "+00:00"))
            except ValueError:
                raise LineError(f"{name}: not a date-time: {text[:40]!r}") from None
        if moment.tzinfo is None:
            moment = moment.replace(tzinfo=self.conf.timezone)
        return moment.astimezone(dt.UTC)

    def _day(self, row: dict[str, Any], name: str) -> dt.date:
        value = row.get(name)
        if isinstance(value, dt.datetime):
            return value.date()
        if isinstance(value, dt.date):
            return value
        text = _text(row, name, required=True)
        for fmt in ("%Y-%m-%d", "%d/%m/%Y"):
            try:
                return dt.datetime.strptime(text, fmt).date()
            except ValueError:
                continue
        raise LineError(f"{name}: not a date (YYYY-MM-DD or DD/MM/YYYY): {text[:40]!r}")

    def _apply(self, kind: str, row: dict[str, Any], ext: str) -> str:
        if "__extra__" in row:
            raise LineError("more values than columns")
        if not ext:
            raise LineError("external_id: required")
        if len(ext) > 64:
            raise LineError("external_id: at most 64 characters")
        if kind == "tickets":
            return self._ticket(row, ext)
        return self._entry(row, ext)

    def _ticket(self, row: dict[str, Any], ext: str) -> str:
        data = {
            "tenant": _text(row, "tenant", required=True),
            "title": _text(row, "title", required=True)[:250],
            "type": _text(row, "type") or "incident",
            "status": _text(row, "status") or "new",
            "urgency": _int(row, "urgency", 3),
            "impact": _int(row, "impact", 3),
            "priority": _int(row, "priority"),
            "description": desk.sanitize_html(_text(row, "description")),
            "description_format": "html",
            "opened_at": self._when(row, "opened_at", required=True),
            "solved_at": self._when(row, "solved_at"),
            "closed_at": self._when(row, "closed_at"),
            "deleted": _bool(row, "deleted"),
        }
        for name in ("urgency", "impact", "priority"):
            value = data[name]
            if value is not None and not 1 <= value <= 5:
                raise LineError(f"{name}: between 1 and 5")
        try:
            result, _t = desk.upsert_external_ticket(
                data,
                source=self.source,
                external_id=ext,
                actor=SYSTEM,
                now=utcnow(),
                rules=self.rules,
            )
        except ValueError as exc:  # an unknown status or type (enum)
            raise LineError(str(exc)) from None
        return result

    def _entry(self, row: dict[str, Any], ext: str) -> str:
        minutes = _int(row, "minutes")
        if minutes is None:
            for name, factor in (("hours", 60.0), ("days", float(self.rules.workday_minutes))):
                text = _text(row, name)
                if text:
                    try:
                        minutes = round(float(text.replace(",", ".")) * factor)
                    except ValueError:
                        raise LineError(f"{name}: not a number: {text[:40]!r}") from None
                    break
        if minutes is None:
            raise LineError("minutes, hours or days: one is required")
        if minutes <= 0:
            raise LineError(f"duration must be positive, not {minutes} minutes")
        result, _e = desk.upsert_external_time_entry(
            {
                "user": _text(row, "user", required=True),
                "tenant": _text(row, "tenant") or None,
                "date": self._day(row, "date"),
                "minutes": minutes,
                "activity": _text(row, "activity") or self.conf.default_activity,
                "pole": _text(row, "pole") or self.conf.pole,
                "ticket_external_id": _text(row, "ticket") or None,
                "channel": _text(row, "channel") or None,
                "note": _text(row, "note"),
                "deleted": _bool(row, "deleted"),
            },
            source=self.source,
            external_id=ext,
            actor=SYSTEM,
            now=utcnow(),
            rules=self.rules,
        )
        return result

    def _sweep(self, kind: str) -> None:
        if self.run.partial:
            return
        model: Any = Ticket if kind == "tickets" else TimeEntry
        object_type = "ticket" if kind == "tickets" else "time_entry"
        live = [
            e
            for (e,) in db.session.execute(
                select(model.external_id).where(
                    model.source == self.source, model.deleted_at.is_(None)
                )
            ).all()
        ]
        seen = set(db.session.execute(self.run.seen_select(object_type)).scalars())
        vanished = [e for e in live if e not in seen]
        self.run.guard_mass_delete(object_type, len(vanished), len(live))
        if not vanished:
            return
        with self.run.page({"phase": "sweep"}):
            if kind == "tickets":
                n = desk.soft_delete_external_tickets(
                    self.source, vanished, actor=SYSTEM, now=utcnow()
                )
            else:
                n = desk.soft_delete_external_time_entries(
                    self.source, vanished, actor=SYSTEM, now=utcnow()
                )
            self.run.count(object_type, "deleted", n)


def _chain(
    first: tuple[int, dict[str, Any]], rest: Iterator[tuple[int, dict[str, Any]]]
) -> Iterator[tuple[int, dict[str, Any]]]:
    yield first
    yield from rest
