"""Everything one server process emulates: the clock's engine, each API's model and HTTP app."""

from __future__ import annotations

from collections.abc import Callable, Sequence

from .apis.auvy import AuvyApp
from .apis.ava import AvaApp
from .apis.strait import StraitApp
from .clock import Clock, ManualClock, SystemClock
from .model import ava, strait
from .model.auvy import AuvyModel, Settings
from .model.engine import Engine
from .model.outbox import Outbox, RetryPolicy
from .model.receptors import Receptors
from .model.store import MemoryStreams, StreamStore
from .profile import ServerProfile
from .seed import load_auvy, load_ava, load_strait
from .spec import Spec, load_specs

APIS = ("auvy", "ava", "strait")

# (name, maxlen, ttl_ms) -> the store of one model's event streams.
StreamFactory = Callable[[str, int | None, int | None], StreamStore]


def memory_streams(_: str, maxlen: int | None, ttl_ms: int | None) -> StreamStore:
    return MemoryStreams(maxlen=maxlen, ttl_ms=ttl_ms)


class World:
    """`engine` and `streams` let a shared store (mock_server.store, --store redis://) supply its
    own engine and keep the event streams outside the process; by default both are in memory."""

    def __init__(
        self,
        profile: ServerProfile,
        *,
        clock: Clock | None = None,
        apis: Sequence[str] = APIS,
        engine: Engine | None = None,
        streams: StreamFactory = memory_streams,
    ) -> None:
        unknown = sorted(set(apis) - set(APIS))
        if unknown:
            raise ValueError(f"unknown API(s) {unknown}; known: {', '.join(APIS)}")
        self.profile = profile
        self.apis = tuple(apis)
        self.engine = engine or Engine(
            clock or (ManualClock() if profile.clock == "manual" else SystemClock())
        )
        # Loaded once here; every request is routed and validated from these compiled tables.
        self.specs: dict[str, Spec] = load_specs(["auvy", "ava", "strait"])
        # A slow variant (mock_server.variants.wire): jobs that take seconds, not milliseconds.
        slow = profile.variant.wire.slow_factor
        settings = profile.auvy
        self.auvy = AuvyModel(
            self.engine,
            Settings(
                step_ms=settings.step_ms * slow,
                start_delay_ms=settings.start_delay_ms * slow,
                stream_maxlen=settings.stream_maxlen,
                stream_ttl_ms=settings.stream_ttl_ms,
                variant=profile.variant.auvy,
            ),
            streams=streams("auvy", settings.stream_maxlen, settings.stream_ttl_ms),
        )
        self.receptors = Receptors(self.auvy)
        ava_settings = profile.ava
        self.ava_outbox = Outbox(
            self.engine,
            RetryPolicy(ava_settings.webhook_backoff_ms, ava_settings.webhook_max_attempts),
        )
        self.ava = ava.AvaModel(
            self.engine,
            ava.Settings(
                step_ms=ava_settings.step_ms * slow,
                start_delay_ms=ava_settings.start_delay_ms * slow,
                max_concurrent=ava_settings.max_concurrent,
                variant=profile.variant.ava,
            ),
            outbox=self.ava_outbox,
        )
        strait_settings = profile.strait
        self.strait = strait.StraitModel(
            self.engine,
            strait.Settings(
                step_ms=strait_settings.step_ms * slow,
                start_delay_ms=strait_settings.start_delay_ms * slow,
                second_ms=strait_settings.second_ms * slow,
                variant=profile.variant.strait,
            ),
        )
        if streams is not memory_streams:
            # StraitModel declares its MemoryStreams; it only uses the StreamStore protocol.
            self.strait.streams = streams("strait", None, None)  # type: ignore[assignment]
        self._seed()
        self.auvy_app = AuvyApp(
            self.specs["auvy"],
            self.engine,
            self.auvy,
            self.receptors,
            max_body_bytes=profile.max_body_bytes,
            ping_interval_s=profile.ping_interval_ms / 1000,
            rate_limit=(settings.rate_limit_requests, settings.rate_limit_window_ms),
        )
        self.ava_app = AvaApp(
            self.specs["ava"], self.engine, self.ava, max_body_bytes=profile.max_body_bytes
        )
        self.strait_app = StraitApp(
            self.specs["strait"],
            self.engine,
            self.strait,
            max_body_bytes=profile.max_body_bytes,
            ping_interval_s=profile.ping_interval_ms / 1000,
        )

    def _seed(self) -> None:
        load_auvy(self.auvy, self.profile.auvy.seed, self.receptors)
        load_ava(self.ava, self.profile.ava.seed)
        load_strait(self.strait, self.profile.strait.seed)
        for hook in self.profile.ava.webhooks:
            self.ava_outbox.subscribe(hook.url, hook.secret)

    def reset(self) -> None:
        """Drop every job and stream and reload the seed world, as at start-up."""
        self.auvy.reset_jobs()
        self.auvy.workspaces.clear()
        self.auvy.keys.clear()
        self.auvy.pathways.clear()
        self.auvy.traces.clear()
        self.receptors.clear()
        self.auvy_app.limiter.clear()
        self.ava.clear_world()
        self.ava_outbox.clear_endpoints()
        self.strait.clear_world()
        self._seed()
