"""Every response the suite receives is checked against what the OpenAPI document declares for
its operation and status, so no test can pass with a body the document does not describe."""

from __future__ import annotations

import json
import re
from functools import cached_property
from typing import Any

import httpx
from jsonschema import Draft202012Validator, FormatChecker

# Statuses answered before routing, whose bodies the problem schema still describes.
_OUTSIDE_ROUTES = {404, 405, 413, 414, 503}


class ContractViolation(AssertionError):
    pass


class ResponseContract:
    def __init__(self, spec: dict[str, Any]) -> None:
        self.spec = spec
        self._validators: dict[str, Draft202012Validator] = {}
        self.checked = 0

    @cached_property
    def _routes(self) -> list[tuple[re.Pattern[str], str]]:
        routes = []
        for template in self.spec["paths"]:
            pattern = re.sub(r"\\\{[^/]+?\\\}", "[^/]+", re.escape(template))
            # Literal segments first: /v1/reviews/due before /v1/reviews/{review_id}.
            routes.append((re.compile(f"^{pattern}$"), template))
        routes.sort(key=lambda route: route[1].count("{"))
        return routes

    def _operation(self, method: str, path: str) -> dict[str, Any] | None:
        for pattern, template in self._routes:
            if pattern.match(path):
                return self.spec["paths"][template].get(method.lower())
        return None

    def _validator(self, schema: dict[str, Any]) -> Draft202012Validator:
        key = json.dumps(schema, sort_keys=True)
        if key not in self._validators:
            root = {**schema, "components": self.spec.get("components", {})}
            self._validators[key] = Draft202012Validator(root, format_checker=FormatChecker())
        return self._validators[key]

    def check(self, response: httpx.Response) -> None:
        request = response.request
        path = request.url.path
        if not path.startswith("/v1/") and path not in ("/healthz", "/readyz"):
            return  # docs, openapi.json, benchmark routes: not API operations
        if path.startswith("/v1/_probe/"):
            return  # routes that single tests mount to provoke a failure
        operation = self._operation(request.method, path)
        status = response.status_code
        if operation is None:
            if status in _OUTSIDE_ROUTES:
                self._check_problem(response)
                return
            raise ContractViolation(f"{request.method} {path}: no such operation ({status})")
        declared = operation.get("responses", {})
        spec = declared.get(str(status)) or declared.get(f"{status // 100}XX")
        if spec is None:
            # Answered by middleware or the router, not the route.
            if status in (405, 413, 414, 503):
                self._check_problem(response)
                return
            raise ContractViolation(
                f"{request.method} {path} answered {status}, which the document does not "
                f"declare (declared: {sorted(declared)}): {response.text[:300]}"
            )
        content = spec.get("content")
        if not content or status == 304 or not response.content:
            if response.content and status != 304:
                raise ContractViolation(f"{request.method} {path} {status}: undeclared body")
            return
        media = response.headers.get("content-type", "").split(";")[0].strip()
        if media not in content:
            raise ContractViolation(
                f"{request.method} {path} {status}: {media} not among {sorted(content)}"
            )
        schema = content[media].get("schema")
        if not schema or not media.endswith("json"):
            return
        self._validate(schema, response, f"{request.method} {path} {status}")

    def _check_problem(self, response: httpx.Response) -> None:
        schema = {"$ref": "#/components/schemas/Problem"}
        if response.request.url.path.startswith("/v1/fhir/"):  # FHIR answers its own errors
            assert response.headers["content-type"].startswith("application/fhir+json")
            schema = {"$ref": "#/components/schemas/OperationOutcome"}
        if "Problem" in self.spec.get("components", {}).get("schemas", {}):
            self._validate(schema, response, f"{response.request.url.path} {response.status_code}")

    def _validate(self, schema: dict[str, Any], response: httpx.Response, where: str) -> None:
        errors = sorted(self._validator(schema).iter_errors(response.json()), key=str)
        if errors:
            first = errors[0]
            raise ContractViolation(
                f"{where}: body does not match its declared schema at "
                f"{list(first.absolute_path)}: {first.message}"
            )
        self.checked += 1


_contracts: list[ResponseContract] = []


def response_contract(app: Any) -> ResponseContract:
    """The OpenAPI document's promises (built once: every test's app serves the same one)."""
    if not _contracts:
        _contracts.append(ResponseContract(app.openapi()))
    return _contracts[0]
