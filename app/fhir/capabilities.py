"""The CapabilityStatement: what this FHIR server does (Goal read and search by patient)."""

from __future__ import annotations

from typing import Any

RELEASED = "2026-11-30"


def capability_statement(base_url: str) -> dict[str, Any]:
    return {
        "resourceType": "CapabilityStatement",
        "status": "active",
        "date": RELEASED,
        "publisher": "Waypoint",
        "kind": "instance",
        "software": {"name": "Waypoint", "version": "1.0.0"},
        "implementation": {
            "description": "Waypoint goals as FHIR R4 Goal resources",
            "url": f"{base_url}/v1/fhir",
        },
        "fhirVersion": "4.0.1",
        "format": ["application/fhir+json", "json"],
        "rest": [
            {
                "mode": "server",
                "security": {
                    "service": [
                        {
                            "coding": [
                                {
                                    "system": "http://terminology.hl7.org/CodeSystem/"
                                    "restful-security-service",
                                    "code": "OAuth",
                                }
                            ]
                        }
                    ],
                    "description": "Bearer token (OAuth2 password flow at /v1/auth/token, or "
                    "a personal access token) with the goals:read scope.",
                },
                "resource": [
                    {
                        "type": "Goal",
                        "profile": "http://hl7.org/fhir/StructureDefinition/Goal",
                        "interaction": [{"code": "read"}, {"code": "search-type"}],
                        "searchParam": [
                            {
                                "name": "patient",
                                "definition": "http://hl7.org/fhir/SearchParameter/clinical-patient",
                                "type": "reference",
                                "documentation": "The client whose goals to find.",
                            },
                            {
                                "name": "_count",
                                "type": "number",
                                "documentation": "Page size, 1..200 (default 50).",
                            },
                        ],
                    }
                ],
            }
        ],
    }
