"""Every failure is problem+json: routing, validation, hostile bodies, crashes (API)."""

from __future__ import annotations

import json
from typing import Any

import marshmallow as ma
import pytest
import sqlalchemy as sa
from flask import Flask
from marshmallow import fields, validate

from config.api import Blueprint, InSchema, UTCDateTimeField
from config.tenancy import Tenant
from tests.conftest import build_app, dispose, make_settings
from tests.support import assert_problem, assert_status


def tenant_count(db: Any) -> int:
    return db.session.execute(sa.select(sa.func.count()).select_from(Tenant)).scalar_one()


def test_unknown_route_is_404_problem(admin):
    assert_problem(admin.get("/api/v1/no-such-thing"), 404)  # pages get an HTML 404 (test_web)


def test_wrong_method_is_405_problem_with_allow(admin):
    resp = admin.put("/api/v1/tenants", json={})
    assert_problem(resp, 405)
    assert "GET" in resp.headers["Allow"]


@pytest.mark.parametrize(
    ("body", "slug"),
    [
        (b"{", "malformed-json"),
        (b'{"code": "a", "name": "x", "kind": "city"' + b"}" * 0, "malformed-json"),
        (b"[" * 65 + b"]" * 65, "malformed-json"),
        (b'{"code": "\\ud83d", "name": "x", "kind": "city"}', "malformed-json"),
        (
            b'{"code": "a", "name": "x", "kind": "city", "contributions": {"2021": 1e999}}',
            "malformed-json",
        ),
        (b'{"code": "a", "name": 18446744073709551616, "kind": "city"}', "malformed-json"),
        (b'{"code": "a", "name": "x\\u0000", "kind": "city"}', "malformed-json"),
    ],
)
def test_hostile_json_bodies_are_400_and_write_nothing(admin, db, body, slug):
    before = tenant_count(db)
    resp = admin.post("/api/v1/tenants", data=body, content_type="application/json")
    assert_problem(resp, 400, slug)
    assert tenant_count(db) == before


def test_body_over_one_mib_is_413(admin, db):
    big = json.dumps({"code": "a", "name": "x" * (1024 * 1024), "kind": "city"})
    assert_problem(admin.post("/api/v1/tenants", data=big, content_type="application/json"), 413)
    assert tenant_count(db) == 0


def test_non_json_body_is_415(admin, db):
    resp = admin.post(
        "/api/v1/tenants", data="code=a", content_type="application/x-www-form-urlencoded"
    )
    assert_problem(resp, 415, "unsupported-media-type")


def test_missing_required_fields_are_named(admin):
    problem = assert_problem(admin.post("/api/v1/tenants", json={"code": "a"}), 422)
    assert set(problem["errors"]) == {"name", "kind"}


def test_out_of_range_values_are_422_with_the_field(admin):
    body = {"code": "a", "name": "x", "kind": "planet"}
    assert "kind" in assert_problem(admin.post("/api/v1/tenants", json=body), 422)["errors"]


@pytest.mark.parametrize(
    "query",
    [
        "at__gte=2021-02-30T00:00:00Z",
        "at__gte=9999-12-31T23:59:59-14:00",
        "object_id=99999999999",
        "limit=abc",
        "offset=-3",
        "object_id=1&object_id=x",
    ],
)
def test_bad_query_values_are_400(admin, query):
    assert_problem(admin.get(f"/api/v1/changes?{query}"), 400)


def test_huge_path_ids_are_404_not_500(admin):
    assert_problem(admin.get("/api/v1/tenants/92233720368547758070"), 404)


# -- a dedicated app with an echo endpoint and a crashing one -------------------------------


class EchoIn(InSchema):
    day = fields.Date(required=True)
    at = UTCDateTimeField()
    count = fields.Integer(validate=validate.Range(0, 10))


class EchoQuery(ma.Schema):
    class Meta:
        unknown = ma.RAISE

    name = fields.String()
    code = fields.List(fields.String())
    count = fields.Integer()


@pytest.fixture(scope="module")
def echo_app(tmp_path_factory, database) -> Flask:
    app = database.attach(build_app(make_settings(database.url, tmp_path_factory.mktemp("echo"))))
    api = app.extensions["syndic.api"]
    blp = Blueprint("echo", __name__, url_prefix="/api/v1/echo")

    @blp.route("", methods=["POST"])
    @blp.arguments(EchoIn)
    @blp.response(200)
    def echo(data):
        return {"day": data["day"].isoformat(), "at": data.get("at") and data["at"].isoformat()}

    @blp.route("/query", methods=["GET"])
    @blp.arguments(EchoQuery, location="query")
    @blp.response(200)
    def echo_query(args):
        return args

    @blp.route("/boom", methods=["GET"])
    def boom():
        raise RuntimeError("secret detail: SELECT password FROM users")

    api.register_blueprint(blp)
    yield app
    dispose(app)


@pytest.fixture()
def echo(echo_app, db, as_role):
    token = as_role("technician", tenants=None).token
    client = echo_app.test_client()
    client.token = token
    return client


@pytest.mark.parametrize(
    ("body", "field"),
    [
        ({"day": "2021-02-30"}, "day"),
        ({"day": "2021-13-01"}, "day"),
        ({"day": "2021-01-01", "at": "9999-12-31T23:59:59-14:00"}, "at"),
        ({"day": "2021-01-01", "at": "2021-03-04T09:30:00"}, "at"),
        ({"day": "2021-01-01", "count": 11}, "count"),
        ({"day": "2021-01-01", "count": "many"}, "count"),
    ],
)
def test_impossible_dates_and_wrong_values_are_422_naming_the_field(echo, body, field):
    problem = assert_problem(echo.post("/api/v1/echo", json=body), 422, "validation-failed")
    assert field in problem["errors"]


def test_timestamps_are_normalised_to_utc(echo):
    resp = echo.post("/api/v1/echo", json={"day": "2021-03-04", "at": "2021-03-04T09:30:00+01:00"})
    assert_status(resp, 200)
    assert resp.json["at"] == "2021-03-04T08:30:00+00:00"


def test_unexpected_exception_is_500_with_request_id_and_no_detail(echo, caplog):
    resp = echo.get("/api/v1/echo/boom", headers={"X-Request-Id": "req-12345678"})
    body = assert_problem(resp, 500)
    assert body["request_id"] == "req-12345678" == resp.headers["X-Request-Id"]
    assert "secret" not in resp.get_data(as_text=True)
    assert "req-12345678" in caplog.text


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("", {}),
        ("name=a", {"name": "a"}),
        ("name=a&name=b", {"name": "a"}),  # a field of one value takes the first
        ("code=x", {"code": ["x"]}),
        ("code=x&code=y&count=3", {"code": ["x", "y"], "count": 3}),
        ("name=&code=", {"name": "", "code": [""]}),
    ],
)
def test_query_parameters_load_as_declared(echo, query, expected):
    resp = echo.get(f"/api/v1/echo/query?{query}")
    assert_status(resp, 200)
    assert resp.json == expected


@pytest.mark.parametrize(
    ("query", "field"), [("colour=red", "colour"), ("count=x", "count"), ("name=a&count=", "count")]
)
def test_unknown_or_bad_query_parameters_are_400(echo, query, field):
    problem = assert_problem(echo.get(f"/api/v1/echo/query?{query}"), 400)
    assert field in str(problem)
