"""The review document: declared once by ``ReviewOut``."""

from __future__ import annotations

from typing import Any

from app.core.documents import Document
from app.models import Review
from app.reviews.schemas import ReviewOut

REVIEW = Document(ReviewOut)
REVIEW_COLUMNS = tuple(Review.__table__.c[name] for name in REVIEW.columns)


def review_document(row: Any) -> dict[str, Any]:
    """A review (Core row or ORM object) as its own GET answers it."""
    return REVIEW.render(row)
