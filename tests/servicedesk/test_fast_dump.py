"""The fast page dumper gives exactly what marshmallow gives (every list page checks it too
under test: config.api.FastList)."""

from __future__ import annotations

from config.api import fast_dumper


def test_fast_dump_on_real_objects(app, db, admin, tenant_a, open_ticket, as_role):
    from config.routes import TenantOut
    from servicedesk.models import Ticket
    from servicedesk.schemas import TicketOut

    ticket = open_ticket(
        tenant_a,
        description="<p>x</p>",
        description_format="html",
        requester={"name": "A", "email": "a@b.fr"},
    )
    db.session.remove()
    obj = db.session.get(Ticket, ticket.id)
    assert fast_dumper(TicketOut())(obj) == TicketOut().dump(obj)
    tenant = obj.tenant
    assert fast_dumper(TenantOut())(tenant) == TenantOut().dump(tenant)
