"""AUVY receptors, their share tokens and what a share token lets an anonymous caller do.

A share token is scoped to exactly one receptor of one workspace. Public access is decided here:

    no token, or one matching no share                                         -> Unauthenticated
    a revoked or rotated-out token (FACTS leaves 401 or 403 open)              -> Unauthenticated
                                                        (the 403 variant: Forbidden)
    an active token of another receptor than the request names                 -> Forbidden
    a trace or job that is not the token's receptor's                          -> NotFound

A mismatch is never a NotFound, so a token cannot be used to probe which receptors exist. An
optional user JWT (checked at the HTTP layer) only attributes the trace to a user: it is never
consulted for access.
"""

from __future__ import annotations

import secrets
import uuid
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from .auvy import AuvyModel, Job, Principal, Trace
from .errors import Forbidden, NotFound, Unauthenticated

ShareStatus = Literal["active", "revoked", "rotated"]
CUSTOMIZATION_KEYS = ("title", "welcome_message", "theme_color", "avatar_url")


@dataclass(frozen=True)
class Receptor:
    id: str
    workspace_id: str
    slug: str
    name: str
    pathway_id: str
    allow_files: bool = True
    customization: Mapping[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class ShareToken:
    token: str
    receptor_id: str
    created_ms: int
    status: ShareStatus = "active"
    ended_ms: int | None = None


def default_customization(receptor_name: str) -> dict[str, Any]:
    return {
        "title": receptor_name,
        "welcome_message": f"Ask {receptor_name} anything.",
        "theme_color": "#3b5bdb",
        "avatar_url": None,
    }


class Receptors:
    def __init__(self, jobs: AuvyModel) -> None:
        self.jobs = jobs
        self.receptors: dict[str, Receptor] = {}
        self.shares: dict[str, ShareToken] = {}

    # -- world ---------------------------------------------------------------------------------

    def add(self, receptor: Receptor) -> None:
        if receptor.workspace_id not in self.jobs.workspaces:
            raise ValueError(f"receptor {receptor.slug} names an unknown workspace")
        if receptor.pathway_id not in self.jobs.pathways:
            raise ValueError(f"receptor {receptor.slug} names an unknown pathway")
        self.receptors[receptor.id] = receptor

    def add_share(self, share: ShareToken) -> None:
        if share.receptor_id not in self.receptors:
            raise ValueError("share token for an unknown receptor")
        if share.status == "active" and self.active_share(share.receptor_id) is not None:
            raise ValueError("a receptor has at most one active share token")
        self.shares[share.token] = share

    def clear(self) -> None:
        self.receptors.clear()
        self.shares.clear()

    def by_slug(self, workspace_id: str, slug: str) -> Receptor | None:
        for receptor in self.receptors.values():
            if receptor.workspace_id == workspace_id and receptor.slug == slug:
                return receptor
        return None

    def active_share(self, receptor_id: str) -> ShareToken | None:
        for share in self.shares.values():
            if share.receptor_id == receptor_id and share.status == "active":
                return share
        return None

    def workspace_slug(self, receptor: Receptor) -> str:
        return self.jobs.workspaces[receptor.workspace_id].slug

    # -- private: a workspace manages its receptors' shares ------------------------------------

    def get(self, who: Principal, slug: str) -> Receptor:
        receptor = self.by_slug(who.workspace.id, slug)
        if receptor is None:
            raise NotFound("receptor", slug)
        return receptor

    def _own(self, who: Principal, workspace_slug: str, slug: str) -> Receptor:
        # Another workspace's receptor is a 404 like a missing one: the path names no secret.
        if workspace_slug != who.workspace.slug:
            raise NotFound("receptor", slug)
        return self.get(who, slug)

    def create_share(
        self,
        who: Principal,
        workspace_slug: str,
        slug: str,
        *,
        allow_files: bool | None = None,
        customization: Mapping[str, Any] | None = None,
    ) -> tuple[ShareToken, bool]:
        """Idempotent: returns the active share (settings applied) or a new one, and whether
        it was created."""
        self._require_write(who)
        receptor = self._configure(self._own(who, workspace_slug, slug), allow_files, customization)
        share = self.active_share(receptor.id)
        if share is not None:
            return share, False
        share = ShareToken(self._new_token(), receptor.id, self.jobs.engine.now())
        self.shares[share.token] = share
        return share, True

    def get_share(self, who: Principal, workspace_slug: str, slug: str) -> ShareToken:
        receptor = self._own(who, workspace_slug, slug)
        share = self.active_share(receptor.id)
        if share is None:
            raise NotFound("share", slug)
        return share

    def revoke_share(self, who: Principal, workspace_slug: str, slug: str) -> ShareToken:
        self._require_write(who)
        share = self.get_share(who, workspace_slug, slug)
        share = replace(share, status="revoked", ended_ms=self.jobs.engine.now())
        self.shares[share.token] = share
        return share

    def rotate_share(self, who: Principal, workspace_slug: str, slug: str) -> ShareToken:
        self._require_write(who)
        old = self.get_share(who, workspace_slug, slug)
        now = self.jobs.engine.now()
        self.shares[old.token] = replace(old, status="rotated", ended_ms=now)
        new = ShareToken(self._new_token(), old.receptor_id, now)
        self.shares[new.token] = new
        return new

    def _configure(
        self,
        receptor: Receptor,
        allow_files: bool | None,
        customization: Mapping[str, Any] | None,
    ) -> Receptor:
        changes: dict[str, Any] = {}
        if allow_files is not None:
            changes["allow_files"] = allow_files
        if customization:
            merged = dict(receptor.customization)
            merged.update({k: v for k, v in customization.items() if k in CUSTOMIZATION_KEYS})
            changes["customization"] = merged
        if not changes:
            return receptor
        updated = replace(receptor, **changes)
        self.receptors[receptor.id] = updated
        return updated

    @staticmethod
    def _require_write(who: Principal) -> None:
        if "write" not in who.scopes:
            raise Forbidden("this API key is read-only", "forbidden")

    @staticmethod
    def _new_token() -> str:
        return "shr_" + secrets.token_urlsafe(24)

    # -- public: what a share token allows -----------------------------------------------------

    def access(
        self,
        token: str | None,
        *,
        workspace_slug: str | None = None,
        slug: str | None = None,
        receptor_id: str | None = None,
    ) -> Receptor:
        """The receptor a share token opens, checked against what the request names."""
        if not token:
            raise Unauthenticated("a share token is required (?t= or share_token)")
        share = self.shares.get(token)
        if share is None:
            raise Unauthenticated("the share token is not valid")
        if share.status != "active":
            # FACTS.md leaves the status of a revoked token open (401 or 403); rotated-out tokens
            # are revoked ones too, so both answer the same.
            if self.jobs.settings.variant.revoked_token_status == 403:
                raise Forbidden("the share token was revoked", "forbidden")
            raise Unauthenticated("the share token is not valid (revoked or rotated)")
        receptor = self.receptors[share.receptor_id]
        named_other = (receptor_id is not None and receptor_id != receptor.id) or (
            (workspace_slug is not None or slug is not None)
            and (workspace_slug, slug) != (self.workspace_slug(receptor), receptor.slug)
        )
        if named_other:
            raise Forbidden("the share token is for another receptor", "forbidden")
        return receptor

    def execute(
        self, receptor: Receptor, message: str, *, stream: bool, user_id: str | None
    ) -> tuple[Job, Trace]:
        self.jobs.require_billable(receptor.workspace_id)
        trace = Trace(
            id=f"trc_{uuid.uuid4().hex[:24]}",
            workspace_id=receptor.workspace_id,
            receptor_id=receptor.id,
            user_id=user_id,
            created_ms=self.jobs.engine.now(),
        )
        self.jobs.add_trace(trace)
        job = self.jobs.start_pathway_for(
            receptor.workspace_id,
            receptor.pathway_id,
            {"message": message, "stream": stream},
            receptor_id=receptor.id,
            trace_id=trace.id,
        )
        return job, trace

    def transcribe(self, receptor: Receptor, audio_base64: str, mime_type: str) -> Job:
        if not receptor.allow_files:
            raise Forbidden("this receptor does not accept files", "forbidden")
        self.jobs.require_billable(receptor.workspace_id)
        return self.jobs.start_transcription(
            receptor.workspace_id, audio_base64, mime_type, receptor_id=receptor.id
        )

    def trace(self, receptor: Receptor, trace_id: str) -> Trace:
        trace = self.jobs.traces.get(trace_id)
        if trace is None or trace.receptor_id != receptor.id:
            raise NotFound("trace", trace_id)
        return trace

    def job(self, receptor: Receptor, job_id: str, trace_id: str | None = None) -> Job:
        job = self.jobs.jobs.get(job_id)
        if job is None or job.receptor_id != receptor.id:
            raise NotFound("job", job_id)
        if trace_id is not None and job.trace_id != trace_id:
            raise NotFound("job", job_id)
        return job
