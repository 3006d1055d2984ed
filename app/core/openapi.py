"""The OpenAPI document tells the whole truth: problem+json for every error, 422 included."""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi

from app.core.errors import PROBLEM_MEDIA_TYPE, Problem, ValidationItem

PROBLEM_REF = {"$ref": "#/components/schemas/Problem"}


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
            for code, response in operation.get("responses", {}).items():
                if code.isdigit() and int(code) >= 400 and "content" in response:
                    content = response["content"]
                    if "application/json" in content and PROBLEM_MEDIA_TYPE not in content:
                        ref = content["application/json"].get("schema", {}).get("$ref", "")
                        if ref.endswith(("/HTTPValidationError", "/Problem")):
                            response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
                    if code == "422":
                        response["description"] = "Validation failed"
                        response["content"] = {PROBLEM_MEDIA_TYPE: {"schema": PROBLEM_REF}}
    app.openapi_schema = schema
    return schema
