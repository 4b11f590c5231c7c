"""``syndic impact KEY...`` and ``syndic import cmdb FILE`` (API.md §3)."""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import click
from flask.cli import with_appcontext

from cmdb import analysis, imports
from cmdb.tabular import read_table
from config.auth import SYSTEM
from config.errors import AppError

__all__ = ["impact_command", "import_cmdb_command"]

PROGRESS_THRESHOLD = 1000


def _fail(err: AppError) -> None:
    lines = [err.detail]
    for where, messages in (err.errors or {}).items():
        lines.extend(f"  {where}: {m}" for m in messages)
    unknown = err.extra.get("unknown")
    if unknown:
        lines.append("  unknown: " + ", ".join(map(str, unknown)))
    raise click.ClickException("\n".join(lines))


def _table(rows: list[list[str]], header: list[str]) -> list[str]:
    widths = [max(len(str(r[i])) for r in [header, *rows]) for i in range(len(header))]
    out = ["  " + "  ".join(h.upper().ljust(w) for h, w in zip(header, widths, strict=True))]
    for r in rows:
        out.append("  " + "  ".join(str(c).ljust(w) for c, w in zip(r, widths, strict=True)))
    return out


def render_impact(doc: dict[str, Any]) -> str:
    """The impact document as a readable report."""
    lines = [f"Failed: {', '.join(doc['failed'])}", ""]
    lines.append(f"Down ({len(doc['down'])})")
    if doc["down"]:
        rows = [[d["ci"], d["kind"], ", ".join(d["because"])] for d in doc["down"]]
        lines += _table(rows, ["ci", "kind", "because"])
    else:
        lines.append("  nothing stops")
    lines += ["", f"Degraded ({len(doc['degraded'])})"]
    if doc["degraded"]:
        rows = [
            [
                d["ci"],
                f"{d['members'] - d['members_down']}/{d['members']} up",
                f"min_healthy {d['min_healthy']}",
            ]
            for d in doc["degraded"]
        ]
        lines += _table(rows, ["ci", "members", "needs"])
    else:
        lines.append("  none")
    if doc.get("overcommitted"):
        lines += ["", "Up but overcommitted (the survivors cannot carry the load)"]
        rows = [
            [o["ci"], o["resource"], f"{o['demand']:g}", f"{o['capacity']:g}"]
            for o in doc["overcommitted"]
        ]
        lines += _table(rows, ["ci", "resource", "demand", "capacity"])
    lines += ["", f"Tenants losing service ({len(doc['tenants'])})"]
    if doc["tenants"]:
        rows = [[t["code"], ", ".join(t["applications"])] for t in doc["tenants"]]
        lines += _table(rows, ["tenant", "applications lost"])
    else:
        lines.append("  none")
    if doc.get("other_tenants"):
        lines.append(f"  and {doc['other_tenants']} other tenant(s)")
    return "\n".join(lines) + "\n"


@click.command("impact")
@click.argument("keys", nargs=-1, required=True)
@click.option("--depth", type=click.IntRange(1, 100), default=None, help="Max relation hops.")
@click.option("--json", "as_json", is_flag=True, help="Print the API's JSON document.")
@with_appcontext
def impact_command(keys: tuple[str, ...], depth: int | None, as_json: bool) -> None:
    """What stops (and which tenants lose which applications) if the CIs KEYS fail at once.

    KEYS are global keys kind:code (host:hv-ivry-03, site:ivry) or CI ids.
    """
    try:
        doc = analysis.impact_of(list(keys), SYSTEM, depth=depth)
    except AppError as err:
        _fail(err)
    click.echo(json.dumps(doc, ensure_ascii=False, indent=2) if as_json else render_impact(doc))


class _Bar:
    """A click progress bar opened once the total is known to be long."""

    def __init__(self) -> None:
        self.bar: Any = None
        self.done = 0

    def __call__(self, done: int, total: int) -> None:
        if total < PROGRESS_THRESHOLD:
            return
        if self.bar is None:
            self.bar = click.progressbar(length=total, label="importing", file=sys.stderr)
            self.bar.__enter__()
        self.bar.update(done - self.done)
        self.done = done
        if done >= total:
            self.close()

    def close(self) -> None:
        if self.bar is not None:
            self.bar.__exit__(None, None, None)
            self.bar = None


@click.command("cmdb")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@click.option("--dry-run", is_flag=True, help="Check every row, write nothing.")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def import_cmdb_command(file: Path, dry_run: bool, as_json: bool) -> None:
    """Import CIs, relations and usage from FILE (.csv or .xlsx), all or nothing.

    The format is described in docs/cmdb.md; every bad row is reported with its line and
    column, and nothing is written unless every row is valid.
    """
    bar = _Bar()
    try:
        table = read_table(file.read_bytes(), file.name)
        summary = imports.import_table(table, actor=SYSTEM, dry_run=dry_run, progress=bar)
    except AppError as err:
        bar.close()
        _fail(err)
    if as_json:
        click.echo(json.dumps(summary))
        return
    verb = "would be" if dry_run else "were"
    click.echo(f"{summary['rows']} rows read from {file.name} ({table.encoding}).")
    for name in ("cis", "relations", "usage"):
        c = summary[name]
        click.echo(
            f"{name}: {c['created']} created, {c['updated']} updated, {c['unchanged']} unchanged"
        )
    if dry_run:
        click.echo(f"Dry run: nothing {verb} written.")
