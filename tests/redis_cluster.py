"""A real three-node Redis Cluster on loopback for the state tests: three memory-only
`redis-server --cluster-enabled yes` on free ports in a temporary directory, joined by
`redis-cli --cluster create` (no replicas), ready once every node says `cluster_state:ok`
and agrees on who holds all 16,384 slots. Stopped, and its directory removed, afterwards."""

from __future__ import annotations

import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path

import redis

from tests.servers import free_port

NODES = 3
RUNNING: list[str] = []  # the URL of the cluster the session's fixture runs, while it runs
START_TIMEOUT_S = 60  # generous: a loaded machine is slow to start and join three servers


class ClusterNode:
    def __init__(self, directory: Path, durable: bool = False) -> None:
        self.durable = durable  # every write fsynced to its append-only file before the reply
        self.port, self.bus_port = free_port(), free_port()
        self.directory = directory / str(self.port)
        self.directory.mkdir()
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--cluster-enabled", "yes", "--cluster-port", str(self.bus_port),
                   "--cluster-config-file", str(self.directory / "nodes.conf"),
                   "--cluster-node-timeout", "5000", "--dir", str(self.directory),
                   "--save", ""]  # fmt: skip
        command += ["--appendonly", "yes", "--appendfsync", "always"] if self.durable else [
            "--appendonly", "no"]  # fmt: skip
        with (self.directory / "redis.log").open("wb") as log:
            self.process = subprocess.Popen(command, stdout=log, stderr=subprocess.STDOUT)

    def info(self) -> dict[str, str]:
        with redis.Redis(port=self.port, socket_timeout=2, socket_connect_timeout=2) as client:
            info: dict[str, str] = client.execute_command("CLUSTER INFO")
            return info

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None


@contextmanager
def redis_cluster() -> Iterator[str]:
    """Start the cluster; yields the URL of one of its nodes (the client finds the others)."""
    with cluster_nodes() as nodes:
        yield f"redis://127.0.0.1:{nodes[0].port}/0"


@contextmanager
def cluster_nodes(durable: bool = False) -> Iterator[list[ClusterNode]]:
    """Start the cluster; yields its nodes, to stop and start again."""
    with tempfile.TemporaryDirectory(prefix="floorgate-cluster-") as tmp:
        nodes = [ClusterNode(Path(tmp), durable) for _ in range(NODES)]
        try:
            for node in nodes:
                node.start()
            deadline = time.monotonic() + START_TIMEOUT_S
            for node in nodes:
                _until(deadline, node, lambda n: "cluster_state" in n.info())
            addresses = [f"127.0.0.1:{node.port}" for node in nodes]
            subprocess.run(
                [
                    "redis-cli",
                    "--cluster",
                    "create",
                    *addresses,
                    "--cluster-replicas",
                    "0",
                    "--cluster-yes",
                ],
                check=True,
                capture_output=True,
                timeout=START_TIMEOUT_S,
            )
            wait_ready(nodes, deadline)
            yield nodes
        finally:
            for node in nodes:
                node.stop()


def wait_ready(nodes: list[ClusterNode], deadline: float) -> None:
    for node in nodes:
        _until(deadline, node, _ready)


def _ready(node: ClusterNode) -> bool:
    info = node.info()
    want = {"cluster_state": "ok", "cluster_slots_ok": "16384", "cluster_known_nodes": str(NODES)}
    return all(info.get(name) == value for name, value in want.items())


def _until(deadline: float, node: ClusterNode, ok: Callable[[ClusterNode], bool]) -> None:
    while True:
        try:
            if ok(node):
                return
        except (redis.ConnectionError, redis.TimeoutError):
            pass
        if node.process is not None and node.process.poll() is not None:
            log = (node.directory / "redis.log").read_text(errors="replace")
            raise RuntimeError(f"redis-server on {node.port} exited:\n{log[-2000:]}")
        if time.monotonic() > deadline:
            raise RuntimeError(f"the Redis Cluster node on {node.port} is not ready")
        time.sleep(0.05)
