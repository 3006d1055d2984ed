"""Goal Attainment Scaling: the Kiresuk-Sherman T-score (pure, no I/O)."""

from __future__ import annotations

import math
from collections.abc import Iterable

RHO = 0.3  # the conventional assumed correlation between goal scores


def t_score_from_sums(
    weighted_sum: float, sum_of_squared_weights: float, sum_of_weights: float, rho: float = RHO
) -> float | None:
    """T from the three sums sum(w*x), sum(w^2) and sum(w); null when there is no goal."""
    denominator = (1 - rho) * sum_of_squared_weights + rho * sum_of_weights**2
    if denominator <= 0:
        return None
    return round(50 + 10 * weighted_sum / math.sqrt(denominator), 1)


def gas_t_score(scores: Iterable[tuple[int, int]], rho: float = RHO) -> float | None:
    """``T = 50 + 10 * sum(w_i x_i) / sqrt((1 - rho) * sum(w_i^2) + rho * (sum w_i)^2)``.

    ``scores`` are ``(x_i, w_i)`` pairs: a goal's latest GAS score (-2..2) and its weight.
    Rounded to one decimal; null without scores.
    """
    pairs = list(scores)
    if not pairs:
        return None
    return t_score_from_sums(
        sum(w * x for x, w in pairs), sum(w * w for _, w in pairs), sum(w for _, w in pairs), rho
    )
