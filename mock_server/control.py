"""Test-only control routes under /_mock/: health, reset, the clock, forced outcomes.

For the project's own tests and for frontend developers (moto's /moto-api in spirit). The
conformance suite never depends on them, since a real deployment has none.
"""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from typing import Any

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from .clock import iso
from .model.ava import job_record
from .model.errors import IllegalTransition, InvalidInput, NotFound
from .model.outbox import render_delivery
from .model.strait import run_record
from .world import World


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


Endpoint = Callable[[Request], Awaitable[JSONResponse]]


def _guard(fn: Endpoint) -> Endpoint:
    async def wrapped(request: Request) -> JSONResponse:
        try:
            return await fn(request)
        except NotFound as exc:
            return _error(404, exc.message)
        except IllegalTransition as exc:
            return _error(409, exc.message)
        except (InvalidInput, ValueError) as exc:
            return _error(400, str(exc))

    return wrapped


def control_app(world: World) -> Starlette:
    async def health(_: Request) -> JSONResponse:
        return JSONResponse({"status": "ok", "apis": sorted(world.apis)})

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
        return JSONResponse(
            {"jobs": [app.render(j) | {"workspace_id": j.workspace_id} for j in jobs]}
        )

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

    return [Route("/strait/runs", _guard(runs), methods=["GET"])]
