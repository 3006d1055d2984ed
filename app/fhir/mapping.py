"""A goal as a FHIR R4 ``Goal``: one function, from the goal's own GET document.

The table of the mapping is in docs/integrators.md ("FHIR R4"). Codes come from R4's value sets:
``goal-status`` (lifecycleStatus), ``goal-achievement`` and ``goal-priority``.
"""

from __future__ import annotations

from typing import Any

ACHIEVEMENT_SYSTEM = "http://terminology.hl7.org/CodeSystem/goal-achievement"
PRIORITY_SYSTEM = "http://terminology.hl7.org/CodeSystem/goal-priority"
EXTERNAL_ID_SYSTEM = "urn:waypoint:goal:external-id"

LIFECYCLE_STATUS = {
    "proposed": "proposed",
    "active": "active",
    "on_hold": "on-hold",
    "completed": "completed",
    "cancelled": "cancelled",
}
ACHIEVEMENT_DISPLAY = {
    "in-progress": "In Progress",
    "improving": "Improving",
    "worsening": "Worsening",
    "no-change": "No Change",
    "achieved": "Achieved",
    "sustaining": "Sustaining",
    "not-achieved": "Not Achieved",
    "no-progress": "No Progress",
    "not-attainable": "Not Attainable",
}
PRIORITY = {
    "high": ("high-priority", "High Priority"),
    "medium": ("medium-priority", "Medium Priority"),
    "low": ("low-priority", "Low Priority"),
}


def _date(timestamp: str | None) -> str | None:
    return timestamp[:10] if timestamp else None  # RFC 3339 UTC -> its (UTC) date


def fhir_goal(goal: dict[str, Any]) -> dict[str, Any]:
    """``goal``: the goal's document as its GET answers it, in its JSON form (ids, dates and
    timestamps as strings)."""
    client = goal["client_id"]
    resource: dict[str, Any] = {
        "resourceType": "Goal",
        "id": goal["id"],
        "meta": {"versionId": str(goal["version"]), "lastUpdated": goal["updated_at"]},
    }
    if goal["external_id"] is not None:
        resource["identifier"] = [{"system": EXTERNAL_ID_SYSTEM, "value": goal["external_id"]}]
    resource["lifecycleStatus"] = LIFECYCLE_STATUS[goal["status"]]
    if goal["achievement_status"] is not None:
        code = goal["achievement_status"].replace("_", "-")
        resource["achievementStatus"] = {
            "coding": [
                {"system": ACHIEVEMENT_SYSTEM, "code": code, "display": ACHIEVEMENT_DISPLAY[code]}
            ]
        }
    if goal["category"] is not None:
        resource["category"] = [{"text": goal["category"]}]
    if goal["priority"] is not None:
        code, display = PRIORITY[goal["priority"]]
        resource["priority"] = {
            "coding": [{"system": PRIORITY_SYSTEM, "code": code, "display": display}]
        }
    resource["description"] = {"text": goal["title"]}
    resource["subject"] = {"reference": f"Patient/{client}"}
    resource["startDate"] = _date(goal["created_at"])
    if goal["target_date"] is not None:
        resource["target"] = [{"dueDate": goal["target_date"]}]
    # When the status took effect: Waypoint keeps the moment of completion; for any other
    # status the last change of the goal is the latest it can have taken effect.
    resource["statusDate"] = _date(goal["completed_at"] or goal["updated_at"])
    author = goal["created_by"]
    if author is not None:
        kind = "Patient" if author == client else "Practitioner"
        resource["expressedBy"] = {"reference": f"{kind}/{author}"}
    notes = [
        text
        for label, field in (
            ("", "description"),
            ("Motivation: ", "motivation"),
            ("Success criteria: ", "success_criteria"),
        )
        if (text := f"{label}{goal[field]}" if goal[field] else None)
    ]
    if notes:
        resource["note"] = [{"text": text} for text in notes]
    return resource
