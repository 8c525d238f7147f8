"""Percentiles and latency summaries."""

from __future__ import annotations

import pytest

from bench.stats import Latency, median, percentile, ratio


def test_the_ends_are_the_minimum_and_the_maximum() -> None:
    values = [5.0, 1.0, 3.0]
    assert percentile(values, 0) == 1.0
    assert percentile(values, 100) == 5.0


def test_between_ranks_it_interpolates_linearly() -> None:
    # numpy.percentile([1, 2, 3, 4], 50) == 2.5; ([1, 2, 3, 4], 90) == 3.7
    assert percentile([4.0, 3.0, 2.0, 1.0], 50) == 2.5
    assert percentile([1.0, 2.0, 3.0, 4.0], 90) == pytest.approx(3.7)


def test_p99_of_a_hundred_values_sits_just_below_the_largest() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 99) == pytest.approx(99.01)


def test_a_single_value_is_every_percentile() -> None:
    assert [percentile([7.0], p) for p in (0, 50, 99, 100)] == [7.0] * 4


@pytest.mark.parametrize(("values", "p"), [([], 50), ([1.0], -1), ([1.0], 101)])
def test_bad_input_is_refused(values: list[float], p: float) -> None:
    with pytest.raises(ValueError):
        percentile(values, p)


def test_median_of_an_even_count() -> None:
    assert median([1.0, 10.0]) == 5.5


def test_latency_summary() -> None:
    lat = Latency.of([2.0, 1.0, 4.0, 3.0])
    assert (lat.count, lat.p50_ms, lat.max_ms, lat.mean_ms) == (4, 2.5, 4.0, 2.5)
    assert lat.as_dict()["p99_ms"] == round(percentile([1.0, 2.0, 3.0, 4.0], 99), 3)


def test_latency_of_nothing_is_an_error() -> None:
    with pytest.raises(ValueError):
        Latency.of([])


@pytest.mark.parametrize(
    ("numerator", "denominator", "expected"),
    [(3.0, 4.0, 0.75), (None, 4.0, None), (3.0, None, None), (3.0, 0.0, None)],
)
def test_ratio_is_missing_rather_than_wrong(
    numerator: float | None, denominator: float | None, expected: float | None
) -> None:
    assert ratio(numerator, denominator) == expected
