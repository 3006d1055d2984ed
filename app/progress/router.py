from fastapi import APIRouter

from app.auth.routing import AuthenticatedRoute

router = APIRouter(route_class=AuthenticatedRoute, tags=["progress"])
