"""The push-style event-stream reader the proxy feeds chunk by chunk, and content decoding."""

from __future__ import annotations

import gzip
import zlib

import pytest

from monitor.sse import Decoder, EventReader


def read_all(chunks: list[bytes]) -> list[tuple[str | None, str, str | None]]:
    reader = EventReader()
    events = [e for chunk in chunks for e in reader.feed(chunk)]
    events += reader.close()
    return [(e.id, e.data, e.event) for e in events]


def test_events_split_anywhere_with_any_line_end_and_comments() -> None:
    wire = (
        '\ufeff: ping\r\nid: 1-0\r\ndata: {"a":\r\ndata: 1}\r\n\r\nretry: 5\rid: 2-0\rdata: é\r\r'
    )
    raw = wire.encode()
    expected = [("1-0", '{"a":\n1}', None), ("2-0", "é", None)]
    assert read_all([raw]) == expected
    assert read_all([raw[i : i + 1] for i in range(len(raw))]) == expected  # byte by byte


def test_an_unterminated_last_event_is_dropped_and_event_fields_kept() -> None:
    assert read_all([b"event: x\ndata: 1\n\ndata: 2\n"]) == [(None, "1", "x")]


@pytest.mark.parametrize(
    ("coding", "encode"),
    [
        ("gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda b: zlib.compress(b)[2:-4]),  # raw DEFLATE, as some servers send
        ("", lambda b: b),
    ],
)
def test_content_coding_is_undone_for_reading(coding: str, encode: object) -> None:
    body = b'{"job_id": "x"}' * 50
    encoded = encode(body)  # type: ignore[operator]
    decoder = Decoder(coding)
    plain = b"".join(decoder.feed(encoded[i : i + 7]) for i in range(0, len(encoded), 7))
    assert plain == body
    assert not decoder.failed
