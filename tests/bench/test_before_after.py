"""How ``bench.before_after`` pairs its rounds: sides take turns going first, after / before
is taken round by round, and each side's make bench targets are the median of its own rounds'
ratios."""

from bench.before_after import round_order, round_ratios, side_targets
from bench.wrk import WrkResult, combine


def rounds(*rps: float, p99: float = 50.0) -> WrkResult:
    return combine([WrkResult(requests=100, rps=x, p50_ms=1000 / x, p99_ms=p99) for x in rps])


def test_the_side_that_goes_first_alternates():
    assert [round_order(n)[0] for n in (1, 2, 3, 4)] == ["after", "before", "after", "before"]
    assert sorted(round_order(2)) == ["after", "before"]


def test_after_over_before_round_by_round():
    assert round_ratios(rounds(110, 60, 200), rounds(100, 50, 250)) == [1.1, 1.2, 0.8]


def test_targets_per_side_are_medians_of_the_rounds_ratios():
    results = {
        "ceiling": rounds(1000, 500, 1000),
        "list": rounds(400, 100, 250),  # 0.40, 0.20, 0.25: median 0.25 (medians: 250/1000)
        "first": rounds(100, 100, 100),
        "deep": rounds(100, 100, 100),
        "bare": rounds(200, 200, 200),
        "create": rounds(130, 120, 110, p99=120),
    }
    found = {c.name: c for c in side_targets(results)}
    assert found["list rps / ceiling rps"].value == "0.25"
    assert not found["list rps / ceiling rps"].passed
    assert found["create rps / bare insert rps"].value == "0.60"
    assert found["create rps / bare insert rps"].passed
    assert found["deep p50 / first page p50"].passed
    assert found["list p99"].passed


def test_a_skipped_scenario_leaves_its_target_unmeasured():
    results = {"ceiling": rounds(1000), "list": rounds(400)}
    found = {c.name: c for c in side_targets(results)}
    assert found["create rps / bare insert rps"].value == "not measured"
    assert not found["create rps / bare insert rps"].passed
    assert found["list rps / ceiling rps"].passed
