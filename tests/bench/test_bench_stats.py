"""The statistics ``make bench`` judges its targets by (bench/wrk.py)."""

from bench.wrk import WrkResult, combine, paired_ratio


def rounds(*rps: float) -> WrkResult:
    return combine([WrkResult(requests=100, rps=x, p50_ms=1000 / x) for x in rps])


def test_a_ratio_is_taken_round_by_round():
    """Each round's ratio, then their median: 0.95, 0.70 and 1.27 give 0.95, where the
    medians of the two scenarios (140 / 150) would pair rounds measured minutes apart."""
    create = rounds(100, 200, 150)
    hooked = rounds(95, 140, 190)
    assert paired_ratio(hooked, create, "rps") == 0.95
    assert round(hooked.rps / create.rps, 3) == 0.933
    assert round(paired_ratio(create, hooked, "p50_ms"), 3) == 0.95


def test_one_disturbed_round_moves_nothing():
    create = rounds(200, 200, 200)
    hooked = rounds(190, 40, 190)  # a round the machine stalled in
    assert paired_ratio(hooked, create, "rps") == 0.95


def test_without_rounds_on_both_sides_the_medians_are_compared():
    single = WrkResult(requests=10, rps=90.0)
    assert paired_ratio(single, rounds(100, 100, 100), "rps") == 0.9
