"""Typed settings: parsed once from ``SYNDIC_*`` environment variables and an optional TOML file.

Precedence, lowest first: ``config/defaults.toml`` (shipped), the TOML file named by
``SYNDIC_CONFIG``, then the environment. Everything else in syndic reads the resulting
:class:`Settings` through :func:`current_settings`; nothing else reads ``os.environ``.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import tomllib
import zoneinfo
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from importlib import resources
from pathlib import Path
from typing import Any

from flask import current_app

__all__ = ["Settings", "SettingsError", "current_settings", "SourceSettings"]

log = logging.getLogger(__name__)

ONE_MIB = 1024 * 1024

# Environment variables that are not settings of the running service but are still ours.
_NON_SETTING_VARS = {"SYNDIC_CONFIG", "SYNDIC_TEST_POSTGRES_URL"}


class SettingsError(ValueError):
    """A setting is missing, malformed or unknown. The message names it."""


@dataclass(frozen=True)
class SourceSettings:
    """One external source (``[sources.NAME]`` in the TOML file, or ``SYNDIC_GLPI_*``)."""

    name: str
    kind: str
    url: str | None = None
    options: Mapping[str, Any] = field(default_factory=dict)
    # Secrets are kept out of repr() so that they never reach a log line by accident.
    secrets: Mapping[str, str] = field(default_factory=dict, repr=False)

    def public(self) -> dict[str, Any]:
        """What the API may show: everything but the secrets (whose names only are listed)."""
        return {
            "name": self.name,
            "kind": self.kind,
            "url": self.url,
            "options": dict(self.options),
            "secrets": sorted(k for k, v in self.secrets.items() if v),
        }


@dataclass(frozen=True)
class Settings:
    """The whole configuration of one syndic process."""

    database_url: str | None = None
    secret_key: str | None = field(default=None, repr=False)
    instance_path: str | None = None
    timezone: str = "Europe/Paris"
    workday_hours: float = 7.0
    calendar: str = "fr"
    log_level: str = "INFO"
    max_body_bytes: int = ONE_MIB
    lease_ttl_seconds: int = 60
    token_max_days: int = 3650
    # Session cookies only over HTTPS (browsers also send them to http://localhost).
    cookie_secure: bool = True
    sources: Mapping[str, SourceSettings] = field(default_factory=dict)
    # Domain sections (``[servicedesk]``, ``[cmdb]``, ``[reporting]``, ...), defaults merged in.
    sections: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)

    # -- construction -----------------------------------------------------------------

    @classmethod
    def from_env(
        cls,
        environ: Mapping[str, str] | None = None,
        *,
        prefix: str = "SYNDIC_",
        file: str | os.PathLike[str] | None = None,
    ) -> Settings:
        """Build settings from the defaults, an optional TOML file and the environment.

        ``file`` defaults to ``environ["SYNDIC_CONFIG"]``. Raises :class:`SettingsError`
        with the offending name on any malformed value.
        """
        env = dict(os.environ if environ is None else environ)
        data: dict[str, Any] = _load_defaults()
        file = file if file is not None else env.get(f"{prefix}CONFIG")
        if file:
            path = Path(file)
            try:
                with path.open("rb") as fh:
                    _deep_merge(data, tomllib.load(fh))
            except FileNotFoundError:
                raise SettingsError(f"{prefix}CONFIG: file not found: {path}") from None
            except tomllib.TOMLDecodeError as exc:
                raise SettingsError(f"{prefix}CONFIG: {path} is not valid TOML: {exc}") from None
        return cls.from_mapping(data, env, prefix=prefix)

    @classmethod
    def from_mapping(
        cls,
        data: Mapping[str, Any],
        env: Mapping[str, str] | None = None,
        *,
        prefix: str = "SYNDIC_",
    ) -> Settings:
        """Build settings from an already merged mapping plus environment overrides."""
        data = dict(data)
        env = dict(env or {})
        scalars = {f.name: f for f in cls.__dataclass_fields__.values()}
        scalars.pop("sources")
        scalars.pop("sections")
        values: dict[str, Any] = {}
        sections: dict[str, dict[str, Any]] = {}
        raw_sources: dict[str, Any] = {}
        for key, value in data.items():
            if key == "sources":
                if not isinstance(value, dict):
                    raise SettingsError("sources: must be a table of [sources.NAME] tables")
                raw_sources = dict(value)
            elif isinstance(value, dict):
                sections[key] = value
            elif key in scalars:
                values[key] = value
            else:
                raise SettingsError(f"unknown setting {key!r} in the configuration file")
        for name in scalars:
            env_name = f"{prefix}{name.upper()}"
            if env_name in env:
                values[name] = env[env_name]
        known_env = {f"{prefix}{n.upper()}" for n in scalars} | _NON_SETTING_VARS
        known_env |= {
            f"{prefix}GLPI_{s}" for s in ("URL", "USER_TOKEN", "APP_TOKEN", "ACTIVITY_MAP")
        }
        for name in sorted(env):
            if name.startswith(prefix) and name not in known_env:
                log.warning("ignoring unknown environment variable %s", name)
        typed = {name: _coerce(name, scalars[name].type, v) for name, v in values.items()}
        sources = _parse_sources(raw_sources, env, prefix)
        settings = cls(**typed, sources=sources, sections=sections)
        settings.validate()
        return settings

    def validate(self) -> None:
        """Check cross-field rules; raises :class:`SettingsError`."""
        try:
            zoneinfo.ZoneInfo(self.timezone)
        except (zoneinfo.ZoneInfoNotFoundError, ValueError):
            raise SettingsError(f"timezone: unknown time zone {self.timezone!r}") from None
        if not 1 <= self.workday_hours <= 24:
            raise SettingsError("workday_hours: must be between 1 and 24")
        if self.max_body_bytes < 1024:
            raise SettingsError("max_body_bytes: must be at least 1024")
        if self.lease_ttl_seconds < 5:
            raise SettingsError("lease_ttl_seconds: must be at least 5")
        if self.log_level.upper() not in {"DEBUG", "INFO", "WARNING", "ERROR"}:
            raise SettingsError("log_level: one of DEBUG, INFO, WARNING, ERROR")
        if self.database_url and not self.database_url.startswith(("sqlite", "postgresql")):
            raise SettingsError(
                "database_url: only sqlite:// and postgresql+psycopg:// are supported"
            )

    def replace(self, **changes: Any) -> Settings:
        """A copy with some fields changed (used by tests and the CLI)."""
        return replace(self, **changes)

    # -- derived values ---------------------------------------------------------------

    @property
    def tz(self) -> zoneinfo.ZoneInfo:
        return zoneinfo.ZoneInfo(self.timezone)

    @property
    def workday_minutes(self) -> int:
        return round(self.workday_hours * 60)

    def section(self, name: str) -> Mapping[str, Any]:
        """A domain's section (``[servicedesk]`` ...), or an empty mapping."""
        return self.sections.get(name, {})

    def resolved_database_url(self, instance_path: str) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://"):
                # psycopg 3 is the driver we ship; plain postgresql:// would ask for psycopg2.
                url = "postgresql+psycopg://" + url.removeprefix("postgresql://")
            return url
        return f"sqlite:///{Path(instance_path) / 'syndic.db'}"

    def resolved_secret_key(self, instance_path: str) -> str:
        """The configured key, or one generated once and kept in the instance folder."""
        if self.secret_key:
            return self.secret_key
        path = Path(instance_path) / "secret_key"
        if path.exists():
            return path.read_text().strip()
        path.parent.mkdir(parents=True, exist_ok=True)
        key = secrets.token_urlsafe(48)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(fd, "w") as fh:
            fh.write(key)
        return key

    def flask_config(self, instance_path: str) -> dict[str, Any]:
        """The Flask / Flask-SQLAlchemy / flask-smorest keys derived from these settings."""
        url = self.resolved_database_url(instance_path)
        from config.jsonio import dumps_column

        engine_options: dict[str, Any] = {
            "pool_pre_ping": url.startswith("postgresql"),
            "json_serializer": dumps_column,
        }
        if url.startswith("sqlite"):
            engine_options["connect_args"] = {"timeout": 30, "check_same_thread": False}
        return {
            "SQLALCHEMY_DATABASE_URI": url,
            "SQLALCHEMY_ENGINE_OPTIONS": engine_options,
            "SECRET_KEY": self.resolved_secret_key(instance_path),
            "MAX_CONTENT_LENGTH": self.max_body_bytes,
            "MAX_FORM_MEMORY_SIZE": self.max_body_bytes,
            "SESSION_COOKIE_SECURE": self.cookie_secure,
            "JSON_SORT_KEYS": False,
        }


def current_settings() -> Settings:
    """The settings of the current Flask app."""
    settings: Settings = current_app.extensions["syndic.settings"]
    return settings


# -- helpers ------------------------------------------------------------------------------


def _load_defaults() -> dict[str, Any]:
    text = resources.files("config").joinpath("defaults.toml").read_text(encoding="utf-8")
    return tomllib.loads(text)


def _deep_merge(into: dict[str, Any], other: Mapping[str, Any]) -> None:
    for key, value in other.items():
        if isinstance(value, Mapping) and isinstance(into.get(key), dict):
            _deep_merge(into[key], value)
        else:
            into[key] = value


def _coerce(name: str, annotation: Any, value: Any) -> Any:
    kind = str(annotation)
    try:
        if kind.startswith("bool"):
            if isinstance(value, bool):
                return value
            lowered = str(value).strip().lower()
            if lowered in {"1", "true", "yes", "on"}:
                return True
            if lowered in {"0", "false", "no", "off"}:
                return False
            raise ValueError
        if kind.startswith("int"):
            if isinstance(value, bool):
                raise ValueError
            return int(value)
        if kind.startswith("float"):
            if isinstance(value, bool):
                raise ValueError
            return float(value)
        if kind.startswith("str"):
            if not isinstance(value, str):
                raise ValueError
            return value or None if "None" in kind else value
    except (TypeError, ValueError):
        raise SettingsError(f"{name}: expected {kind.split(' ')[0]}, got {value!r}") from None
    return value


def _parse_sources(
    raw: Mapping[str, Any], env: Mapping[str, str], prefix: str
) -> dict[str, SourceSettings]:
    sources: dict[str, SourceSettings] = {}
    for name, conf in raw.items():
        if not isinstance(conf, dict):
            raise SettingsError(f"sources.{name}: must be a table")
        conf = dict(conf)
        kind = conf.pop("kind", "glpi" if name == "glpi" else None)
        if not kind:
            raise SettingsError(f"sources.{name}: 'kind' is required (glpi, csv)")
        url = conf.pop("url", None)
        secret = {k: str(conf.pop(k)) for k in ("user_token", "app_token", "password") if k in conf}
        sources[name] = SourceSettings(name=name, kind=kind, url=url, options=conf, secrets=secret)
    glpi_url = env.get(f"{prefix}GLPI_URL")
    glpi_token = env.get(f"{prefix}GLPI_USER_TOKEN")
    if glpi_url or glpi_token:
        if not (glpi_url and glpi_token):
            raise SettingsError(
                f"{prefix}GLPI_URL and {prefix}GLPI_USER_TOKEN must be set together"
            )
        base = sources.get("glpi")
        options = dict(base.options) if base else {}
        if f"{prefix}GLPI_ACTIVITY_MAP" in env:
            try:
                amap = json.loads(env[f"{prefix}GLPI_ACTIVITY_MAP"])
            except json.JSONDecodeError as exc:
                raise SettingsError(f"{prefix}GLPI_ACTIVITY_MAP: not valid JSON ({exc})") from None
            if not isinstance(amap, dict):
                raise SettingsError(f"{prefix}GLPI_ACTIVITY_MAP: must be a JSON object")
            options["activity_map"] = amap
        secret = dict(base.secrets) if base else {}
        secret["user_token"] = glpi_token
        if env.get(f"{prefix}GLPI_APP_TOKEN"):
            secret["app_token"] = env[f"{prefix}GLPI_APP_TOKEN"]
        sources["glpi"] = SourceSettings(
            name="glpi", kind="glpi", url=glpi_url, options=options, secrets=secret
        )
    return sources
