"""The description routes (mock_server.describe): each API's document as JSON and YAML with the
server URL it was reached at, its Swagger UI page and assets, the root index, and their refusals
in each API's own envelope. No request here carries credentials."""

from __future__ import annotations

import asyncio
import json
from pathlib import Path
from typing import Any

import httpx
import openapi_spec_validator
import pytest
import yaml
from starlette.applications import Starlette

from conformance.server import ReferenceServer
from mock_server.app import create_app
from mock_server.clock import ManualClock
from mock_server.describe import (
    ASSETS,
    SERVER_DESCRIPTION,
    DescribedApi,
    json_form,
    server_url,
    yaml_form,
)
from mock_server.errors import AuvyEnvelope
from mock_server.profile import ServerProfile, with_variants
from mock_server.spec import SPEC_DIR, Spec
from tests.mock_server.asgi import asgi_request

APIS = ("auvy", "ava", "strait")
# What each API's envelope says for a wrong method and an unknown route.
CODES = {
    "auvy": ("METHOD_NOT_ALLOWED", "NOT_FOUND"),
    "ava": ("method_not_allowed", "resource_not_found"),
    "strait": ("method_not_allowed", "not_found"),
}
PROFILE = {"server": {"clock": "manual"}}


@pytest.fixture(scope="module")
def app() -> Starlette:
    return create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock())


def get(app: Starlette, path: str, **headers: str) -> httpx.Response:
    return asgi_request(app, "GET", path, headers=headers)


def served(response: httpx.Response) -> dict[str, Any]:
    assert response.status_code == 200, response.text
    media = response.headers["content-type"]
    document = response.json() if media == "application/json" else yaml.safe_load(response.text)
    assert isinstance(document, dict)
    return document


def source(name: str) -> dict[str, Any]:
    document = yaml.safe_load((SPEC_DIR / f"{name}.yaml").read_text(encoding="utf-8"))
    assert isinstance(document, dict)
    return document


def docs_config(page: str) -> Any:
    """The settings the page passes to Swagger UI (its JSON script element)."""
    return json.loads(
        page.split('<script id="docs-config" type="application/json">')[1].split("</")[0]
    )


def code_of(api: str, response: httpx.Response) -> str:
    body = response.json()
    return str(body["code"] if api == "auvy" else body["error"]["code"])


# --- the documents ---------------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize(
    ("suffix", "media"), [("json", "application/json"), ("yaml", "application/yaml")]
)
def test_each_api_serves_its_document_with_this_servers_url(
    app: Starlette, api: str, suffix: str, media: str
) -> None:
    response = get(app, f"/{api}/openapi.{suffix}")
    assert response.headers["content-type"] == media
    document = served(response)
    assert document["servers"] == [{"url": f"http://mock/{api}", "description": SERVER_DESCRIPTION}]
    # Everything else is the file in openapi/, unchanged.
    expected = source(api)
    del expected["servers"], document["servers"]
    assert document == expected


@pytest.mark.parametrize("api", APIS)
def test_the_yaml_parses_to_the_json_and_is_the_source_file(app: Starlette, api: str) -> None:
    as_json = served(get(app, f"/{api}/openapi.json"))
    as_yaml = get(app, f"/{api}/openapi.yaml")
    assert served(as_yaml) == as_json
    # The YAML is the file as written, comments included, not a re-dump of the parsed document.
    text = (SPEC_DIR / f"{api}.yaml").read_text(encoding="utf-8")
    assert as_yaml.text.splitlines()[:3] == text.splitlines()[:3]
    assert len(as_yaml.text.splitlines()) == pytest.approx(len(text.splitlines()), abs=5)


@pytest.mark.parametrize("api", APIS)
def test_the_served_document_is_valid_openapi_3_1(app: Starlette, api: str) -> None:
    openapi_spec_validator.validate(served(get(app, f"/{api}/openapi.json")))


@pytest.mark.parametrize(
    ("host", "origin", "url"),
    [
        # The direct path (no Origin) and Starlette's stack (a Mount) give the same prefix.
        ("127.0.0.1:8123", None, "http://127.0.0.1:8123/strait"),
        ("127.0.0.1:8123", "http://elsewhere", "http://127.0.0.1:8123/strait"),
        ("docs.example:80", None, "http://docs.example:80/strait"),
        ("[::1]:9000", None, "http://[::1]:9000/strait"),
    ],
)
def test_the_servers_url_follows_the_host_header_and_prefix(
    app: Starlette, host: str, origin: str | None, url: str
) -> None:
    headers = {"Host": host} | ({"Origin": origin} if origin else {})
    for suffix in ("json", "yaml"):
        assert served(get(app, f"/strait/openapi.{suffix}", **headers))["servers"][0]["url"] == url


def test_a_hostile_host_header_cannot_break_either_form(app: Starlette) -> None:
    host = 'evil"host\\: #x'
    as_json = served(get(app, "/ava/openapi.json", Host=host))
    as_yaml = served(get(app, "/ava/openapi.yaml", Host=host))
    assert as_json == as_yaml
    assert as_json["servers"][0]["url"] == f"http://{host}/ava"


def test_the_https_scheme_of_the_request_is_kept(app: Starlette) -> None:
    async def go() -> httpx.Response:
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="https://secure.test") as c:
            return await c.get("/auvy/openapi.json")

    assert served(asyncio.run(go()))["servers"][0]["url"] == "https://secure.test/auvy"


@pytest.mark.parametrize("preset", ["wire", "wire-cr"])
def test_a_wire_variant_frames_the_document_but_adds_nothing_to_it(preset: str) -> None:
    """Extra members are for API data; in a description they would be keywords OpenAPI does not
    define. Pretty-printing, chunking and compression still apply."""
    profile = with_variants(ServerProfile.from_dict(PROFILE), [preset])
    assert profile.variant.wire.extra_fields
    app = create_app(profile, clock=ManualClock())
    for api in APIS:
        document = served(get(app, f"/{api}/openapi.json", **{"Accept-Encoding": "gzip"}))
        openapi_spec_validator.validate(document)
        expected = source(api)
        del expected["servers"], document["servers"]
        assert document == expected
    index = get(app, "/openapi.json").json()
    assert set(index) == {"description", "apis", "docs"}
    # API data still gets its extra members.
    assert "x_vendor" in json.dumps(get(app, "/_mock/health").json())


def test_with_one_api_at_the_root_its_routes_are_at_the_root() -> None:
    app = create_app(ServerProfile.from_dict(PROFILE), clock=ManualClock(), root_api="strait")
    document = served(get(app, "/openapi.json", Host="127.0.0.1:7000"))
    assert document["info"]["title"] == "Strait Runs API"
    assert document["servers"][0]["url"] == "http://127.0.0.1:7000"
    page = get(app, "/docs").text
    assert 'href="/docs/swagger-ui.css"' in page
    assert docs_config(page) == {"url": "/openapi.json"}
    assert get(app, "/docs/swagger-ui-bundle.js").status_code == 200
    health = get(app, "/_mock/health").json()
    assert health["described"] == {
        "strait": {
            "docs": "/docs",
            "openapi_json": "/openapi.json",
            "openapi_yaml": "/openapi.yaml",
        }
    }


def test_against_a_real_server_the_url_is_where_it_listens() -> None:
    server = ReferenceServer()
    try:
        url = server.start()
        for api in APIS:
            for suffix in ("json", "yaml"):
                response = httpx.get(f"{url}/{api}/openapi.{suffix}", timeout=10)
                assert served(response)["servers"][0]["url"] == f"{url}/{api}"
        head = httpx.head(f"{url}/ava/openapi.yaml", timeout=10)
        assert head.status_code == 200 and head.content == b""
        assert head.headers["content-type"] == "application/yaml"
    finally:
        server.stop()


# --- not API operations ----------------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_the_routes_need_no_credentials_and_are_not_in_the_document(
    app: Starlette, api: str
) -> None:
    for path in ("/openapi.json", "/openapi.yaml", "/docs", "/docs/swagger-ui.css"):
        assert get(app, f"/{api}{path}").status_code == 200, path
        assert path not in source(api)["paths"]


def test_a_spec_that_declares_one_of_the_routes_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "clash.yaml"
    path.write_text(
        yaml.safe_dump(
            {
                "openapi": "3.1.0",
                "info": {"title": "clash", "version": "1"},
                "paths": {
                    "/openapi.json": {
                        "get": {"operationId": "spec", "responses": {"200": {"description": "ok"}}}
                    }
                },
            }
        )
    )
    with pytest.raises(ValueError, match=r"/openapi\.json is an operation"):
        DescribedApi(Starlette(), Spec.load(path), AuvyEnvelope())


# --- refusals in the API's own envelope ------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("path", ["/openapi.json", "/openapi.yaml", "/docs"])
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH"])
def test_another_method_is_405_with_allow_in_the_envelope(
    app: Starlette, api: str, path: str, method: str
) -> None:
    response = asgi_request(app, method, f"/{api}{path}")
    assert response.status_code == 405
    assert response.headers["allow"] == "GET, HEAD"
    assert code_of(api, response) == CODES[api][0]


@pytest.mark.parametrize("api", APIS)
def test_head_answers_the_headers_alone(app: Starlette, api: str) -> None:
    response = asgi_request(app, "HEAD", f"/{api}/openapi.yaml")
    assert response.status_code == 200
    assert response.headers["content-type"] == "application/yaml"


@pytest.mark.parametrize("api", APIS)
@pytest.mark.parametrize("asset", ["index.html", "nope.js", "../describe.py", "x/swagger-ui.css"])
def test_an_unknown_asset_is_the_apis_404(app: Starlette, api: str, asset: str) -> None:
    response = get(app, f"/{api}/docs/{asset}")
    assert response.status_code == 404
    assert code_of(api, response) == CODES[api][1]


# --- the docs page and its assets --------------------------------------------------------------


@pytest.mark.parametrize("api", APIS)
def test_the_docs_page_loads_swagger_ui_from_this_server(app: Starlette, api: str) -> None:
    response = get(app, f"/{api}/docs")
    assert response.headers["content-type"] == "text/html; charset=utf-8"
    page = response.text
    assert docs_config(page) == {"url": f"/{api}/openapi.json"}
    assert "validatorUrl: null" in page
    sources = [part.split('"')[0] for part in page.split('src="')[1:]]
    sources += [part.split('"')[0] for part in page.split('href="')[1:]]
    assert sources and all(s.startswith(f"/{api}/docs/") for s in sources), sources
    for asset in sources:
        assert get(app, asset).status_code == 200, asset
    assert "http://" not in page and "https://" not in page


@pytest.mark.parametrize(
    ("asset", "media"),
    [
        ("swagger-ui-bundle.js", "javascript"),
        ("swagger-ui.css", "text/css"),
        ("favicon-32x32.png", "image/png"),
    ],
)
def test_assets_have_their_content_types(app: Starlette, asset: str, media: str) -> None:
    assert asset in ASSETS
    response = get(app, f"/auvy/docs/{asset}")
    assert response.status_code == 200
    assert media in response.headers["content-type"]
    assert len(response.content) > 100


# --- the root: an index and one page for every API ---------------------------------------------


def test_the_root_openapi_json_is_an_index_of_the_apis(app: Starlette) -> None:
    response = get(app, "/openapi.json", Host="127.0.0.1:8080")
    assert response.headers["content-type"] == "application/json"
    index = response.json()
    assert "openapi" not in index
    assert [a["name"] for a in index["apis"]] == list(APIS)
    auvy = index["apis"][0]
    assert auvy == {
        "name": "auvy",
        "title": "AUVY Jobs API",
        "url": "http://127.0.0.1:8080/auvy",
        "openapi_json": "http://127.0.0.1:8080/auvy/openapi.json",
        "openapi_yaml": "http://127.0.0.1:8080/auvy/openapi.yaml",
        "docs": "http://127.0.0.1:8080/auvy/docs",
    }
    assert index["docs"] == "http://127.0.0.1:8080/docs"
    # Every URL it lists answers.
    for api in index["apis"]:
        for key in ("openapi_json", "openapi_yaml", "docs"):
            assert get(app, httpx.URL(api[key]).path).status_code == 200


def test_the_root_docs_page_offers_every_api(app: Starlette) -> None:
    page = get(app, "/docs").text
    config = docs_config(page)
    assert config == {
        "urls": [
            {"url": "/auvy/openapi.json", "name": "AUVY Jobs API"},
            {"url": "/ava/openapi.json", "name": "AVA Jobs API"},
            {"url": "/strait/openapi.json", "name": "Strait Runs API"},
        ]
    }
    assert get(app, "/docs/swagger-ui.css").status_code == 200
    missing = get(app, "/docs/index.html")
    assert missing.status_code == 404 and missing.json()["code"] == "NOT_FOUND"


def test_health_links_each_apis_routes(app: Starlette) -> None:
    described = get(app, "/_mock/health").json()["described"]
    assert described["ava"] == {
        "docs": "/ava/docs",
        "openapi_json": "/ava/openapi.json",
        "openapi_yaml": "/ava/openapi.yaml",
    }
    assert sorted(described) == sorted(APIS)


# --- serialising a document once -------------------------------------------------------------


def write_spec(tmp_path: Path, text: str) -> Spec:
    path = tmp_path / "mini.yaml"
    path.write_text(text, encoding="utf-8")
    return Spec.load(path)


MINI = """\
openapi: 3.1.0
info:
  title: mini  # a comment the YAML form keeps
  version: "1"
{servers}paths:
  /v1/things:
    get:
      operationId: listThings
      responses:
        "200":
          description: ok
"""


@pytest.mark.parametrize(
    "servers",
    [
        "servers:\n  - url: http://old/one\n  - url: http://old/two\n    description: x\n\n",
        "servers:\n- url: http://old\n  description: zero-indented list\n",
        "servers: [{url: 'http://old'}]\n",
        "",
    ],
    ids=["indented", "zero-indented", "flow", "absent"],
)
def test_any_servers_block_is_replaced_by_the_one_url(tmp_path: Path, servers: str) -> None:
    spec = write_spec(tmp_path, MINI.format(servers=servers))
    url = "http://127.0.0.1:1/x"
    as_yaml = yaml_form(spec).with_url(url).decode()
    as_json = json.loads(json_form(spec).with_url(url))
    assert yaml.safe_load(as_yaml) == as_json
    assert as_json["servers"] == [{"url": url, "description": SERVER_DESCRIPTION}]
    assert "# a comment the YAML form keeps" in as_yaml
    assert "http://old" not in as_yaml


def test_a_spec_without_its_source_text_is_dumped(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, MINI.format(servers=""))
    bare = Spec(spec.name, spec.document, spec.routes)
    as_yaml = yaml.safe_load(yaml_form(bare).with_url("http://h"))
    assert as_yaml == json.loads(json_form(bare).with_url("http://h"))


def test_a_document_already_holding_the_mark_is_refused(tmp_path: Path) -> None:
    spec = write_spec(tmp_path, MINI.format(servers="") + "x-note: mock-server-url-d41c07\n")
    with pytest.raises(ValueError, match="cannot place the server URL"):
        yaml_form(spec)


@pytest.mark.parametrize(
    ("scope", "url"),
    [
        ({"scheme": "http", "server": ("127.0.0.1", 8080)}, "http://127.0.0.1:8080/ava"),
        ({"scheme": "http", "server": ("10.0.0.2", 80)}, "http://10.0.0.2/ava"),
        ({"scheme": "https", "server": ("::1", 8443)}, "https://[::1]:8443/ava"),
        ({"scheme": "http", "server": None}, "http://127.0.0.1/ava"),
    ],
)
def test_without_a_host_header_the_listening_address_is_used(
    scope: dict[str, Any], url: str
) -> None:
    assert server_url({**scope, "headers": [], "root_path": "/ava"}) == url
