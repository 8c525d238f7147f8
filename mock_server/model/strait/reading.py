"""Strait: reading runs, their records and their streams."""

from __future__ import annotations

from typing import Any

from ..errors import InvalidInput, NotFound
from ..store import in_partition
from ..stream import ReadResult
from ..stream_id import StreamId
from .lifecycle import S
from .records import DEFAULT_LIMIT, MAX_LIMIT, ApiKey, Run, RunRecords, project_of
from .streams import chunks_key
from .world import StraitWorld


def contains(whole: Any, part: Any) -> bool:
    """JSONB's `@>`: objects by member, arrays by element (any order), scalars by equality."""
    if isinstance(part, dict):
        return isinstance(whole, dict) and all(
            k in whole and contains(whole[k], v) for k, v in part.items()
        )
    if isinstance(part, list):
        return isinstance(whole, list) and all(any(contains(w, p) for w in whole) for p in part)
    if isinstance(part, bool) or isinstance(whole, bool):
        return isinstance(part, bool) and isinstance(whole, bool) and part == whole
    return bool(whole == part)


class RunQueries(StraitWorld):
    def get_run(self, who: ApiKey, run_id: str) -> Run:
        run = self.runs.get(run_id)
        # Another project's run is indistinguishable from a missing one (FACTS.md).
        if run is None or run.project_id != who.project_id:
            raise NotFound("run", run_id)
        return run

    def list_runs(
        self,
        who: ApiKey,
        project_id: str,
        *,
        status: str | None = None,
        metadata_key: str | None = None,
        metadata_value: str | None = None,
        limit: int = DEFAULT_LIMIT,
        cursor_ms: int | None = None,
        triggered_by: str | None = None,
        batch_id: str | None = None,
        payload_contains: Any = None,
    ) -> list[Run]:
        if self._foreign(who, project_id):
            return []
        self._project(who, project_id)
        if limit <= 0:
            raise InvalidInput("limit", "limit must be a positive integer")
        if metadata_value is not None and metadata_key is None:
            raise InvalidInput("metadata_value", "metadata_value needs metadata_key")
        # The decoded JSON of the query parameter (the spec layer parsed it).
        wanted: Any = payload_contains
        if wanted is not None and not isinstance(wanted, dict):
            raise InvalidInput("payload_contains", "payload_contains must be a JSON object")
        found = [
            r
            for r in in_partition(self.runs, project_id, project_of)
            if (status is None or self._wire(r.status) == status)
            and (metadata_key is None or metadata_key in r.metadata)
            and (metadata_value is None or r.metadata.get(metadata_key or "") == metadata_value)
            and (cursor_ms is None or r.created_ms < cursor_ms)
            and (triggered_by is None or r.triggered_by == triggered_by)
            and (batch_id is None or r.batch_id == batch_id)
            and (wanted is None or contains(r.payload, wanted))
        ]
        found.sort(key=lambda r: -r.created_ms)
        return found[: min(limit, MAX_LIMIT)]

    def dead_letters(self, who: ApiKey, project_id: str) -> list[Run]:
        if self._foreign(who, project_id):
            return []
        self._project(who, project_id)
        found = [
            r for r in in_partition(self.runs, project_id, project_of) if r.status is S.DEAD_LETTER
        ]
        return sorted(found, key=lambda r: -r.created_ms)

    def children(self, who: ApiKey, run_id: str) -> list[Run]:
        run = self.get_run(who, run_id)
        return sorted(self.children_of(run), key=lambda r: r.created_ms)

    def lineage(self, who: ApiKey, run_id: str) -> list[Run]:
        run = self.get_run(who, run_id)
        root = run
        while root.continuation_of is not None and root.continuation_of in self.runs:
            root = self.runs[root.continuation_of]
        chain = [root]
        # A replay continues a run in its own project.
        successors = {
            r.continuation_of: r
            for r in in_partition(self.runs, run.project_id, project_of)
            if r.continuation_of
        }
        while chain[-1].id in successors:
            chain.append(successors[chain[-1].id])
        return chain

    def run_records(self, who: ApiKey, run_id: str) -> RunRecords:
        return self.records[self.get_run(who, run_id).id]

    def events(
        self, who: ApiKey, run_id: str, *, level: str | None = None, type: str | None = None
    ) -> list[dict[str, Any]]:
        return [
            e
            for e in self.run_records(who, run_id).events
            if (level is None or e["level"] == level) and (type is None or e["type"] == type)
        ]

    def dependency_status(self, who: ApiKey, run_id: str) -> dict[str, Any]:
        run = self.get_run(who, run_id)
        deps = self.dependencies.get(run.job_id, [])
        done = {
            r.job_id
            for r in in_partition(self.runs, run.project_id, project_of)
            if r.status is S.COMPLETED
        }
        return {
            "run_id": run.id,
            "job_id": run.job_id,
            "status": self._wire(run.status),
            "dependencies": list(deps),
            "dependencies_satisfied": all(d["depends_on_job_id"] in done for d in deps),
        }

    def state(self, who: ApiKey, run_id: str) -> dict[str, Any]:
        run = self.get_run(who, run_id)
        checkpoints = self.records[run.id].checkpoints
        last = checkpoints[-1] if checkpoints else None
        return {
            "run_id": run.id,
            "status": self._wire(run.status),
            "attempt": run.attempt,
            "paused": run.status is S.PAUSED,
            "checkpoint_sequence": last["sequence"] if last else None,
            "state": last["state"] if last else {},
        }

    def read_stream(self, run_id: str, after: StreamId | None) -> ReadResult:
        return self.streams.read_after(run_id, after, self.engine.now())

    def read_chunks(self, run_id: str, after: StreamId | None) -> ReadResult:
        return self.streams.read_after(chunks_key(run_id), after, self.engine.now())
