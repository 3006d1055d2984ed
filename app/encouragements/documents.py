"""The encouragement document: declared once by ``EncouragementOut``."""

from __future__ import annotations

from typing import Any

from app.core.documents import Document
from app.encouragements.schemas import EncouragementOut
from app.models import Encouragement

ENCOURAGEMENT = Document(EncouragementOut)
ENCOURAGEMENT_COLUMNS = tuple(Encouragement.__table__.c[n] for n in ENCOURAGEMENT.columns)


def encouragement_document(row: Any) -> dict[str, Any]:
    """An encouragement (Core row or ORM object) as the API shows it."""
    return ENCOURAGEMENT.render(row)
