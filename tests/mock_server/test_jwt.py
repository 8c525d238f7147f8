"""HS256 user JWTs: round trip, and every way a token is refused."""

from __future__ import annotations

import base64
import json

import pytest

from mock_server import jwt

SECRET = "s3cret"
NOW = 1_800_000_000


def _part(obj: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(obj).encode()).rstrip(b"=").decode()


def test_round_trip() -> None:
    token = jwt.encode({"sub": "usr_1", "exp": NOW + 60}, SECRET)
    assert jwt.decode(token, SECRET, NOW)["sub"] == "usr_1"


@pytest.mark.parametrize(
    "token,why",
    [
        ("", "not a JWT"),
        ("a.b", "not a JWT"),
        ("!!!.###.$$$", "not a JWT"),
        (jwt.encode({"sub": "u", "exp": NOW + 60}, "other"), "bad signature"),
        (jwt.encode({"sub": "u", "exp": NOW}, SECRET), "expired"),
        (jwt.encode({"sub": "u", "exp": NOW - 1}, SECRET), "expired"),
        (jwt.encode({"sub": "u"}, SECRET), "expired"),
        (jwt.encode({"sub": "u", "exp": True}, SECRET), "expired"),
        (jwt.encode({"exp": NOW + 60}, SECRET), "names no user"),
        (f"{_part({'alg': 'none'})}.{_part({'sub': 'u', 'exp': NOW + 60})}.", "only HS256"),
    ],
    ids=[
        "empty",
        "two-parts",
        "garbage",
        "bad-signature",
        "exp-now",
        "expired",
        "no-exp",
        "bool-exp",
        "no-sub",
        "alg-none",
    ],
)
def test_refused(token: str, why: str) -> None:
    with pytest.raises(jwt.InvalidToken, match=why):
        jwt.decode(token, SECRET, NOW)


def test_a_tampered_payload_fails_the_signature() -> None:
    header, _, signature = jwt.encode({"sub": "usr_1", "exp": NOW + 60}, SECRET).split(".")
    forged = f"{header}.{_part({'sub': 'admin', 'exp': NOW + 60})}.{signature}"
    with pytest.raises(jwt.InvalidToken, match="bad signature"):
        jwt.decode(forged, SECRET, NOW)
