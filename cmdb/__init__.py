"""The CMDB domain: configuration items, relations, usage, impact analysis."""

from __future__ import annotations

from typing import Any


def init_app(app: Any, api: Any) -> None:
    """Register the CMDB models, blueprints, CLI commands and jobs."""
    from cmdb import models  # noqa: F401  (mapped classes, graph version hook)
    from cmdb.api import cis_blp, relations_blp

    for blp in (cis_blp, relations_blp):
        api.register_blueprint(blp)
