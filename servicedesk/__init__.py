"""The service desk: tickets, business-hours SLAs, comments, time entries, projects, training."""


def init_app(app, api):  # noqa: ANN001, ANN201 - called by config.app
    """Register the service desk's blueprints, commands and jobs (local imports: STYLE §3.5)."""
    from servicedesk import api as routes
    from servicedesk import (
        jobs,  # noqa: F401  (registers the scheduled jobs)
        models,  # noqa: F401
    )
    from servicedesk.permissions import register

    register()
    for blp in routes.blueprints:
        api.register_blueprint(blp)
