"""`create_app`: the ASGI application serving every API, the control routes and CORS."""

from __future__ import annotations

import asyncio
import contextlib
import functools
import re
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from dataclasses import replace
from types import MappingProxyType

from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse
from starlette.routing import BaseRoute, Mount, Route
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from .clock import Clock
from .control import control_app
from .cors import OpenCORS, with_vary_origin
from .describe import DescribedApi, index_routes
from .errors import Envelope, RouteNotFound
from .faults import FaultMiddleware
from .profile import AvaWebhook, ServerProfile
from .variants.wire import WireMiddleware
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


class MockServer(Starlette):
    """Starlette, with a direct way to the API apps for the requests that need nothing else.

    Under load most requests are API calls without an Origin header; for them Starlette's
    stack (error middleware, CORS, exception middleware, the router trying each Mount's regex)
    was a fifth of a request's time while it only added `Vary: Origin`. Such a request goes
    straight to its API app, with the scope a Mount would have given it, `Vary: Origin` added
    as OpenCORS adds it and the same plain 500 as ServerErrorMiddleware should the app raise.
    Everything else (an Origin, a preflight, /_mock, unknown paths, faults) takes the stack.
    """

    # Filled by create_app: first path segment -> (mount prefix, the app behind that Mount).
    direct: Mapping[str, tuple[str, ASGIApp]] = MappingProxyType({})
    # With a single API at the root: the app serving every path outside /_mock/.
    direct_root: ASGIApp | None = None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        target = self._direct_target(scope) if scope["type"] == "http" else None
        if target is None:
            await super().__call__(scope, receive, send)
            return
        prefix, app = target
        scope["app"] = self
        scope["router"] = self.router
        scope["app_root_path"] = ""
        scope["root_path"] = prefix
        scope["path_params"] = {}
        started = False

        async def send_with_vary(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
                message["headers"] = with_vary_origin(message.get("headers") or [])
            await send(message)

        try:
            await app(scope, receive, send_with_vary)
        except Exception:
            # ServerErrorMiddleware's answer (it sits outside CORS: no Vary), then re-raised
            # so the server logs it.
            if not started:
                await PlainTextResponse("Internal Server Error", status_code=500)(
                    scope, receive, send
                )
            raise

    def _direct_target(self, scope: Scope) -> tuple[str, ASGIApp] | None:
        if scope.get("root_path"):
            return None
        for name, _ in scope["headers"]:
            if name == b"origin":
                return None
        path: str = scope["path"]
        if self.direct_root is not None:
            if path.startswith("/") and not path.startswith("/_mock/"):
                return "", self.direct_root
            return None
        end = path.find("/", 1)
        # "/auvy" alone is the Router's (a redirect to "/auvy/").
        return self.direct.get(path[1:end]) if end > 0 else None


def create_app(
    profile: ServerProfile | None = None,
    *,
    clock: Clock | None = None,
    apis: Sequence[str] = APIS,
    root_api: str | None = None,
    faults: Sequence[str] = (),
    ava_webhooks: Sequence[str] = (),
    store: str | None = None,
) -> MockServer:
    """Serve every API under its prefix (/auvy, ...), or `root_api` alone at the root.

    `ava_webhooks` are extra AVA webhook URLs (--ava-webhook), signed with the profile's
    webhook_secret; like the profile's own endpoints, they survive /_mock/reset.
    `store` (redis://HOST:PORT/DB) shares the world with every worker using the same Redis."""
    profile = with_ava_webhooks(profile or ServerProfile.load(), ava_webhooks)
    shared = None
    innermost: list[Middleware] = []
    section: Callable[[ASGIApp], ASGIApp] | None = None
    if store is None:
        world = World(profile, clock=clock, apis=apis)
    else:
        # redis-py is needed only with a store.
        from .store.shared import SectionMiddleware, open_store

        shared = open_store(store, profile)
        world = World(profile, apis=apis, engine=shared.engine, streams=shared.streams)
        shared.attach(world, limiter=world.auvy_app.limiter)
        store_world = shared
        envelopes: dict[str, Envelope] = {
            "auvy": world.auvy_app.envelope,
            "ava": world.ava_app.envelope,
            "strait": world.strait_app.envelope,
        }

        def envelope_for(path: str) -> Envelope | None:
            # A 503 from the store is answered in the envelope of the API the path belongs to.
            if root_api is not None:
                return None if path.startswith("/_mock/") else envelopes[root_api]
            return envelopes.get(path.split("/", 2)[1])

        # Innermost, so the handler runs in the task that holds the section.
        innermost.append(Middleware(SectionMiddleware, shared=shared, envelope_for=envelope_for))

        def section(app: ASGIApp) -> ASGIApp:
            return SectionMiddleware(app, shared=store_world, envelope_for=envelope_for)

    # Each API answers its own description routes (mock_server.describe) in front of its pipeline.
    served: dict[str, ASGIApp] = {
        name: DescribedApi(api, world.specs[name], api.envelope)
        for name, api in (
            ("auvy", world.auvy_app),
            ("ava", world.ava_app),
            ("strait", world.strait_app),
        )
    }
    if root_api is not None and root_api not in served:
        raise ValueError(f"unknown API {root_api}; known: {', '.join(sorted(served))}")
    prefixes = {root_api: ""} if root_api is not None else {name: f"/{name}" for name in world.apis}
    mounts: list[BaseRoute] = [Mount("/_mock", app=control_app(world, prefixes))]
    if root_api is not None:
        mounts.append(_mount("", served[root_api]))
    else:
        titles = {prefixes[n]: str(world.specs[n].document["info"]["title"]) for n in world.apis}
        index, docs = index_routes(titles, list(titles))
        mounts += [
            Route("/openapi.json", index, methods=["GET"]),
            Route("/docs", docs, methods=["GET"]),
            Route("/docs/{name}", docs, methods=["GET"]),
        ]
        mounts.extend(_mount(f"/{name}", served[name]) for name in world.apis)

    @contextlib.asynccontextmanager
    async def lifespan(_: Starlette) -> AsyncIterator[None]:
        sender = HttpxSender(world.profile.ava.webhook_timeout_ms / 1000)
        if shared is None:
            task = asyncio.create_task(drive(world))
            dispatcher = Dispatcher(world.engine, world.ava_outbox, sender)
        else:
            await shared.start()  # it drives the timers itself, in committed sections
            task = None
            # A delivery's lease outlasts the send's timeout, so only a dead sender loses it.
            lease_ms = 2 * world.profile.ava.webhook_timeout_ms + 1_000
            dispatcher = Dispatcher(
                world.engine,
                world.ava_outbox,
                sender,
                # Background work, like the timer ticks: its sections may skip the load.
                transact=functools.partial(shared.transact, optimistic=True),
                lease_ms=lease_ms,
            )
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
    wire = world.profile.variant.wire
    if wire.on_wire:
        # Outside the faults: a variant re-frames whatever goes on the wire, a fault included.
        middleware.append(Middleware(WireMiddleware, variant=wire))
    if faults:
        # Outermost but for CORS, so a fault is seen exactly as a browser or client would see it.
        first_key = next(iter(world.auvy.keys), None)
        middleware.append(
            Middleware(
                FaultMiddleware,
                faults=faults,
                first_key=first_key,
                first_tenant=next(iter(world.ava.tenants), None),
                strait_keys=world.strait.keys,
                receptors=world.receptors,
            )
        )
    app = MockServer(
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
    app.state.store = shared  # the SharedWorld, or None in memory
    if not faults and not wire.on_wire:
        # A fault or a wire variant must see every request, so with either everything takes
        # the full stack.
        wrap = section or (lambda api: api)
        if root_api is not None:
            app.direct_root = wrap(served[root_api])
        else:
            app.direct = {name: (f"/{name}", wrap(served[name])) for name in world.apis}
    return app
