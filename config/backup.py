"""Online backup and restore of the database (``syndic db backup`` / ``syndic db restore``).

SQLite uses the online backup API (a consistent copy while writers keep writing);
PostgreSQL uses ``pg_dump``/``pg_restore`` under an exported snapshot, so that the row
counts written next to the backup (``FILE.manifest.json``) are those of the dump itself.
A restore goes into an empty database only, then checks integrity, foreign keys, the
migration head and the row counts against the manifest.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
import subprocess
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

__all__ = ["BackupError", "backup", "restore"]


class BackupError(RuntimeError):
    """A backup or restore could not be done; the message says why."""


def _manifest_path(file: Path) -> Path:
    return file.with_name(file.name + ".manifest.json")


def _tables(conn: sa.Connection) -> list[str]:
    names = sa.inspect(conn).get_table_names()
    return sorted(n for n in names if not n.startswith("sqlite_"))


def _counts(conn: sa.Connection) -> dict[str, int]:
    return {
        t: int(conn.execute(sa.text(f'SELECT count(*) FROM "{t}"')).scalar_one())  # noqa: S608
        for t in _tables(conn)
    }


def _libpq(url: sa.URL) -> str:
    return url.set(drivername="postgresql").render_as_string(hide_password=False)


def backup(engine: Engine, file: Path) -> dict[str, Any]:
    """Write a consistent backup of the database to ``file`` (and its manifest)."""
    file = Path(file)
    if file.exists():
        raise BackupError(f"{file} exists; choose a new file name")
    if engine.dialect.name == "sqlite":
        source = make_url(str(engine.url)).database
        if not source or source == ":memory:":
            raise BackupError("cannot back up an in-memory database")
        src = sqlite3.connect(source)
        dst = sqlite3.connect(file)
        try:
            src.backup(dst)  # one step: a consistent snapshot even with WAL writers
        finally:
            dst.close()
            src.close()
        check = sa.create_engine(f"sqlite:///{file}")
        with check.connect() as conn:
            counts = _counts(conn)
        check.dispose()
    elif engine.dialect.name == "postgresql":
        pg_dump = shutil.which("pg_dump")
        if not pg_dump:
            raise BackupError("pg_dump is not installed")
        snapshot_conn = engine.connect().execution_options(isolation_level="REPEATABLE READ")
        with snapshot_conn as conn, conn.begin():
            snapshot = conn.execute(sa.text("SELECT pg_export_snapshot()")).scalar_one()
            counts = _counts(conn)
            result = subprocess.run(  # noqa: S603
                [
                    pg_dump,
                    "--format=custom",
                    "--no-owner",
                    f"--snapshot={snapshot}",
                    f"--file={file}",
                    _libpq(engine.url),
                ],
                capture_output=True,
                text=True,
            )
        if result.returncode != 0:
            file.unlink(missing_ok=True)
            raise BackupError(f"pg_dump failed: {result.stderr.strip()[-500:]}")
    else:  # pragma: no cover - settings refuse other databases
        raise BackupError(f"unsupported database {engine.dialect.name}")
    manifest = {"dialect": engine.dialect.name, "counts": counts}
    _manifest_path(file).write_text(json.dumps(manifest, indent=1, sort_keys=True))
    return manifest


def restore(engine: Engine, file: Path, *, heads: frozenset[str]) -> dict[str, Any]:
    """Restore ``file`` into the (empty) database of ``engine`` and verify it."""
    file = Path(file)
    if not file.exists():
        raise BackupError(f"{file} does not exist")
    manifest_file = _manifest_path(file)
    manifest = json.loads(manifest_file.read_text()) if manifest_file.exists() else None
    with engine.connect() as conn:
        if _tables(conn):
            raise BackupError("the target database is not empty; restore into an empty one")
    if engine.dialect.name == "sqlite":
        target = make_url(str(engine.url)).database
        engine.dispose()
        src = sqlite3.connect(file)
        dst = sqlite3.connect(target)  # type: ignore[arg-type]
        try:
            src.backup(dst)
        finally:
            dst.close()
            src.close()
        with engine.connect() as conn:
            problems = conn.execute(sa.text("PRAGMA integrity_check")).scalars().all()
            if problems != ["ok"]:
                raise BackupError(f"integrity check failed: {problems[:5]}")
            fk = conn.execute(sa.text("PRAGMA foreign_key_check")).all()
            if fk:
                raise BackupError(f"foreign key check failed: {fk[:5]}")
    else:
        pg_restore = shutil.which("pg_restore")
        if not pg_restore:
            raise BackupError("pg_restore is not installed")
        result = subprocess.run(  # noqa: S603
            [
                pg_restore,
                "--no-owner",
                "--exit-on-error",
                f"--dbname={_libpq(engine.url)}",
                str(file),
            ],
            capture_output=True,
            text=True,
        )
        if result.returncode != 0:
            raise BackupError(f"pg_restore failed: {result.stderr.strip()[-500:]}")
    with engine.connect() as conn:
        versions = frozenset(
            conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalars()
        )
        counts = _counts(conn)
    if versions != heads:
        raise BackupError(
            f"the backup is at migration {sorted(versions)}, this syndic expects {sorted(heads)}: "
            "restore it with the matching syndic version, then run `syndic db upgrade`"
        )
    if manifest is not None and manifest["counts"] != counts:
        diff = {
            t: (manifest["counts"].get(t), counts.get(t))
            for t in set(counts) | set(manifest["counts"])
            if manifest["counts"].get(t) != counts.get(t)
        }
        raise BackupError(f"row counts differ from the backup's manifest: {diff}")
    return {"counts": counts, "migrations": sorted(versions)}
