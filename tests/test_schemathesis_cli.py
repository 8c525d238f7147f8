"""fixtures/schemathesis.toml: the Schemathesis CLI itself (`st run`, every phase, `--checks all`)
passes against the reference server for each API, and the configuration's identities and fixture
ids are the ones fixtures/reference.toml names for the fuzz identities.

A deeper run: `ST_CLI_EXAMPLES=50 python -m pytest tests/test_schemathesis_cli.py` (examples per
operation; default 10). `ST_CLI_SEED=N` replays the seed a failing run printed.
"""

from __future__ import annotations

import os
import subprocess
import sys
import tomllib
from collections.abc import Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

import pytest

from conformance.server import ReferenceServer
from conformance.spec_check import spec_document

REPO = Path(__file__).resolve().parent.parent
CONFIG = REPO / "fixtures" / "schemathesis.toml"
REFERENCE = REPO / "fixtures" / "reference.toml"
SERVER_PROFILE = REPO / "fixtures" / "server" / "ci.toml"
APIS = ("auvy", "ava", "strait")
ST = Path(sys.executable).parent / "st"

EXAMPLES = int(os.environ.get("ST_CLI_EXAMPLES", "10"))
SEED = os.environ.get("ST_CLI_SEED")
# Per API; a 10-example run takes about 10 s, a 50-example one about 30 s.
TIMEOUT_S = 120 + 6 * EXAMPLES


@cache
def config() -> dict[str, Any]:
    return tomllib.loads(CONFIG.read_text(encoding="utf-8"))


@cache
def reference() -> dict[str, Any]:
    return tomllib.loads(REFERENCE.read_text(encoding="utf-8"))


def project(api: str) -> dict[str, Any]:
    """The configuration's [[project]] of `api`, which schemathesis picks by the spec's title."""
    title = spec_document(api)["info"]["title"]
    found: list[dict[str, Any]] = [p for p in config()["project"] if p["title"] == title]
    assert len(found) == 1, f"fixtures/schemathesis.toml needs one [[project]] titled {title!r}"
    return found[0]


def dictionary(project_table: Mapping[str, Any], key: str) -> list[str]:
    binding = project_table["parameters"][key]
    return list(config()["dictionaries"][binding["dictionary"]]["values"])


# --- the configuration agrees with the fuzz identities ------------------------------------------


def test_strait_runs_as_the_fuzz_project() -> None:
    fuzz = reference()["strait"]["fuzz"]
    strait = project("strait")
    assert strait["auth"]["openapi"]["bearerAuth"]["bearer"] == fuzz["key"]
    assert strait["parameters"]["query.project_id"] == fuzz["project_id"]
    assert dictionary(strait, "path.jobID") == [fuzz["complete"], fuzz["fatal"]]


def test_ava_runs_as_the_fuzz_tenant() -> None:
    fuzz = reference()["ava"]["fuzz"]
    ava = project("ava")
    assert ava["auth"]["openapi"]["internalSecret"]["api_key"] == reference()["ava"]["secret"]
    assert ava["headers"] == {
        "x-tenant-id": fuzz["tenant_id"],
        "x-user-id": fuzz["user_id"],
        "x-platform-role": fuzz["role"],
    }
    assert dictionary(ava, "body.worker_id") == [fuzz["complete"], fuzz["fail"]]


def test_auvy_runs_as_the_fuzz_workspace() -> None:
    fuzz = reference()["auvy"]["fuzz"]
    auvy = project("auvy")
    assert auvy["auth"]["openapi"]["bearerAuth"]["bearer"] == fuzz["key"]
    assert auvy["auth"]["openapi"]["shareToken"]["api_key"] == fuzz["share_token"]
    params = auvy["parameters"]
    assert params["path.workspace"] == fuzz["workspace"]
    assert params["path.slug"] == fuzz["receptor"]
    assert params["path.receptor_id"] == fuzz["receptor_id"]
    assert dictionary(auvy, "body.pathway_id") == [fuzz["complete"], fuzz["fail"]]
    assert dictionary(auvy, "body.workspace_id") == [fuzz["workspace_id"]]


def _operation_ids(api: str) -> set[str]:
    return {
        op["operationId"]
        for item in spec_document(api)["paths"].values()
        for method, op in item.items()
        if method in ("get", "post", "put", "patch", "delete")
    }


def _named(table: Mapping[str, Any]) -> Iterator[str]:
    ids = table.get("include-operation-id", [])
    yield from [ids] if isinstance(ids, str) else ids


@pytest.mark.parametrize("api", APIS)
def test_every_exception_names_operations_of_its_api(api: str) -> None:
    """Exceptions are per operation, and a renamed operation would silently drop its exception
    (schemathesis would match nothing)."""
    for exception in project(api).get("operations", []):
        assert "include-operation-id" in exception, exception
        assert set(_named(exception)) <= _operation_ids(api), exception


def test_the_dictionaries_are_bound_to_parameters_the_specs_declare() -> None:
    declared = {
        ("strait", "path.jobID"),
        ("ava", "body.worker_id"),
        ("auvy", "body.pathway_id"),
        ("auvy", "body.workspace_id"),
    }
    bound = {
        (api, key)
        for api in APIS
        for key, value in project(api).get("parameters", {}).items()
        if isinstance(value, dict)
    }
    assert bound == declared
    for api, key in declared:
        location, name = key.split(".", 1)
        assert _declares(api, location, name), f"{api} declares no {key}"


def _declares(api: str, location: str, name: str) -> bool:
    document = spec_document(api)
    if location == "body":
        return any(
            name in schema.get("properties", {})
            for schema in document["components"]["schemas"].values()
            if isinstance(schema, dict)
        )
    params = list(document["components"].get("parameters", {}).values())
    for item in document["paths"].values():
        for value in item.values():
            if isinstance(value, dict):
                params += value.get("parameters", [])
    return any(p.get("in") == location and p.get("name") == name for p in params)


# --- the CLI against the reference server ---------------------------------------------------------


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    srv = ReferenceServer(SERVER_PROFILE)
    url = srv.start()
    try:
        yield url
    finally:
        srv.stop()


def schema_location(api: str, server_url: str) -> list[str]:
    """The document the server serves, as a user would point `st run` at it: its `servers` is the
    URL it was reached at, so no `--url` is needed."""
    return [f"{server_url}/{api}/openapi.json"]


@pytest.mark.parametrize("api", APIS)
def test_the_cli_passes_every_phase_with_every_check(api: str, server: str, tmp_path: Path) -> None:
    if not ST.exists():
        pytest.fail(f"the schemathesis CLI is not installed beside {sys.executable}")
    command = [
        str(ST),
        "--config-file",
        str(CONFIG),
        "run",
        *schema_location(api, server),
        "--checks",
        "all",
        "--max-examples",
        str(EXAMPLES),
        "--no-color",
    ]
    if SEED is not None:
        command += ["--seed", SEED]
    try:
        # A scratch directory: st keeps its crash files and example database in the working one.
        result = subprocess.run(
            command,
            cwd=tmp_path,
            capture_output=True,
            text=True,
            timeout=TIMEOUT_S,
        )
    except subprocess.TimeoutExpired as exc:
        pytest.fail(f"st run did not finish within {TIMEOUT_S} s:\n{_text(exc.stdout)}")
    if result.returncode != 0:
        pytest.fail(
            f"{' '.join(command)}\nexited {result.returncode}:\n{result.stdout}\n{result.stderr}",
            pytrace=False,
        )
    assert "Stateful" in result.stdout and "API Links:" in result.stdout, result.stdout
    covered = _links_covered(result.stdout)
    assert covered > 0, f"the stateful phase followed no link:\n{result.stdout}"


def _links_covered(output: str) -> int:
    line = next(line for line in output.splitlines() if "API Links:" in line)
    return int(line.split("API Links:")[1].split("covered")[0])


def _text(value: str | bytes | None) -> str:
    if isinstance(value, bytes):
        return value.decode(errors="replace")
    return value or ""
