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
    app.openapi_schema = schema
    return schema


def _defaults_described(body: dict[str, Any]) -> None:
    """A request body's defaults are said in words, not as `default`: generators such as
    openapi-typescript read `default` as "always present" and make the field required to send."""
    for prop in body.get("properties", {}).values():
        if "default" in prop:
            default = json.dumps(prop.pop("default"))
            said = f"Default when left out: `{default}`."
            prop["description"] = f"{prop['description']} {said}" if "description" in prop else said
