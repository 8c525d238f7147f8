"""Reading pytest's closing line in scenario 5."""

from __future__ import annotations

from bench.scenarios.suite import counts


def test_the_last_summary_line_is_read() -> None:
    output = "....F.s\n=== 1 failed, 5 passed, 1 skipped, 2 errors in 25.59s ===\n"
    assert counts(output) == {"failed": 1, "passed": 5, "skipped": 1, "error": 2}


def test_quiet_output_without_rulers() -> None:
    assert counts("..\n612 passed in 62.55s (0:01:02)\n") == {"passed": 612}


def test_no_summary_no_counts() -> None:
    assert counts("INTERNALERROR> boom\n") == {}
