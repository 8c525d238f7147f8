"""Event-stream framing and delivery: entries to `id:`/`data:` frames, keepalives, end on terminal.

Delivery waits on the engine's change notifications rather than polling, and sends a `: ping`
comment when nothing happened for the keepalive interval (real seconds: keepalives are about the
connection, not the emulated clock).
"""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Callable, Mapping

from .model.engine import Engine
from .model.stream import Entry, ReadResult
from .model.stream_id import StreamId

HEADERS = {
    "Cache-Control": "no-cache",
    "X-Accel-Buffering": "no",
    "Connection": "keep-alive",
}


def frame(data: Mapping[str, object], ident: StreamId | None = None) -> bytes:
    body = json.dumps(data, separators=(",", ":"), ensure_ascii=False)
    # json.dumps never emits raw newlines, so one data: line always carries the whole payload.
    head = f"id: {ident.encode()}\n" if ident is not None else ""
    return f"{head}data: {body}\n\n".encode()


PING = b": ping\n\n"


async def deliver(
    engine: Engine,
    key: str,
    read: Callable[[StreamId | None], ReadResult],
    *,
    after: StreamId | None,
    is_terminal_entry: Callable[[Entry], bool],
    is_finished: Callable[[], bool],
    ping_interval_s: float,
    first: ReadResult | None = None,
    gap: Callable[[StreamId, ReadResult], Mapping[str, object]] | None = None,
    ping: bytes = PING,
    with_ids: bool = True,
) -> AsyncIterator[bytes]:
    """Yield frames after `after` until a terminal entry was sent (or the source finished).

    Whenever a read finds that entries after the cursor were trimmed (a reader that fell more
    than the maximum length behind, or resumed too late), `gap` makes an id-less marker entry
    so the loss is visible instead of silent.
    """
    changed = asyncio.Event()
    unsubscribe = engine.subscribe(key, changed.set)
    if first is not None:
        # `first` was read before we subscribed: re-read once so nothing appended since is missed.
        changed.set()
    cursor = after
    try:
        result = first
        while True:
            if result is None:
                changed.clear()
                engine.run_due()
                result = read(cursor)
                if result.entries and engine.reading is not None:
                    # Entries under a shared store: read them again with the model that knows
                    # them (see `Engine.reading`).
                    async with engine.reading():
                        result = read(cursor)
            if gap is not None and result.truncated and cursor is not None:
                yield frame(gap(cursor, result))
            for entry in result.entries:
                yield frame(entry.data, entry.id if with_ids else None)
                cursor = entry.id
                if is_terminal_entry(entry):
                    return
            if not result.entries and is_finished():
                return
            result = None
            if changed.is_set():
                continue
            try:
                await asyncio.wait_for(changed.wait(), timeout=ping_interval_s)
            except TimeoutError:
                yield ping
    finally:
        unsubscribe()
