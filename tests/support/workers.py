"""`tradetalk worker` processes for tests: recognition workers on a cluster's Redis, each in a
host's network namespace when the cluster has them (tests/support/hosts.py)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
from pathlib import Path

import redis.asyncio as aioredis

from server.recognition.streams import workers_key
from tests.support.peers import SECRET, spawn_cli


class WorkerProcess:
    """One `tradetalk worker --id ID` (dies with the test process)."""

    def __init__(
        self,
        worker_id: str,
        data_dir: Path,
        redis_url: str,
        netns: str | None = None,
        cluster: str = "main",
        languages: str = "ko",
    ) -> None:
        self.id = worker_id
        self.languages = languages
        self.netns = netns
        self.cluster = cluster
        self.redis_url = redis_url
        self.env = {
            **os.environ,
            "REDIS_URL": redis_url,
            "TRADETALK_DATA": str(data_dir),
            "TRADETALK_SECRET": SECRET.decode(),
            "TRADETALK_CLUSTER": cluster,
            "PYTHONUNBUFFERED": "1",
        }
        self.log = data_dir / f"worker-{worker_id}.log"
        self.process: subprocess.Popen[bytes] | None = None

    def spawn(self) -> WorkerProcess:
        args = ["worker", "--id", self.id, "--languages", self.languages]
        self.process = spawn_cli(args, self.env, self.log, self.netns)
        return self

    async def alive_in_redis(self, timeout: float = 90) -> None:
        """Wait until the worker's heartbeat is in the live set (models loaded and warm)."""
        client = aioredis.from_url(self.redis_url, decode_responses=True)
        deadline = time.monotonic() + timeout
        try:
            while time.monotonic() < deadline:
                assert self.alive(), f"worker {self.id} exited: {self.read_log()[-3000:]}"
                if await client.zscore(workers_key(self.cluster), self.id) is not None:
                    return
                await asyncio.sleep(0.2)
        finally:
            await client.aclose()
        tail = self.read_log()[-3000:]
        raise AssertionError(f"worker {self.id} not alive in {timeout} s: {tail}")

    def alive(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def kill(self) -> None:
        """kill -9."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()

    def read_log(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""
