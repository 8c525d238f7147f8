"""`create_app`: the ASGI application serving every API, the control routes and CORS."""

from __future__ import annotations

import asyncio
import contextlib
import re
from collections.abc import AsyncIterator, Sequence
from dataclasses import replace

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Mount
from starlette.types import ASGIApp

from .clock import Clock
from .control import control_app
from .cors import OpenCORS
from .errors import RouteNotFound
from .faults import FaultMiddleware
from .profile import AvaWebhook, ServerProfile
from .webhooks import Dispatcher, HttpxSender
from .world import APIS, World

EXPOSED_HEADERS = ["Retry-After", "X-Stream-Truncated", "Allow", "X-Request-Id"]


async def drive(world: World) -> None:
    """Run the model's timers as real time passes; sleeps until the next timer or a wake-up."""
    engine = world.engine
    wake = asyncio.Event()
    engine.scheduler.on_schedule = wake.set
    try:
        while True:
            engine.run_due()
            due = engine.scheduler.next_due()
            timeout = None
            if due is not None and not engine.clock.manual:
                timeout = max(0.0, (due - engine.now()) / 1000)
            wake.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(wake.wait(), timeout=timeout)
    finally:
        engine.scheduler.on_schedule = None


def with_ava_webhooks(profile: ServerProfile, urls: Sequence[str]) -> ServerProfile:
    if not urls:
        return profile
    bad = [u for u in urls if not u.startswith(("http://", "https://"))]
    if bad:
        raise ValueError(f"--ava-webhook needs an http(s) URL, not {bad[0]!r}")
    secret = profile.ava.webhook_secret
    extra = tuple(AvaWebhook(url, secret) for url in urls)
    return replace(profile, ava=replace(profile.ava, webhooks=profile.ava.webhooks + extra))


def _mount(prefix: str, app: ASGIApp) -> Mount:
    """A Mount whose path pattern also matches a newline (%0A) in a path parameter: Starlette's
    `.*` stops at one, which turned such requests into a bare 404 "no route" instead of the
    operation's own answer (found by the property suite's generated ids)."""
    mount = Mount(prefix, app=app)
    mount.path_regex = re.compile(mount.path_regex.pattern, re.DOTALL)
    return mount


def create_app(
    profile: ServerProfile | None = None,
    *,
    clock: Clock | None = None,
    apis: Sequence[str] = APIS,
    root_api: str | None = None,
    faults: Sequence[str] = (),
    ava_webhooks: Sequence[str] = (),
    store: str | None = None,
) -> Starlette:
    """Serve every API under its prefix (/auvy, ...), or `root_api` alone at the root.

    `ava_webhooks` are extra AVA webhook URLs (--ava-webhook), signed with the profile's
    webhook_secret; like the profile's own endpoints, they survive /_mock/reset.
    `store` (redis://HOST:PORT/DB) shares the world with every worker using the same Redis."""
    profile = with_ava_webhooks(profile or ServerProfile.load(), ava_webhooks)
    shared = None
    innermost: list[Middleware] = []
    if store is None:
        world = World(profile, clock=clock, apis=apis)
    else:
        # redis-py is needed only with a store.
        from .store.shared import SectionMiddleware, open_store

        shared = open_store(store, profile)
        world = World(profile, apis=apis, engine=shared.engine, streams=shared.streams)
        shared.attach(world, limiter=world.auvy_app.limiter)
        # Innermost, so the handler runs in the task that holds the section.
        innermost.append(Middleware(SectionMiddleware, shared=shared))
    served: dict[str, ASGIApp] = {
        "auvy": world.auvy_app,
        "ava": world.ava_app,
        "strait": world.strait_app,
    }
    mounts = [Mount("/_mock", app=control_app(world))]
    if root_api is not None:
        if root_api not in served:
            raise ValueError(f"unknown API {root_api}; known: {', '.join(sorted(served))}")
        mounts.append(_mount("", served[root_api]))
    else:
        mounts.extend(_mount(f"/{name}", served[name]) for name in world.apis)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        sender = HttpxSender(world.profile.ava.webhook_timeout_ms / 1000)
        if shared is None:
            task = asyncio.create_task(drive(world))
            dispatcher = Dispatcher(world.engine, world.ava_outbox, sender)
        else:
            await shared.start()  # it drives the timers itself, under the shared lock
            task = None
            dispatcher = Dispatcher(world.engine, world.ava_outbox, sender, section=shared.section)
        webhooks = asyncio.create_task(dispatcher.run())
        try:
            yield
        finally:
            for running in (webhooks, task):
                if running is None:
                    continue
                running.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await running
            await sender.aclose()
            if shared is not None:
                await shared.stop()

    async def not_found(request: Request, _: Exception) -> JSONResponse:
        # Outside any API prefix there is no envelope to follow; say where the APIs live.
        exc = RouteNotFound(request.method, request.url.path)
        prefixes = [f"/{a}" for a in world.apis] if root_api is None else ["/"]
        return JSONResponse(
            {"code": "NOT_FOUND", "message": str(exc), "apis": prefixes}, status_code=404
        )

    middleware = []
    if faults:
        # Outermost but for CORS, so a fault is seen exactly as a browser or client would see it.
        first_key = next(iter(world.auvy.keys), None)
        middleware.append(
            Middleware(
                FaultMiddleware, faults=faults, first_key=first_key, receptors=world.receptors
            )
        )
    app = Starlette(
        routes=mounts,
        middleware=[
            Middleware(
                OpenCORS,
                allow_origins=["*"],
                allow_methods=["*"],
                allow_headers=["*"],
                expose_headers=EXPOSED_HEADERS,
                max_age=600,
            ),
            *middleware,
            *innermost,
        ],
        lifespan=lifespan,
        exception_handlers={404: not_found},
    )
    app.state.world = world
    return app
