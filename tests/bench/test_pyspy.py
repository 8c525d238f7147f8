"""Reading py-spy's collapsed stacks and attributing samples to areas of the server."""

from __future__ import annotations

from bench.pyspy import OTHER, Profile, area_of, short, summary

SITE = "/venv/lib/python3.11/site-packages"
RAW = "\n".join(
    [
        f"run (/repo/mock_server/__main__.py:10);respond (/repo/mock_server/apis/base.py:60);"
        f"iter_errors ({SITE}/jsonschema/validators.py:300) 6",
        f"run (/repo/mock_server/__main__.py:10);respond (/repo/mock_server/apis/base.py:60);"
        f"render ({SITE}/starlette/responses.py:50);dumps (/usr/lib/python3.11/json/__init__.py:9)"
        " 3",
        f"run (/repo/mock_server/__main__.py:10);send ({SITE}/uvicorn/protocols/http/h.py:500) 1",
        "not a stack line",
    ]
)


def test_parse_reads_frames_and_counts_and_skips_other_lines() -> None:
    profile = Profile.parse(RAW)
    assert profile.samples == 10
    frames, count = profile.stacks[0]
    assert count == 6
    assert frames[-1] == f"iter_errors ({SITE}/jsonschema/validators.py)"  # line numbers dropped


def test_a_sample_counts_for_the_innermost_area_found() -> None:
    areas = dict(Profile.parse(RAW).areas())
    assert areas["JSON Schema validation (jsonschema, referencing)"] == 0.6
    assert areas["JSON encoding and decoding (json)"] == 0.3  # under Starlette, but json is inner
    assert areas["uvicorn (HTTP parsing, headers, socket writes)"] == 0.1


def test_a_stack_of_nothing_known_is_other() -> None:
    assert area_of(["main (/usr/lib/python3.11/runpy.py)"]) == OTHER


def test_top_functions_are_innermost_frames_with_short_paths() -> None:
    top = Profile.parse(RAW).top_functions(2)
    assert top == [
        ("iter_errors (jsonschema/validators.py)", 0.6),
        ("dumps (json/__init__.py)", 0.3),
    ]


def test_short_paths() -> None:
    assert short(f"f ({SITE}/starlette/routing.py)") == "f (starlette/routing.py)"
    assert short("g (/home/me/repo/mock_server/spec.py)") == "g (mock_server/spec.py)"


def test_summary_caps_busy_at_one() -> None:
    s = summary(Profile.parse(RAW), seconds=0.01, rate=100)
    assert s["samples"] == 10
    assert s["busy"] == 1.0
    assert s["areas"][0] == {
        "area": "JSON Schema validation (jsonschema, referencing)",
        "share": 0.6,
    }
