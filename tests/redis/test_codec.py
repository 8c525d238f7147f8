"""No pickle in Redis: the world is JSON, and loading what someone else wrote runs no code.

The codec's refusals are checked on their own (no Redis needed); then two workers' traffic is
scanned key by key, and pickles planted in the world and in a record are shown never to run.
"""

from __future__ import annotations

import asyncio
import itertools
import json
import pickle
from collections import deque
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import redis

from mock_server.app import create_app
from mock_server.model.auvy import JobStatus
from mock_server.model.auvy.records import Job
from mock_server.model.scheduler import Call, Scheduler, Timer
from mock_server.model.script import Complete, Progress
from mock_server.model.stream_id import StreamId
from mock_server.store import codec

from .scan import pickled, values
from .test_shared import KEY, PREFIX, create_job, profile, running, two_workers


class Touch:
    """Unpickling this creates a file: the proof that loading ran code chosen by the data."""

    def __init__(self, path: Path) -> None:
        self.path = path

    def __reduce__(self) -> tuple[Any, ...]:
        return (Path.touch, (self.path,))


@dataclass
class Holder:
    """Stands in for a model: its timers refer to it by name."""

    scheduler: Scheduler = field(default_factory=Scheduler)
    timers: dict[tuple[str, str], Timer] = field(default_factory=dict)

    def _tick(self, job_id: str, now: int) -> None:
        pass


def test_the_codec_keeps_types_identity_and_named_timers() -> None:
    holder = Holder()
    timer = holder.scheduler.at(5, Call(holder, "_tick", ("j1",)))
    holder.timers[("j1", "step")] = timer
    state = {
        "timers": holder.timers,
        "heap": holder.scheduler._heap,
        "seq": holder.scheduler._seq,
        "misc": (StreamId(3, 4), {1, 2}, frozenset({"a"}), deque([1], maxlen=3), b"\x80\x01"),
        "status": JobStatus.RUNNING,
        "$odd": {"$key": 1},
    }
    refs = {id(holder): "root:holder"}
    blob = codec.dumps(state, refs)
    assert not blob.startswith(b"\x80")
    assert json.loads(blob)["format"] == codec.FORMAT
    back = codec.loads(blob, {"root:holder": holder}, {("root:holder", "_tick")})
    assert '"$timer"' in blob.decode()  # the compact form
    assert back["heap"][0] is back["timers"][("j1", "step")]  # one timer, held twice
    assert back["heap"][0].callback == Call(holder, "_tick", ("j1",))
    assert back["misc"] == state["misc"] and back["status"] is JobStatus.RUNNING
    assert codec.dumps(back, refs) == blob
    assert next(back["seq"]) == 1 and back["$odd"] == {"$key": 1}


@pytest.mark.parametrize(
    "value",
    [
        2**64,  # orjson would read it back as a float
        -(2**63) - 1,
        2**64 - 1,  # still orjson's
        float("nan"),  # orjson would write null
        float("-inf"),
        "lone \ud800 surrogate",  # orjson refuses to write it
        [[[[["deep"]]]]] * 2,
    ],
    ids=repr,
)
def test_values_orjson_would_lose_or_refuse_come_back_exactly(value: Any) -> None:
    deep: Any = "bottom"
    for _ in range(300):  # beyond orjson's nesting limit
        deep = [deep]
    blob = codec.dumps({"v": value, "deep": deep}, {})
    back = codec.loads(blob, {}, ())
    assert type(back["v"]) is type(value) and repr(back["v"]) == repr(value)
    assert back["deep"] == deep


def test_a_document_claiming_exact_is_read_exactly_whoever_wrote_it() -> None:
    blob = b'{"format":%d,"exact":true,"data":[18446744073709551616,NaN]}' % codec.FORMAT
    big, nan = codec.loads(blob, {}, ())
    assert big == 2**64 and type(big) is int and nan != nan
    with pytest.raises(codec.CodecError):
        codec.loads(b'{"format":1,"data":[NaN', {}, ())


def test_a_timer_record_keeps_its_key_and_loads_as_a_timer_calling_its_model() -> None:
    """A timer alone (as the shared store writes each one, a record of its own) with the key
    it is filed under."""
    holder = Holder()
    timer = holder.scheduler.at(7, Call(holder, "_tick", ("j1",)), ("auvy", "j1"))
    refs = {id(holder): "root:holder"}
    blob = codec.dumps(timer, refs)
    assert json.loads(blob)["data"] == {
        "$timer": [0, 7, 0, "root:holder", "_tick", ["j1"], False, ["auvy", "j1"]]
    }
    back = codec.loads(blob, {"root:holder": holder}, {("root:holder", "_tick")})
    assert isinstance(back, Timer) and back == timer
    assert back.key == ("auvy", "j1") and back.callback == timer.callback
    unfiled = codec.loads(
        codec.dumps(Timer(9, 1, Call(holder, "_tick", ("j2",))), refs),
        {"root:holder": holder},
        {("root:holder", "_tick")},
    )
    assert unfiled.key is None


@pytest.mark.parametrize(
    "data",
    [
        {"$o": "os:system", "$n": 0, "s": {}},
        {"$o": "builtins:eval", "$n": 0, "s": {}},
        {"$o": "subprocess:Popen", "$n": 0, "s": {}},
        {"$o": "mock_server.model.stream_id:StreamId.__init__", "$n": 0, "s": {}},
        {"$o": "mock_server.model.errors:NotFound", "$n": 0, "s": {}},  # its own __new__
        {"$o": "mock_server.model.stream_id:StreamId", "$n": 0, "s": {"__class__": 1}},
        {"$e": "os:system", "v": "ls"},
        {"$call": ["root:holder", "__init__", {"$tuple": []}]},
        {"$call": ["root:holder", "_tick", ["not", "a", "tuple"]]},
        {"$timer": [0, 5, 1, "root:holder", "__init__", [], False]},
        {"$timer": [0, 5, 1, "root:holder", "__init__", [], False, None]},
        {"$timer": [0, "5", 1, "root:holder", "_tick", [], False, None]},
        {"$timer": [0, 5, 1, "root:holder", "_tick", [], False, "auvy"]},
        {"$timer": [0, 5, 1, "root:holder", "_tick", [], False, []]},
        {"$timer": [0, 5, 1, "root:holder", "_tick", [], False, [{"$x": "root:holder"}]]},
        {"$timer": [0, 5, 1, "root:holder", "_tick", [], False]},  # a key is required
        {"$f": "os:system", "s": {}},
        {"$f": "mock_server.model.auvy.lifecycle:JobStatus", "s": {}},  # an enum
        {"$f": "mock_server.model.stream_id:StreamId", "s": {"__class__": 1}},
        {"$f": "mock_server.model.stream_id:StreamId", "s": ["not", "a", "mapping"]},
        {"$x": "root:nobody"},
        {"$r": 7},
        {"$exec": "print(1)"},
    ],
)
def test_the_codec_refuses_what_it_does_not_allow(data: Any) -> None:
    blob = json.dumps({"format": codec.FORMAT, "data": data}).encode()
    with pytest.raises(codec.CodecError):
        codec.loads(blob, {"root:holder": Holder()}, {("root:holder", "_tick")})


def test_a_pickle_is_refused_without_being_run(tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    with pytest.raises(codec.CodecError):
        codec.loads(pickle.dumps(Touch(marker)), {}, ())
    assert not marker.exists()


def test_the_codec_writes_no_function() -> None:
    with pytest.raises(codec.CodecError):
        codec.dumps({"f": lambda: None}, {})
    with pytest.raises(codec.CodecError):
        codec.dumps({"c": itertools.count(0, 2)}, {})


def test_no_key_holds_a_pickle_after_two_workers_traffic(
    redis_url: str, redis_client: redis.Redis
) -> None:
    async def test() -> None:
        async with two_workers(redis_url) as (_, _, a, b):
            jobs = [await create_job(a), await create_job(b)]
            assert (await b.post("/_mock/clock/advance", json={"ms": 25})).is_success
            assert (await a.post(f"/auvy/v1/jobs/{jobs[0]}/cancel", headers=KEY)).is_success
            assert (await a.get(f"/auvy/v1/jobs/{jobs[1]}/status", headers=KEY)).is_success

    asyncio.run(asyncio.wait_for(test(), 60))
    written = dict(values(redis_client, PREFIX))
    assert any(key.startswith(PREFIX + "records:") for key in written)
    assert PREFIX + "world" in written
    assert pickled(redis_client, PREFIX) == []
    world = json.loads(redis_client.hget(PREFIX + "world", "b") or b"")
    assert world["format"] == codec.FORMAT


def test_pickles_planted_in_redis_are_never_run(
    redis_url: str, redis_client: redis.Redis, tmp_path: Path
) -> None:
    """Whoever can write the store's keys plants a pickle as the world and as a job record; a
    worker joining the world and one loading the record must refuse them, running nothing."""
    in_world, in_record = tmp_path / "world", tmp_path / "record"

    async def test() -> None:
        async with running(create_app(profile(), store=redis_url)) as a:
            job_id = await create_job(a)
            # A planted record, announced as a change other workers must load.
            version = redis_client.hincrby(PREFIX + "world", "v", 1)
            redis_client.hset(PREFIX + "records:auvy.jobs", job_id, pickle.dumps(Touch(in_record)))
            redis_client.zadd(PREFIX + "versions", {f"auvy.jobs\n{job_id}": version})
            redis_client.hset(PREFIX + "world", "b", pickle.dumps(Touch(in_world)))
            redis_client.hset(PREFIX + "world", "rv", version)
            async with running(create_app(profile(), store=redis_url)) as late:
                # It refused the planted world and published its own seeded one instead.
                listed = await late.get("/auvy/v1/jobs", headers=KEY)
                assert listed.status_code == 200, listed.text
            await a.get(f"/auvy/v1/jobs/{job_id}/status", headers=KEY)

    asyncio.run(asyncio.wait_for(test(), 60))
    assert not in_world.exists(), "a worker unpickled the world it found in Redis"
    assert not in_record.exists(), "a worker unpickled a record it found in Redis"
    assert pickled(redis_client, PREFIX) == []


def test_a_frozen_value_is_encoded_once_and_read_back_as_an_equal_value(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    step = Progress(2, "fetch", ("Fetching ", "sources."))
    states: list[object] = []

    def counted(obj: object) -> dict[str, Any]:
        states.append(obj)
        return dict(vars(obj))

    monkeypatch.setattr(codec, "_state", counted)
    first = codec.dumps({"script": (step, step)}, {})
    assert json.loads(first)["data"]["script"]["$tuple"][0] == {
        "$f": "mock_server.model.script:Progress",
        "s": {"count": 2, "name": "fetch", "tokens": {"$tuple": ["Fetching ", "sources."]}},
    }
    assert codec.dumps({"script": (step, step)}, {}) == first
    assert states == [step], "encoded once, then taken from the cache"
    back = codec.loads(first, {}, ())["script"]
    assert back == (step, step) and type(back[0]) is Progress
    assert back[0] is not back[1], "a value has no identity to keep"


def test_a_frozen_value_holding_an_object_keeps_that_objects_identity() -> None:
    job = Job.__new__(Job)
    vars(job).update(id="j1", responses=[])
    done = Complete({"job": job})
    blob = codec.dumps({"done": done, "job": job}, {})
    assert '"$f"' not in blob.decode(), "written as an object, with a number"
    back = codec.loads(blob, {}, ())
    assert back["done"].result["job"] is back["job"]
    assert codec.dumps({"done": done, "job": job}, {}) == blob


def test_a_cached_frozen_value_still_marks_its_document_exact() -> None:
    done = Complete({"ratio": float("nan")})
    for _ in range(2):  # the second from the cache
        back = codec.loads(codec.dumps({"done": done}, {}), {}, ())
        assert back["done"].result["ratio"] != back["done"].result["ratio"]


def test_verifying_fails_a_frozen_value_changed_in_place_after_it_was_encoded() -> None:
    result: dict[str, object] = {"steps": 1}
    done = Complete(result)
    codec.dumps(done, {})
    result["steps"] = 2  # what no model may do: the cache would keep the old encoding
    with pytest.raises(RuntimeError, match="changed after it was encoded"):
        codec.dumps(done, {}, verify=True)


def test_the_frozen_cache_is_emptied_when_full(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(codec, "FROZEN_CACHE_MOST", 3)
    monkeypatch.setattr(codec, "_frozen_cache", {})
    ids = [StreamId(1, n) for n in range(7)]
    for stream_id in ids:
        codec.dumps(stream_id, {})
        assert len(codec._frozen_cache) <= 3
    assert codec.loads(codec.dumps(ids, {}), {}, ()) == ids
