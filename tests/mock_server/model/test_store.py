"""MemoryStreams: expiry applies to streams nobody reads any more, with the lazy semantics kept."""

from __future__ import annotations

from mock_server.model.store import MemoryRecords, MemoryStreams, in_partition

TOKEN = {"type": "token", "content": "x"}


def test_an_expired_stream_nobody_reads_is_emptied_by_later_activity() -> None:
    store = MemoryStreams(maxlen=None, ttl_ms=1_000)
    store.create("old", 0)
    for _ in range(5):
        store.append("old", TOKEN, 10)
    assert store.retained() == 5
    store.create("new", 999)
    assert store.retained() == 5  # not yet expired
    store.create("newer", 1_000)
    assert store.retained() == 0


def test_resuming_on_a_swept_stream_still_reports_the_gap() -> None:
    store = MemoryStreams(maxlen=None, ttl_ms=1_000)
    store.create("job", 0)
    first = store.append("job", TOKEN, 10)
    store.append("job", TOKEN, 20)
    store.append("other", TOKEN, 5_000)  # sweeps "job"
    result = store.read_after("job", first, 5_000)
    assert result.entries == ()
    assert result.truncated


def test_an_append_after_expiry_starts_a_new_period_that_expires_again() -> None:
    store = MemoryStreams(maxlen=None, ttl_ms=1_000)
    store.create("job", 0)
    store.append("job", TOKEN, 10)
    late = store.append("job", TOKEN, 2_000)  # expired: a new period from 2,000
    assert store.read_after("job", None, 2_500).entries[0].id == late
    store.append("other", TOKEN, 2_999)
    assert store.retained() == 2  # "job" still holds its new entry
    store.append("other", TOKEN, 3_000)
    assert [len(store.read_after(k, None, 3_000).entries) for k in ("job", "other")] == [0, 2]


def test_without_a_ttl_nothing_expires() -> None:
    store = MemoryStreams(maxlen=None, ttl_ms=None)
    store.create("job", 0)
    store.append("job", TOKEN, 10)
    store.append("other", TOKEN, 10**12)
    assert store.retained() == 2


def test_maxlen_bounds_each_stream() -> None:
    store = MemoryStreams(maxlen=3, ttl_ms=None)
    for i in range(10):
        store.append("job", TOKEN, i)
    assert store.retained() == 3


def test_a_store_without_an_index_lists_a_partition_by_walking_it() -> None:
    records = {"a": ("a", "t1"), "b": ("b", "t2"), "c": ("c", "t1")}
    assert sorted(in_partition(records, "t1", lambda r: r[1])) == [("a", "t1"), ("c", "t1")]
    memory = MemoryRecords[tuple[str, str]]()
    memory.save("a", ("a", "t1"))
    assert in_partition(memory, "t2", lambda r: r[1]) == []
