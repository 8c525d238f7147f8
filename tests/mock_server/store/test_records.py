"""`SharedRecords` without Redis: what a section touched, and records loaded in place."""

from __future__ import annotations

from dataclasses import dataclass, field

import pytest

from mock_server.store.records import UNDECODED, SharedRecords


@dataclass
class Job:
    id: str
    status: str = "pending"
    steps: list[str] = field(default_factory=list)


def fresh(*ids: str) -> SharedRecords[Job]:
    records = SharedRecords[Job]("jobs", [(i, Job(i)) for i in ids])
    records.touched.clear()
    return records


def test_new_records_start_touched_so_a_world_publishes_its_seed() -> None:
    assert SharedRecords[Job]("jobs", [("a", Job("a"))]).touched == {"a"}


def test_reads_and_writes_touch_only_their_record() -> None:
    records = fresh("a", "b", "c")
    assert records.get("a") is not None
    assert records.get("missing") is None
    records["b"].status = "running"
    assert records.touched == {"a", "b"}
    assert "c" in records and len(records) == 3 and sorted(records) == ["a", "b", "c"]
    assert records.touched == {"a", "b"}, "membership, length and keys touch nothing"


def test_walking_every_record_touches_every_record_and_tolerates_changes() -> None:
    records = fresh("a", "b")
    for job in records.values():
        records.save(job.id + "2", Job(job.id + "2"))
    assert records.touched == {"a", "b", "a2", "b2"}


def test_removal_and_clear_touch_what_they_remove() -> None:
    records = fresh("a", "b")
    del records["a"]
    assert records.touched == {"a"}
    records.clear()
    assert records.touched == {"a", "b"} and len(records) == 0


def test_current_reads_without_touching() -> None:
    records = fresh("a")
    assert records.current("a") == Job("a")
    assert records.touched == set()


def test_a_loaded_record_updates_the_live_object_in_place() -> None:
    records = fresh("a")
    live = records["a"]
    records.loaded("a", Job("a", "completed", ["x"]), b"blob")
    assert live.status == "completed" and live.steps == ["x"]
    assert records.current("a") is live and records.blobs["a"] == b"blob"


def test_a_loaded_list_keeps_its_identity() -> None:
    logs = SharedRecords[list[str]]("logs", [("a", ["one"])])
    live = logs["a"]
    logs.loaded("a", ["one", "two"], b"blob")
    assert live == ["one", "two"] and logs.current("a") is live


def test_loading_none_removes_the_record_and_its_bytes() -> None:
    records = fresh("a")
    records.loaded("a", Job("a"), b"blob")
    records.loaded("a", None, b"")
    assert "a" not in records and "a" not in records.blobs


def test_forget_drops_records_bytes_and_touches() -> None:
    records = SharedRecords[Job]("jobs", [("a", Job("a"))])
    records.blobs["a"] = b"blob"
    records.forget()
    assert len(records) == 0 and records.blobs == {} and records.touched == set()


def undecoded(*ids: str) -> tuple[SharedRecords[Job], list[bytes]]:
    """Records loaded without building them: each blob is a job id; what was decoded is
    listed."""
    records = fresh()
    built: list[bytes] = []

    def decode(blob: bytes) -> Job:
        built.append(blob)
        if blob.startswith(b"!"):
            raise ValueError(f"cannot decode {blob!r}")
        return Job(blob.decode())

    records.decode = decode
    for i in ids:
        records.loaded(i, UNDECODED, i.encode())
    return records, built


def test_an_undecoded_record_is_built_once_when_first_read() -> None:
    records, built = undecoded("a", "b")
    assert "a" in records and len(records) == 2 and sorted(records) == ["a", "b"]
    assert not records.holds_object("a") and built == [], "membership and keys build nothing"
    first = records["a"]
    assert first == Job("a") and records.get("a") is first and records.current("a") is first
    assert built == [b"a"] and records.holds_object("a") and not records.holds_object("b")
    assert records.touched == {"a"} and records.blobs["a"] == b"a"


def test_every_way_of_reading_builds_an_undecoded_record() -> None:
    records, _ = undecoded("a")
    assert records.get("a") == Job("a")
    records, _ = undecoded("a")
    assert records.current("a") == Job("a") and records.touched == set()
    records, _ = undecoded("a", "b")
    assert sorted(j.id for j in records.values()) == ["a", "b"]
    records, _ = undecoded("a", "b")
    assert [j.id for j in records.untouched_values()] == ["a", "b"] and records.touched == set()
    records, _ = undecoded("a")
    assert dict(records.items()) == {"a": Job("a")}


def test_a_record_that_cannot_be_built_fails_only_its_readers_and_stays_undecoded() -> None:
    records, built = undecoded("a", "!b")
    with pytest.raises(ValueError, match="cannot decode"):
        records.get("!b")
    with pytest.raises(ValueError, match="cannot decode"):
        records["!b"]
    with pytest.raises(ValueError, match="cannot decode"):
        records.values()
    assert built == [b"!b", b"!b", b"a", b"!b"] and not records.holds_object("!b")
    assert records.touched == set(), "a read that failed read nothing"
    assert records["a"] == Job("a")


def test_undecoded_bytes_replace_undecoded_bytes_but_never_a_held_object() -> None:
    records, built = undecoded("a")
    records.loaded("a", UNDECODED, b"a2")
    assert records["a"] == Job("a2") and built == [b"a2"]
    with pytest.raises(ValueError, match="in place"):
        records.loaded("a", UNDECODED, b"a3")
    records.loaded("a", None, b"")
    assert "a" not in records and "a" not in records.blobs


def test_without_a_decoder_an_undecoded_record_says_so() -> None:
    records = fresh()
    records.loaded("a", UNDECODED, b"a")
    with pytest.raises(RuntimeError, match="decode was not set"):
        records["a"]


# -- split by partition --------------------------------------------------------------------------


@dataclass
class Owned:
    id: str
    tenant: str
    status: str = "pending"


def tenant_of(record: Owned) -> str:
    return record.tenant


def other_partition(record: Owned) -> str:
    return record.id


def split(*records: Owned) -> SharedRecords[Owned]:
    store = SharedRecords[Owned]("jobs", [(r.id, r) for r in records], partition=tenant_of)
    store.touched.clear()
    return store


def test_a_partition_lists_its_own_records_and_is_read_as_a_whole() -> None:
    store = split(Owned("a", "t1"), Owned("b", "t2"), Owned("c", "t1"))
    assert sorted(r.id for r in store.in_partition("t1", tenant_of)) == ["a", "c"]
    assert store.in_partition("t9", tenant_of) == []
    assert not store.scanned and store.scanned_parts == {"t1", "t9"}
    assert store.touched == {"a", "c"}
    store.get("b")
    # The listed partitions' versions stand for their records; a record elsewhere is named.
    assert store.read_names() == ["jobs\nb"]
    assert sorted(store.read_parts()) == ["jobs\tt1", "jobs\tt9"]
    store.untouch()
    assert store.scanned_parts == set() and store.read_parts() == []
    # Looked up in vain, then made in a listed partition: still checked by its own version (it
    # may have been made meanwhile elsewhere, in another partition).
    assert store.get("d") is None
    store.in_partition("t1", tenant_of)
    store["d"] = Owned("d", "t1")
    assert store.read_names() == ["jobs\nd"]


def test_a_walk_of_the_whole_store_stands_for_its_partitions() -> None:
    store = split(Owned("a", "t1"))
    store.in_partition("t1", tenant_of)
    list(store.values())
    assert store.read_parts() == [] and store.read_names() == []


def test_a_partition_follows_new_removed_and_cleared_records() -> None:
    store = split(Owned("a", "t1"))
    store["b"] = Owned("b", "t1")
    assert {r.id for r in store.in_partition("t1", tenant_of)} == {"a", "b"}
    del store["a"]
    assert [r.id for r in store.in_partition("t1", tenant_of)] == ["b"]
    store.clear()
    assert store.in_partition("t1", tenant_of) == []


def test_a_store_is_listed_only_by_its_own_partition() -> None:
    store = split(Owned("a", "t1"))
    with pytest.raises(ValueError, match="not split by other_partition"):
        store.in_partition("a", other_partition)
    unsplit = SharedRecords[Owned]("logs", [("a", Owned("a", "t1"))])
    with pytest.raises(ValueError, match="not split by tenant_of"):
        unsplit.in_partition("t1", tenant_of)


def test_a_records_partition_never_changes() -> None:
    store = split(Owned("a", "t1"))
    with pytest.raises(ValueError, match="never changes"):
        store["a"] = Owned("a", "t2")
    with pytest.raises(ValueError, match="no newline"):
        store["n"] = Owned("n", "t\n2")
    assert [r.id for r in store.in_partition("t1", tenant_of)] == ["a"]


def test_redis_holds_a_split_records_partition_before_its_bytes() -> None:
    store = split(Owned("a", "t1"))
    assert store.stored("a", b"{}") == b"t1\n{}"
    assert store.split(b"t1\n{}") == ("t1", b"{}")
    assert store.split(b"") == (None, b"")
    # No partition (written by something else): kept whole, in a partition no listing names.
    assert store.split(b"{}") == ("", b"{}")
    assert store.split(b"\xff\n{}") == ("", b"\xff\n{}")
    unsplit = SharedRecords[Owned]("logs")
    assert unsplit.stored("a", b"{}") == b"{}" and unsplit.split(b"x\n{}") == (None, b"x\n{}")


def test_a_removal_is_sent_with_the_partition_it_left() -> None:
    store = split(Owned("a", "t1"), Owned("b", "t2"))
    del store["a"]
    assert store.stored("a", b"") == b"t1\n"
    store.clear()
    assert store.stored("b", b"") == b"t2\n"
    store.untouch()
    assert store.stored("b", b"") == b"", "only the section that removed it knows where from"


def test_an_undecoded_record_is_listed_by_the_partition_redis_named() -> None:
    store = split()
    built: list[bytes] = []

    def decode(blob: bytes) -> Owned:
        built.append(blob)
        key, tenant = blob.decode().split(":")
        return Owned(key, tenant)

    store.decode = decode
    store.loaded("a", UNDECODED, b"a:t1", "t1")
    store.loaded("b", UNDECODED, b"b:t2", "t2")
    assert [r.id for r in store.in_partition("t2", tenant_of)] == ["b"]
    assert built == [b"b:t2"], "another partition's records stay bytes"
    store.loaded("b", None, b"")
    assert store.in_partition("t2", tenant_of) == []
    # A newer version of a held record is placed by the record itself.
    store.loaded("a", Owned("a", "t1", "running"), b"a:t1")
    assert [r.status for r in store.in_partition("t1", tenant_of)] == ["running"]
    # Bytes filed under another partition than the record holds are not listed there; once
    # built, the record is filed under its own.
    store.loaded("c", UNDECODED, b"c:t2", "t1")
    assert [r.id for r in store.in_partition("t1", tenant_of)] == ["a"]
    assert [r.id for r in store.in_partition("t2", tenant_of)] == ["c"]
