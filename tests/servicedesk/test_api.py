"""The service desk's resources through the shared API contract."""

from __future__ import annotations

import datetime as dt
from typing import Any

import pytest

from config.auth import SYSTEM
from config.db import utcnow
from servicedesk import services
from servicedesk.models import Category, Project, Ticket, TimeEntry, TrainingSession
from tests.api_mixins import ResourceAPITests


class TestTicketsAPI(ResourceAPITests):
    url = "/api/v1/tickets"
    model = Ticket
    object_type = "ticket"
    write_role = "technician"
    denied_role = "manager"
    delete = False  # admins only: tests/servicedesk/test_tickets.py
    ordering_fields = ["opened_at", "priority", "status", "updated_at", "due_to_resolve_at"]
    filter_cases = [
        ({"status": "new"}, 2),
        ({"status": ["new", "assigned"]}, 2),
        ({"priority__lte": 2}, 0),
        ({"priority": 3}, 2),
        ({"tenant": "tenant-a"}, 2),
        ({"tenant": "tenant-b"}, 0),
        ({"q": "numéro"}, 2),
        ({"title__ic": "PANNE"}, 2),
        ({"sla_breached": "true"}, 0),
        ({"opened_at__gte": "2000-01-01T00:00:00Z"}, 2),
    ]

    @pytest.fixture(autouse=True)
    def _builders(self, open_ticket):
        self._open = open_ticket

    def make(self, tenant: Any, **kw: Any) -> Ticket:
        return self._open(tenant, **kw)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {
            "tenant": tenant.code,
            "type": "incident",
            "title": "Imprimante en panne",
            "urgency": 2,
            "impact": 3,
            "requester": {"name": "Agent", "email": "a@ville.fr"},
        }

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"title": obj.title + " (précisé)", "urgency": 1}


class TestTimeEntriesAPI(ResourceAPITests):
    url = "/api/v1/time-entries"
    model = TimeEntry
    object_type = "time_entry"
    write_role = "technician"
    denied_role = None  # every role logs time
    ordering_fields = ["date", "minutes", "created_at"]
    filter_cases = [
        ({"activity": "mco"}, 2),
        ({"activity": "project"}, 0),
        ({"tenant": "tenant-a"}, 2),
        ({"user": "me"}, 2),
        ({"date__gte": "2000-01-01"}, 2),
        ({"date__lte": "2000-01-01"}, 0),
    ]

    @pytest.fixture(autouse=True)
    def _builders(self, log_time, worker):
        self._log, self._worker = log_time, worker

    def make(self, tenant: Any, **kw: Any) -> TimeEntry:
        user = self.writer.user if tenant.code == "tenant-a" else self._worker
        return self._log(user, tenant, **kw)

    def make_for_filters(self) -> None:
        self._log(self.reader.user, self.a)
        self._log(self.reader.user, self.a, minutes=30)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {
            "tenant": tenant.code,
            "date": "2021-03-04",
            "minutes": 90,
            "activity": "mco",
            "pole": "support-utilisateurs",
            "channel": "remote",
            "note": "Réinstallation",
        }

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"minutes": obj.minutes + 30}


class TestProjectsAPI(ResourceAPITests):
    url = "/api/v1/projects"
    model = Project
    object_type = "project"
    write_role = "manager"
    denied_role = "technician"
    by_code = "code"
    ordering_fields = ["code", "name", "planned_end", "status"]
    filter_cases = [({"status": "active"}, 2), ({"health": "red"}, 0), ({"tenant": "tenant-a"}, 2)]
    _n = 0

    def make(self, tenant: Any, **kw: Any) -> Project:
        type(self)._n += 1
        data = {
            "code": f"projet-{self._n}",
            "name": f"Projet {self._n}",
            "status": "active",
            "tenants": [tenant.code],
            **kw,
        }
        return services.create_project(data, actor=SYSTEM, now=utcnow())

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        type(self)._n += 1
        return {
            "code": f"nouveau-{self._n}",
            "name": "SI Finances",
            "domain": "Finances",
            "tenants": [tenant.code],
            "budget_eur": 120000.5,
            "status": "proposed",
            "planned_start": "2021-01-04",
            "planned_end": "2021-12-17",
            "milestones": [{"name": "Recette", "due": "2021-10-01"}],
        }

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"health": "amber", "progress_pct": 40, "forecast_end": "2022-02-28"}


class TestCategoriesAPI(ResourceAPITests):
    url = "/api/v1/categories"
    model = Category
    object_type = "category"
    write_role = "admin"
    denied_role = "technician"
    tenant_scoped = False
    ordering_fields = ["path", "name"]
    filter_cases = [({"active": "true"}, 2), ({"name__ic": "LOGICIEL"}, 2)]
    _n = 0

    def make(self, tenant: Any, **kw: Any) -> Category:
        type(self)._n += 1
        return services.create_category({"name": f"Logiciel {self._n}", **kw}, actor=SYSTEM)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {"name": "Applications métier"}

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"name": obj.name + " (renommé)"}


class TestTrainingAPI(ResourceAPITests):
    url = "/api/v1/training-sessions"
    model = TrainingSession
    object_type = "training_session"
    write_role = "technician"
    denied_role = None
    ordering_fields = ["date", "trainees", "days"]
    filter_cases = [
        ({"type": "office_tools"}, 2),
        ({"type": "redeployment"}, 0),
        ({"date__gte": "2021-01-01"}, 2),
    ]

    def make(self, tenant: Any, **kw: Any) -> TrainingSession:
        data = {
            "tenant": tenant.code,
            "date": dt.date(2021, 3, 4),
            "type": "office_tools",
            "trainees": 8,
            "days": 1.5,
            "title": "Tableur",
            **kw,
        }
        return services.create_training(data, actor=SYSTEM)

    def create_payload(self, tenant: Any) -> dict[str, Any]:
        return {
            "tenant": tenant.code,
            "date": "2021-05-20",
            "type": "business_software",
            "trainees": 6,
            "days": 0.5,
            "title": "Concerto Opus",
            "trainer": "Formateur",
        }

    def update_payload(self, obj: Any) -> dict[str, Any]:
        return {"trainees": obj.trainees + 1}
