"""Shared fixtures: a real redis-server per test session, and in-process servers."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator

import pytest

from server.app import create_app
from server.config import Settings
from server.storage.embedded_redis import EmbeddedRedis
from server.tokens import Identity
from tests.support.peers import SECRET, Peer
from translation.translator import Translator

# Servers the tests start (`tradetalk serve` children inherit this) install no models from the
# internet; the provisioning tests turn it on against a local catalogue.
os.environ["TRADETALK_PROVISION"] = "off"

# Session fixtures on the real engines: apertium_engine, argos_engine, argos_data_dir, translator.
pytest_plugins = ["tests.support.translation_fixtures", "tests.support.hosts"]


@pytest.fixture(scope="session")
def redis_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedRedis]:
    """A real redis-server process, started by the tests, stopped at the end."""
    server = EmbeddedRedis(tmp_path_factory.mktemp("redis"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def settings(tmp_path) -> Settings:
    """Settings for an in-process server on the session's Redis."""
    return Settings(data_dir=tmp_path, secret=SECRET)


@pytest.fixture(scope="session")
def chat_translator(apertium_engine) -> Translator:
    """The engines chat tests translate with: Apertium en<->es (real, warm, shared)."""
    return Translator([apertium_engine])


@pytest.fixture
def server_translator(chat_translator) -> Translator:
    """The translator in-process servers use; a test module may override it."""
    return chat_translator


@pytest.fixture
async def server_url(aiohttp_server, redis_server, settings, server_translator) -> str:
    """A running TradeTalk server (in this process) and its base URL."""
    server = await aiohttp_server(create_app(settings, redis_server.url, server_translator))
    return str(server.make_url("")).rstrip("/")


@pytest.fixture
async def connect(server_url) -> AsyncIterator[Callable[..., Awaitable[Peer]]]:
    """Connect Peers to the server; all are disconnected after the test."""
    peers: list[Peer] = []

    async def make(identity: Identity, url: str | None = None, token: str | None = None) -> Peer:
        peer = Peer(identity)
        peers.append(peer)
        return await peer.connect(url or server_url, token)

    yield make
    for peer in peers:
        await peer.close()
