from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from typing import ClassVar

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mock_server.model.stream import Entry, EventStream, ReadResult
from mock_server.model.stream_id import UINT64_MAX, ZERO, StreamId


def ids(result: ReadResult) -> list[str]:
    return [e.id.encode() for e in result.entries]


def filled(n: int, *, maxlen: int | None = None, ttl_ms: int | None = None) -> EventStream:
    stream = EventStream(0, maxlen=maxlen, ttl_ms=ttl_ms)
    for i in range(n):
        stream.append({"i": i}, 1 + i)
    return stream


# --- ids -----------------------------------------------------------------------------------------


def test_first_id_uses_the_clock() -> None:
    stream = EventStream(0)
    assert stream.last_id is None
    assert stream.append({}, 1700).id == StreamId(1700, 0)
    assert stream.last_id == StreamId(1700, 0)


def test_first_id_at_time_zero_is_0_1() -> None:
    assert EventStream(0).append({}, 0).id == StreamId(0, 1)


def test_ids_bump_seq_when_the_clock_stands_still_or_goes_back() -> None:
    stream = EventStream(0)
    got = [stream.append({}, now).id.encode() for now in (10, 10, 9, 0, 11, 11)]
    assert got == ["10-0", "10-1", "10-2", "10-3", "11-0", "11-1"]


def test_append_returns_the_stored_entry() -> None:
    stream = EventStream(0)
    data = {"type": "token", "text": "hi"}
    entry = stream.append(data, 5)
    assert entry == Entry(StreamId(5, 0), data)
    assert stream.read_after(None, 5).entries == (entry,)
    assert stream.read_after(None, 5).entries[0].data is data


def test_append_rejects_negative_time() -> None:
    with pytest.raises(ValueError, match="now_ms"):
        EventStream(0).append({}, -1)


def test_append_at_the_largest_clock() -> None:
    stream = EventStream(0)
    assert stream.append({}, UINT64_MAX).id == StreamId(UINT64_MAX, 0)
    assert stream.append({}, 0).id == StreamId(UINT64_MAX, 1)


# --- reads ---------------------------------------------------------------------------------------


def test_read_without_after_replays_everything_retained() -> None:
    stream = filled(3)
    result = stream.read_after(None, 10)
    assert ids(result) == ["1-0", "2-0", "3-0"]
    assert result.truncated is False
    assert result.first_retained == StreamId(1, 0)


def test_read_after_is_exclusive() -> None:
    stream = filled(3)
    assert ids(stream.read_after(StreamId(1, 0), 10)) == ["2-0", "3-0"]
    assert ids(stream.read_after(StreamId(3, 0), 10)) == []


def test_read_after_an_id_between_entries() -> None:
    stream = filled(3)
    assert ids(stream.read_after(StreamId(1, 5), 10)) == ["2-0", "3-0"]
    assert ids(stream.read_after(StreamId(2, UINT64_MAX), 10)) == ["3-0"]


def test_read_after_ids_before_and_beyond_all() -> None:
    stream = filled(3)
    assert ids(stream.read_after(ZERO, 10)) == ["1-0", "2-0", "3-0"]
    assert ids(stream.read_after(StreamId(UINT64_MAX, UINT64_MAX), 10)) == []
    assert stream.read_after(ZERO, 10).truncated is False


def test_read_empty_stream() -> None:
    result = EventStream(0).read_after(ZERO, 0)
    assert result == ReadResult((), False, None)


def test_count_limits_from_the_start_point() -> None:
    stream = filled(5)
    assert ids(stream.read_after(None, 10, count=2)) == ["1-0", "2-0"]
    assert ids(stream.read_after(StreamId(2, 0), 10, count=2)) == ["3-0", "4-0"]
    assert ids(stream.read_after(StreamId(4, 0), 10, count=2)) == ["5-0"]
    assert ids(stream.read_after(None, 10, count=100)) == ["1-0", "2-0", "3-0", "4-0", "5-0"]


@pytest.mark.parametrize("count", [0, -1])
def test_count_must_be_positive(count: int) -> None:
    with pytest.raises(ValueError, match="count"):
        filled(1).read_after(None, 10, count=count)


# --- maxlen --------------------------------------------------------------------------------------


def test_maxlen_drops_the_oldest() -> None:
    stream = filled(5, maxlen=2)
    assert len(stream) == 2
    result = stream.read_after(None, 10)
    assert ids(result) == ["4-0", "5-0"]
    assert result.first_retained == StreamId(4, 0)
    assert stream.last_id == StreamId(5, 0)


def test_read_after_a_trimmed_id_is_truncated_and_resumes_at_the_oldest() -> None:
    stream = filled(5, maxlen=2)
    result = stream.read_after(StreamId(1, 0), 10)
    assert ids(result) == ["4-0", "5-0"]
    assert result.truncated is True
    assert result.first_retained == StreamId(4, 0)


def test_reader_that_saw_the_last_dropped_entry_missed_nothing() -> None:
    stream = filled(5, maxlen=2)
    result = stream.read_after(StreamId(3, 0), 10)
    assert ids(result) == ["4-0", "5-0"]
    assert result.truncated is False
    # An id between the last dropped and the first retained also missed nothing.
    assert stream.read_after(StreamId(3, 7), 10).truncated is False
    assert stream.read_after(StreamId(2, UINT64_MAX), 10).truncated is True


def test_replay_without_after_is_never_truncated() -> None:
    assert filled(5, maxlen=2).read_after(None, 10).truncated is False


def test_maxlen_zero_keeps_nothing_but_ids_advance() -> None:
    stream = filled(3, maxlen=0)
    assert len(stream) == 0
    assert stream.last_id == StreamId(3, 0)
    result = stream.read_after(StreamId(1, 0), 10)
    assert result == ReadResult((), True, None)
    assert stream.read_after(StreamId(3, 0), 10).truncated is False


def test_large_stream_keeps_the_newest_window() -> None:
    stream = EventStream(0, maxlen=1000)
    for i in range(100_000):
        stream.append({"i": i}, i // 3)
    assert len(stream) == 1000
    result = stream.read_after(None, 0)
    assert [e.data["i"] for e in result.entries] == list(range(99_000, 100_000))
    assert result.first_retained == result.entries[0].id
    assert stream.read_after(result.entries[0].id, 0).truncated is False
    assert stream.read_after(StreamId(0, 0), 0).truncated is True


@pytest.mark.parametrize(("maxlen", "ttl_ms"), [(-1, None), (None, 0), (None, -5)])
def test_constructor_rejects_bad_limits(maxlen: int | None, ttl_ms: int | None) -> None:
    with pytest.raises(ValueError):
        EventStream(0, maxlen=maxlen, ttl_ms=ttl_ms)


# --- ttl -----------------------------------------------------------------------------------------


def test_expiry_time() -> None:
    assert EventStream(100).expires_at_ms() is None
    assert EventStream(100).is_expired(10**15) is False
    stream = EventStream(100, ttl_ms=50)
    assert stream.expires_at_ms() == 150
    assert stream.is_expired(149) is False
    assert stream.is_expired(150) is True


def test_appending_does_not_refresh_the_ttl() -> None:
    stream = EventStream(100, ttl_ms=50)
    stream.append({}, 120)
    stream.append({}, 149)
    assert stream.expires_at_ms() == 150
    assert ids(stream.read_after(None, 149)) == ["120-0", "149-0"]


def test_expired_stream_reads_nothing_and_reports_the_gap() -> None:
    stream = EventStream(100, ttl_ms=50)
    stream.append({}, 120)
    stream.append({}, 130)
    assert len(stream) == 2  # expiry is lazy until a call brings the time
    assert stream.read_after(None, 150) == ReadResult((), False, None)
    assert len(stream) == 0
    assert stream.read_after(StreamId(120, 0), 150).truncated is True
    assert stream.read_after(StreamId(130, 0), 150).truncated is False
    assert stream.last_id == StreamId(130, 0)


def test_append_to_an_expired_stream_starts_a_new_retention_period() -> None:
    stream = EventStream(100, ttl_ms=50)
    stream.append({}, 120)
    stream.append({}, 149)
    entry = stream.append({}, 160)
    assert entry.id == StreamId(160, 0)
    assert stream.expires_at_ms() == 210
    assert stream.is_expired(200) is False
    result = stream.read_after(StreamId(120, 0), 200)
    assert ids(result) == ["160-0"]
    assert result.truncated is True
    assert result.first_retained == StreamId(160, 0)
    assert stream.read_after(StreamId(149, 0), 200).truncated is False


def test_ids_keep_increasing_across_expiry_and_a_clock_going_back() -> None:
    stream = EventStream(0, ttl_ms=10)
    stream.append({}, 5)
    stream.append({}, 5)
    assert stream.append({}, 12).id == StreamId(12, 0)
    assert stream.append({}, 11).id == StreamId(12, 1)
    assert stream.expires_at_ms() == 22
    assert ids(stream.read_after(None, 11)) == ["12-0", "12-1"]


# --- not a linear scan ---------------------------------------------------------------------------


class CountingId(StreamId):
    """Counts every ordering comparison it takes part in, on either side.

    Python tries a subclass's reflected method first, so `stored < probe` lands in `__gt__` here.
    """

    __slots__ = ()
    comparisons: ClassVar[int] = 0

    def _pair(self, other: object) -> tuple[tuple[int, int], tuple[int, int]]:
        assert isinstance(other, StreamId)
        type(self).comparisons += 1
        return (self.ms, self.seq), (other.ms, other.seq)

    def __lt__(self, other: object) -> bool:
        a, b = self._pair(other)
        return a < b

    def __le__(self, other: object) -> bool:
        a, b = self._pair(other)
        return a <= b

    def __gt__(self, other: object) -> bool:
        a, b = self._pair(other)
        return a > b

    def __ge__(self, other: object) -> bool:
        a, b = self._pair(other)
        return a >= b


def test_counting_id_sees_comparisons_from_both_sides() -> None:
    CountingId.comparisons = 0
    probe = CountingId(5, 0)
    assert StreamId(1, 0) < probe
    assert not StreamId(9, 0) <= probe
    assert sorted([StreamId(9, 0), probe, StreamId(1, 0)])[1] is probe
    assert CountingId.comparisons >= 3


BIG = 100_000


@pytest.fixture(scope="module")
def big_stream() -> EventStream:
    # Ids 1-0 .. 100000-0.
    return filled(BIG)


@pytest.mark.parametrize(
    "after", [(0, 0), (1, 0), (BIG // 2, 0), (BIG // 2, 1), (BIG - 1, 0), (BIG, 0), (UINT64_MAX, 0)]
)
def test_read_after_uses_binary_search(big_stream: EventStream, after: tuple[int, int]) -> None:
    probe = CountingId(*after)
    CountingId.comparisons = 0
    result = big_stream.read_after(probe, 0, count=3)
    # log2(100_000) < 17; a scan would need about as many comparisons as entries it skips.
    assert CountingId.comparisons <= 2 * 17 + 2
    expected = [StreamId(m, 0) for m in range(after[0] + 1, min(after[0] + 4, BIG + 1))]
    assert [e.id for e in result.entries] == expected


# --- properties against a naive model ------------------------------------------------------------


@dataclass
class NaiveStream:
    """Keeps every entry ever appended with an alive flag and recomputes everything by scanning."""

    created_ms: int
    maxlen: int | None
    ttl_ms: int | None
    log: list[tuple[Entry, bool]] = field(default_factory=list)

    def expired(self, now_ms: int) -> bool:
        return self.ttl_ms is not None and now_ms >= self.created_ms + self.ttl_ms

    def kill_all(self) -> None:
        self.log = [(e, False) for e, _ in self.log]

    def alive(self) -> list[Entry]:
        return [e for e, a in self.log if a]

    def next_id(self, now_ms: int) -> StreamId:
        if not self.log:
            return StreamId(now_ms, 0) if now_ms > 0 else StreamId(0, 1)
        last = self.log[-1][0].id
        return StreamId(now_ms, 0) if now_ms > last.ms else StreamId(last.ms, last.seq + 1)

    def append(self, data: dict[str, object], now_ms: int) -> Entry:
        if self.expired(now_ms):
            self.kill_all()
            self.created_ms = now_ms
        entry = Entry(self.next_id(now_ms), data)
        self.log.append((entry, True))
        if self.maxlen is not None:
            while len(self.alive()) > self.maxlen:
                i = next(i for i, (_, a) in enumerate(self.log) if a)
                self.log[i] = (self.log[i][0], False)
        return entry

    def read(self, after: StreamId | None, now_ms: int, count: int | None) -> ReadResult:
        if self.expired(now_ms):
            self.kill_all()
        alive = self.alive()
        hits = [e for e in alive if after is None or e.id > after]
        if count is not None:
            hits = hits[:count]
        missed = after is not None and any(not a and e.id > after for e, a in self.log)
        return ReadResult(tuple(hits), missed, alive[0].id if alive else None)


def probes(log: list[tuple[Entry, bool]]) -> list[StreamId | None]:
    """Ids on, between, before and beyond the appended ones."""
    out: list[StreamId | None] = [None, ZERO, StreamId(UINT64_MAX, UINT64_MAX)]
    for entry, _ in log:
        sid = entry.id
        out.append(sid)
        out.append(StreamId(sid.ms, sid.seq + 1))
        if sid.seq > 0:
            out.append(StreamId(sid.ms, sid.seq - 1))
        elif sid.ms > 0:
            out.append(StreamId(sid.ms - 1, UINT64_MAX))
        out.append(StreamId(sid.ms + 1, 0))
    return out


clock = st.one_of(st.integers(0, 30), st.integers(0, 10**13))
appends = st.tuples(st.just("append"), clock)
reads = st.tuples(st.just("read"), clock)


@settings(deadline=None)
@given(
    created_ms=st.integers(0, 30),
    maxlen=st.one_of(st.none(), st.integers(0, 6)),
    ttl_ms=st.one_of(st.none(), st.integers(1, 40)),
    ops=st.lists(st.one_of(appends, reads), max_size=40),
    data=st.data(),
)
def test_matches_naive_model(
    created_ms: int,
    maxlen: int | None,
    ttl_ms: int | None,
    ops: list[tuple[str, int]],
    data: st.DataObject,
) -> None:
    stream = EventStream(created_ms, maxlen=maxlen, ttl_ms=ttl_ms)
    model = NaiveStream(created_ms, maxlen, ttl_ms)
    for n, (op, now_ms) in enumerate(ops):
        if op == "append":
            payload: dict[str, object] = {"n": n}
            assert stream.append(payload, now_ms) == model.append(payload, now_ms)
        else:
            after = data.draw(st.sampled_from(probes(model.log)), label="after")
            count = data.draw(st.one_of(st.none(), st.integers(1, 4)), label="count")
            assert stream.read_after(after, now_ms, count=count) == model.read(after, now_ms, count)
            assert len(stream) == len(model.alive())
        assert stream.last_id == (model.log[-1][0].id if model.log else None)
        assert stream.expires_at_ms() == (None if ttl_ms is None else model.created_ms + ttl_ms)
        if maxlen is not None:
            assert len(stream) <= maxlen


@given(st.lists(st.one_of(st.integers(0, 5), st.integers(0, 10**13)), min_size=1, max_size=60))
def test_ids_strictly_increase_for_any_clock(times: list[int]) -> None:
    stream = EventStream(0)
    got = [stream.append({}, now).id for now in times]
    assert all(a < b for a, b in itertools.pairwise(got))
    assert got[0] == (StreamId(times[0], 0) if times[0] > 0 else StreamId(0, 1))
    for now, sid in zip(times, got, strict=True):
        assert sid.ms >= now


@given(st.lists(st.integers(0, 20), max_size=40), st.integers(0, 5))
def test_maxlen_bound_always_holds(times: list[int], maxlen: int) -> None:
    stream = EventStream(0, maxlen=maxlen)
    appended: list[StreamId] = []
    for now in times:
        appended.append(stream.append({}, now).id)
        assert len(stream) == min(len(appended), maxlen)
    retained = [e.id for e in stream.read_after(None, 0).entries]
    assert retained == appended[len(appended) - len(retained) :]


@given(
    created_ms=st.integers(0, 100),
    ttl_ms=st.integers(1, 100),
    times=st.lists(st.integers(0, 300), min_size=1, max_size=30),
    read_at=st.integers(0, 400),
)
def test_ttl_expiry(created_ms: int, ttl_ms: int, times: list[int], read_at: int) -> None:
    stream = EventStream(created_ms, ttl_ms=ttl_ms)
    start = created_ms
    kept: list[StreamId] = []
    for now in times:
        if now >= start + ttl_ms:
            start, kept = now, []
        kept.append(stream.append({}, now).id)
    assert stream.expires_at_ms() == start + ttl_ms
    result = stream.read_after(None, read_at)
    if read_at >= start + ttl_ms:
        assert result.entries == ()
        assert result.first_retained is None
        assert len(stream) == 0
        assert stream.read_after(ZERO, read_at).truncated is True
    else:
        assert [e.id for e in result.entries] == kept


@given(
    times=st.lists(st.integers(0, 20), min_size=1, max_size=60),
    maxlen=st.one_of(st.none(), st.integers(0, 12)),
    pick=st.integers(0, 59),
)
def test_a_cursor_from_an_earlier_read_reads_like_an_equal_parsed_one(
    times: list[int], maxlen: int | None, pick: int
) -> None:
    # Live readers pass back the very id object they were sent (found by identity near the
    # end); a resuming client passes a parsed, equal one (found by bisect): same answer.
    stream = EventStream(0, maxlen=maxlen)
    sent = [stream.append({"n": n}, now).id for n, now in enumerate(times)]
    cursor = sent[pick % len(sent)]
    parsed = StreamId.parse(cursor.encode())
    assert parsed is not cursor
    now = times[-1]
    for count in (None, 1):
        assert stream.read_after(cursor, now, count=count) == stream.read_after(
            parsed, now, count=count
        )


def test_a_live_cursor_is_found_without_comparing_ids(monkeypatch: pytest.MonkeyPatch) -> None:
    stream = filled(1_000)
    tail = stream.read_after(StreamId(995, 0), 0)
    cursor = tail.entries[0].id  # the stored object, as a live reader holds it
    stream.append({"i": "new"}, 5_000)

    def refuse(*_: object) -> bool:
        raise AssertionError("compared ids")

    monkeypatch.setattr(StreamId, "__lt__", refuse)
    result = stream.read_after(cursor, 0)
    monkeypatch.undo()
    assert [e.id.ms for e in result.entries] == [997, 998, 999, 1000, 5000]
