"""``syndic report NAME [--month|--from/--to ...] [--format ...] [-o FILE]`` (API.md §3)."""

from __future__ import annotations

import sys
from pathlib import Path

import click
from flask.cli import with_appcontext

from config.auth import SYSTEM
from config.errors import AppError
from reporting.render import FORMATS, SEPARATORS, render
from reporting.services import REPORTS, build_report

__all__ = ["report_command"]

_EXT = {
    ".json": "json",
    ".csv": "csv",
    ".xlsx": "xlsx",
    ".html": "html",
    ".htm": "html",
    ".pdf": "pdf",
}


def _fail(err: AppError) -> None:
    lines = [err.detail]
    for where, messages in (err.errors or {}).items():
        lines.extend(f"  {where}: {m}" for m in messages)
    allowed = err.extra.get("allowed")
    if allowed:
        lines.append("  allowed: " + ", ".join(map(str, allowed)))
    raise click.ClickException("\n".join(lines))


@click.command("report")
@click.argument("name", type=click.Choice(REPORTS))
@click.option("--month", help="pmo: the month (YYYY-MM); default: the previous month.")
@click.option("--year", help="A calendar year (workload, tickets, chargeback, ...).")
@click.option("--from", "from_", help="First day (YYYY-MM-DD), month or year.")
@click.option("--to", help="Last day (YYYY-MM-DD), month or year.")
@click.option("--group-by", help="Comma-separated dimensions (workload, tickets, satisfaction).")
@click.option("--tenant", multiple=True, help="A tenant code (repeat for several).")
@click.option("--pole", multiple=True, help="A pole code (repeat for several).")
@click.option("--exclude", help="workload: activities or classes to leave out (comma-separated).")
@click.option("--compare-to", type=click.Choice(["previous_year"]), help="workload comparison.")
@click.option("--key", help="chargeback: proportional, equal or contribution.")
@click.option("--activity", multiple=True, help="time-entries: an activity code (repeatable).")
@click.option("--format", "fmt", type=click.Choice(FORMATS), help="Default: from -o, else json.")
@click.option("--sep", type=click.Choice(SEPARATORS), default="comma", show_default=True)
@click.option("--table", help="CSV: which table of the report (default: the first).")
@click.option("-o", "--output", type=click.Path(dir_okay=False, path_type=Path), help="File.")
@with_appcontext
def report_command(
    name: str,
    month: str | None,
    year: str | None,
    from_: str | None,
    to: str | None,
    group_by: str | None,
    tenant: tuple[str, ...],
    pole: tuple[str, ...],
    exclude: str | None,
    compare_to: str | None,
    key: str | None,
    activity: tuple[str, ...],
    fmt: str | None,
    sep: str,
    table: str | None,
    output: Path | None,
) -> None:
    """Build a report and write it to FILE (-o) or standard output.

    Runs with every tenant in view (the command line is an operator's tool).
    """
    params = {
        "month": month,
        "year": year,
        "from": from_,
        "to": to,
        "group_by": group_by,
        "tenant": ",".join(tenant),
        "pole": ",".join(pole),
        "exclude": exclude,
        "compare_to": compare_to,
        "key": key,
        "activity": ",".join(activity),
    }
    clean = {k: v for k, v in params.items() if v}
    if fmt is None:
        fmt = _EXT.get(output.suffix.lower(), "json") if output else "json"
    try:
        report = build_report(name, clean, SYSTEM)
        body, _mimetype, filename = render(report, fmt, sep=sep, table=table)
    except AppError as err:
        _fail(err)
        return
    if output is None:
        sys.stdout.buffer.write(body)
        if fmt in ("json", "csv", "html"):
            sys.stdout.buffer.write(b"\n")
        return
    output.write_bytes(body)
    click.echo(f"{output} ({len(body)} bytes, {filename})", err=True)
