"""POST/PATCH/DELETE /api/feeds: feeds added, changed and removed over the API (both engines)."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from monitor.api.app import create_app
from monitor.config import Settings
from monitor.scheduling.sync import sync_feeds
from tests.support.api import serving
from tests.support.feeds import FEED_TYPES, Item, rss20
from tests.support.servers import HTTPServer, Response

TOKEN = "s3cret-token"
AUTH = {"Authorization": f"Bearer {TOKEN}"}
CONFIGURED = {"name": "Configured", "url": "https://configured.example/rss"}


def site_settings(make_settings: Callable[..., Settings], database_url: str, **extra: object) -> Settings:
    return make_settings(
        database_url=database_url,
        poll={"allow_private_networks": True, "timeout": "5s"},
        feeds=[CONFIGURED],
        **extra,
    )


def serve_site(server: HTTPServer) -> None:
    items = [Item("First", server.url("/p/1"))]
    server.route(
        "/",
        Response(
            '<html><head><link rel="alternate" type="application/atom+xml" href="/news/atom.xml"></head></html>',
            headers={"Content-Type": "text/html"},
        ),
    )
    server.route("/news/atom.xml", Response(rss20(items, title="Local"), headers={"Content-Type": FEED_TYPES["rss20"]}))
    server.route("/plain", Response("<html><body>nothing</body></html>", headers={"Content-Type": "text/html"}))


@pytest.fixture
def guarded(make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine) -> Iterator[TestClient]:
    settings = site_settings(make_settings, database_url, api_token=TOKEN)
    sync_feeds(engine, settings.feeds)
    with TestClient(create_app(settings, engine)) as client:
        yield client


def test_crud_with_the_token(guarded: TestClient, server: HTTPServer) -> None:
    serve_site(server)
    assert guarded.post("/api/feeds", json={"url": server.url("/")}).status_code == 401

    added = guarded.post("/api/feeds", json={"url": server.url("/"), "tags": ["a"], "interval": "10m"}, headers=AUTH)

    assert added.status_code == 201, added.text
    feed = added.json()
    assert (feed["name"], feed["url"], feed["origin"], feed["tags"]) == (
        "Local",
        server.url("/news/atom.xml"),
        "added",
        ["a"],
    )
    assert (feed["found_via"], feed["entries"], feed["paused"]) == ("link", 1, False)
    listed = {f["name"]: f for f in guarded.get("/api/feeds", headers=AUTH).json()}
    assert listed["Configured"]["origin"] == "config" and listed["Local"]["origin"] == "added"

    paused = guarded.patch(f"/api/feeds/{feed['id']}", json={"paused": True}, headers=AUTH)
    assert paused.status_code == 200 and paused.json()["paused"] and paused.json()["next_poll_at"] is None
    renamed = guarded.patch("/api/feeds/Local", json={"name": "Local 2", "tags": ["b"], "interval": None}, headers=AUTH)
    assert (renamed.json()["name"], renamed.json()["tags"]) == ("Local 2", ["b"])
    assert guarded.patch("/api/feeds/Configured", json={"paused": True}, headers=AUTH).json()["paused"]

    removed = guarded.delete("/api/feeds/Local 2", headers=AUTH)
    assert removed.status_code == 200 and removed.json() == {"name": "Local 2", "articles_kept": 0}
    assert [f["name"] for f in guarded.get("/api/feeds", headers=AUTH).json()] == ["Configured"]


@pytest.mark.parametrize(
    ("method", "path", "body", "status", "detail"),
    [
        ("post", "/api/feeds", {"url": "/plain"}, 422, "cannot add {base}/plain: not_a_feed: no feed found at"),
        ("post", "/api/feeds", {"url": CONFIGURED["url"]}, 409, "is in the configuration file as feed 'Configured'"),
        ("post", "/api/feeds", {"url": "/", "interval": "soon"}, 400, "interval: 'soon' is not a duration"),
        ("post", "/api/feeds", {"url": "/", "colour": "red"}, 400, "colour: Extra inputs are not permitted"),
        ("patch", "/api/feeds/Configured", {"tags": ["x"]}, 409, "comes from the configuration file"),
        ("patch", "/api/feeds/Nope", {"paused": True}, 404, "no feed named 'Nope'"),
        ("delete", "/api/feeds/Configured", None, 409, "comes from the configuration file"),
        ("delete", "/api/feeds/12345", None, 404, "no feed named '12345'"),
    ],
)
def test_refusals_are_one_line(
    guarded: TestClient,
    server: HTTPServer,
    method: str,
    path: str,
    body: dict[str, object] | None,
    status: int,
    detail: str,
) -> None:
    serve_site(server)
    base = server.url("").rstrip("/")
    if body and str(body.get("url", "")).startswith("/"):
        body = {**body, "url": base + str(body["url"])}
    answer = guarded.request(method.upper(), path, json=body, headers=AUTH)
    assert answer.status_code == status, answer.text
    assert detail.format(base=base) in answer.json()["detail"]
    assert "\n" not in answer.json()["detail"]


def test_without_a_token_writes_need_a_loopback_server(
    make_settings: Callable[..., Settings], database_url: str, engine: sa.Engine, server: HTTPServer
) -> None:
    serve_site(server)
    app = create_app(site_settings(make_settings, database_url), engine)
    # TestClient's server is "testserver": an address others could reach.
    with TestClient(app) as remote:
        refused = remote.post("/api/feeds", json={"url": server.url("/")})
        assert refused.status_code == 403 and "api_token" in refused.json()["detail"]
        assert remote.delete("/api/feeds/Configured").status_code == 403
        assert remote.get("/api/feeds").status_code == 200
    assert not server.requests
    with serving(app) as local:
        assert local.post("/api/feeds", json={"url": server.url("/")}).status_code == 201
        assert local.patch("/api/feeds/Local", json={"paused": True}).json()["paused"]


def test_openapi_lists_the_write_endpoints(make_settings: Callable[..., Settings]) -> None:
    schema = TestClient(create_app(make_settings(api_token=TOKEN))).get("/openapi.json").json()
    assert {"get", "post"} <= set(schema["paths"]["/api/feeds"])
    assert {"patch", "delete"} <= set(schema["paths"]["/api/feeds/{feed}"])
    assert "409" in schema["paths"]["/api/feeds/{feed}"]["delete"]["responses"]
