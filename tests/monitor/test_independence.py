"""The monitor judges deployments by the documents, like the suite: it must not share code with
the reference server either (its status tables are the suite's, not the server's model)."""

from __future__ import annotations

from pathlib import Path

from tests.conformance.test_independence import imports_of_server

PACKAGE = Path(__file__).resolve().parents[2] / "monitor"


def test_the_monitor_imports_nothing_from_the_reference_server() -> None:
    modules = sorted(PACKAGE.rglob("*.py"))
    assert len(modules) > 5
    found = {
        str(path.relative_to(PACKAGE)): hits
        for path in modules
        if (hits := imports_of_server(path.read_text(encoding="utf-8"), str(path)))
    }
    assert not found, found
