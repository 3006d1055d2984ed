"""The OpenAPI document tells the whole truth: problem+json for every error, 422 included."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.errors import PROBLEM_MEDIA_TYPE, Problem, ValidationItem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}
# Put in a route's ``openapi_extra`` when FastAPI's automatic 422 can never happen there.
NO_VALIDATION_ERROR = "x-waypoint-no-validation-error"


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
    for path_item in schema.get("paths", {}).values():
        for operation in path_item.values():
            responses = operation.get("responses", {})
            if "requestBody" in operation and "400" not in responses:
                # A body that cannot even be read as text (not UTF-8) is 400 before validation.
                responses["400"] = {
                    "description": "Bad request",
                    "content": {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}},
                }
            if operation.pop(NO_VALIDATION_ERROR, False):
                responses.pop("422", None)
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
        for prop in components[name].get("properties", {}).values():
            _add_pattern(prop)
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
    if node.get("type") == "string" and not {"enum", "const", "format", "pattern"} & set(node):
        node["pattern"] = PLAIN_TEXT_PATTERN
    for key in ("anyOf", "oneOf", "allOf"):
        for branch in node.get(key, []):
            _add_pattern(branch)
    if "items" in node:
        _add_pattern(node["items"])
