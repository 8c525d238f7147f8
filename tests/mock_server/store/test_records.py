"""`SharedRecords` without Redis: what a section touched, and records loaded in place."""

from __future__ import annotations

from dataclasses import dataclass, field

from mock_server.store.records import SharedRecords


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
