"""The goal of a path (``/goals/{goal_id}/...``), loaded and authorized before the handler
runs: a route that takes ``ReadableGoal`` (or ``WritableGoal``, ``DeletableGoal``) cannot
forget the visibility rule, and what the caller may not see is 404."""

from collections.abc import Awaitable, Callable
from typing import Annotated, Any

import sqlalchemy as sa
from fastapi import Depends, Request, Security

from app.auth.dependencies import Principal, authenticate
from app.auth.scopes import Scope
from app.goals.access import deletable_goals, goal_from_path, readable_goals, writable_goals
from app.models import Goal

Rule = Callable[[Principal], sa.ColumnElement[bool]]


def _goal_loader(scope: Scope, rule: Rule, for_update: bool) -> Callable[..., Awaitable[Goal]]:
    async def load(
        goal_id: str,
        request: Request,
        principal: Annotated[Principal, Security(authenticate, scopes=[scope])],
    ) -> Goal:
        return await goal_from_path(
            request.state.session, principal, goal_id, clause=rule(principal), for_update=for_update
        )

    return load


def path_goal(scope: Scope, *, rule: Rule = readable_goals, for_update: bool = False) -> Any:
    """``Annotated`` alias of the path's goal: needs ``scope``, visible under ``rule``, and
    locked for the rest of the transaction when ``for_update`` (writes under the goal: its
    counters, positions and version change one writer at a time)."""
    return Annotated[Goal, Depends(_goal_loader(scope, rule, for_update))]


ReadableGoal = path_goal(Scope.GOALS_READ)
WritableGoal = path_goal(Scope.GOALS_WRITE, rule=writable_goals, for_update=True)
DeletableGoal = path_goal(Scope.GOALS_WRITE, rule=deletable_goals, for_update=True)
ReviewableGoal = path_goal(Scope.REVIEWS_READ)
GoalForReview = path_goal(Scope.REVIEWS_WRITE, rule=writable_goals, for_update=True)
