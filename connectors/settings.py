"""The connectors' settings: the ``[connectors]`` section, overridden per source by the
options of ``[sources.NAME]`` (or ``SYNDIC_GLPI_*``)."""

from __future__ import annotations

import fnmatch
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

from config.settings import Settings, SettingsError, SourceSettings

__all__ = ["ConnectorSettings", "SourceConfig", "activity_for"]

_DEFAULTS: dict[str, Any] = {
    "interval_minutes": 15,
    "full_sweep_at": "02:30",
    "queue_poll_seconds": 15,
    "run_lease_seconds": 120,
    "page_size": 500,
    "overlap_minutes": 10,
    "mass_delete_share": 0.2,
    "connect_timeout": 5.0,
    "read_timeout": 60.0,
    "retries": 4,
    "backoff": 0.5,
    "entity_kind": "public_body",
    "item_kinds": {},
}


@dataclass(frozen=True)
class ConnectorSettings:
    """The ``[connectors]`` section, checked."""

    interval_minutes: int = 15
    full_sweep_hour: int = 2
    full_sweep_minute: int = 30
    queue_poll_seconds: int = 15
    run_lease_seconds: int = 120

    @classmethod
    def of(cls, settings: Settings) -> ConnectorSettings:
        section = {**_DEFAULTS, **dict(settings.section("connectors"))}
        try:
            hour, minute = (int(x) for x in str(section["full_sweep_at"]).split(":"))
            if not (0 <= hour < 24 and 0 <= minute < 60):
                raise ValueError
        except ValueError:
            raise SettingsError("connectors.full_sweep_at: HH:MM") from None
        interval = _int(section, "interval_minutes", 1, 24 * 60)
        return cls(
            interval_minutes=interval,
            full_sweep_hour=hour,
            full_sweep_minute=minute,
            queue_poll_seconds=_int(section, "queue_poll_seconds", 1, 3600),
            run_lease_seconds=_int(section, "run_lease_seconds", 1, 24 * 3600),
        )


def _int(section: Mapping[str, Any], name: str, low: int, high: int) -> int:
    value = section.get(name)
    if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
        raise SettingsError(f"connectors.{name}: an integer between {low} and {high}")
    return value


def _float(section: Mapping[str, Any], name: str, low: float, high: float) -> float:
    value = section.get(name)
    if isinstance(value, bool) or not isinstance(value, int | float) or not low <= value <= high:
        raise SettingsError(f"connectors.{name}: a number between {low} and {high}")
    return float(value)


@dataclass(frozen=True)
class SourceConfig:
    """Everything a run of one source needs (secrets kept out of repr)."""

    name: str
    kind: str
    url: str | None
    timezone: zoneinfo.ZoneInfo
    local_timezone: zoneinfo.ZoneInfo
    page_size: int
    overlap: timedelta
    mass_delete_share: float
    connect_timeout: float
    read_timeout: float
    retries: int
    backoff: float
    run_lease_seconds: int
    entity_kind: str
    activity_map: Mapping[str, str]
    default_activity: str
    pole: str | None
    item_kinds: Mapping[str, str]
    options: Mapping[str, Any]
    secrets: Mapping[str, str] = field(repr=False, default_factory=dict)

    @classmethod
    def of(cls, settings: Settings, source: SourceSettings) -> SourceConfig:
        section = {**_DEFAULTS, **dict(settings.section("connectors"))}
        options = dict(source.options)
        merged = {**section, **{k: v for k, v in options.items() if k in _DEFAULTS}}
        item_kinds = {
            **dict(section.get("item_kinds") or {}),
            **dict(options.get("item_kinds") or {}),
        }
        amap = options.get("activity_map") or {}
        if not isinstance(amap, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in amap.items()
        ):
            raise SettingsError(f"sources.{source.name}.activity_map: a table of strings")
        tz_name = str(options.get("timezone") or settings.timezone)
        try:
            tz = zoneinfo.ZoneInfo(tz_name)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"sources.{source.name}.timezone: unknown {tz_name!r}") from None
        return cls(
            name=source.name,
            kind=source.kind,
            url=source.url,
            timezone=tz,
            local_timezone=settings.tz,
            page_size=_int(merged, "page_size", 1, 5000),
            overlap=timedelta(minutes=_int(merged, "overlap_minutes", 0, 24 * 60)),
            mass_delete_share=_float(merged, "mass_delete_share", 0.0, 1.0),
            connect_timeout=_float(merged, "connect_timeout", 0.01, 600),
            read_timeout=_float(merged, "read_timeout", 0.01, 3600),
            retries=_int(merged, "retries", 0, 20),
            backoff=_float(merged, "backoff", 0.0, 60),
            run_lease_seconds=_int(merged, "run_lease_seconds", 1, 24 * 3600),
            entity_kind=str(merged.get("entity_kind") or "public_body"),
            activity_map=dict(amap),
            default_activity=str(options.get("default_activity") or "mco"),
            pole=options.get("pole"),
            item_kinds={str(k): str(v) for k, v in item_kinds.items()},
            options=options,
            secrets=dict(source.secrets),
        )


def activity_for(category: str | None, mapping: Mapping[str, str], default: str) -> str:
    """The activity of a task category's complete name: an exact key first, then the first
    glob pattern that matches (in the mapping's order); else ``default``."""
    if not category:
        return default
    if category in mapping:
        return mapping[category]
    for pattern, activity in mapping.items():
        if fnmatch.fnmatchcase(category, pattern):
            return activity
    return default
