"""The /v1 router: every domain router, authenticated by default (see ``AuthenticatedRoute``)."""

from fastapi import APIRouter

from app.accesslog import router as accesslog
from app.auth import router as auth
from app.carelinks import router as carelinks
from app.dashboard import router as dashboard
from app.encouragements import router as encouragements
from app.goals import router as goals
from app.progress import router as progress
from app.reviews import router as reviews
from app.steps import router as steps

api_router = APIRouter(prefix="/v1")
api_router.include_router(auth.public_router)
api_router.include_router(auth.router)
for domain in (accesslog, carelinks, goals, steps, reviews, encouragements, progress, dashboard):
    api_router.include_router(domain.router)
