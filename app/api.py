"""Every route of the API, added to the application's own router.

Each domain router carries its ``/v1`` prefix and route class (authenticated by default, see
``AuthenticatedRoute``). Their routes are added to the app's router as they are, not through
``include_router``: FastAPI 0.16x matches included routers lazily, walking the nested routers
twice per request, a cost every request paid (bench/README.md, "Figures behind the code's
comments").
"""

from fastapi import APIRouter, FastAPI

from app.accesslog import router as accesslog
from app.account import router as account
from app.auth import router as auth
from app.carelinks import router as carelinks
from app.dashboard import router as dashboard
from app.encouragements import router as encouragements
from app.fhir import router as fhir
from app.goals import router as goals
from app.health import router as health
from app.notifications import router as notifications
from app.privacy import router as privacy
from app.progress import router as progress
from app.reviews import router as reviews
from app.steps import router as steps
from app.sync import router as sync
from app.webhooks import router as webhooks

ROUTERS: tuple[APIRouter, ...] = (
    health.router,
    auth.public_router,
    auth.router,
    account.public_router,
    account.router,
    sync.router,  # early: a follower with nothing new is a hot, cheap request
    privacy.router,
    accesslog.router,
    carelinks.router,
    goals.router,
    steps.router,
    reviews.router,
    encouragements.router,
    progress.router,
    dashboard.router,
    webhooks.router,
    notifications.router,
    notifications.public_router,
    fhir.router,
    fhir.public_router,  # last: its catch-all answers the rest of /v1/fhir/
)


def add_routes(app: FastAPI, *routers: APIRouter) -> None:
    """Add the routers' routes (already prefixed) to the application's router, in order."""
    app.router.routes.extend(route for router in routers for route in router.routes)
