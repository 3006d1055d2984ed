from enum import StrEnum


class Role(StrEnum):
    CLIENT = "client"
    THERAPIST = "therapist"


class Scope(StrEnum):
    CLIENT = "client"
    THERAPIST = "therapist"
    GOALS_READ = "goals:read"
    GOALS_WRITE = "goals:write"
    REVIEWS_READ = "reviews:read"
    REVIEWS_WRITE = "reviews:write"
    ENCOURAGEMENTS_READ = "encouragements:read"
    ENCOURAGEMENTS_WRITE = "encouragements:write"


ROLE_SCOPES = frozenset({Scope.CLIENT, Scope.THERAPIST})
RESOURCE_SCOPES = (
    Scope.GOALS_READ,
    Scope.GOALS_WRITE,
    Scope.REVIEWS_READ,
    Scope.REVIEWS_WRITE,
    Scope.ENCOURAGEMENTS_READ,
    Scope.ENCOURAGEMENTS_WRITE,
)

SCOPE_DESCRIPTIONS = {
    Scope.CLIENT: "Act as a client (granted from the account's role).",
    Scope.THERAPIST: "Act as a therapist (granted from the account's role).",
    Scope.GOALS_READ: "Read goals, steps, progress and the dashboard.",
    Scope.GOALS_WRITE: "Create, update and delete goals and steps.",
    Scope.REVIEWS_READ: "Read reviews.",
    Scope.REVIEWS_WRITE: "Add reviews.",
    Scope.ENCOURAGEMENTS_READ: "Read encouragements.",
    Scope.ENCOURAGEMENTS_WRITE: "Send encouragements and mark them read.",
}


def parse_scope(raw: str | None) -> set[str]:
    return set(raw.split()) if raw else set()


def format_scopes(scopes: set[str] | frozenset[str]) -> list[str]:
    """Role scope first, then resource scopes in their documented order."""
    order = {str(s): i for i, s in enumerate((Scope.CLIENT, Scope.THERAPIST, *RESOURCE_SCOPES))}
    return sorted(scopes, key=lambda s: order.get(s, len(order)))
