"""The unbound extension instances (bound to an app in config.app.create_app)."""

from __future__ import annotations

import functools
from pathlib import Path

from alembic.config import Config as AlembicConfig
from alembic.script import ScriptDirectory
from flask_migrate import Migrate

from config.api import Api
from config.db import db

__all__ = ["MIGRATIONS_DIR", "db", "head_revisions", "make_api", "migrate"]

MIGRATIONS_DIR = str(Path(__file__).with_name("migrations"))


def make_api() -> Api:
    """A flask-smorest Api per application (it holds that app's OpenAPI document)."""
    return Api()


migrate = Migrate(directory=MIGRATIONS_DIR, render_as_batch=True, compare_type=True)


@functools.cache
def head_revisions() -> frozenset[str]:
    """The head revision(s) of the shipped migrations."""
    cfg = AlembicConfig()
    cfg.set_main_option("script_location", MIGRATIONS_DIR)
    return frozenset(ScriptDirectory.from_config(cfg).get_heads())
