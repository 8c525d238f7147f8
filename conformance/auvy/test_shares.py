"""Receptors and share-token management: GET /v1/receptors/{slug}, .../share (+ /rotate)."""

from __future__ import annotations

from collections.abc import Callable

import httpx
import pytest

from conformance.checks import ConformanceFailure, auvy_error_envelope, body_of, status_is
from conformance.clients.auvy import NOT_FOUND_CODES, AuvyClient, refused, revoked_answers
from conformance.profile import TargetProfile

req = pytest.mark.req


# FACTS.md names the share routes, not their answers: any success code will do.
OK = range(200, 300)


def resolve(auvy: AuvyClient, workspace: str, slug: str, token: str) -> httpx.Response:
    return auvy.public(
        "resolvePublicReceptor", "GET", f"/v1/public/receptors/{workspace}/{slug}", token=token
    )


def works(auvy: AuvyClient, workspace: str, slug: str, token: str, what: str) -> None:
    status = resolve(auvy, workspace, slug, token).status_code
    if status != 200:
        raise ConformanceFailure(f"{what} does not open the receptor: resolve answered {status}")


@req("auvy.receptors.get")
def test_get_receptor_by_slug(auvy: AuvyClient, profile: TargetProfile) -> None:
    main = profile.need("auvy.public.receptors.main")
    body = body_of(auvy.get_receptor(main["slug"]))
    assert body["slug"] == main["slug"] and body["id"] == main["id"], body


@req("auvy.receptors.get", "auvy.shares.scoped")
def test_get_receptor_of_another_workspace_is_404(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile
) -> None:
    lab = profile.need("auvy.public.receptors.lab.slug")
    auvy_error_envelope(auvy_as("other").get_receptor(lab), 404, NOT_FOUND_CODES)
    auvy_error_envelope(auvy_as("main").get_receptor("no-such-receptor"), 404, NOT_FOUND_CODES)


@req("auvy.shares.lifecycle")
def test_share_lifecycle_read_rotate_revoke_create(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    """One test on a receptor reserved for it, so parallel tests never see its token change."""
    workspace = profile.need("auvy.public.workspace")
    slug = profile.need("auvy.public.receptors.lab.slug")
    answers = revoked_answers(profile)
    current = auvy.share("getShare", workspace, slug)
    status_is(current, 200)
    token = body_of(current)["token"]
    works(auvy, workspace, slug, token, "the current token")

    rotated = auvy.share("rotateShare", workspace, slug)
    status_is(rotated, OK)
    new_token = body_of(rotated)["token"]
    assert new_token != token, "rotating kept the token"
    refusals = {"rotated out": refused(resolve(auvy, workspace, slug, token), answers)}
    works(auvy, workspace, slug, new_token, "the rotated-in token")
    assert body_of(auvy.share("getShare", workspace, slug))["token"] == new_token

    again = auvy.share("createShare", workspace, slug)
    status_is(again, OK)
    assert body_of(again)["token"] == new_token, "creating a share replaced the active token"

    status_is(auvy.share("revokeShare", workspace, slug), OK)
    refusals["revoked"] = refused(resolve(auvy, workspace, slug, new_token), answers)
    auvy_error_envelope(auvy.share("getShare", workspace, slug), 404, NOT_FOUND_CODES)
    auvy_error_envelope(auvy.share("rotateShare", workspace, slug), 404, NOT_FOUND_CODES)

    created = auvy.share("createShare", workspace, slug, {"allow_files": False})
    status_is(created, OK)
    fresh = body_of(created)
    assert fresh["token"] not in (token, new_token), "a new share reused a revoked token"
    works(auvy, workspace, slug, fresh["token"], "the new token")
    refusals["revoked, after a new share"] = refused(
        resolve(auvy, workspace, slug, new_token), answers
    )
    # FACTS.md: choose 401 or 403 "and keep it consistent".
    if len(set(refusals.values())) != 1:
        raise ConformanceFailure("revoked tokens are refused inconsistently", repr(refusals))


@req("auvy.shares.configurable")
def test_share_settings_show_in_public_metadata(auvy: AuvyClient, profile: TargetProfile) -> None:
    workspace = profile.need("auvy.public.workspace")
    main = profile.need("auvy.public.receptors.main")
    title = "Acme Support"
    response = auvy.share(
        "createShare", workspace, main["slug"], {"customization": {"title": title}}
    )
    status_is(response, OK)
    public = auvy.public(
        "resolvePublicReceptor",
        "GET",
        f"/v1/public/receptors/{workspace}/{main['slug']}",
        token=body_of(response)["token"],
    )
    assert body_of(public)["customization"]["title"] == title


@req("auvy.shares.scoped", "auvy.errors.forbidden")
def test_read_only_key_cannot_change_shares(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile
) -> None:
    workspace = profile.need("auvy.public.workspace")
    slug = profile.need("auvy.public.receptors.main.slug")
    reader = auvy_as("read_only")
    for op in ("createShare", "rotateShare", "revokeShare"):
        auvy_error_envelope(reader.share(op, workspace, slug), 403, "FORBIDDEN")
    status_is(reader.share("getShare", workspace, slug), 200)


@req("auvy.shares.scoped", "auvy.errors.other-workspace-404")
@pytest.mark.parametrize("op", ["getShare", "createShare", "rotateShare", "revokeShare"])
def test_another_workspaces_shares_are_404(
    auvy_as: Callable[[str | None], AuvyClient], profile: TargetProfile, op: str
) -> None:
    workspace = profile.need("auvy.public.workspace")
    main = profile.need("auvy.public.receptors.main")
    stranger = auvy_as("other")
    response = stranger.share(op, workspace, main["slug"])
    # Not theirs to see (404) or not theirs to touch (403): both keep the token to its owner.
    refused(response, {403: {"FORBIDDEN"}, 404: NOT_FOUND_CODES})
    assert main["token"] not in response.text
    works(auvy_as("main"), workspace, main["slug"], main["token"], "the owner's token")
