"""Everything one server process emulates: the clock's engine, each API's model and HTTP app."""

from __future__ import annotations

from collections.abc import Sequence

from .apis.auvy import AuvyApp
from .clock import Clock, ManualClock, SystemClock
from .model.auvy import AuvyModel, Settings
from .model.engine import Engine
from .model.store import MemoryStreams
from .profile import ServerProfile
from .seed import load_auvy
from .spec import Spec, load_specs

APIS = ("auvy",)


class World:
    def __init__(
        self, profile: ServerProfile, *, clock: Clock | None = None, apis: Sequence[str] = APIS
    ) -> None:
        unknown = sorted(set(apis) - set(APIS))
        if unknown:
            raise ValueError(f"unknown API(s) {unknown}; known: {', '.join(APIS)}")
        self.profile = profile
        self.apis = tuple(apis)
        self.engine = Engine(
            clock or (ManualClock() if profile.clock == "manual" else SystemClock())
        )
        # Loaded once here; every request is routed and validated from these compiled tables.
        self.specs: dict[str, Spec] = load_specs(["auvy"])
        settings = profile.auvy
        self.auvy = AuvyModel(
            self.engine,
            Settings(
                step_ms=settings.step_ms,
                start_delay_ms=settings.start_delay_ms,
                stream_maxlen=settings.stream_maxlen,
                stream_ttl_ms=settings.stream_ttl_ms,
            ),
            streams=MemoryStreams(maxlen=settings.stream_maxlen, ttl_ms=settings.stream_ttl_ms),
        )
        self._seed()
        self.auvy_app = AuvyApp(
            self.specs["auvy"],
            self.engine,
            self.auvy,
            max_body_bytes=profile.max_body_bytes,
            ping_interval_s=profile.ping_interval_ms / 1000,
        )

    def _seed(self) -> None:
        load_auvy(self.auvy, self.profile.auvy.seed)

    def reset(self) -> None:
        """Drop every job and stream and reload the seed world, as at start-up."""
        self.auvy.reset_jobs()
        self.auvy.workspaces.clear()
        self.auvy.keys.clear()
        self.auvy.pathways.clear()
        self.auvy.traces.clear()
        self._seed()
