"""The suite must not share code with the reference server it ships: a bug in shared code would
make both wrong in the same way, and the suite would call the pair conformant. conformance/server.py
starts the server as a subprocess by module name only."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "conformance"
FORBIDDEN = "mock_server"


def _forbidden(name: str | None) -> bool:
    return name is not None and (name == FORBIDDEN or name.startswith(FORBIDDEN + "."))


def imports_of_server(source: str, filename: str = "<source>") -> list[str]:
    """Every way `source` imports the reference server: import statements at any depth (inside
    functions too) and import_module/__import__ calls with a literal name."""
    found = []
    for node in ast.walk(ast.parse(source, filename)):
        if isinstance(node, ast.Import):
            found += [
                f"line {node.lineno}: import {a.name}" for a in node.names if _forbidden(a.name)
            ]
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and _forbidden(node.module):
            found.append(f"line {node.lineno}: from {node.module} import ...")
        elif isinstance(node, ast.Call) and node.args:
            func = node.func
            name = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", "")
            arg = node.args[0]
            if (
                name in ("import_module", "__import__")
                and isinstance(arg, ast.Constant)
                and isinstance(arg.value, str)
                and _forbidden(arg.value)
            ):
                found.append(f"line {node.lineno}: {name}({arg.value!r})")
    return found


MODULES = sorted(PACKAGE.rglob("*.py"))


def test_the_scan_sees_the_whole_package() -> None:
    names = {p.relative_to(PACKAGE).as_posix() for p in MODULES}
    assert {"checks.py", "server.py", "clients/http.py", "plugin.py"} <= names


@pytest.mark.parametrize(
    "source",
    [
        "import mock_server\n",
        "import os, mock_server.model.stream_id as s\n",
        "from mock_server.model.stream_id import StreamId\n",
        "def f():\n    from mock_server import faults\n",
        "import importlib\nimportlib.import_module('mock_server.app')\n",
        "__import__('mock_server')\n",
    ],
)
def test_the_scan_catches_every_form_of_import(source: str) -> None:
    assert imports_of_server(source)


@pytest.mark.parametrize(
    "source",
    [
        "import mock_server_client\n",
        "from .mock_server import x\n",
        "MODULE = 'mock_server'  # a subprocess's -m argument\n",
    ],
)
def test_the_scan_ignores_what_is_not_an_import_of_it(source: str) -> None:
    assert not imports_of_server(source)


@pytest.mark.parametrize("path", MODULES, ids=lambda p: p.relative_to(PACKAGE).as_posix())
def test_no_conformance_module_imports_the_reference_server(path: Path) -> None:
    found = imports_of_server(path.read_text(encoding="utf-8"), str(path))
    assert not found, f"{path.relative_to(PACKAGE.parent)} imports {FORBIDDEN}: {found}"
