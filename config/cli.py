"""The ``syndic`` command line (API.md §3): a Flask CLI group over :func:`create_app`.

``syndic db upgrade`` comes from Flask-Migrate; domains attach their own commands in
their ``init_app`` (``syndic impact``, ``syndic report``...).
"""

from __future__ import annotations

import contextlib
import json
import sys
from pathlib import Path
from typing import Any

import click
from flask import current_app
from flask.cli import FlaskGroup, with_appcontext
from flask_migrate.cli import db as db_group
from sqlalchemy import or_, select

from config.app import create_app
from config.auth import SYSTEM, Role, Token, User, create_token, create_user, revoke_token
from config.db import db, utcnow
from config.errors import AppError
from config.tenancy import Tenant

__all__ = ["main"]


def _fail(err: AppError) -> None:
    message = err.detail
    if err.errors:
        message += " " + "; ".join(f"{k}: {', '.join(v)}" for k, v in err.errors.items())
    raise click.ClickException(message)


@click.group(cls=FlaskGroup, create_app=lambda: create_app(), add_version_option=False)
def main() -> None:
    """syndic: service desk and CMDB for shared public-sector IT."""


# -- users ------------------------------------------------------------------------------


@main.group()
def users() -> None:
    """Manage users."""


@users.command("create")
@click.argument("username")
@click.option("--role", type=click.Choice([r.value for r in Role]), required=True)
@click.option("--tenant", "tenants", multiple=True, help="Tenant code (repeat for several).")
@click.option("--all-tenants", is_flag=True, help="Bind the user to every tenant.")
@click.option("--full-name", default="")
@click.option("--email", default=None)
@click.option("--password", is_flag=True, help="Prompt for a password (for the web pages).")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def users_create(
    username: str,
    role: str,
    tenants: tuple[str, ...],
    all_tenants: bool,
    full_name: str,
    email: str | None,
    password: bool,
    as_json: bool,
) -> None:
    """Create a user with a role, bound to tenants (--tenant, repeatable) or --all-tenants."""
    if tenants and all_tenants:
        raise click.UsageError("give --tenant or --all-tenants, not both")
    found = list(db.session.execute(select(Tenant).where(Tenant.code.in_(tenants))).scalars())
    missing = sorted(set(tenants) - {t.code for t in found})
    if missing:
        raise click.ClickException(f"unknown tenant(s): {', '.join(missing)}")
    secret = (
        click.prompt("Password", hide_input=True, confirmation_prompt=True) if password else None
    )
    try:
        user = create_user(
            username,
            role=Role(role),
            tenants=found,
            all_tenants=all_tenants,
            full_name=full_name,
            email=email,
            password=secret,
            actor=SYSTEM,
        )
    except AppError as err:
        _fail(err)
    info = {
        "id": user.id,
        "username": user.username,
        "role": user.role.value,
        "tenants": "all" if user.all_tenants else [t.code for t in user.tenants],
    }
    click.echo(json.dumps(info) if as_json else f"created user {user.username} ({user.role.value})")


@users.command("password")
@click.argument("username")
@click.option("--stdin", "from_stdin", is_flag=True, help="Read the password from standard input.")
@with_appcontext
def users_password(username: str, from_stdin: bool) -> None:
    """Set (or replace) a user's password for the web pages (stored as an argon2 hash)."""
    from config.auth import update_user

    user = db.session.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        raise click.ClickException(f"unknown user {username!r}")
    if from_stdin:
        secret = sys.stdin.readline().rstrip("\n")
    else:
        secret = click.prompt("Password", hide_input=True, confirmation_prompt=True)
    try:
        update_user(user, {"password": secret}, actor=SYSTEM)
    except AppError as err:
        _fail(err)
    click.echo(f"password of {username} set")


@users.command("list")
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def users_list(as_json: bool) -> None:
    """List users."""
    rows = [
        {
            "id": u.id,
            "username": u.username,
            "role": u.role.value,
            "active": u.active,
            "tenants": "all" if u.all_tenants else ",".join(t.code for t in u.tenants),
        }
        for u in db.session.execute(select(User).order_by(User.username)).scalars()
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    _table(rows, ["id", "username", "role", "active", "tenants"])


# -- tokens -----------------------------------------------------------------------------


@main.group()
def tokens() -> None:
    """Manage API tokens."""


@tokens.command("create")
@click.argument("username")
@click.option("--expires", "expires", type=click.IntRange(1, 3650), default=None, help="Days.")
@click.option("--name", "label", default="cli", help="A label to recognise the token.")
@with_appcontext
def tokens_create(username: str, expires: int | None, label: str) -> None:
    """Create a token for USERNAME; the token is printed alone on the last line."""
    user = db.session.execute(select(User).where(User.username == username)).scalar()
    if user is None:
        raise click.ClickException(f"unknown user {username!r}")
    token, raw = create_token(user, label, expires_days=expires, now=utcnow(), actor=SYSTEM)
    until = token.expires_at.isoformat() if token.expires_at else "never"
    click.echo(f"token {token.prefix}… for {username}, expires {until}; it is shown only once:")
    click.echo(raw)


@tokens.command("revoke")
@click.argument("token")
@with_appcontext
def tokens_revoke(token: str) -> None:
    """Revoke a token, given by id or by its prefix (as `tokens list` shows it)."""
    cond = [Token.prefix == token[:12]]
    if token.isdigit() and int(token) < 2**31:
        cond.append(Token.id == int(token))
    found = list(db.session.execute(select(Token).where(or_(*cond))).scalars())
    if len(found) != 1:
        raise click.ClickException(f"no single token matches {token!r}")
    revoke_token(found[0].id, now=utcnow(), actor=SYSTEM)
    click.echo(f"revoked token {found[0].prefix}… of {found[0].user.username}")


@tokens.command("list")
@click.option("--user", "username", default=None)
@click.option("--json", "as_json", is_flag=True)
@with_appcontext
def tokens_list(username: str | None, as_json: bool) -> None:
    """List tokens (never the tokens themselves: only their prefix)."""
    stmt = select(Token).order_by(Token.id)
    if username:
        stmt = stmt.join(User).where(User.username == username)
    now = utcnow()
    rows = [
        {
            "id": t.id,
            "prefix": t.prefix,
            "user": t.user.username,
            "name": t.name,
            "expires_at": t.expires_at.isoformat() if t.expires_at else None,
            "state": "revoked" if t.revoked_at else ("valid" if t.is_valid(now) else "expired"),
        }
        for t in db.session.execute(stmt).scalars()
    ]
    if as_json:
        click.echo(json.dumps(rows))
        return
    _table(rows, ["id", "prefix", "user", "name", "expires_at", "state"])


# -- backup and restore (added to Flask-Migrate's `db` group) ---------------------------


@click.command("backup")
@click.argument("file", type=click.Path(dir_okay=False, path_type=Path))
@with_appcontext
def db_backup(file: Path) -> None:
    """Back up the database online to FILE (SQLite backup API, or pg_dump)."""
    from config.backup import BackupError, backup

    try:
        manifest = backup(db.engine, file)
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    total = sum(manifest["counts"].values())
    click.echo(f"backed up {total} rows in {len(manifest['counts'])} tables to {file}")


@click.command("restore")
@click.argument("file", type=click.Path(dir_okay=False, exists=True, path_type=Path))
@with_appcontext
def db_restore(file: Path) -> None:
    """Restore FILE into this (empty) database, then check integrity and row counts."""
    from config.backup import BackupError, restore
    from config.extensions import head_revisions

    try:
        result = restore(db.engine, file, heads=head_revisions())
    except BackupError as exc:
        raise click.ClickException(str(exc)) from None
    total = sum(result["counts"].values())
    click.echo(f"restored {total} rows; integrity, foreign keys and migrations checked")


@click.command("analyze")
@with_appcontext
def db_analyze() -> None:
    """Refresh the query planner's statistics (after a bulk import; nightly by the scheduler)."""
    from config.db import refresh_statistics

    refresh_statistics()
    click.echo("statistics refreshed")


db_group.add_command(db_backup)
db_group.add_command(db_restore)
db_group.add_command(db_analyze)


# -- demo data --------------------------------------------------------------------------


@main.group()
def demo() -> None:
    """The bundled SIIM94 2021 demo data set."""


@demo.command("load")
@click.option("--if-empty", is_flag=True, help="Do nothing if the database holds tenants.")
@with_appcontext
def demo_load(if_empty: bool) -> None:
    """Load the SIIM94 2021 data set into the database (idempotent)."""
    from config.demo import load_demo

    if if_empty and db.session.execute(select(Tenant.id).limit(1)).first():
        click.echo("database not empty: demo data not loaded")
        return
    summary = load_demo(progress=lambda msg: click.echo(msg, err=True))
    click.echo(", ".join(f"{k}: {v}" for k, v in summary.items()))


# -- processes --------------------------------------------------------------------------


@main.command("serve")
@click.option("--bind", default="127.0.0.1:5000", show_default=True)
@click.option("--workers", type=click.IntRange(1, 64), default=2, show_default=True)
@click.option("--timeout", type=click.IntRange(5, 3600), default=60, show_default=True)
def serve(bind: str, workers: int, timeout: int) -> None:
    """Serve syndic with gunicorn (sync workers)."""
    from gunicorn.app.base import BaseApplication

    class _App(BaseApplication):
        def load_config(self) -> None:
            self.cfg.set("bind", bind)
            self.cfg.set("workers", workers)
            self.cfg.set("worker_class", "sync")
            self.cfg.set("timeout", timeout)
            self.cfg.set("accesslog", "-")
            self.cfg.set("errorlog", "-")

        def load(self) -> Any:
            return create_app()

    click.echo(f"syndic serving on http://{bind}", err=True)
    _App().run()


@main.command("scheduler")
@with_appcontext
def scheduler() -> None:
    """Run the scheduled jobs. Safe to start twice: only the lease holder acts."""
    from config.jobs import build_scheduler

    sched = build_scheduler(current_app._get_current_object())  # type: ignore[attr-defined]
    click.echo(f"scheduler {sched.syndic_holder} started", err=True)
    with contextlib.suppress(KeyboardInterrupt, SystemExit):
        sched.start()


def _table(rows: list[dict[str, Any]], cols: list[str]) -> None:
    widths = {c: max([len(c)] + [len(str(r.get(c, ""))) for r in rows]) for c in cols}
    click.echo("  ".join(c.ljust(widths[c]) for c in cols))
    for r in rows:
        click.echo("  ".join(str(r.get(c, "")).ljust(widths[c]) for c in cols))


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
