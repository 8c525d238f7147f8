"""HS256 JSON Web Tokens, just enough to attribute a public trace to a user.

The reference server signs and checks its users' JWTs with a secret from the seed world; a token
that is malformed, badly signed or expired is refused (never silently ignored), so a client learns
that its session ended.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
from collections.abc import Mapping
from typing import Any


class InvalidToken(ValueError):
    pass


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def encode(claims: Mapping[str, Any], secret: str) -> str:
    header = _b64(json.dumps({"alg": "HS256", "typ": "JWT"}, separators=(",", ":")).encode())
    payload = _b64(json.dumps(dict(claims), separators=(",", ":")).encode())
    signature = hmac.new(secret.encode(), f"{header}.{payload}".encode(), hashlib.sha256)
    return f"{header}.{payload}.{_b64(signature.digest())}"


def decode(token: str, secret: str, now_s: float) -> dict[str, Any]:
    """The claims of a valid, unexpired HS256 token; InvalidToken otherwise."""
    parts = token.split(".")
    if len(parts) != 3:
        raise InvalidToken("not a JWT")
    try:
        header = json.loads(_unb64(parts[0]))
        claims = json.loads(_unb64(parts[1]))
        signature = _unb64(parts[2])
    except (ValueError, UnicodeDecodeError):
        raise InvalidToken("not a JWT") from None
    if not isinstance(header, dict) or header.get("alg") != "HS256":
        raise InvalidToken("only HS256 tokens are accepted")
    expected = hmac.new(secret.encode(), f"{parts[0]}.{parts[1]}".encode(), hashlib.sha256)
    if not hmac.compare_digest(expected.digest(), signature):
        raise InvalidToken("bad signature")
    if not isinstance(claims, dict) or not isinstance(claims.get("sub"), str):
        raise InvalidToken("the token names no user (sub)")
    exp = claims.get("exp")
    if not isinstance(exp, int | float) or isinstance(exp, bool) or exp <= now_s:
        raise InvalidToken("the token has expired")
    return claims
