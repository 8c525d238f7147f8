"""Masking credentials out of everything a run writes: exchanges, messages, reports.

Reports are shared (CI artifacts, attached to tickets), so no credential of the profile, and no
share token or key a test obtained during the run, may appear in them. A masked secret keeps a
short prefix, enough to tell which credential it was: `auvy_t…`, `Bearer strait…`, `eyJhbG…`.

API:
- `Masker.from_profile(profile)`: a masker knowing every secret of a target profile, i.e. every
  string under a key or table whose name contains key, secret, token, password, passwd, jwt or
  credential (`[auvy.keys]` masks each of its values, `ava.secret`, `ava.webhooks.secret`,
  `strait.key`, `strait.<project>.key`, every share `token`, `user_jwt`, ...).
- `masker.text(s)`: `s` with every known secret masked, and whatever *looks* like a secret
  masked too (see `learn`), so a token nobody registered is still hidden.
- `masker.learn(s)`: registers the secrets `s` shows by their form: values of the query parameters
  t, token, share_token, key and api_key; of the JSON (or Python repr) fields share_token, token,
  secret, api_key, key and password; of credential headers; JWTs (`eyJ….….…`) and Strait keys
  (`strait_<64 hex>`). Once learned, a secret is masked wherever it appears later, e.g. a share
  token in a URL path or in a failure message.
- `masker.headers(mapping)`: a copy with the values of credential headers (authorization,
  proxy-authorization, x-internal-secret, x-api-key, cookie, set-cookie) masked, and every other
  value passed through `text`.
- `run_masker()`: the process-wide masker of the run. conftest.py seeds it from the profile
  (`seed_run_masker`), the Recorder (clients/http.py) learns from every exchange it records and
  masks it, and a pytest hook masks every failure message, captured output and user property
  before any report (junit.xml, conformance.json, conformance.html, the terminal) sees it.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterable, Mapping
from typing import Any

MASK = "…"
MIN_SECRET = 4  # shorter values would mask ordinary words all over a report

SECRET_WORDS = ("key", "secret", "token", "password", "passwd", "jwt", "credential")
SECRET_HEADERS = frozenset(
    {
        "authorization",
        "proxy-authorization",
        "x-internal-secret",
        "x-api-key",
        "cookie",
        "set-cookie",
    }
)
SECRET_PARAMS = ("t", "token", "share_token", "key", "api_key")
SECRET_FIELDS = ("share_token", "token", "secret", "api_key", "key", "password")

_VALUE = r"[^&#\s\"'<>]+"
_PATTERNS: tuple[re.Pattern[str], ...] = (
    # Query parameters: ?t=shr_... &api_key=...
    re.compile(rf"(?i)((?:[?&]|&amp;)(?:{'|'.join(SECRET_PARAMS)})=)({_VALUE})"),
    # JSON or Python-repr fields and header dicts: "token": "...", 'x-internal-secret': '...'
    re.compile(
        r"(?i)([\"'](?:"
        + "|".join(re.escape(n) for n in (*SECRET_FIELDS, *sorted(SECRET_HEADERS)))
        + r")[\"']\s*:\s*[\"'])((?:Bearer |Basic )?(?:[^\"'\\]|\\.)+)"
    ),
    # Header lines as text (curl commands, raw dumps): "Authorization: Bearer ..."
    re.compile(
        r"(?im)((?:^|[\s\"'])(?:"
        + "|".join(re.escape(n) for n in sorted(SECRET_HEADERS))
        + r")\s*:\s*)([^\r\n\"']+)"
    ),
    re.compile(r"(\bBearer\s+)([^\s\"',;]+)"),
    re.compile(r"()(\beyJ[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]{4,}\.[A-Za-z0-9_-]*)"),
    re.compile(r"()(\bstrait_[0-9a-f]{64}\b)"),
)
# What `learn` registers globally must look like a credential, not like "status" under a "key".
_LEARNABLE = re.compile(r"[^\s]{8,}")


def masked(secret: str) -> str:
    """`secret` as reports show it: a short prefix (up to 6 characters, never more than a third
    of it) and an ellipsis. A value already masked is left alone."""
    if MASK in secret:
        return secret
    scheme, sep, rest = secret.partition(" ")
    if sep and scheme.lower() in ("bearer", "basic") and rest:
        return f"{scheme} {masked(rest)}"
    keep = min(6, len(secret) // 3)
    return secret[:keep] + MASK


class Masker:
    """Replaces each known secret, and anything shaped like one, by a short prefix and `…`."""

    def __init__(self, secrets: Iterable[str] = ()) -> None:
        self.secrets: set[str] = set()
        self._lock = threading.Lock()
        self._known: re.Pattern[str] | None = None
        for secret in secrets:
            self.add(secret)

    def add(self, secret: str) -> None:
        secret = secret.strip()
        if len(secret) < MIN_SECRET or MASK in secret or secret in self.secrets:
            return
        with self._lock:
            self.secrets.add(secret)
            self._known = None

    def update(self, other: Masker) -> None:
        for secret in other.secrets:
            self.add(secret)

    def learn(self, value: str) -> None:
        """Register every secret `value` shows by its form (see the module docstring)."""
        if not value:
            return
        for pattern in _PATTERNS:
            for match in pattern.finditer(value):
                found = match.group(2)
                scheme, sep, rest = found.partition(" ")
                if sep and scheme.lower() in ("bearer", "basic"):
                    found = rest
                # Cookies: each value of `name=value; name=value` on its own.
                pieces = [p.partition("=")[2] for p in re.split(r"[;,]\s*", found) if "=" in p]
                for candidate in (found, *pieces):
                    if _LEARNABLE.fullmatch(candidate):
                        self.add(candidate)

    def text(self, value: str) -> str:
        if not value:
            return value
        known = self._pattern()
        if known is not None:
            value = known.sub(lambda m: masked(m.group(0)), value)
        for pattern in _PATTERNS:
            value = pattern.sub(lambda m: m.group(1) + masked(m.group(2)), value)
        return value

    def headers(self, headers: Mapping[str, str]) -> dict[str, str]:
        return {
            name: masked(value) if name.lower() in SECRET_HEADERS and value else self.text(value)
            for name, value in headers.items()
        }

    def _pattern(self) -> re.Pattern[str] | None:
        with self._lock:
            if self._known is None and self.secrets:
                # Longest first, so a secret that contains another is masked whole.
                ordered = sorted(self.secrets, key=len, reverse=True)
                self._known = re.compile("|".join(re.escape(s) for s in ordered))
            return self._known

    @classmethod
    def from_profile(cls, profile: Any) -> Masker:
        """Every secret of a target profile (a TargetProfile, or its parsed TOML as a dict)."""
        data = profile if isinstance(profile, Mapping) else getattr(profile, "data", {})
        found: list[str] = []
        _secrets(data, found, under_secret=False)
        return cls(found)


def secret_name(name: str) -> bool:
    name = name.lower()
    return any(word in name for word in SECRET_WORDS)


def _secrets(node: Any, out: list[str], *, under_secret: bool) -> None:
    if isinstance(node, str):
        if under_secret:
            out.append(node)
    elif isinstance(node, Mapping):
        for key, value in node.items():
            _secrets(value, out, under_secret=under_secret or secret_name(str(key)))
    elif isinstance(node, list | tuple):
        for value in node:
            _secrets(value, out, under_secret=under_secret)


_RUN_MASKER = Masker()


def run_masker() -> Masker:
    """The run's masker, shared by everything in this process (one per xdist worker)."""
    return _RUN_MASKER


def seed_run_masker(profile: Any) -> Masker:
    """Teach the run's masker every secret of `profile`; safe to call more than once."""
    _RUN_MASKER.update(Masker.from_profile(profile))
    return _RUN_MASKER
