"""Settings parsing (pure)."""

from __future__ import annotations

import pytest

from config.settings import Settings, SettingsError


def test_defaults_come_from_the_shipped_toml():
    s = Settings.from_env({})
    assert s.timezone == "Europe/Paris"
    assert s.workday_minutes == 420
    assert s.max_body_bytes == 1024 * 1024
    assert s.database_url is None


def test_environment_overrides_and_is_typed():
    s = Settings.from_env({"SYNDIC_WORKDAY_HOURS": "7.5", "SYNDIC_LEASE_TTL_SECONDS": "30"})
    assert s.workday_minutes == 450
    assert s.lease_ttl_seconds == 30


def test_toml_file_is_read_and_environment_wins(tmp_path):
    f = tmp_path / "syndic.toml"
    f.write_text('timezone = "Europe/Brussels"\nworkday_hours = 8\n[servicedesk]\nx = 1\n')
    s = Settings.from_env({"SYNDIC_CONFIG": str(f), "SYNDIC_WORKDAY_HOURS": "6"})
    assert s.timezone == "Europe/Brussels"
    assert s.workday_hours == 6
    assert s.section("servicedesk")["x"] == 1


@pytest.mark.parametrize(
    ("env", "name"),
    [
        ({"SYNDIC_WORKDAY_HOURS": "seven"}, "workday_hours"),
        ({"SYNDIC_WORKDAY_HOURS": "30"}, "workday_hours"),
        ({"SYNDIC_TIMEZONE": "Mars/Olympus"}, "timezone"),
        ({"SYNDIC_DATABASE_URL": "mysql://x"}, "database_url"),
        ({"SYNDIC_CONFIG": "/nonexistent/syndic.toml"}, "SYNDIC_CONFIG"),
        ({"SYNDIC_GLPI_URL": "https://glpi/apirest.php"}, "GLPI"),
        (
            {
                "SYNDIC_GLPI_URL": "u",
                "SYNDIC_GLPI_USER_TOKEN": "t",
                "SYNDIC_GLPI_ACTIVITY_MAP": "{",
            },
            "ACTIVITY_MAP",
        ),
    ],
)
def test_bad_values_name_the_setting(env, name):
    with pytest.raises(SettingsError, match=name):
        Settings.from_env(env)


def test_unknown_key_in_file_is_an_error(tmp_path):
    f = tmp_path / "s.toml"
    f.write_text("databse_url = 'x'\n")
    with pytest.raises(SettingsError, match="databse_url"):
        Settings.from_env({"SYNDIC_CONFIG": str(f)})


def test_glpi_source_from_environment_hides_its_secrets():
    s = Settings.from_env(
        {
            "SYNDIC_GLPI_URL": "https://glpi.example/apirest.php",
            "SYNDIC_GLPI_USER_TOKEN": "user-secret",
            "SYNDIC_GLPI_APP_TOKEN": "app-secret",
            "SYNDIC_GLPI_ACTIVITY_MAP": '{"Projet*": "project"}',
        }
    )
    glpi = s.sources["glpi"]
    assert glpi.options["activity_map"] == {"Projet*": "project"}
    shown = repr(s) + repr(glpi) + str(glpi.public())
    assert "user-secret" not in shown and "app-secret" not in shown
    assert glpi.public()["secrets"] == ["app_token", "user_token"]


def test_postgresql_url_is_given_the_psycopg_driver(tmp_path):
    s = Settings.from_env({"SYNDIC_DATABASE_URL": "postgresql://u@h/db"})
    assert s.resolved_database_url(str(tmp_path)) == "postgresql+psycopg://u@h/db"


def test_secret_key_is_generated_once(tmp_path):
    s = Settings.from_env({})
    first = s.resolved_secret_key(str(tmp_path))
    assert first == s.resolved_secret_key(str(tmp_path))
    assert (tmp_path / "secret_key").stat().st_mode & 0o077 == 0
