"""AUVY: reading jobs and their event streams."""

from __future__ import annotations

from ..errors import NotFound
from ..store import in_partition
from ..stream import ReadResult
from ..stream_id import StreamId
from .lifecycle import JobStatus
from .records import Job, Principal, workspace_of
from .world import AuvyWorld


class JobQueries(AuvyWorld):
    def get_job(self, who: Principal, job_id: str) -> Job:
        job = self.jobs.get(job_id)
        # Another workspace's job is indistinguishable from a missing one: no existence leak.
        if job is None or job.workspace_id != who.workspace.id:
            raise NotFound("job", job_id)
        return job

    def list_jobs(
        self,
        who: Principal,
        *,
        pathway_id: str | None = None,
        receptor_id: str | None = None,
        status: JobStatus | None = None,
        limit: int = 20,
        offset: int = 0,
    ) -> tuple[list[Job], int]:
        found = [
            j
            for j in in_partition(self.jobs, who.workspace.id, workspace_of)
            if (pathway_id is None or j.pathway_id == pathway_id)
            and (receptor_id is None or j.receptor_id == receptor_id)
            and (status is None or j.status is status)
        ]
        # Newest first; the id breaks ties so pages are stable when jobs share a millisecond.
        found.sort(key=lambda j: (-j.created_ms, j.id))
        return found[offset : offset + limit], len(found)

    def read_events(self, job: Job, after: StreamId | None, count: int | None = None) -> ReadResult:
        return self.streams.read_after(job.id, after, self.engine.now(), count)
