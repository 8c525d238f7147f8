"""Receptors and share-token management: GET /v1/receptors/{slug}, .../share (+ /rotate)."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from conformance.checks import auvy_error_envelope, body_of, status_is
from conformance.clients.auvy import AuvyClient
from conformance.profile import TargetProfile

req = pytest.mark.req


def resolve(auvy: AuvyClient, workspace: str, slug: str, token: str) -> int:
    response = auvy.public(
        "resolvePublicReceptor", "GET", f"/v1/public/receptors/{workspace}/{slug}", token=token
    )
    return response.status_code


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
    auvy_error_envelope(
        auvy_as("other").get_receptor(lab), 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"}
    )
    auvy_error_envelope(
        auvy_as("main").get_receptor("no-such-receptor"), 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"}
    )


@req("auvy.shares.lifecycle")
def test_share_lifecycle_read_rotate_revoke_create(
    auvy: AuvyClient, profile: TargetProfile
) -> None:
    """One test on a receptor reserved for it, so parallel tests never see its token change."""
    workspace = profile.need("auvy.public.workspace")
    slug = profile.need("auvy.public.receptors.lab.slug")
    current = body_of(auvy.share("getShare", workspace, slug))
    token = current["token"]
    assert resolve(auvy, workspace, slug, token) == 200

    rotated = auvy.share("rotateShare", workspace, slug)
    status_is(rotated, 200)
    new_token = body_of(rotated)["token"]
    assert new_token != token
    assert resolve(auvy, workspace, slug, token) == 401, "a rotated-out token still works"
    assert resolve(auvy, workspace, slug, new_token) == 200, "the rotated-in token does not work"
    assert body_of(auvy.share("getShare", workspace, slug))["token"] == new_token

    again = auvy.share("createShare", workspace, slug)
    status_is(again, 200)  # idempotent while a token is active
    assert body_of(again)["token"] == new_token

    status_is(auvy.share("revokeShare", workspace, slug), 200)
    assert resolve(auvy, workspace, slug, new_token) == 401, "a revoked token still works"
    auvy_error_envelope(
        auvy.share("getShare", workspace, slug), 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"}
    )
    auvy_error_envelope(
        auvy.share("rotateShare", workspace, slug), 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"}
    )

    created = auvy.share("createShare", workspace, slug, {"allow_files": False})
    status_is(created, 201)
    fresh = body_of(created)
    assert fresh["token"] not in (token, new_token)
    assert resolve(auvy, workspace, slug, fresh["token"]) == 200
    assert resolve(auvy, workspace, slug, new_token) == 401


@req("auvy.shares.configurable")
def test_share_settings_show_in_public_metadata(auvy: AuvyClient, profile: TargetProfile) -> None:
    workspace = profile.need("auvy.public.workspace")
    main = profile.need("auvy.public.receptors.main")
    title = "Acme Support"
    response = auvy.share(
        "createShare", workspace, main["slug"], {"customization": {"title": title}}
    )
    status_is(response, {200, 201})
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
    auvy_error_envelope(response, 404, {"NOT_FOUND", "RESOURCE_NOT_FOUND"})
    assert main["token"] not in response.text
    # The owner's token is untouched.
    assert resolve(auvy_as("main"), workspace, main["slug"], main["token"]) == 200
