"""The FHIR resources this API answers, as OpenAPI documents them (the subset it fills in).

The tests validate every answer against the full R4 models of ``fhir.resources``."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field

from app.core.openapi import Component


class FhirCoding(BaseModel):
    system: str
    code: str
    display: str | None = None


class FhirCodeableConcept(BaseModel):
    coding: list[FhirCoding] | None = None
    text: str | None = None


class FhirReference(BaseModel):
    reference: str = Field(examples=["Patient/0196b0a4-5c1e-7d2a-9f00-1b2c3d4e5f60"])


class FhirMeta(BaseModel):
    versionId: str  # noqa: N815  (FHIR's names)
    lastUpdated: str  # noqa: N815


class FhirIdentifier(BaseModel):
    system: str
    value: str


class FhirGoalTarget(BaseModel):
    dueDate: str  # noqa: N815


class FhirAnnotation(BaseModel):
    text: str


class FhirGoal(BaseModel):
    """A FHIR R4 Goal (https://hl7.org/fhir/R4/goal.html)."""

    resourceType: Literal["Goal"]  # noqa: N815
    id: str
    meta: FhirMeta
    identifier: list[FhirIdentifier] | None = None
    lifecycleStatus: Annotated[  # noqa: N815
        Literal["proposed", "active", "on-hold", "completed", "cancelled"],
        Component("FhirGoalLifecycleStatus"),
    ]
    achievementStatus: FhirCodeableConcept | None = None  # noqa: N815
    category: list[FhirCodeableConcept] | None = None
    priority: FhirCodeableConcept | None = None
    description: FhirCodeableConcept
    subject: FhirReference
    startDate: str  # noqa: N815
    target: list[FhirGoalTarget] | None = None
    statusDate: str  # noqa: N815
    expressedBy: FhirReference | None = None  # noqa: N815
    note: list[FhirAnnotation] | None = None


class FhirBundleLink(BaseModel):
    relation: Annotated[Literal["self", "next"], Component("FhirLinkRelation")]
    url: str


class FhirBundleSearch(BaseModel):
    mode: Literal["match"]


class FhirBundleEntry(BaseModel):
    fullUrl: str  # noqa: N815
    resource: FhirGoal
    search: FhirBundleSearch


class FhirGoalBundle(BaseModel):
    """A FHIR R4 searchset Bundle of Goals; `link` `next` leads to the next page."""

    resourceType: Literal["Bundle"]  # noqa: N815
    type: Literal["searchset"]
    link: list[FhirBundleLink]
    entry: list[FhirBundleEntry]


class FhirCapabilityStatement(BaseModel):
    """The server's FHIR R4 CapabilityStatement (https://hl7.org/fhir/R4/capabilitystatement.html)."""

    resourceType: Literal["CapabilityStatement"]  # noqa: N815
    status: str
    date: str
    kind: Literal["instance"]
    fhirVersion: str  # noqa: N815
    format: list[str]
    software: dict[str, str]
    implementation: dict[str, str]
    rest: list[dict[str, Any]]


class FhirIssue(BaseModel):
    severity: Annotated[
        Literal["fatal", "error", "warning", "information"], Component("FhirIssueSeverity")
    ]
    code: str = Field(examples=["not-found"])
    diagnostics: str | None = None


class OperationOutcome(BaseModel):
    """FHIR's error answer (https://hl7.org/fhir/R4/operationoutcome.html)."""

    resourceType: Literal["OperationOutcome"]  # noqa: N815
    issue: list[FhirIssue]
