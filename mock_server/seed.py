"""Loads a seed world (TOML) into the models: workspaces, keys, pathways, traces.

The ids here are the ones target profiles (`fixtures/reference.toml`) refer to; a unit test keeps
the two in agreement.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .model.auvy import ApiKey, AuvyModel, Pathway, Trace, Workspace
from .model.script import ScriptError, parse_script


class SeedError(ValueError):
    pass


WORKSPACE_STATES = ("active", "trial_expired", "cost_cap")


def load_auvy(model: AuvyModel, path: Path) -> None:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SeedError(f"cannot read seed world {path}: {exc}") from None
    try:
        for ws in raw.get("workspaces", []):
            if ws.get("state", "active") not in WORKSPACE_STATES:
                raise SeedError(f"workspace {ws['id']} has unknown state {ws['state']!r}")
            model.add_workspace(
                Workspace(
                    ws["id"], ws["slug"], ws.get("name", ws["slug"]), ws.get("state", "active")
                )
            )
        for key in raw.get("keys", []):
            if key["workspace"] not in model.workspaces:
                raise SeedError(f"key {key['token']} names unknown workspace {key['workspace']}")
            model.add_key(
                ApiKey(
                    key["token"], key["workspace"], frozenset(key.get("scopes", ["read", "write"]))
                )
            )
        for pw in raw.get("pathways", []):
            if pw["workspace"] not in model.workspaces:
                raise SeedError(f"pathway {pw['id']} names unknown workspace {pw['workspace']}")
            model.add_pathway(
                Pathway(
                    pw["id"],
                    pw["workspace"],
                    pw.get("name", pw["id"]),
                    parse_script(pw.get("script", []), f"pathway {pw.get('name', pw['id'])}"),
                    pw.get("step_ms"),
                )
            )
        for trace in raw.get("traces", []):
            if trace["workspace"] not in model.workspaces:
                raise SeedError(f"trace {trace['id']} names unknown workspace {trace['workspace']}")
            model.add_trace(Trace(trace["id"], trace["workspace"]))
    except KeyError as exc:
        raise SeedError(f"{path}: an entry lacks the key {exc}") from None
    except ScriptError as exc:
        raise SeedError(f"{path}: {exc}") from None


def describe_auvy(path: Path) -> list[str]:
    """Lines for the start-up banner: the credentials and ids a frontend developer needs."""
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError):
        return []
    slugs = {ws["id"]: ws["slug"] for ws in raw.get("workspaces", [])}
    lines = ["  auvy seed world:"]
    for key in raw.get("keys", []):
        scopes = ",".join(key.get("scopes", ["read", "write"]))
        lines.append(
            f"    key {key['token']}  workspace {slugs.get(key['workspace'], '?')} ({scopes})"
        )
    for pw in raw.get("pathways", []):
        lines.append(
            f"    pathway {pw['id']}  {pw.get('name', '')} ({slugs.get(pw['workspace'], '?')})"
        )
    for trace in raw.get("traces", []):
        lines.append(f"    trace {trace['id']} ({slugs.get(trace['workspace'], '?')})")
    return lines
