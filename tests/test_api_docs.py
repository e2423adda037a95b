"""/docs and /redoc load only files the server itself serves (the machine is offline), with the chat mounted."""

from __future__ import annotations

import re
from html.parser import HTMLParser
from urllib.parse import urlsplit

import pytest
from fastapi.testclient import TestClient

from rag.api import create_app
from rag.settings import Settings

from .test_api import BASE, api_pipeline


class _Refs(HTMLParser):
    def __init__(self):
        super().__init__()
        self.urls: list[str] = []

    def handle_starttag(self, tag, attrs):
        for name, value in attrs:
            if name in ("src", "href") and value:
                self.urls.append(value)


def _urls(page: str) -> list[str]:
    parser = _Refs()
    parser.feed(page)
    # URLs written inside inline scripts (SwaggerUIBundle({url: '…'}), fonts, CDNs)
    parser.urls += re.findall(r"""(?:https?:)?//[^\s'"<>)]+""", page)
    return parser.urls


@pytest.fixture
def client():
    app = create_app(Settings(), pipeline=api_pipeline())
    pytest.importorskip("gradio")
    from ui.app import mount_ui

    mount_ui(app, app.state.service)  # "/" taken, as under `rag serve`
    with TestClient(app, base_url=BASE) as c:
        yield c


@pytest.mark.parametrize("page", ["/docs", "/redoc"])
def test_docs_pages_reference_only_local_assets_that_exist(client, page):
    r = client.get(page)
    assert r.status_code == 200 and "text/html" in r.headers["content-type"]
    urls = _urls(r.text)
    assert urls, "no script or stylesheet referenced"
    for url in urls:
        parts = urlsplit(url)
        assert not parts.netloc and not parts.scheme, f"{page} loads {url} from another host"
    for url in urls:
        if url.startswith("/docs-assets/"):
            asset = client.get(url)
            assert asset.status_code == 200 and len(asset.content) > 1000, url
    assert any(u.endswith(".js") for u in urls)
    assert "/openapi.json" in r.text


def test_swagger_ui_is_a_version_that_reads_openapi_3_1(client):
    spec = client.get("/openapi.json").json()
    assert spec["openapi"].startswith("3.1")
    bundle = client.get("/docs-assets/swagger-ui-bundle.js").text
    versions = set(re.findall(r'"(5\.\d+\.\d+)"', bundle))
    assert versions, "Swagger UI 5 (OpenAPI 3.1) expected"
