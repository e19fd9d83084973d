"""Several TradeTalk hosts for tests: one real `tradetalk serve` per host, all on one real Redis.

Mode "netns" (root, `ip` works): each host is a Linux network namespace with its own address on a
private /24, joined by a veth pair to a bridge the harness makes in the root namespace; Redis
listens on the bridge's address, the test process reaches each host at its namespace address.
Nothing has a default route, so traffic stays on loopback and on the addresses made here.
Mode "loopback" (not root, or `ip netns add` fails, or TRADETALK_TEST_HOSTS=loopback): the same
servers as processes on 127.0.0.2, .3, ... with Redis on 127.0.0.1. `Hosts.mode` and
`Hosts.reason` say which ran and why; the pytest summary lists every run.

Every bridge, veth and namespace is named `tth<owner pid><run>...` and removed on exit, even on
failure; leftovers of a crashed earlier run (owner pid gone) are removed before a new one starts.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import re
import shutil
import signal
import subprocess
import time
from dataclasses import dataclass, field
from itertools import count
from pathlib import Path

from server.storage.embedded_redis import EmbeddedRedis, free_port
from tests.support.peers import ServerProcess

PREFIX = "tth"
NETNS, LOOPBACK = "netns", "loopback"
FORCE_ENV = "TRADETALK_TEST_HOSTS"
NETNS_PORT = 8080  # every namespace has its own port space
SUBNET_BASE = "10.77"
_runs = count()
RUNS: list[str] = []  # one line per harness run, for the pytest summary


class NetworkError(RuntimeError):
    """An `ip` command failed."""


def ip(*args: str) -> str:
    """Run `ip ARGS...`; its stdout, or NetworkError with its stderr."""
    try:
        done = subprocess.run(["ip", *args], capture_output=True, text=True, timeout=15)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NetworkError(f"ip {' '.join(args)}: {exc}") from exc
    if done.returncode != 0:
        raise NetworkError(f"ip {' '.join(args)}: {done.stderr.strip()}")
    return done.stdout


def namespaces() -> list[str]:
    """Names of the network namespaces that exist now."""
    return [line.split()[0] for line in ip("netns", "list").splitlines() if line.strip()]


def links() -> list[str]:
    """Names of the root namespace's network interfaces."""
    names = []
    for line in ip("-o", "link", "show").splitlines():
        parts = line.split(":", 2)
        if len(parts) > 1:
            names.append(parts[1].strip().split("@")[0])
    return names


def ours(prefix: str = PREFIX) -> list[str]:
    """Namespaces and interfaces whose names start with `prefix`."""
    return [name for name in namespaces() + links() if name.startswith(prefix)]


NAME = re.compile(rf"^{PREFIX}([0-9a-f]{{6}})[0-9a-f]{{2}}(b|h\d+|v\d+)$")


def _owner_pid(name: str) -> int | None:
    """The pid of the test process that made a harness-named namespace or interface."""
    match = NAME.match(name)
    return int(match.group(1), 16) if match else None


def remove_namespace(name: str) -> None:
    """Kill the processes inside a namespace, then delete it (its veth ends go with it)."""
    with contextlib.suppress(NetworkError):
        for pid in ip("netns", "pids", name).split():
            with contextlib.suppress(OSError, ValueError):
                os.kill(int(pid), 9)
    with contextlib.suppress(NetworkError):
        ip("netns", "del", name)


def clean_stale() -> list[str]:
    """Remove namespaces and interfaces left by harness runs whose process is gone."""
    removed = []
    for name in ours():
        pid = _owner_pid(name)
        if pid is None or pid == os.getpid() or Path(f"/proc/{pid}").exists():
            continue
        if name in namespaces():
            remove_namespace(name)
        else:
            with contextlib.suppress(NetworkError):
                ip("link", "del", name)
        removed.append(name)
    return removed


def _free_subnet(seed: int) -> str:
    """A `10.77.N` prefix no interface address or route of the root namespace uses."""
    used = ip("-4", "-o", "addr", "show") + ip("-4", "route", "show")
    for step in range(254):
        candidate = f"{SUBNET_BASE}.{(seed + step) % 254 + 1}"
        if f"{candidate}." not in used:
            return candidate
    raise NetworkError(f"no free {SUBNET_BASE}.N.0/24 subnet")


@dataclass
class Network:
    """A bridge in the root namespace and `size` namespaces on it, each with one address."""

    run: str
    size: int
    subnet: str = ""
    commands: list[str] = field(default_factory=list)

    @property
    def bridge(self) -> str:
        return f"{self.run}b"

    @property
    def bridge_address(self) -> str:
        return f"{self.subnet}.1"

    def namespace(self, i: int) -> str:
        return f"{self.run}h{i + 1}"

    def veth(self, i: int) -> str:
        return f"{self.run}v{i + 1}"

    def address(self, i: int) -> str:
        return f"{self.subnet}.{11 + i}"

    def names(self) -> list[str]:
        """Everything this network creates."""
        return [self.bridge] + [
            n for i in range(self.size) for n in (self.namespace(i), self.veth(i))
        ]

    def _ip(self, *args: str) -> None:
        self.commands.append("ip " + " ".join(args))
        ip(*args)

    def create(self) -> None:
        """Make the bridge and namespaces; on any failure remove what was made and raise."""
        try:
            self.subnet = _free_subnet(int(self.run[len(PREFIX) :], 16))
            self._ip("link", "add", self.bridge, "type", "bridge")
            self._ip("addr", "add", f"{self.bridge_address}/24", "dev", self.bridge)
            self._ip("link", "set", self.bridge, "up")
            for i in range(self.size):
                ns, veth = self.namespace(i), self.veth(i)
                self._ip("netns", "add", ns)
                self._ip("link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
                self._ip("link", "set", veth, "master", self.bridge, "up")
                self._ip("-n", ns, "addr", "add", f"{self.address(i)}/24", "dev", "eth0")
                self._ip("-n", ns, "link", "set", "eth0", "up")
                self._ip("-n", ns, "link", "set", "lo", "up")
        except NetworkError:
            self.remove()
            raise

    def remove(self) -> None:
        """Delete the namespaces (and the processes in them), veths and bridge; idempotent."""
        present = set(namespaces())
        for i in range(self.size):
            if self.namespace(i) in present:
                remove_namespace(self.namespace(i))
        present_links = set(links())
        for name in [self.veth(i) for i in range(self.size)] + [self.bridge]:
            if name in present_links:
                with contextlib.suppress(NetworkError):
                    ip("link", "del", name)


@dataclass
class Host:
    """One server process: its name, address and URL."""

    name: str
    address: str
    server: ServerProcess
    netns: str | None

    @property
    def url(self) -> str:
        return self.server.url

    @property
    def node_id(self) -> str:
        """The server's cluster node id (`TRADETALK_NODE_ID`, set by the harness)."""
        return self.server.env["TRADETALK_NODE_ID"]

    @property
    def pid(self) -> int:
        """The server's pid. `ip netns exec` enters the namespace and execs the command (no
        fork without `-b`), so in both modes this is the Python server process itself."""
        assert self.server.process is not None
        return self.server.process.pid

    def alive(self) -> bool:
        """The server process is still running."""
        return self.server.process is not None and self.server.process.poll() is None

    def kill(self) -> None:
        """kill -9 the host's server."""
        self.server.kill()

    def terminate(self, timeout: float = 20) -> int:
        """SIGTERM the host's server (a drain), wait for it to exit, return its exit code."""
        process = self.server.process
        assert process is not None, "not spawned"
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        return process.wait(timeout)

    def log(self) -> str:
        """The server's output so far."""
        return self.server.log.read_text(errors="replace") if self.server.log.exists() else ""


class Hosts:
    """`async with Hosts(3, tmp_path) as cluster:` — servers on one Redis; all removed after.

    Host i (1-based) is cluster node `host{i}` (`TRADETALK_NODE_ID`) whose media address is its
    own address (`TRADETALK_MEDIA_ADDRESS`); `env` adds settings to every host, `host_env[i]`
    to host i+1 only (both may override those two).
    """

    def __init__(
        self,
        size: int,
        data_dir: Path,
        mode: str | None = None,
        heartbeat_s: float = 3.0,
        env: dict[str, str] | None = None,
        host_env: list[dict[str, str]] | None = None,
    ) -> None:
        self.size = size
        self.data_dir = Path(data_dir)
        self.wanted = mode or os.environ.get(FORCE_ENV) or None
        self.env = {"TRADETALK_HEARTBEAT_S": str(heartbeat_s), **(env or {})}
        self.heartbeat_s = heartbeat_s
        if host_env is not None and len(host_env) != size:
            raise ValueError(f"host_env has {len(host_env)} entries for {size} hosts")
        self.host_env = host_env or [{} for _ in range(size)]
        self.run = f"{PREFIX}{os.getpid():06x}{next(_runs) % 256:02x}"
        self.mode = ""
        self.reason = ""
        self.network: Network | None = None
        self.redis: EmbeddedRedis | None = None
        self.hosts: list[Host] = []
        self.stale_removed: list[str] = []
        self.timings: dict[str, float] = {}

    def __getitem__(self, i: int) -> Host:
        return self.hosts[i]

    @property
    def redis_url(self) -> str:
        assert self.redis is not None
        return self.redis.url

    def describe(self) -> str:
        """One line saying which mode ran, on which addresses, and why."""
        where = ", ".join(f"{h.name}={h.address}" for h in self.hosts)
        if self.mode == NETNS and self.network:
            net = self.network
            return (
                f"{self.size} hosts in network namespaces {net.namespace(0)}.."
                f"{net.namespace(self.size - 1)} on bridge {net.bridge} "
                f"({net.subnet}.0/24, redis on {net.bridge_address}): {where}"
            )
        return f"{self.size} hosts as processes on loopback ({self.reason}): {where}"

    def _choose_network(self) -> None:
        """Make the namespaces, or record why the loopback fallback runs."""
        if self.wanted == LOOPBACK:
            self.mode, self.reason = LOOPBACK, f"asked for ({FORCE_ENV}=loopback or mode=)"
            return
        if os.geteuid() != 0:
            self.mode, self.reason = LOOPBACK, "not root: network namespaces need root"
            return
        if shutil.which("ip") is None:
            self.mode, self.reason = LOOPBACK, "no `ip` command (iproute2)"
            return
        self.stale_removed = clean_stale()
        network = Network(self.run, self.size)
        began = time.perf_counter()
        try:
            network.create()
        except NetworkError as exc:
            self.mode, self.reason = LOOPBACK, f"namespaces failed: {exc}"
            return
        self.timings["create_network_s"] = time.perf_counter() - began
        self.network, self.mode, self.reason = network, NETNS, "root and `ip netns` work"

    async def __aenter__(self) -> Hosts:
        try:
            self._choose_network()
            net = self.network
            self.redis = EmbeddedRedis(
                self.data_dir / "redis", host=net.bridge_address if net else "127.0.0.1"
            )
            self.redis.start()
            began = time.perf_counter()
            for i in range(self.size):
                name = f"host{i + 1}"
                address = net.address(i) if net else f"127.0.0.{2 + i}"
                port = NETNS_PORT if net else free_port(address)
                server = ServerProcess(
                    self.data_dir / name,
                    self.redis.url,
                    port,
                    host=address,
                    netns=net.namespace(i) if net else None,
                    env={
                        "TRADETALK_NODE_ID": name,
                        "TRADETALK_MEDIA_ADDRESS": address,
                        **self.env,
                        **self.host_env[i],
                    },
                )
                self.hosts.append(Host(name, address, server.spawn(), server.netns))
            await asyncio.gather(*(h.server.healthy(60) for h in self.hosts))
            self.timings["start_servers_s"] = time.perf_counter() - began
        except BaseException:
            await self.__aexit__(None, None, None)
            raise
        RUNS.append(self.describe())
        print(f"[hosts] {self.describe()}", flush=True)
        return self

    async def __aexit__(self, *exc: object) -> None:
        for host in self.hosts:
            host.kill()
        if self.redis is not None:
            self.redis.stop()
        if self.network is not None:
            began = time.perf_counter()
            self.network.remove()
            self.timings["remove_network_s"] = time.perf_counter() - began

    def leftovers(self) -> list[str]:
        """Namespaces and interfaces of this run that still exist."""
        return ours(self.run) if shutil.which("ip") else []


def pytest_terminal_summary(terminalreporter, exitstatus, config) -> None:
    """Say in the test report which host mode each multi-host run used."""
    if RUNS:
        terminalreporter.section("multi-host runs")
        for line in RUNS:
            terminalreporter.write_line(line)
