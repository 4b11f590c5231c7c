"""Filter sets: generated query schemas and SQL (pure: no database)."""

from __future__ import annotations

import marshmallow as ma
import pytest
from sqlalchemy import select

from config.filters import FilterSet, like_escape
from config.tenancy import Tenant


class TF(FilterSet):
    model = Tenant
    fields = {"code": ["exact", "ic"], "created_at": ["gte", "lte"], "active": ["exact"]}
    ordering = ("code", "name")
    search = ("code", "name")


def load(params):
    return TF.schema()().load(params)


def test_limit_defaults_and_bounds():
    assert load({})["limit"] == 50
    with pytest.raises(ma.ValidationError, match="limit"):
        load({"limit": "1001"})
    with pytest.raises(ma.ValidationError, match="offset"):
        load({"offset": "-1"})


def test_unknown_parameter_is_refused():
    with pytest.raises(ma.ValidationError) as exc:
        load({"colour": "red"})
    assert "colour" in exc.value.messages


def test_unknown_ordering_names_the_allowed_fields():
    with pytest.raises(ma.ValidationError) as exc:
        load({"ordering": "-code,size"})
    assert "size" in str(exc.value.messages) and "code" in str(exc.value.messages)


@pytest.mark.parametrize(
    "value",
    ["2021-02-30T00:00:00Z", "2021-01-01T00:00:00", "9999-12-31T23:59:59-14:00", "yesterday"],
)
def test_impossible_or_naive_datetimes_are_refused(value):
    with pytest.raises(ma.ValidationError):
        load({"created_at__gte": value})


def test_nul_characters_are_refused():
    with pytest.raises(ma.ValidationError):
        load({"code__ic": "a\x00b"})


def test_repeated_parameters_mean_or():
    sql = str(TF.apply(select(Tenant), load({"code": ["a", "b"]})))
    assert "tenants.code IN" in sql


def test_ordering_always_ends_with_the_id_tie_breaker():
    sql = str(TF.apply(select(Tenant), load({"ordering": "-name"})))
    assert sql.endswith("ORDER BY tenants.name DESC, tenants.id ASC")


def test_like_wildcards_are_escaped():
    assert like_escape("50%_\\") == "50\\%\\_\\\\"
