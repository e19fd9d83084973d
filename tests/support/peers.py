"""Test helpers: real python-socketio clients, tokens, and server processes."""

from __future__ import annotations

import asyncio
import os
import secrets
import signal
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from pathlib import Path
from typing import Any

import aiohttp
import socketio

from server.storage.embedded_redis import die_with_parent
from server.tokens import Identity, issue_token

REPO = Path(__file__).resolve().parents[2]
SHARED = REPO.parent / "shared"
SECRET = b"test-secret-" + secrets.token_hex(16).encode()


def new_user(role: str = "buyer", lang: str = "en", name: str | None = None) -> Identity:
    """A fresh identity with a unique id."""
    uid = f"u{secrets.token_hex(5)}"
    return Identity(uid, name or uid.upper(), role, lang)


def token_for(identity: Identity, secret: bytes = SECRET, ttl: int = 3600) -> str:
    """A valid token for `identity`."""
    return issue_token(secret, identity, ttl)


async def sign_in_once(url: str, *identities: Identity) -> None:
    """Connect and close a socket for each identity, so the server knows them (a conversation can
    only be started with users who have signed in at least once)."""
    for identity in identities:
        await (await Peer(identity).connect(url)).close()


class Peer:
    """A connected Socket.IO client that records every event it receives."""

    def __init__(self, identity: Identity) -> None:
        self.identity = identity
        self.sio = socketio.AsyncClient(reconnection=False)
        self.events: dict[str, list[Any]] = defaultdict(list)
        self._changed = asyncio.Event()

        @self.sio.on("*")
        async def record(event: str, data: Any = None) -> None:
            self.events[event].append(data)
            self._changed.set()

        @self.sio.on("connect_error")
        async def refused(data: Any = None) -> None:
            self.events["connect_error"].append(data)

    @property
    def id(self) -> str:
        """The user id."""
        return self.identity.id

    async def connect(self, url: str, token: str | None = None) -> Peer:
        """Connect with the identity's token (or the one given)."""
        auth = {"token": token if token is not None else token_for(self.identity)}
        await self.sio.connect(url, auth=auth, transports=["websocket"], wait_timeout=10)
        self.url = url
        return self

    async def call(self, event: str, data: Any = None, timeout: float = 10) -> dict[str, Any]:
        """Emit and return the ack."""
        return await self.sio.call(event, data, timeout=timeout)

    async def wait_for(
        self, event: str, where: Callable[[Any], bool] = lambda _: True, timeout: float = 10
    ) -> Any:
        """The first recorded `event` payload matching `where` (waits for it)."""
        deadline = time.monotonic() + timeout
        while True:
            for item in self.events[event]:
                if where(item):
                    return item
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError(f"{self.id} never got {event}: {dict(self.events)}")
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), remaining)
            except TimeoutError:
                pass

    async def close(self) -> None:
        """Disconnect."""
        if self.sio.connected:
            await self.sio.disconnect()


def spawn_cli(
    args: list[str], env: dict[str, str], log_path: Path, netns: str | None = None
) -> subprocess.Popen[bytes]:
    """`tradetalk ARGS...` as a child process (in network namespace `netns` when given), its
    output appended to `log_path`; it dies with the test process (PDEATHSIG)."""
    log_path.parent.mkdir(parents=True, exist_ok=True)
    command = [sys.executable, "-m", "server.cli", *args]
    if netns:
        command = ["ip", "netns", "exec", netns, *command]
    with open(log_path, "ab") as log:
        return subprocess.Popen(
            command,
            cwd=REPO,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            preexec_fn=die_with_parent,
        )


class ServerProcess:
    """`tradetalk serve` in a child process, for multi-process, multi-host and crash tests.

    `host` is the address it listens on; `netns` runs it inside that Linux network namespace
    (`ip netns exec`); `env` adds settings. The child dies with the test process (PDEATHSIG).
    """

    def __init__(
        self,
        data_dir: Path,
        redis_url: str | None,
        port: int,
        host: str = "127.0.0.1",
        netns: str | None = None,
        env: dict[str, str] | None = None,
    ) -> None:
        self.port = port
        self.host = host
        self.netns = netns
        env = {
            **os.environ,
            "PORT": str(port),
            "HOST": host,
            "TRADETALK_DATA": str(data_dir),
            "TRADETALK_SECRET": SECRET.decode(),
            "PYTHONUNBUFFERED": "1",
            **(env or {}),
        }
        env.pop("REDIS_URL", None)
        if redis_url:
            env["REDIS_URL"] = redis_url
        self.env = env
        self.log = data_dir / f"server-{port}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The server's base URL."""
        return f"http://{self.host}:{self.port}"

    def spawn(self) -> ServerProcess:
        """Start the process (without waiting for it to serve)."""
        self.process = spawn_cli(["serve"], self.env, self.log, self.netns)
        return self

    async def start(self, timeout: float = 30, ready: bool = False) -> ServerProcess:
        """Start and wait until /healthz says Redis is reachable (`ready`: and the node warm)."""
        self.spawn()
        return await self.healthy(timeout, ready)

    async def healthy(self, timeout: float = 30, ready: bool = False) -> ServerProcess:
        """Wait until the spawned server's /healthz says Redis is reachable (`ready`: and that
        the node is warm, i.e. answers 200)."""
        assert self.process is not None, "spawn() first"
        deadline = time.monotonic() + timeout
        async with aiohttp.ClientSession() as http:
            while time.monotonic() < deadline:
                if self.process.poll() is not None:
                    raise AssertionError(f"server exited: {self.log.read_text()[-3000:]}")
                try:
                    async with http.get(self.url + "/healthz") as resp:
                        if (await resp.json())["redis"] and (resp.status == 200 or not ready):
                            return self
                except (aiohttp.ClientError, OSError):
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"server not healthy in {timeout}s: {self.log.read_text()[-3000:]}")

    def kill(self) -> None:
        """kill -9."""
        if self.process and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def interrupt(self, timeout: float = 15) -> int:
        """Ctrl-C, then wait for a clean exit; returns the exit code."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)


def finals(peer: Peer, session_id: str | None = None) -> list[dict]:
    """The final subtitle lines `peer` received (of one call or tour when `session_id` is
    given)."""
    return [
        s
        for s in peer.events["subtitle"]
        if s["final"] and session_id in (None, s.get("call_id"), s.get("tour_id"))
    ]


async def start_call(starter: Peer, *guests: Peer | Identity) -> tuple[str, str]:
    """A conversation of `starter` and `guests`, and a call in it: (conversation id, call id)."""
    ack = await starter.call("conversation.create", {"participants": [g.id for g in guests]})
    assert ack["ok"], ack
    cid = ack["conversation"]["id"]
    started = await starter.call("call.start", {"conversation_id": cid})
    assert started["ok"], started
    return cid, started["call"]["id"]
