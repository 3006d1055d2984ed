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
    app.openapi_schema = schema
    return schema
