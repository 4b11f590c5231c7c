"""Reporting: workload shares, ticket KPIs, the monthly PMO report, chargeback per member,
training and satisfaction, in JSON, CSV, XLSX, HTML and PDF."""


def init_app(app, api):  # noqa: ANN001, ANN201 - called by config.app
    """Register the reporting permission (local imports: STYLE §3.5)."""
    from reporting.permissions import register

    register()
    from reporting.pages import init_pages

    init_pages(app)
