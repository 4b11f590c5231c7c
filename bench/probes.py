"""Ceiling probes: the least a Flask app can do for the same answers, on this machine.

- ``/hello``: a bare Flask JSON endpoint (the ceiling of ``/healthz``);
- ``/row/<id>``: one row by primary key through Flask-SQLAlchemy and a marshmallow schema
  (the ceiling of a GET by id);
- ``/rows?limit=50``: 50 rows, counted and dumped the same way (the ceiling of a list page).
The database is a SQLite file in WAL mode, like syndic's default.
"""

from __future__ import annotations

import os

import marshmallow as ma
import sqlalchemy as sa
from flask import Flask, request
from flask_sqlalchemy import SQLAlchemy
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column


class _Base(DeclarativeBase):
    pass


db = SQLAlchemy(model_class=_Base)


class Row(db.Model):
    __tablename__ = "rows"
    id: Mapped[int] = mapped_column(primary_key=True)
    code: Mapped[str] = mapped_column(sa.String(64))
    name: Mapped[str] = mapped_column(sa.String(200))
    kind: Mapped[str] = mapped_column(sa.String(20))
    active: Mapped[bool] = mapped_column(default=True)
    created_at: Mapped[str] = mapped_column(sa.String(40))


class RowOut(ma.Schema):
    id = ma.fields.Integer()
    code = ma.fields.String()
    name = ma.fields.String()
    kind = ma.fields.String()
    active = ma.fields.Boolean()
    created_at = ma.fields.String()


def _engine_options() -> dict[str, object]:
    return {"connect_args": {"check_same_thread": False}}


def create_app() -> Flask:
    app = Flask("probe")
    app.config["SQLALCHEMY_DATABASE_URI"] = f"sqlite:///{os.environ['BENCH_PROBE_DB']}"
    app.config["SQLALCHEMY_ENGINE_OPTIONS"] = _engine_options()
    db.init_app(app)

    @sa.event.listens_for(sa.engine.Engine, "connect")
    def _pragmas(conn, _rec):  # noqa: ANN001
        cur = conn.cursor()
        cur.execute("PRAGMA journal_mode = WAL")
        cur.execute("PRAGMA foreign_keys = ON")
        cur.close()

    one, many = RowOut(), RowOut(many=True)

    @app.get("/hello")
    def hello():  # noqa: ANN202
        return {"hello": "world"}

    @app.get("/row/<int:row_id>")
    def row(row_id: int):  # noqa: ANN202
        obj = db.session.execute(sa.select(Row).where(Row.id == row_id)).scalar_one()
        return one.dump(obj)

    @app.get("/rows")
    def rows():  # noqa: ANN202
        limit = int(request.args.get("limit", 50))
        stmt = sa.select(Row).order_by(Row.code, Row.id)
        count = db.session.execute(
            sa.select(sa.func.count()).select_from(stmt.order_by(None).subquery())
        ).scalar_one()
        page = db.session.execute(stmt.limit(limit)).scalars().all()
        return {"count": count, "next": None, "previous": None, "results": many.dump(page)}

    return app


def build_probe_db(path: str, rows: int = 1000) -> None:
    os.environ["BENCH_PROBE_DB"] = path
    app = create_app()
    with app.app_context():
        db.create_all()
        db.session.execute(
            sa.insert(Row),
            [
                {
                    "code": f"code-{i:05d}",
                    "name": f"Row {i}",
                    "kind": "city",
                    "active": True,
                    "created_at": "2021-03-04T09:30:00+00:00",
                }
                for i in range(1, rows + 1)
            ],
        )
        db.session.commit()
