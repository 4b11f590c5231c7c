"""``syndic sync SOURCE [--full]``: one run now, in this process, with its progress."""

from __future__ import annotations

import sys
from typing import Any

import click
from flask.cli import with_appcontext


def _progress() -> Any:
    counts: dict[str, int] = {}
    tty = sys.stderr.isatty()

    def report(what: str, n: int) -> None:
        counts[what] = counts.get(what, 0) + n
        line = "  ".join(f"{k}: {v}" for k, v in counts.items())
        if tty:
            click.echo(f"\r{line}", nl=False, err=True)
        else:
            click.echo(line, err=True)

    return report


@click.command("sync")
@click.argument("source")
@click.option("--full", is_flag=True, help="List everything and apply deletions (nightly sweep).")
@click.option(
    "--allow-mass-delete", is_flag=True, help="Accept that more than 20 %% of objects vanish."
)
@click.option("--file", "file", type=click.Path(dir_okay=False), help="File sources: the file.")
@click.option("--quiet", is_flag=True, help="No progress, only the summary.")
@with_appcontext
def sync_command(
    source: str, full: bool, allow_mass_delete: bool, file: str | None, quiet: bool
) -> None:
    """Run one sync of SOURCE now; prints the run summary (exit 1 if the run failed)."""
    from config.errors import NotFound
    from connectors.engine import SourceBusy
    from connectors.runner import run_source

    try:
        run = run_source(
            source,
            full=full,
            trigger="cli",
            allow_mass_delete=allow_mass_delete,
            progress=None if quiet else _progress(),
            file=file,
        )
    except NotFound as exc:
        raise click.ClickException(exc.detail) from None
    except SourceBusy as exc:
        raise click.ClickException(str(exc)) from None
    if not quiet and sys.stderr.isatty():
        click.echo("", err=True)
    click.echo(
        f"run {run.id} {run.source} {run.mode}: {run.status} "
        f"in {(run.duration_ms or 0) / 1000:.1f} s"
        f" — created {run.created}, updated {run.updated}, deleted {run.deleted}, "
        f"unchanged {run.unchanged}, skipped {run.skipped}, errors {run.error_count}, "
        f"warnings {run.warning_count}"
    )
    if run.detail:
        click.echo(run.detail)
    if run.status != "succeeded":
        sys.exit(1)
