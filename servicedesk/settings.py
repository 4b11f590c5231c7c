"""The service desk's settings (``[servicedesk]`` of the configuration), parsed once into
typed values: the priority matrix, SLA targets, business calendars (default and per tenant),
activities with their class, poles. Pure: the caller passes the section in."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from servicedesk.priority import check_matrix
from servicedesk.sla import BusinessCalendar, SlaTargets, parse_calendar, parse_targets

__all__ = ["Activity", "ServiceDeskSettings", "parse"]

CHANNELS = ("remote", "on_site", "posted", "hotline")


@dataclass(frozen=True)
class Activity:
    code: str
    klass: str
    label: str


@dataclass(frozen=True)
class ServiceDeskSettings:
    matrix: tuple[tuple[int, ...], ...]
    targets: SlaTargets
    calendar: BusinessCalendar
    tenant_calendars: Mapping[str, BusinessCalendar]
    activities: Mapping[str, Activity]
    poles: Mapping[str, str]
    workday_minutes: int
    timezone: str

    def calendar_for(self, tenant_code: str | None) -> BusinessCalendar:
        """The tenant's own calendar when it has one, else the default."""
        if tenant_code and tenant_code in self.tenant_calendars:
            return self.tenant_calendars[tenant_code]
        return self.calendar

    def activity_classes(self) -> dict[str, str]:
        return {code: a.klass for code, a in self.activities.items()}

    def public(self) -> dict[str, Any]:
        """What ``GET /api/v1/servicedesk/settings`` shows."""

        def cal(c: BusinessCalendar) -> dict[str, Any]:
            days = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
            return {
                "timezone": str(c.tz),
                "hours": {
                    days[d]: [f"{a:%H:%M}-{b:%H:%M}" for a, b in segs]
                    for d, segs in sorted(c.hours.items())
                    if segs
                },
                "holidays": c.holidays or "none",
                "closed": sorted(d.isoformat() for d in c.closed),
                "open": sorted(d.isoformat() for d in c.open_days),
            }

        return {
            "priority_matrix": [list(r) for r in self.matrix],
            "sla": {
                "unit": "business minutes",
                "own": {str(k): v for k, v in sorted(self.targets.own.items())},
                "resolve": {str(k): v for k, v in sorted(self.targets.resolve.items())},
            },
            "calendar": cal(self.calendar),
            "tenant_calendars": {code: cal(c) for code, c in sorted(self.tenant_calendars.items())},
            "workday_minutes": self.workday_minutes,
            "activities": [
                {"code": a.code, "class": a.klass, "label": a.label}
                for a in self.activities.values()
            ],
            "poles": [{"code": k, "label": v} for k, v in self.poles.items()],
            "channels": list(CHANNELS),
        }


def parse(
    section: Mapping[str, Any], *, timezone: str, workday_minutes: int
) -> ServiceDeskSettings:
    """Parse the section; raises ValueError naming the bad key."""
    try:
        matrix = check_matrix(section.get("priority_matrix") or ())
    except (TypeError, ValueError) as exc:
        raise ValueError(f"servicedesk.priority_matrix: {exc}") from None
    calendar = parse_calendar(section.get("calendar") or {}, timezone)
    tenant_calendars = {
        code: parse_calendar(conf, timezone, base=calendar)
        for code, conf in (section.get("calendars") or {}).items()
    }
    activities = {}
    for code, conf in (section.get("activities") or {}).items():
        if not isinstance(conf, Mapping) or "class" not in conf:
            raise ValueError(f"servicedesk.activities.{code}: needs a class")
        activities[code] = Activity(code, str(conf["class"]), str(conf.get("label", code)))
    if not activities:
        raise ValueError("servicedesk.activities: at least one activity is needed")
    poles = {str(k): str(v) for k, v in (section.get("poles") or {}).items()}
    return ServiceDeskSettings(
        matrix=matrix,
        targets=parse_targets(section.get("sla")),
        calendar=calendar,
        tenant_calendars=tenant_calendars,
        activities=activities,
        poles=poles,
        workday_minutes=workday_minutes,
        timezone=timezone,
    )
