"""Real Redis for the state tests: the shared one on 127.0.0.1:6379 under a key prefix unique to
the test (deleted afterwards), or a private `redis-server` the test can kill and restart."""

from __future__ import annotations

import os
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import redis

from tests.servers import free_port

SHARED_URL = os.environ.get("FLOORGATE_TEST_REDIS_URL", "redis://127.0.0.1:6379/0")


def unique_prefix() -> str:
    return f"floorgate:test-{os.urandom(6).hex()}:"


def keys(url: str, prefix: str) -> list[str]:
    with redis.Redis.from_url(url, decode_responses=True) as client:
        return sorted(client.scan_iter(match=f"{prefix}*", count=1000))


@contextmanager
def shared_prefix() -> Iterator[str]:
    """A key prefix on the shared Redis for one test; everything under it is deleted after."""
    prefix = unique_prefix()
    try:
        yield prefix
    finally:
        with redis.Redis.from_url(SHARED_URL) as client:
            batch = list(client.scan_iter(match=f"{prefix}*", count=1000))
            for start in range(0, len(batch), 500):
                client.delete(*batch[start : start + 500])


class RedisServer:
    """A private, memory-only redis-server on a free port, to kill, restart, freeze and thaw
    mid-test."""

    def __init__(self, port: int | None = None) -> None:
        self.port = port or free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        command = ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                   "--save", "", "--appendonly", "no"]  # fmt: skip
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 10
        while True:
            try:
                with redis.Redis(port=self.port, socket_connect_timeout=0.2) as client:
                    client.ping()
                return
            except redis.ConnectionError:
                if time.monotonic() > deadline or self.process.poll() is not None:
                    raise RuntimeError(f"redis-server did not start on {self.port}") from None
                time.sleep(0.02)

    def freeze(self) -> None:
        """SIGSTOP: the port still accepts connections (the kernel does), nothing answers."""
        assert self.process is not None
        self.process.send_signal(signal.SIGSTOP)

    def thaw(self) -> None:
        """SIGCONT: it answers again, the commands sent meanwhile first."""
        assert self.process is not None
        self.process.send_signal(signal.SIGCONT)

    def kill(self) -> None:
        """SIGKILL: no goodbye to clients, and (memory only) every key gone with it."""
        if self.process is not None:
            self.process.kill()
            self.process.wait(10)
            self.process = None

    def __enter__(self) -> RedisServer:
        self.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.kill()
