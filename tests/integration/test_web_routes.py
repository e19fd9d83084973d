"""The web client's HTTP routes: vendored Socket.IO client, client config, dev-only tokens."""

from __future__ import annotations

import pytest
from aiohttp import web

from server.config import Settings
from server.tokens import verify_token
from server.web.web_routes import add_web_routes, user_id_for
from tests.support.peers import SECRET


def web_app(dev: bool) -> web.Application:
    app = web.Application()
    add_web_routes(app, Settings(secret=SECRET, dev=dev))
    return app


async def test_dev_token_signs_a_fresh_identity(aiohttp_client) -> None:
    client = await aiohttp_client(web_app(dev=True))
    resp = await client.post(
        "/api/dev/token", json={"name": "María José", "role": "supplier", "lang": "es"}
    )
    assert resp.status == 200
    body = await resp.json()
    user = body["user"]
    assert user["name"] == "María José" and user["role"] == "supplier" and user["lang"] == "es"
    assert user["id"].startswith("maria-jose-")
    identity = verify_token(SECRET, body["token"])
    assert identity.public() == user
    again = await (
        await client.post(
            "/api/dev/token", json={"name": "María José", "role": "supplier", "lang": "es"}
        )
    ).json()
    assert again["user"]["id"] != user["id"]
    assert (await (await client.get("/api/client-config")).json()) == {
        "dev": True,
        "max_attachment_bytes": 25 * 1024 * 1024,
    }


async def test_dev_token_keeps_a_returning_browsers_id(aiohttp_client) -> None:
    client = await aiohttp_client(web_app(dev=True))
    first = await (
        await client.post("/api/dev/token", json={"name": "Ann Lee", "role": "buyer", "lang": "en"})
    ).json()
    uid = first["user"]["id"]
    again = await client.post(
        "/api/dev/token", json={"name": "Ann Lee", "role": "buyer", "lang": "en", "user_id": uid}
    )
    assert again.status == 200
    assert verify_token(SECRET, (await again.json())["token"]).id == uid
    for stolen in (uid, "root", "ann-lee-zzzzzz", 5):
        resp = await client.post(
            "/api/dev/token", json={"name": "Bob", "role": "buyer", "lang": "en", "user_id": stolen}
        )
        assert resp.status == 400, stolen
        assert (await resp.json())["error"]["code"] == "invalid"


@pytest.mark.parametrize(
    "body",
    [
        {"name": "", "role": "buyer", "lang": "en"},
        {"name": "x" * 101, "role": "buyer", "lang": "en"},
        {"name": "Ann", "role": "admin", "lang": "en"},
        {"name": "Ann", "role": "buyer", "lang": "English"},
        {"name": "Ann", "role": "buyer"},
        {"name": "Ann", "role": "buyer", "lang": "en", "id": "root"},
        ["Ann", "buyer", "en"],
        "not json",
    ],
)
async def test_dev_token_rejects_bad_input(aiohttp_client, body) -> None:
    client = await aiohttp_client(web_app(dev=True))
    if isinstance(body, str):
        resp = await client.post("/api/dev/token", data=body)
    else:
        resp = await client.post("/api/dev/token", json=body)
    assert resp.status == 400
    error = (await resp.json())["error"]
    assert error["code"] == "invalid" and error["message"]


async def test_dev_token_absent_outside_dev_mode(aiohttp_client) -> None:
    client = await aiohttp_client(web_app(dev=False))
    resp = await client.post("/api/dev/token", json={"name": "Ann", "role": "buyer", "lang": "en"})
    assert resp.status in (404, 405)
    config = await (await client.get("/api/client-config")).json()
    assert config["dev"] is False and config["max_attachment_bytes"] == 25 * 1024 * 1024


async def test_vendor_socket_io_client_is_served(aiohttp_client) -> None:
    client = await aiohttp_client(web_app(dev=False))
    resp = await client.get("/vendor/socket.io.esm.min.js")
    assert resp.status == 200, "run `npm install --prefix web_client`"
    assert "javascript" in resp.headers["Content-Type"]
    assert "export" in await resp.text()


def test_user_id_slug() -> None:
    assert user_id_for("Ann Buyer").startswith("ann-buyer-")
    assert user_id_for("李雷").startswith("user-")
    assert len(user_id_for("a" * 100)) <= 64
