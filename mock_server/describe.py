"""Each API's own description and docs page, served by the server itself.

    <prefix>/openapi.json   the API's OpenAPI document as JSON (application/json)
    <prefix>/openapi.yaml   the same document as its YAML source (application/yaml)
    <prefix>/docs           Swagger UI rendering it, with the assets at <prefix>/docs/<file>
    /openapi.json, /docs    with the APIs under prefixes: an index of them (not an OpenAPI
                            document, since three APIs have three) and one Swagger UI page with
                            a selector; with a single API at the root these are that API's own

A document is the file in openapi/ with one change: `servers` names the URL it was fetched from
(the request's scheme and Host, and the API's prefix), so a client generator, Swagger UI's
"Try it out" or Schemathesis reach this server wherever it listens. Each form is serialised once,
at start-up, split where that URL goes; a request only joins the pieces.

These routes are not API operations: they answer in front of the API's pipeline (no
authentication, no rate limit) and are not in its document, so nothing checks them as API
requirements. Swagger UI comes from the openapi-ui-bundles package (Swagger UI 5, which renders
OpenAPI 3.1; swagger-ui-bundle ships 4.x, which does not), and the page loads nothing from
anywhere but this server.
"""

from __future__ import annotations

import json
import re
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import yaml
from openapi_ui_bundles import swagger_ui
from starlette.requests import Request
from starlette.responses import FileResponse, HTMLResponse, JSONResponse, Response
from starlette.types import ASGIApp, Receive, Scope, Send

from .errors import Envelope, MethodNotAllowed, RequestError, RouteNotFound
from .spec import Spec

JSON_TYPE = "application/json"
YAML_TYPE = "application/yaml"  # RFC 9512
READ_METHODS = ("GET", "HEAD")
DOCUMENT_PAGES = ("/openapi.json", "/openapi.yaml")
DOCS = "/docs"
ASSET_DIR = swagger_ui.static_path
# The bundle's index.html is Swagger UI's demo (it loads the Petstore from the internet): the page
# is ours, only the assets are the bundle's.
ASSETS = frozenset(
    p.name for p in ASSET_DIR.iterdir() if p.is_file() and p.suffix in (".js", ".css", ".png")
)
SERVER_DESCRIPTION = "This server: the reference server (mock_server) that served this document."

# Stands where the server URL goes while a form is serialised; it must occur nowhere else.
_URL_MARK = "mock-server-url-d41c07"
# The top-level `servers:` key and its block (indented lines, or "- " items at column 0).
_SERVERS_BLOCK = re.compile(r"^servers:[^\n]*\n(?:(?:[ \t]+|-(?=[ \t\n]))[^\n]*\n)*", re.MULTILINE)


@dataclass(frozen=True)
class Serialised:
    """One form of a document, serialised once, around the place of its server URL."""

    head: bytes
    tail: bytes

    def with_url(self, url: str) -> bytes:
        # A JSON string (ASCII, escaped) is also a YAML double-quoted scalar, so one rule serves
        # both forms, whatever a Host header holds.
        return self.head + json.dumps(url).encode() + self.tail


def _split(text: str, mark: str, name: str) -> Serialised:
    if text.count(mark) != 1:
        raise ValueError(f"{name}: cannot place the server URL in the served document")
    head, _, tail = text.partition(mark)
    return Serialised(head.encode(), tail.encode())


def _with_servers(document: Mapping[str, Any], url: str) -> dict[str, Any]:
    out = dict(document)
    out["servers"] = [{"url": url, "description": SERVER_DESCRIPTION}]
    return out


def json_form(spec: Spec) -> Serialised:
    text = json.dumps(_with_servers(spec.document, _URL_MARK), ensure_ascii=False)
    return _split(text, json.dumps(_URL_MARK), spec.name)


def yaml_form(spec: Spec) -> Serialised:
    """The YAML source itself (comments, key order, block text) with its `servers` replaced."""
    if spec.text is None:
        text = yaml.safe_dump(
            _with_servers(spec.document, _URL_MARK), sort_keys=False, allow_unicode=True
        )
        return _split(text, _URL_MARK, spec.name)
    block = f"servers:\n- url: {_URL_MARK}\n  description: {json.dumps(SERVER_DESCRIPTION)}\n"
    text, found = _SERVERS_BLOCK.subn(lambda _: block, spec.text, count=1)
    if not found:
        # A top-level key at the end closes whatever block came before it.
        text = spec.text.rstrip("\n") + "\n" + block
    return _split(text, _URL_MARK, spec.name)


def server_url(scope: Scope) -> str:
    """Where this request reached the API: its scheme and Host, then the API's mount prefix.

    The Host header is taken as sent (JSON escaping keeps either form well-formed whatever it
    holds); without one, the address the server listens on. Forwarded headers are not read
    (nothing else in the server reads them); uvicorn's own handling of X-Forwarded-Proto from a
    trusted proxy still shows in the scope's scheme."""
    scheme: str = scope.get("scheme", "http")
    root: str = scope.get("root_path", "")
    for name, value in scope["headers"]:
        if name == b"host":
            return f"{scheme}://{value.decode('latin-1')}{root}"
    host, port = scope.get("server") or ("127.0.0.1", None)
    if ":" in host:
        host = f"[{host}]"
    if port is not None and port != {"http": 80, "https": 443}.get(scheme):
        host = f"{host}:{port}"
    return f"{scheme}://{host}{root}"


def docs_page(title: str, assets: str, config: Mapping[str, Any]) -> HTMLResponse:
    """Swagger UI on this server's copy of its assets; `config` adds `url` or `urls`."""
    # Inside <script>, "</" would end the element; JSON allows the escaped form.
    settings = json.dumps(dict(config)).replace("</", "<\\/")
    html = f"""<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>{_escape(title)}</title>
<link rel="stylesheet" href="{assets}/swagger-ui.css">
<link rel="stylesheet" href="{assets}/index.css">
<link rel="icon" type="image/png" href="{assets}/favicon-32x32.png" sizes="32x32">
</head>
<body>
<div id="swagger-ui"></div>
<script src="{assets}/swagger-ui-bundle.js"></script>
<script src="{assets}/swagger-ui-standalone-preset.js"></script>
<script id="docs-config" type="application/json">{settings}</script>
<script>
window.onload = function () {{
  var config = JSON.parse(document.getElementById("docs-config").textContent);
  window.ui = SwaggerUIBundle(Object.assign({{
    dom_id: "#swagger-ui",
    deepLinking: true,
    // The default validator is a badge image from the internet.
    validatorUrl: null,
    presets: [SwaggerUIBundle.presets.apis, SwaggerUIStandalonePreset],
    plugins: [SwaggerUIBundle.plugins.DownloadUrl],
    layout: "StandaloneLayout"
  }}, config));
}};
</script>
</body>
</html>
"""
    return HTMLResponse(html)


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def asset(name: str) -> Response:
    return FileResponse(ASSET_DIR / name, headers={"Cache-Control": "public, max-age=3600"})


def _is_page(path: str) -> bool:
    return path in DOCUMENT_PAGES or path == DOCS or path.startswith(DOCS + "/")


class DescribedApi:
    """An API's app with its description routes in front; every other request goes to the API.

    Refusals use the API's own envelope: an unknown asset is its 404, another method than GET or
    HEAD its 405."""

    def __init__(self, api: ASGIApp, spec: Spec, envelope: Envelope) -> None:
        self.api = api
        self.envelope = envelope
        self.title = str(spec.document.get("info", {}).get("title", spec.name))
        self.forms = {"/openapi.json": json_form(spec), "/openapi.yaml": yaml_form(spec)}
        for path in (*DOCUMENT_PAGES, DOCS, DOCS + "/swagger-ui.css"):
            try:
                spec.match("GET", path)
            except RequestError:
                continue
            raise ValueError(f"{spec.name}: {path} is an operation; it cannot also describe it")

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path: str = scope["path"]
            root: str = scope.get("root_path", "")
            if root and path.startswith(root):
                path = path[len(root) :]
            if _is_page(path):
                await self.respond(scope, path)(scope, receive, send)
                return
        await self.api(scope, receive, send)

    def respond(self, scope: Scope, path: str) -> Response:
        method: str = scope["method"]
        name = path[len(DOCS) + 1 :] if path.startswith(DOCS + "/") else ""
        if name and name not in ASSETS:
            return self.envelope.render(RouteNotFound(method, path))
        if method not in READ_METHODS:
            return self.envelope.render(MethodNotAllowed(method, path, READ_METHODS))
        if name:
            return asset(name)
        form = self.forms.get(path)
        if form is not None:
            media = JSON_TYPE if path.endswith(".json") else YAML_TYPE
            return Response(form.with_url(server_url(scope)), media_type=media)
        root: str = scope.get("root_path", "")
        return docs_page(self.title, root + DOCS, {"url": root + "/openapi.json"})


Endpoint = Callable[[Request], Awaitable[Response]]


def index_routes(titles: Mapping[str, str], prefixes: Sequence[str]) -> tuple[Endpoint, Endpoint]:
    """The root's /openapi.json (an index) and /docs (one Swagger UI for every API), as
    Starlette endpoints; `titles` maps each prefix to its API's title."""

    async def index(request: Request) -> Response:
        base = f"{request.url.scheme}://{request.url.netloc}"
        return JSONResponse(
            {
                "description": "This server hosts several APIs; each serves its own OpenAPI "
                "document. This index is not an OpenAPI document.",
                "apis": [
                    {
                        "name": prefix.strip("/"),
                        "title": titles[prefix],
                        "url": base + prefix,
                        "openapi_json": f"{base}{prefix}/openapi.json",
                        "openapi_yaml": f"{base}{prefix}/openapi.yaml",
                        "docs": f"{base}{prefix}/docs",
                    }
                    for prefix in prefixes
                ],
                "docs": f"{base}/docs",
            }
        )

    async def docs(request: Request) -> Response:
        name = request.path_params.get("name")
        if name is not None:
            if name not in ASSETS:
                return JSONResponse(
                    {"code": "NOT_FOUND", "message": f"no docs asset {name}"}, status_code=404
                )
            return asset(name)
        urls = [{"url": f"{p}/openapi.json", "name": titles[p]} for p in prefixes]
        return docs_page("mock_server: API docs", DOCS, {"urls": urls})

    return index, docs
