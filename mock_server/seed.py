"""Loads a seed world (TOML) into the models: workspaces, keys, pathways, traces.

The ids here are the ones target profiles (`fixtures/reference.toml`) refer to; a unit test keeps
the two in agreement.
"""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from .model.auvy import ApiKey, AuvyModel, Pathway, Trace, Workspace
from .model.ava import AvaModel, Tenant, Worker, parse_worker_script
from .model.receptors import Receptor, Receptors, ShareToken, default_customization
from .model.script import ScriptError, parse_script
from .model.strait import ApiKey as StraitKey
from .model.strait import Behaviour, StraitModel
from .model.strait import Job as StraitJob
from .model.strait import Project as StraitProject


class SeedError(ValueError):
    pass


WORKSPACE_STATES = ("active", "trial_expired", "cost_cap")


def load_auvy(model: AuvyModel, path: Path, receptors: Receptors | None = None) -> None:
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
            limit = key.get("rate_limit")
            model.add_key(
                ApiKey(
                    key["token"],
                    key["workspace"],
                    frozenset(key.get("scopes", ["read", "write"])),
                    (int(limit["requests"]), int(limit["window_s"] * 1000)) if limit else None,
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
        model.jwt_secret = raw.get("jwt", {}).get("secret")
        if receptors is not None:
            _load_receptors(receptors, raw)
    except KeyError as exc:
        raise SeedError(f"{path}: an entry lacks the key {exc}") from None
    except (ScriptError, ValueError) as exc:
        raise SeedError(f"{path}: {exc}") from None


def _load_receptors(receptors: Receptors, raw: dict[str, Any]) -> None:
    for rc in raw.get("receptors", []):
        name = rc.get("name", rc["slug"])
        customization = default_customization(name)
        customization.update(rc.get("customization", {}))
        receptors.add(
            Receptor(
                rc["id"],
                rc["workspace"],
                rc["slug"],
                name,
                rc["pathway"],
                bool(rc.get("allow_files", True)),
                customization,
            )
        )
    for share in raw.get("shares", []):
        status = share.get("status", "active")
        if status not in ("active", "revoked", "rotated"):
            raise SeedError(f"share {share['token']} has unknown status {status!r}")
        receptors.add_share(ShareToken(share["token"], share["receptor"], 0, status))


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
    slugs_by_receptor = {
        rc["id"]: f"{slugs.get(rc['workspace'], '?')}/{rc['slug']}"
        for rc in raw.get("receptors", [])
    }
    for share in raw.get("shares", []):
        if share.get("status", "active") == "active":
            where = slugs_by_receptor.get(share["receptor"], "?")
            lines.append(f"    share token {share['token']}  receptor {where}")
    return lines


def _ava_raw(path: Path) -> dict[str, Any]:
    try:
        raw: dict[str, Any] = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError) as exc:
        raise SeedError(f"cannot read seed world {path}: {exc}") from None
    return raw


def load_ava(model: AvaModel, path: Path) -> None:
    raw = _ava_raw(path)
    try:
        secret = raw.get("auth", {}).get("internal_secret")
        if not isinstance(secret, str) or not secret:
            raise SeedError(f"{path}: [auth] internal_secret must be a non-empty string")
        model.secret = secret
        for tenant in raw.get("tenants", []):
            limit = tenant.get("max_concurrent")
            if limit is not None and (not isinstance(limit, int) or limit < 1):
                raise SeedError(f"tenant {tenant['id']}: max_concurrent must be positive")
            model.add_tenant(
                Tenant(
                    tenant["id"],
                    tenant.get("name", tenant["id"]),
                    limit,
                    bool(tenant.get("suspended", False)),
                )
            )
        for worker in raw.get("workers", []):
            if worker["tenant"] not in model.tenants:
                raise SeedError(f"worker {worker['id']} names unknown tenant {worker['tenant']}")
            step_ms = worker.get("step_ms")
            if step_ms is not None and (not isinstance(step_ms, int) or step_ms < 0):
                raise SeedError(f"worker {worker['id']}: step_ms must be a non-negative integer")
            model.add_worker(
                Worker(
                    worker["id"],
                    worker["tenant"],
                    worker.get("name", worker["id"]),
                    parse_worker_script(worker.get("script", []), f"worker {worker['id']}"),
                    worker.get("step_ms"),
                )
            )
    except KeyError as exc:
        raise SeedError(f"{path}: an entry lacks the key {exc}") from None
    except (ScriptError, ValueError, AttributeError, TypeError) as exc:
        raise SeedError(f"{path}: {exc}") from None


def describe_ava(path: Path) -> list[str]:
    """Banner lines: the secret, the tenants and the workers a frontend developer needs."""
    try:
        raw = _ava_raw(path)
    except SeedError:
        return []
    lines = ["  ava seed world:"]
    lines.append(f"    x-internal-secret: {raw.get('auth', {}).get('internal_secret', '?')}")
    for tenant in raw.get("tenants", []):
        notes = []
        if "max_concurrent" in tenant:
            notes.append(f"max {tenant['max_concurrent']} at once")
        if tenant.get("suspended"):
            notes.append("suspended")
        extra = f" ({', '.join(notes)})" if notes else ""
        lines.append(f"    tenant {tenant.get('id', '?')}{extra}")
    for worker in raw.get("workers", []):
        lines.append(
            f"    worker {worker.get('id', '?')}  {worker.get('name', '')} "
            f"({worker.get('tenant', '?')})"
        )
    lines.append("    roles: any for reads; tenant-system-admin or higher for writes")
    return lines


_STRAIT_JOB_INTS = (
    "max_attempts",
    "timeout_secs",
    "retry_initial_delay_secs",
    "retry_max_delay_secs",
    "ticks",
    "fail_attempts",
    "wait_ticks",
    "spawn_count",
    "continue_depth",
    "version",
)


def load_strait(model: StraitModel, path: Path) -> None:
    raw = _ava_raw(path)
    try:
        for project in raw.get("projects", []):
            model.add_project(StraitProject(project["id"], project.get("name", project["id"])))
        for key in raw.get("keys", []):
            model.add_key(StraitKey(key["id"], key["token"], key["project"]))
        for job in raw.get("jobs", []):
            ints = {name: job[name] for name in _STRAIT_JOB_INTS if name in job}
            for name, value in ints.items():
                if isinstance(value, bool) or not isinstance(value, int) or value < 0:
                    raise SeedError(f"job {job['id']}: {name} must be a non-negative integer")
            if job.get("retry_backoff", "exponential") not in ("fixed", "exponential"):
                raise SeedError(f"job {job['id']}: retry_backoff must be fixed or exponential")
            model.add_job(
                StraitJob(
                    job["id"],
                    job["project"],
                    job.get("name", job["id"]),
                    Behaviour(job.get("behaviour", "complete")),
                    retry_backoff=job.get("retry_backoff", "exponential"),
                    spawn_job=job.get("spawn_job"),
                    depends_on=tuple(job.get("depends_on", ())),
                    result=dict(job.get("result", {})),
                    **ints,
                )
            )
        model.check_spawns()
    except KeyError as exc:
        raise SeedError(f"{path}: an entry lacks the key {exc}") from None
    except (ValueError, AttributeError, TypeError) as exc:
        raise SeedError(f"{path}: {exc}") from None


def describe_strait(path: Path) -> list[str]:
    """Banner lines: the keys and the jobs a frontend developer needs."""
    try:
        raw = _ava_raw(path)
    except SeedError:
        return []
    lines = ["  strait seed world:"]
    for key in raw.get("keys", []):
        lines.append(f"    key {key.get('token', '?')}  project {key.get('project', '?')}")
    for job in raw.get("jobs", []):
        lines.append(f"    job {job.get('id', '?')}  {job.get('name', '')}")
    return lines
