"""Export and erase of one's own account (docs/integrators.md, "Privacy:
access log, export, erasure")."""

from __future__ import annotations

from fastapi import Response, status
from fastapi.responses import StreamingResponse

from app.auth.dependencies import principal_with
from app.auth.routing import domain_router
from app.core.errors import problem_responses
from app.core.sessions import SessionDep
from app.privacy.erase import erase_account
from app.privacy.export import export_document
from app.privacy.schemas import ExportDocument

router = domain_router(tags=["privacy"])
Caller = principal_with()


@router.get(
    "/me/export",
    operation_id="me_export",
    response_model=ExportDocument,
    responses=problem_responses(401),
)
async def export(principal: Caller) -> Response:
    """All of your data as one JSON document: the account (no password hash), care links,
    goals, steps, reviews, encouragements sent and received, personal tokens and webhooks (no
    secrets) and, for a client, the access log. Streamed: any size in constant memory."""
    return StreamingResponse(
        export_document(principal),
        media_type="application/json",
        headers={"Content-Disposition": 'attachment; filename="waypoint-export.json"'},
    )


@router.delete(
    "/me",
    operation_id="me_delete",
    status_code=status.HTTP_204_NO_CONTENT,
    responses=problem_responses(401),
)
async def erase(principal: Caller, session: SessionDep) -> Response:
    """Erase your account for good. A client's goals, steps, reviews and encouragements are
    deleted (linked therapists' sync feeds get deletions); a therapist's links end, and what
    they wrote stays with their clients without an author. Every token stops at once."""
    await erase_account(session, principal)
    return Response(status_code=status.HTTP_204_NO_CONTENT)
