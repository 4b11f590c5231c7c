"""HTTP conventions shared by every domain: the smorest Api and Blueprint, the argument
parser, schema bases, the problem schema and the OpenAPI post-processing.

A domain writes ``blp = Blueprint("tickets", __name__, url_prefix="/api/v1/tickets")`` and
``MethodView`` classes using ``@blp.arguments`` / ``@blp.response``; this module makes
unknown query parameters a 400, bodies strict JSON, and documents the error answers.
"""

from __future__ import annotations

import copy
import http
import weakref
from collections.abc import Callable, Mapping
from typing import Any

import flask
import flask_smorest
import marshmallow as ma
from apispec.ext.marshmallow import MarshmallowPlugin
from apispec.ext.marshmallow.common import resolve_schema_cls
from flask import request
from marshmallow import fields, validate
from webargs import core as webargs_core
from webargs.flaskparser import FlaskParser, is_json_request
from webargs.multidictproxy import MultiDictProxy
from werkzeug.exceptions import HTTPException

from config.errors import (
    PROBLEM_JSON,
    MalformedJSON,
    UnsupportedMediaType,
    render_http_exception,
)
from config.filters import QuerySchema, UTCDateTimeField
from config.jsonio import loads_strict

__all__ = [
    "Api",
    "Blueprint",
    "InSchema",
    "OutSchema",
    "ProblemSchema",
    "QuerySchema",
    "UTCDateTimeField",
    "code_field",
    "page_schema",
]


class SyndicParser(FlaskParser):
    """webargs parser: unknown query parameters raise (400), bodies are strict JSON."""

    DEFAULT_UNKNOWN_BY_LOCATION: dict[str, str | None] = {
        **FlaskParser.DEFAULT_UNKNOWN_BY_LOCATION,
        "query": ma.RAISE,
        "json": ma.RAISE,
    }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._schemas: dict[type[ma.Schema], ma.Schema] = {}
        self._multiple_keys: weakref.WeakKeyDictionary[type[ma.Schema], frozenset[str]] = (
            weakref.WeakKeyDictionary()
        )

    def _get_schema(self, argmap: Any, req: flask.Request) -> ma.Schema:
        # webargs makes a new instance of a schema class on every request (marshmallow
        # deep-copies its declared fields: a tenth of a millisecond, a tenth of a time
        # entry's POST); one instance per class serves every request (loading keeps no state
        # on the schema).
        if isinstance(argmap, type) and issubclass(argmap, ma.Schema):
            schema = self._schemas.get(argmap)
            if schema is None:
                schema = self._schemas[argmap] = argmap()
            return schema
        return super()._get_schema(argmap, req)

    def load_querystring(self, req: flask.Request, schema: ma.Schema) -> Any:
        # webargs hands marshmallow a proxy of request.args that every field of the schema
        # looks up, and werkzeug raises (and catches) an exception for each absent one: 66
        # for a CI list page. A dict of the keys present carries the same values: the
        # first of each key, or all of them for the fields that take several.
        args = req.args
        if not args:
            return {}
        multiple = self._multiple_keys.get(type(schema))
        if multiple is None:
            multiple = frozenset(MultiDictProxy(args, schema).multiple_keys)
            self._multiple_keys[type(schema)] = multiple
        return {key: args.getlist(key) if key in multiple else args[key] for key in args}

    def _raw_load_json(self, req: flask.Request) -> Any:
        data = req.get_data(cache=True)
        if not is_json_request(req):
            if data:
                raise UnsupportedMediaType("Send the body as application/json.")
            return webargs_core.missing
        if not data:
            return webargs_core.missing
        return loads_strict(data)

    def _handle_invalid_json_error(self, error: Any, req: Any, *args: Any, **kwargs: Any) -> Any:
        raise MalformedJSON("The request body is not valid JSON.")


class Blueprint(flask_smorest.Blueprint):
    """smorest Blueprint with syndic's parser; query-string errors are documented as 400."""

    ARGUMENTS_PARSER = SyndicParser()

    def arguments(self, schema: Any, *, location: str = "json", **kwargs: Any) -> Any:
        if location == "query":
            kwargs.setdefault("error_status_code", 400)
        return super().arguments(schema, location=location, **kwargs)


# -- schemas ----------------------------------------------------------------------------


class InSchema(ma.Schema):
    """Base of request bodies: unknown fields are refused (422 naming them)."""

    class Meta:
        unknown = ma.RAISE


class OutSchema(ma.Schema):
    """Base of response bodies.

    One object is dumped with :func:`fast_dumper` (the same result as marshmallow's, checked
    against it on every dump under test), unless the schema has dump hooks. A schema on a
    hot path may write its dump by hand as a static ``fast_dump(obj) -> dict``; the check
    under test compares it with the declared fields."""

    def dump(self, obj: Any, *, many: bool | None = None) -> Any:
        many = self.many if many is None else bool(many)
        if many or obj is None or isinstance(obj, Mapping) or self._hooks:
            return super().dump(obj, many=many)
        fast = self.__dict__.get("_fast_dump")
        if fast is None:
            fast = self.__dict__["_fast_dump"] = fast_dumper(self)
        out = fast(obj)
        if flask.has_app_context() and flask.current_app.testing:
            slow = super().dump(obj)
            if out != slow:
                raise AssertionError(
                    f"fast dump differs from {type(self).__name__}: {out} != {slow}"
                )
        return out


class ProblemSchema(ma.Schema):
    """RFC 9457 problem details, as every error of syndic is answered."""

    type = fields.String(required=True, metadata={"example": "/problems/validation-failed"})
    title = fields.String(required=True)
    status = fields.Integer(required=True)
    detail = fields.String(required=True)
    errors = fields.Dict(
        keys=fields.String(),
        values=fields.List(fields.String()),
        metadata={"description": "Field name → messages (validation errors)."},
    )
    allowed = fields.List(fields.Raw(), metadata={"description": "Allowed values or moves."})
    etag = fields.String(metadata={"description": "Current ETag (412)."})
    cycle = fields.List(
        fields.String(), metadata={"description": "Keys around a refused dependency cycle."}
    )
    # Attribute renamed: ``unknown`` is a Schema setting in marshmallow.
    unknown_refs = fields.List(
        fields.Raw(),
        data_key="unknown",
        metadata={"description": "Ids or keys that name nothing visible (404)."},
    )
    request_id = fields.String(metadata={"description": "Request id to quote (500)."})


_PAGE_SCHEMAS: dict[str, type[ma.Schema]] = {}


def _value_dumper(name: str, field: fields.Field[Any]) -> Callable[[Any], Any]:
    """One field's dump, with marshmallow's result, minus its per-value overhead for the
    plain types (the others go through the field itself)."""
    attr = field.attribute or name
    plain: Callable[[Any], Any] | None = None
    if type(field) is fields.String:
        plain = str
    elif type(field) is fields.Integer and not field.as_string:
        plain = int
    elif type(field) is fields.Float and not field.as_string:
        plain = float
    elif type(field) is fields.Boolean:
        plain = bool
    elif type(field) in (fields.AwareDateTime, fields.DateTime, fields.Date) and (
        getattr(field, "format", None) in (None, "iso")
    ):
        plain = _isoformat
    elif type(field) is fields.Enum and field.by_value:
        plain = _enum_value
    elif type(field) is fields.Dict and field.key_field is None and field.value_field is None:
        plain = field.mapping_type  # what marshmallow does for a Dict of anything: a copy
    if type(field) is fields.Function and field.serialize_func is not None:
        return field.serialize_func
    if type(field) is fields.Nested and not field.many and isinstance(field.nested, type):
        nested = fast_dumper(field.nested())

        def dump_nested(obj: Any) -> Any:
            value = getattr(obj, attr)
            return None if value is None else nested(value)

        return dump_nested
    if plain is None or "." in attr:
        return lambda obj: field.serialize(name, obj)
    convert = plain

    def dump(obj: Any) -> Any:
        value = getattr(obj, attr)
        return None if value is None else convert(value)

    return dump


def _isoformat(value: Any) -> str:
    return str(value.isoformat())


def _enum_value(value: Any) -> Any:
    return value.value


def fast_dumper(schema: ma.Schema) -> Callable[[Any], dict[str, Any]]:
    """A function dumping one object exactly as ``schema.dump`` does, faster for lists:
    the schema's own ``fast_dump`` when it writes one (and no ``only``/``exclude`` narrows
    it), else one step per declared field."""
    own = getattr(type(schema), "fast_dump", None)
    if own is not None and not schema.only and not schema.exclude:
        return own
    plan = [
        (field.data_key or name, _value_dumper(name, field))
        for name, field in schema.dump_fields.items()
    ]

    def dump(obj: Any) -> dict[str, Any]:
        return {key: fn(obj) for key, fn in plan}

    return dump


class FastList(fields.List):  # type: ignore[type-arg]
    """``List(Nested(schema))`` for page results, dumped with :func:`fast_dumper`."""

    def __init__(self, item: type[ma.Schema], **kwargs: Any) -> None:
        super().__init__(fields.Nested(item), **kwargs)
        self._item = item
        self._dump: Callable[[Any], dict[str, Any]] | None = None

    def _serialize(self, value: Any, attr: Any, obj: Any, **kwargs: Any) -> Any:
        if value is None:
            return None
        if value and isinstance(value[0], Mapping):  # plain dicts: marshmallow's own path
            return super()._serialize(value, attr, obj, **kwargs)
        if self._dump is None:
            self._dump = fast_dumper(self._item())
        out = [self._dump(item) for item in value]
        if flask.current_app and flask.current_app.testing:
            # Under test, every page also goes through marshmallow: both must agree.
            slow = super()._serialize(value, attr, obj, **kwargs)
            if out != slow:
                raise AssertionError(
                    f"fast dump differs from {self._item.__name__}: {out} != {slow}"
                )
        return out


def page_schema(item: type[ma.Schema]) -> type[ma.Schema]:
    """``{count, next, previous, results: [item]}`` — one class per item schema."""
    name = f"{item.__name__.removesuffix('Out')}Page"
    if name not in _PAGE_SCHEMAS:
        _PAGE_SCHEMAS[name] = type(
            name,
            (ma.Schema,),
            {
                "count": fields.Integer(required=True),
                "next": fields.String(allow_none=True, required=True),
                "previous": fields.String(allow_none=True, required=True),
                "results": FastList(item, required=True),
            },
        )
    return _PAGE_SCHEMAS[name]


def code_field(**kwargs: Any) -> fields.String:
    """A natural code: lowercase slug, 1-64 characters."""
    return fields.String(
        validate=[
            validate.Length(1, 64),
            validate.Regexp(
                r"^[a-z0-9](?:[a-z0-9-]{0,62}[a-z0-9])?$",
                error="Lowercase letters, digits and hyphens; 1-64 characters.",
            ),
        ],
        **kwargs,
    )


# -- the Api ----------------------------------------------------------------------------


def _problem_ref(description: str) -> dict[str, Any]:
    return {
        "description": description,
        "content": {PROBLEM_JSON: {"schema": {"$ref": "#/components/schemas/Problem"}}},
    }


def dict_keys_property(converter: Any, field: Any, **_kw: Any) -> dict[str, Any]:
    """Document a Dict's key validation as JSON Schema ``propertyNames`` (OpenAPI 3.1)."""
    key_field = getattr(field, "key_field", None)
    if not isinstance(field, fields.Dict) or key_field is None:
        return {}
    names: dict[str, Any] = {}
    for validator in key_field.validators:
        if isinstance(validator, validate.Regexp):
            names["pattern"] = validator.regex.pattern
        elif isinstance(validator, validate.Length):
            if validator.min is not None:
                names["minLength"] = validator.min
            if validator.max is not None:
                names["maxLength"] = validator.max
    return {"propertyNames": names} if names else {}


def schema_name(schema: Any) -> str:
    """OpenAPI component names: the class name, ``…Patch`` for partial (PATCH) bodies."""
    cls = resolve_schema_cls(schema)
    if isinstance(cls, list):  # a union of schemas (not used by syndic)
        cls = cls[0]
    name: str = cls.__name__.removesuffix("Schema")
    if isinstance(schema, ma.Schema) and schema.partial:
        name += "Patch"
    return name


class Api(flask_smorest.Api):
    """flask-smorest Api answering problem+json and serving a post-processed OpenAPI."""

    ERROR_SCHEMA = ProblemSchema
    DEFAULT_ERROR_RESPONSE_NAME = None

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault(
            "spec_kwargs",
            {"marshmallow_plugin": MarshmallowPlugin(schema_name_resolver=schema_name)},
        )
        super().__init__(*args, **kwargs)
        self._spec_cache: dict[str, Any] | None = None

    def _init_spec(self, *args: Any, **kwargs: Any) -> None:
        super()._init_spec(*args, **kwargs)
        self.ma_plugin.converter.add_attribute_function(dict_keys_property)

    def handle_http_exception(self, error: HTTPException) -> flask.Response:
        return render_http_exception(error)

    def _register_responses(self) -> None:
        # Problem responses are added per operation in openapi_dict(); smorest's defaults
        # (application/json error bodies) would contradict what syndic answers.
        self.spec.components.schema("Problem", schema=ProblemSchema)

    def openapi_dict(self) -> dict[str, Any]:
        """The OpenAPI document with security, error answers and If-Match documented."""
        if self._spec_cache is None:
            self._spec_cache = self._postprocess(copy.deepcopy(self.spec.to_dict()))
        return self._spec_cache

    def _openapi_json(self) -> flask.Response:
        return flask.current_app.response_class(
            flask.json.dumps(self.openapi_dict(), indent=2, sort_keys=False),
            mimetype="application/json",
        )

    @staticmethod
    def _postprocess(spec: dict[str, Any]) -> dict[str, Any]:
        comps = spec.setdefault("components", {})
        comps.setdefault("securitySchemes", {})["bearerAuth"] = {
            "type": "http",
            "scheme": "bearer",
            "description": "API token from `syndic tokens create`.",
        }
        comps.setdefault("parameters", {})["IfMatch"] = {
            "name": "If-Match",
            "in": "header",
            "required": False,
            "schema": {"type": "string"},
            "description": "ETag of the version you read; 412 if it changed since.",
        }
        spec["security"] = [{"bearerAuth": []}]
        for path, ops in spec.get("paths", {}).items():
            has_path_params = "{" in path
            public = not path.startswith("/api/v1/")
            for method, op in ops.items():
                if method not in {"get", "post", "put", "patch", "delete"}:
                    continue
                responses = op.setdefault("responses", {})
                for code in list(responses):
                    if code.startswith(("4", "5")):
                        responses[code] = _problem_ref(http.HTTPStatus(int(code)).phrase)
                if public:
                    op["security"] = []
                wanted = ["500"] if public else ["401", "500"]
                if any(p.get("in") == "query" for p in op.get("parameters", [])):
                    wanted.append("400")
                if has_path_params:
                    wanted.append("404")
                if "requestBody" in op:
                    wanted += ["400", "413", "415", "422"]
                if method in {"patch", "delete"} and has_path_params:
                    wanted.append("412")
                    op.setdefault("parameters", []).append(
                        {"$ref": "#/components/parameters/IfMatch"}
                    )
                if method != "get":
                    wanted.append("409")
                if not public:
                    # Any authenticated operation may be refused to a role (reads included:
                    # reports, sync runs), and repeated wrong tokens are throttled.
                    wanted += ["403", "429"]
                for code in wanted:
                    responses.setdefault(code, _problem_ref(http.HTTPStatus(int(code)).phrase))
        return spec


def set_location(obj_url: str) -> Mapping[str, str]:
    """The ``Location`` header of a 201 (absolute URL)."""
    return {"Location": request.host_url.rstrip("/") + obj_url}
