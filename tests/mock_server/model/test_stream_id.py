from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from mock_server.model.stream_id import UINT64_MAX, ZERO, InvalidStreamId, StreamId

uint64 = st.integers(min_value=0, max_value=UINT64_MAX)
stream_ids = st.builds(StreamId, uint64, uint64)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("0-0", StreamId(0, 0)),
        ("0-1", StreamId(0, 1)),
        ("1700000000000-3", StreamId(1700000000000, 3)),
        ("00012-0", StreamId(12, 0)),
        ("12-007", StreamId(12, 7)),
        (f"{UINT64_MAX}-{UINT64_MAX}", StreamId(UINT64_MAX, UINT64_MAX)),
        ("0" * 60 + "1-" + "0" * 60 + "2", StreamId(1, 2)),
    ],
)
def test_parse_accepts(text: str, expected: StreamId) -> None:
    assert StreamId.parse(text) == expected


@pytest.mark.parametrize(
    "text",
    [
        pytest.param("", id="empty"),
        pytest.param("1", id="no-seq"),
        pytest.param("1-", id="empty-seq"),
        pytest.param("-0", id="empty-ms"),
        pytest.param("-", id="only-dash"),
        pytest.param("-1-0", id="negative-ms"),
        pytest.param("1--1", id="negative-seq"),
        pytest.param("+1-0", id="plus-ms"),
        pytest.param("1-+0", id="plus-seq"),
        pytest.param(" 1-0", id="leading-space"),
        pytest.param("1-0 ", id="trailing-space"),
        pytest.param("1 -0", id="inner-space"),
        pytest.param("1-0\n", id="trailing-newline"),
        pytest.param("\t1-0", id="leading-tab"),
        pytest.param("\uff11-0", id="fullwidth-digit"),
        pytest.param("1-\u0660", id="arabic-indic-digit"),
        pytest.param("\u00b2-0", id="superscript-digit"),
        pytest.param("1_000-0", id="underscore"),
        pytest.param("1-0-0", id="three-parts"),
        pytest.param("1.5-0", id="decimal"),
        pytest.param("0x1-0", id="hex"),
        pytest.param("1-*", id="star"),
        pytest.param("$", id="dollar"),
        pytest.param("a-b", id="letters"),
        pytest.param("1\u20130", id="en-dash"),
        pytest.param(f"{UINT64_MAX + 1}-0", id="ms-overflow"),
        pytest.param(f"0-{UINT64_MAX + 1}", id="seq-overflow"),
        pytest.param("9" * 30 + "-0", id="ms-huge"),
        pytest.param("0" * 126 + "-0", id="too-long"),
    ],
)
def test_parse_rejects(text: str) -> None:
    with pytest.raises(InvalidStreamId):
        StreamId.parse(text)


def test_parse_error_says_what_was_wrong() -> None:
    with pytest.raises(InvalidStreamId, match="<ms>-<seq>"):
        StreamId.parse("1")
    with pytest.raises(InvalidStreamId, match="ms must be between 0 and"):
        StreamId.parse(f"{UINT64_MAX + 1}-0")
    with pytest.raises(InvalidStreamId, match="seq must be between 0 and"):
        StreamId.parse(f"0-{UINT64_MAX + 1}")
    with pytest.raises(InvalidStreamId, match="at most 127 characters"):
        StreamId.parse("0" * 126 + "-0")


def test_invalid_stream_id_is_a_value_error() -> None:
    assert issubclass(InvalidStreamId, ValueError)


@pytest.mark.parametrize(
    ("ms", "seq"), [(-1, 0), (0, -1), (UINT64_MAX + 1, 0), (0, UINT64_MAX + 1)]
)
def test_constructor_rejects_out_of_range(ms: int, seq: int) -> None:
    with pytest.raises(InvalidStreamId):
        StreamId(ms, seq)


@pytest.mark.parametrize(("ms", "seq"), [(True, 0), (0, False), ("1", 0), (1.0, 0)])
def test_constructor_rejects_non_int(ms: object, seq: object) -> None:
    with pytest.raises(TypeError):
        StreamId(ms, seq)  # type: ignore[arg-type]


def test_encode_is_canonical() -> None:
    assert StreamId.parse("00012-0").encode() == "12-0"
    assert StreamId(0, 0).encode() == "0-0"
    assert StreamId(UINT64_MAX, 1).encode() == f"{UINT64_MAX}-1"


def test_zero() -> None:
    assert StreamId(0, 0) == ZERO
    assert ZERO.encode() == "0-0"


def test_frozen() -> None:
    sid = StreamId(1, 2)
    with pytest.raises(AttributeError):
        sid.ms = 3  # type: ignore[misc]


@pytest.mark.parametrize(
    ("last", "now_ms", "expected"),
    [
        (StreamId(5, 3), 6, StreamId(6, 0)),
        (StreamId(5, 3), 5, StreamId(5, 4)),
        (StreamId(5, 3), 4, StreamId(5, 4)),
        (StreamId(5, 3), 0, StreamId(5, 4)),
        (ZERO, 0, StreamId(0, 1)),
        (ZERO, 7, StreamId(7, 0)),
        (StreamId(5, UINT64_MAX), 5, StreamId(6, 0)),
        (StreamId(5, UINT64_MAX), 9, StreamId(9, 0)),
    ],
)
def test_next_for(last: StreamId, now_ms: int, expected: StreamId) -> None:
    assert last.next_for(now_ms) == expected


def test_next_for_after_the_last_possible_id() -> None:
    with pytest.raises(InvalidStreamId, match="no stream id follows"):
        StreamId(UINT64_MAX, UINT64_MAX).next_for(UINT64_MAX)


def test_next_for_beyond_uint64_clock() -> None:
    with pytest.raises(InvalidStreamId):
        ZERO.next_for(UINT64_MAX + 1)


@given(stream_ids)
def test_round_trip_from_id(sid: StreamId) -> None:
    assert StreamId.parse(sid.encode()) == sid


@given(uint64, uint64, st.integers(0, 5), st.integers(0, 5))
def test_round_trip_from_text(ms: int, seq: int, pad_ms: int, pad_seq: int) -> None:
    canonical = f"{ms}-{seq}"
    padded = "0" * pad_ms + str(ms) + "-" + "0" * pad_seq + str(seq)
    assert StreamId.parse(padded).encode() == canonical
    assert StreamId.parse(canonical).encode() == canonical


@given(stream_ids, stream_ids)
def test_order_is_ms_then_seq(a: StreamId, b: StreamId) -> None:
    ka, kb = (a.ms, a.seq), (b.ms, b.seq)
    assert (a < b) == (ka < kb)
    assert (a <= b) == (ka <= kb)
    assert (a > b) == (ka > kb)
    assert (a == b) == (ka == kb)
    if a == b:
        assert hash(a) == hash(b)


@given(stream_ids, uint64)
def test_next_for_strictly_increases(sid: StreamId, now_ms: int) -> None:
    if sid == StreamId(UINT64_MAX, UINT64_MAX):
        return
    nxt = sid.next_for(now_ms)
    assert nxt > sid
    if now_ms > sid.ms:
        assert nxt == StreamId(now_ms, 0)


@given(st.text(max_size=30))
def test_parse_accepts_exactly_the_ascii_shape(text: str) -> None:
    ascii_digits = set("0123456789")
    parts = text.split("-")
    shaped = len(parts) == 2 and all(p and set(p) <= ascii_digits for p in parts)
    if shaped:
        sid = StreamId.parse(text)
        assert (sid.ms, sid.seq) == (int(parts[0]), int(parts[1]))
    else:
        with pytest.raises(InvalidStreamId):
            StreamId.parse(text)
