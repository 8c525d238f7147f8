"""`JSONResponse`: Starlette's, rendering the same bytes and headers for less.

`json.dumps` with any option set builds a new `JSONEncoder` for every call, and Starlette's
`JSONResponse.render` sets four; `Response.init_headers` is written for any header mapping. Both
were a visible share of a small answer, which is most answers here. With headers, a media type or
a background task the response is built by Starlette's own code.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from starlette import responses
from starlette.background import BackgroundTask

# Starlette's options exactly: compact, UTF-8 as is, NaN and infinities refused.
_encode = json.JSONEncoder(ensure_ascii=False, allow_nan=False, separators=(",", ":")).encode
_CONTENT_TYPE = (b"content-type", b"application/json")


class JSONResponse(responses.JSONResponse):
    def __init__(
        self,
        content: Any,
        status_code: int = 200,
        headers: Mapping[str, str] | None = None,
        media_type: str | None = None,
        background: BackgroundTask | None = None,
    ) -> None:
        if headers or media_type is not None or background is not None:
            super().__init__(content, status_code, headers, media_type, background)
            return
        self.status_code = status_code
        self.background = None
        self.body = body = self.render(content)
        # What init_headers makes of no headers: no length on the statuses that have no body.
        if status_code < 200 or status_code in (204, 304):
            self.raw_headers = [_CONTENT_TYPE]
        else:
            length = str(len(body)).encode("latin-1")
            self.raw_headers = [(b"content-length", length), _CONTENT_TYPE]

    def render(self, content: Any) -> bytes:
        return _encode(content).encode("utf-8")
