"""Test-only control routes under /_mock/: health, reset, the clock, forced outcomes.

For the project's own tests and for frontend developers (moto's /moto-api in spirit). The
conformance suite never depends on them, since a real deployment has none.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse, RedirectResponse, Response, StreamingResponse
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles

from . import scenarios, sse
from .clock import iso
from .model import auvy as auvy_model
from .model import ava as ava_model
from .model import strait as strait_model
from .model.ava import job_record, log_record
from .model.errors import IllegalTransition, InvalidInput, NotFound
from .model.outbox import render_delivery
from .model.strait import run_record
from .model.stream import Entry, ReadResult
from .model.stream_id import InvalidStreamId, StreamId
from .world import World

INSPECTOR = Path(__file__).resolve().parent / "inspector"


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


async def _json(request: Request) -> dict[str, Any]:
    raw = await request.body()
    if not raw.strip():
        return {}
    try:
        value = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError, RecursionError):
        raise InvalidInput("body", "body must be a JSON object") from None
    if not isinstance(value, dict):
        raise InvalidInput("body", "body must be a JSON object")
    return value


Endpoint = Callable[[Request], Awaitable[Response]]


def _guard(fn: Endpoint) -> Endpoint:
    async def wrapped(request: Request) -> Response:
        try:
            return await fn(request)
        except NotFound as exc:
            return _error(404, exc.message)
        except IllegalTransition as exc:
            return _error(409, exc.message)
        except (InvalidInput, ValueError) as exc:
            return _error(400, str(exc))

    return wrapped


def control_app(world: World, prefixes: Mapping[str, str] | None = None) -> Starlette:
    """`prefixes` maps each served API to where it is mounted ("" at the root); health lists
    each one's description and docs routes from it, for the inspector to link."""
    mounted = dict(prefixes) if prefixes is not None else {name: f"/{name}" for name in world.apis}
    described = {
        name: {
            "docs": f"{prefix}/docs",
            "openapi_json": f"{prefix}/openapi.json",
            "openapi_yaml": f"{prefix}/openapi.yaml",
        }
        for name, prefix in mounted.items()
    }

    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "apis": sorted(world.apis), "described": described})

    async def reset(_: Request) -> JSONResponse:
        world.reset()
        return JSONResponse({"status": "reset"})

    async def clock(_: Request) -> JSONResponse:
        now = world.engine.now()
        return JSONResponse({"now_ms": now, "now": iso(now), "manual": world.engine.clock.manual})

    async def advance(request: Request) -> JSONResponse:
        body = await _json(request)
        ms = body.get("ms")
        if not isinstance(ms, int) or isinstance(ms, bool) or ms < 0:
            raise InvalidInput("ms", "ms must be a non-negative integer")
        world.engine.clock.advance(ms)
        ran = world.engine.run_due()
        now = world.engine.now()
        return JSONResponse({"now_ms": now, "now": iso(now), "timers_run": ran})

    async def auvy_jobs(_: Request) -> JSONResponse:
        app = world.auvy_app
        jobs = sorted(world.auvy.jobs.values(), key=lambda j: -j.created_ms)
        pathways = world.auvy.pathways

        def extra(job: auvy_model.Job) -> dict[str, Any]:
            pathway = pathways.get(job.pathway_id or "")
            name = pathway.name if pathway is not None else None
            return {"workspace_id": job.workspace_id, "pathway_name": name}

        return JSONResponse({"jobs": [app.render(j) | extra(j) for j in jobs]})

    async def auvy_outcome(request: Request) -> JSONResponse:
        body = await _json(request)
        outcome = body.get("outcome")
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput("reason", "reason must be a string")
        job = world.auvy.force(request.path_params["job_id"], str(outcome), reason)
        return JSONResponse(world.auvy_app.render(job))

    async def auvy_workspace_state(request: Request) -> JSONResponse:
        body = await _json(request)
        ws_id = request.path_params["workspace_id"]
        if ws_id not in world.auvy.workspaces:
            raise NotFound("workspace", ws_id)
        state = body.get("state")
        if state not in ("active", "trial_expired", "cost_cap"):
            raise InvalidInput("state", "state must be active, trial_expired or cost_cap")
        world.auvy.set_workspace_state(ws_id, state)
        return JSONResponse({"workspace_id": ws_id, "state": state})

    routes = [
        Route("/health", _guard(health), methods=["GET"]),
        Route("/reset", _guard(reset), methods=["POST"]),
        Route("/clock", _guard(clock), methods=["GET"]),
        Route("/clock/advance", _guard(advance), methods=["POST"]),
        Route("/auvy/jobs", _guard(auvy_jobs), methods=["GET"]),
        Route("/auvy/jobs/{job_id}/outcome", _guard(auvy_outcome), methods=["POST"]),
        Route(
            "/auvy/workspaces/{workspace_id}/state", _guard(auvy_workspace_state), methods=["POST"]
        ),
        *ava_routes(world),
        *strait_routes(world),
        *inspector_routes(world),
    ]

    async def unknown(request: Request, exc: Exception) -> JSONResponse:
        status = getattr(exc, "status_code", 404)
        return _error(status, f"no control route {request.method} {request.url.path}")

    return Starlette(routes=routes, exception_handlers={404: unknown, 405: unknown})


def ava_routes(world: World) -> list[Route]:
    """AVA: every job, forced outcomes, webhook endpoints and what was delivered to them."""

    async def jobs(_: Request) -> JSONResponse:
        found = sorted(world.ava.jobs.values(), key=lambda j: (-j.created_ms, -j.seq))
        return JSONResponse({"jobs": [job_record(j) for j in found]})

    async def outcome(request: Request) -> JSONResponse:
        body = await _json(request)
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput("reason", "reason must be a string")
        job = world.ava.force(request.path_params["job_id"], str(body.get("outcome")), reason)
        return JSONResponse(job_record(job))

    def endpoints() -> JSONResponse:
        hooks = [{"url": e.url} for e in world.ava_outbox.endpoints]
        return JSONResponse({"webhooks": hooks})

    async def list_webhooks(_: Request) -> JSONResponse:
        return endpoints()

    async def add_webhook(request: Request) -> JSONResponse:
        body = await _json(request)
        url, secret = body.get("url"), body.get("secret", world.profile.ava.webhook_secret)
        if not isinstance(url, str) or not url.startswith(("http://", "https://")):
            raise InvalidInput("url", "url must be an http(s) URL")
        if not isinstance(secret, str) or not secret:
            raise InvalidInput("secret", "secret must be a non-empty string")
        world.ava_outbox.subscribe(url, secret)
        response = endpoints()
        response.status_code = 201
        return response

    async def deliveries(request: Request) -> JSONResponse:
        found = world.ava_outbox.deliveries(request.query_params.get("job_id"))
        return JSONResponse({"deliveries": [render_delivery(d) for d in found]})

    async def redeliver(request: Request) -> JSONResponse:
        ident = request.path_params["delivery_id"]
        delivery = world.ava_outbox.redeliver(ident, world.engine.now())
        return JSONResponse(render_delivery(delivery))

    return [
        Route("/ava/jobs", _guard(jobs), methods=["GET"]),
        Route("/ava/jobs/{job_id}/outcome", _guard(outcome), methods=["POST"]),
        Route("/ava/webhooks", _guard(list_webhooks), methods=["GET"]),
        Route("/ava/webhooks", _guard(add_webhook), methods=["POST"]),
        Route("/ava/webhooks/deliveries", _guard(deliveries), methods=["GET"]),
        Route("/ava/webhooks/deliveries/{delivery_id}/retry", _guard(redeliver), methods=["POST"]),
    ]


def strait_routes(world: World) -> list[Route]:
    """Strait: every run of every project, newest first."""

    async def runs(_: Request) -> JSONResponse:
        model = world.strait
        return JSONResponse([run_record(r, model.jobs.get(r.job_id)) for r in model.all_runs()])

    async def outcome(request: Request) -> JSONResponse:
        body = await _json(request)
        reason = body.get("reason")
        if reason is not None and not isinstance(reason, str):
            raise InvalidInput("reason", "reason must be a string")
        model = world.strait
        run = model.force(request.path_params["run_id"], str(body.get("outcome")), reason)
        return JSONResponse(run_record(run, model.jobs.get(run.job_id)))

    return [
        Route("/strait/runs", _guard(runs), methods=["GET"]),
        Route("/strait/runs/{run_id}/outcome", _guard(outcome), methods=["POST"]),
    ]


def _after(request: Request) -> StreamId | None:
    raw = request.query_params.get("after")
    if raw is None or raw == "":
        return None
    try:
        return StreamId.parse(raw)
    except InvalidStreamId as exc:
        raise InvalidInput("after", f"after: {exc}") from None


def _event_stream(
    world: World,
    key: str,
    read: Callable[[StreamId | None], ReadResult],
    after: StreamId | None,
    last: Callable[[Entry], bool],
    finished: Callable[[], bool],
    ping_s: float,
) -> Response:
    """An inspector event stream: the API streams' delivery over a control-route reader."""
    body = sse.deliver(
        world.engine,
        key,
        read,
        after=after,
        is_terminal_entry=last,
        is_finished=finished,
        ping_interval_s=ping_s,
        first=read(after),
    )
    return StreamingResponse(body, media_type="text/event-stream", headers=dict(sse.HEADERS))


def inspector_routes(world: World) -> list[Route | Mount]:
    """What the inspector page uses: each job's events as a stream, the outcomes each API can
    be forced to, scenario presets, and the page itself (static files, no build step)."""
    ping_s = world.profile.ping_interval_ms / 1000

    async def auvy_events(request: Request) -> Response:
        job = world.auvy.jobs.get(request.path_params["job_id"])
        if job is None:
            raise NotFound("job", request.path_params["job_id"])
        after = _after(request)
        # The API's own stream, without the workspace key: the same frames a UI would get.
        return world.auvy_app.stream(job, after.encode() if after is not None else None)

    async def ava_events(request: Request) -> Response:
        job_id = request.path_params["job_id"]
        if world.ava.jobs.get(job_id) is None:
            raise NotFound("job", job_id)
        after = _after(request)

        def read(cursor: StreamId | None) -> ReadResult:
            # AVA keeps a log, not a stream: line n (1-based) is entry 0-n.
            lines = world.ava.logs.get(job_id) or []
            start = cursor.seq if cursor is not None else 0
            entries = tuple(
                Entry(StreamId(0, n), {"type": "log", **log_record(line)})
                for n, line in enumerate(lines[start:], start + 1)
            )
            return ReadResult(entries, False, None)

        def finished() -> bool:
            job = world.ava.jobs.get(job_id)
            return job is None or job.terminal

        def last(entry: Entry) -> bool:
            # Ending on the last line of a finished job, not on the next keepalive.
            return finished() and entry.id.seq >= len(world.ava.logs.get(job_id) or [])

        return _event_stream(world, job_id, read, after, last, finished, ping_s)

    async def strait_events(request: Request) -> Response:
        run_id = request.path_params["run_id"]
        if run_id not in world.strait.runs:
            raise NotFound("run", run_id)
        after = _after(request)

        def finished() -> bool:
            run = world.strait.runs.get(run_id)
            return run is None or run.terminal

        def read(cursor: StreamId | None) -> ReadResult:
            return world.strait.read_stream(run_id, cursor)

        def last(entry: Entry) -> bool:
            return finished() and not read(entry.id).entries

        return _event_stream(world, run_id, read, after, last, finished, ping_s)

    async def outcomes(_: Request) -> JSONResponse:
        return JSONResponse(
            {
                "auvy": list(auvy_model.FORCED_OUTCOMES),
                "ava": list(ava_model.FORCED_OUTCOMES),
                "strait": list(strait_model.FORCED_OUTCOMES),
            }
        )

    async def list_scenarios(_: Request) -> JSONResponse:
        return JSONResponse({"scenarios": scenarios.describe()})

    async def load_bundled(request: Request) -> JSONResponse:
        name = request.path_params["name"]
        path = scenarios.SCENARIOS / f"{name}.toml"
        if not path.is_file() or path.parent != scenarios.SCENARIOS:
            raise NotFound("scenario", name)
        return JSONResponse(scenarios.apply(world, scenarios.load(path)))

    async def load_posted(request: Request) -> JSONResponse:
        body = await _json(request)
        text = body.get("toml")
        if not isinstance(text, str):
            raise InvalidInput("toml", "toml must be the scenario file's text")
        name = body.get("name", "posted")
        scenario = scenarios.parse(text, name if isinstance(name, str) else "posted")
        return JSONResponse(scenarios.apply(world, scenario))

    async def to_inspector(_: Request) -> Response:
        # Relative, so it works under whatever prefix the control app is mounted at.
        return RedirectResponse("inspector/", status_code=307)

    return [
        Route("/auvy/jobs/{job_id}/events", _guard(auvy_events), methods=["GET"]),
        Route("/ava/jobs/{job_id}/events", _guard(ava_events), methods=["GET"]),
        Route("/strait/runs/{run_id}/events", _guard(strait_events), methods=["GET"]),
        Route("/outcomes", _guard(outcomes), methods=["GET"]),
        Route("/scenarios", _guard(list_scenarios), methods=["GET"]),
        Route("/scenarios", _guard(load_posted), methods=["POST"]),
        Route("/scenarios/{name}", _guard(load_bundled), methods=["POST"]),
        Route("/", to_inspector, methods=["GET"]),
        Route("/inspector", to_inspector, methods=["GET"]),
        Mount("/inspector", app=StaticFiles(directory=INSPECTOR, html=True)),
    ]
