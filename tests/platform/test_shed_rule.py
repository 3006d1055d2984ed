"""The admission's shedding rule on a fake clock: no refusal while the worker keeps up with its
load, the strict rule only under real overload, and back to relaxed once it has passed."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from app.core.admission import (
    LOOP_TURNS,
    OVERLOAD_HOLD_SECONDS,
    QUEUE_SPREAD,
    RELAXED_LOOP_TURNS,
    SURGE,
    ShedRule,
)

LIMIT = 10
BOUND = 0.25  # the default WAYPOINT_MAX_QUEUE_WAIT_MS


def rule_after(service_seconds: float) -> ShedRule:
    rule = ShedRule(LIMIT, BOUND)
    rule.service_seconds = service_seconds
    return rule


@settings(max_examples=200, deadline=None)
@given(
    decisions=st.lists(
        st.tuples(
            st.floats(0.001, 0.06),  # how long the last request held its turn (a slow spell too)
            st.integers(0, 40),  # 50 connections, 10 served: at most 40 wait
            st.floats(0.0, 0.02),  # the loop's lag
            st.floats(0.0, 0.05),  # time to the next arrival
        ),
        min_size=1,
        max_size=300,
    )
)
def test_a_load_the_worker_keeps_up_with_is_never_refused(decisions):
    rule = ShedRule(LIMIT, BOUND)
    now = 1000.0
    for held, waiting, lag, gap in decisions:
        rule.served(held)
        assert not rule.refuse(now, lag, waiting)
        assert not rule.overloaded(now)
        now += gap


def test_the_rule_that_refused_a_steady_load_now_admits_it():
    """Issue 18's case: 40 waiting behind a slow spell. The plain estimate is near the bound;
    with the strict margins it is far over it, and only an overloaded worker applies them."""
    rule = rule_after(0.03)
    expected = rule.expected_wait(39)
    assert LOOP_TURNS * 0.005 + QUEUE_SPREAD * expected > BOUND  # the strict rule would refuse
    assert not rule.refuse(0.0, lag=0.005, waiting=39)


def test_a_surge_is_refused_at_once_and_makes_the_rule_strict():
    rule = rule_after(0.015)
    assert rule.expected_wait(390) > SURGE * BOUND
    assert rule.refuse(10.0, lag=0.0, waiting=390)  # hopeless
    assert rule.overloaded(10.0)
    # Overloaded: a queue the relaxed rule would let in is refused with the strict margins.
    assert rule.expected_wait(60) < BOUND < QUEUE_SPREAD * rule.expected_wait(60)
    assert rule.refuse(10.1, lag=0.0, waiting=60)
    assert not rule.refuse(10.1, lag=0.0, waiting=10)  # a short queue still gets in


def test_a_request_that_waited_the_bound_makes_the_rule_strict():
    rule = rule_after(0.02)
    assert not rule.refuse(5.0, lag=0.0, waiting=60)
    rule.timed_out(5.2)
    assert rule.overloaded(5.2)
    assert rule.refuse(5.3, lag=0.0, waiting=60)


def test_overload_ends_when_most_requests_get_in_again():
    rule = rule_after(0.02)
    rule.timed_out(0.0)
    now = 0.0
    while now < OVERLOAD_HOLD_SECONDS - 0.1:  # few refused among many admitted
        rule.refuse(now, lag=0.0, waiting=2)
        now += 0.01
    assert rule.refuse(now, lag=0.0, waiting=60)  # refused, but not "most"
    assert rule.refused_share < 0.5
    assert not rule.overloaded(OVERLOAD_HOLD_SECONDS + 0.01)
    assert not rule.refuse(OVERLOAD_HOLD_SECONDS + 0.01, lag=0.0, waiting=60)


def test_overload_lasts_while_most_requests_are_refused():
    rule = rule_after(0.02)
    assert rule.refuse(0.0, lag=0.0, waiting=400)
    now = 0.0
    for _ in range(1000):  # ten seconds of arrivals, nine in ten refused
        now += 0.01
        for waiting in (60, 60, 60, 60, 60, 60, 60, 60, 60, 1):
            rule.refuse(now, lag=0.0, waiting=waiting)
    assert rule.refused_share > 0.5
    assert rule.overloaded(now + OVERLOAD_HOLD_SECONDS / 2)
    assert not rule.overloaded(now + OVERLOAD_HOLD_SECONDS + 0.01)


def test_a_lagging_loop_is_refused_with_a_free_turn():
    rule = rule_after(0.01)
    assert rule.refuse(0.0, lag=SURGE * BOUND / RELAXED_LOOP_TURNS + 0.01, waiting=None)
    rule = rule_after(0.01)
    lag = 0.05  # within the relaxed rule, beyond the strict one
    assert RELAXED_LOOP_TURNS * lag < BOUND < LOOP_TURNS * lag
    assert not rule.refuse(0.0, lag=lag, waiting=None)
    rule.timed_out(0.0)
    assert rule.refuse(0.1, lag=lag, waiting=None)


def test_the_service_time_is_a_running_average():
    rule = ShedRule(LIMIT, BOUND)
    for _ in range(200):
        rule.served(0.02)
    assert abs(rule.service_seconds - 0.02) < 0.001
    assert abs(rule.expected_wait(9) - 10 * 0.02 / LIMIT) < 0.001
    rule.served(1.0)  # one slow request moves it, but does not make it
    assert rule.service_seconds < 0.1
