"""The OpenAPI document tells the whole truth: problem+json for every error, 422 included."""

from __future__ import annotations

import json
from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import GetCoreSchemaHandler
from pydantic_core import CoreSchema

from app.core.errors import PROBLEM_MEDIA_TYPE, Problem, ValidationItem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Put in a route's ``openapi_extra`` when FastAPI's automatic 422 can never happen there.
NO_VALIDATION_ERROR = "x-waypoint-no-validation-error"
# FastAPI names a form body `Body_<operation id>`; generated clients show that name to people.
COMPONENT_NAMES = {"Body_auth_token": "TokenRequest"}
NOT_JSON = {
    "description": "The body cannot be read as JSON (it is not UTF-8, say)",
    "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
}


class Component:
    """Names a type in the OpenAPI document: `Annotated[Literal[...], Component("GoalStatus")]`
    becomes `#/components/schemas/GoalStatus`, so generated clients get one named enum instead of
    one per field. Validation and the values (plain strings) stay exactly as without it."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __get_pydantic_core_schema__(
        self, source: Any, handler: GetCoreSchemaHandler
    ) -> CoreSchema:
        return {**handler(source), "ref": self.name}  # type: ignore[typeddict-item]


def build_openapi(app: FastAPI) -> dict[str, Any]:
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(
        title=app.title,
        version=app.version,
        description=app.description,
        routes=app.routes,
        tags=app.openapi_tags,
    )
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components.pop("HTTPValidationError", None)
    components.pop("ValidationError", None)
    components["Problem"] = Problem.model_json_schema(ref_template="#/components/schemas/{model}")
    components["Problem"].pop("$defs", None)
    components["ValidationItem"] = ValidationItem.model_json_schema()
    for old, new in COMPONENT_NAMES.items():
        if old in components:
            # A model of the same name would be silently replaced, and every operation that
            # refers to it would describe the wrong body.
            if new in components:
                raise RuntimeError(f"OpenAPI component {new!r} is taken: rename the model")
            components[new] = {**components.pop(old), "title": new}
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if operation.pop(NO_VALIDATION_ERROR, False):
                responses.pop("422", None)
            body = operation.get("requestBody", {}).get("content", {})
            for media_type in body.values():
                ref = media_type.get("schema", {}).get("$ref", "")
                name = ref.rsplit("/", 1)[-1]
                if name in COMPONENT_NAMES:
                    name = COMPONENT_NAMES[name]
                    media_type["schema"]["$ref"] = f"#/components/schemas/{name}"
                if name in components:
                    _defaults_described(components[name])
            if "application/json" in body and "400" not in responses:
                responses["400"] = NOT_JSON
            for code, response in responses.items():
                if code.isdigit() and int(code) >= 400 and "content" in response:
                    content = response["content"]
                    ref = content.get("application/json", {}).get("schema", {}).get("$ref", "")
                    if ref.endswith(("/HTTPValidationError", "/Problem")):
                        # problem+json only: `model=Problem` also made FastAPI add plain JSON.
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
                    if code == "422":
                        response["description"] = "Validation failed"
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
    _document_plain_text(schema)
    app.openapi_schema = schema
    return schema


# What RequestBody enforces on every text of a request body (app/core/schemas.py), as a
# pattern integrators and fuzzers can read: no C0 control characters but tab, LF and CR.
PLAIN_TEXT_PATTERN = "^[^\\u0000-\\u0008\\u000b\\u000c\\u000e-\\u001f]*$"


def _document_plain_text(schema: dict[str, Any]) -> None:
    components = schema.get("components", {}).get("schemas", {})
    bodies: set[str] = set()
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            for content in operation.get("requestBody", {}).get("content", {}).values():
                _collect_refs(content.get("schema", {}), components, bodies)
    for name in bodies:
        _add_pattern(components[name])
    for path_item in schema.get("paths", {}).values():  # text query parameters (PlainText)
        for operation in path_item.values():
            for parameter in operation.get("parameters", []):
                if parameter.get("in") == "query":
                    _add_pattern(parameter.get("schema"))


def _collect_refs(node: Any, components: dict[str, Any], found: set[str]) -> None:
    if isinstance(node, dict):
        ref = node.get("$ref", "")
        if ref.startswith("#/components/schemas/"):
            name = ref.rsplit("/", 1)[1]
            if name not in found:
                found.add(name)
                _collect_refs(components.get(name), components, found)
        for value in node.values():
            _collect_refs(value, components, found)
    elif isinstance(node, list):
        for value in node:
            _collect_refs(value, components, found)


def _add_pattern(node: Any) -> None:
    if not isinstance(node, dict):
        return
    plain = node.get("format", "password") == "password"  # a password is text like any other
    if node.get("type") == "string" and plain and not {"enum", "const", "pattern"} & set(node):
        node["pattern"] = PLAIN_TEXT_PATTERN
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key, []):
            _add_pattern(branch)
    for key in ("items", "additionalProperties"):
        _add_pattern(node.get(key))
    for prop in node.get("properties", {}).values():
        _add_pattern(prop)


def _defaults_described(body: dict[str, Any]) -> None:
    """A request body's defaults are said in words, not as `default`: generators such as
    openapi-typescript read `default` as "always present" and make the field required to send."""
    for prop in body.get("properties", {}).values():
        if "default" in prop:
            default = json.dumps(prop.pop("default"))
            said = f"Default when left out: `{default}`."
            prop["description"] = f"{prop['description']} {said}" if "description" in prop else said
