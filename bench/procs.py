"""The benchmark's child processes: free ports, start, readiness, CPU and memory, stop.

Every child runs in its own session, so stopping it stops whatever it forked (a proxy's worker)
and nothing else. The CPU and memory figures add up the child and its descendants.
"""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from pathlib import Path
from types import TracebackType

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
POLL_INTERVAL_S = 0.01
STOP_GRACE_S = 5.0


class StartupError(RuntimeError):
    """A child did not become ready; the message ends with the tail of its log."""


@dataclass
class Child:
    name: str
    process: subprocess.Popen[bytes]
    log: Path
    started: float  # time.perf_counter() just before Popen

    @property
    def pid(self) -> int:
        return self.process.pid

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n".join(self.log.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return "(no log)"


@dataclass
class Children:
    """Starts children with their output in `logdir`; stops every one of them on exit."""

    logdir: Path
    running: list[Child] = field(default_factory=list)

    def start(
        self, name: str, argv: list[str], env: dict[str, str] | None = None, cwd: Path | None = None
    ) -> Child:
        log = self.logdir / f"{name}.log"
        with log.open("ab") as out:
            started = time.perf_counter()
            process = subprocess.Popen(
                argv,
                env=env,
                cwd=cwd,
                stdin=subprocess.DEVNULL,
                stdout=out,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        child = Child(name, process, log, started)
        self.running.append(child)
        return child

    def stop(self, child: Child) -> None:
        if child.process.poll() is None:
            signal_group(child.pid, signal.SIGTERM)
            try:
                child.process.wait(timeout=STOP_GRACE_S)
            except subprocess.TimeoutExpired:
                signal_group(child.pid, signal.SIGKILL)
                child.process.wait(timeout=STOP_GRACE_S)
        # Whatever the child forked into its session goes too, even if the child itself exited.
        signal_group(child.pid, signal.SIGKILL)
        if child in self.running:
            self.running.remove(child)

    def stop_all(self) -> None:
        for child in reversed(list(self.running)):
            self.stop(child)

    def __enter__(self) -> Children:
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self.stop_all()


def signal_group(pid: int, signum: int) -> None:
    """Signal the session (process group) that our child `pid` leads."""
    with contextlib.suppress(ProcessLookupError, PermissionError):
        os.killpg(pid, signum)


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
        return port


def http_status(url: str, timeout_s: float = 1.0) -> int | None:
    """The status of a GET, or None when nothing answers yet."""
    try:
        with urllib.request.urlopen(url, timeout=timeout_s) as response:
            status: int = response.status
            return status
    except urllib.error.HTTPError as exc:
        return exc.code
    except (urllib.error.URLError, ConnectionError, TimeoutError):
        return None


def wait_ready(child: Child, url: str, timeout_s: float) -> float:
    """Poll `url` until it answers 200; returns the seconds since the child was started."""
    deadline = child.started + timeout_s
    while time.perf_counter() < deadline:
        if http_status(url) == 200:
            return time.perf_counter() - child.started
        if child.process.poll() is not None:
            raise StartupError(
                f"{child.name} exited with {child.process.returncode} before {url} answered 200;"
                f" its log ({child.log}) ends:\n{child.log_tail()}"
            )
        time.sleep(POLL_INTERVAL_S)
    raise StartupError(
        f"{child.name}: {url} did not answer 200 within {timeout_s:.0f} s;"
        f" its log ({child.log}) ends:\n{child.log_tail()}"
    )


def wait_listening(child: Child, port: int, timeout_s: float) -> None:
    """For children without a health endpoint (nginx): wait until the port accepts."""
    deadline = time.perf_counter() + timeout_s
    while time.perf_counter() < deadline:
        try:
            socket.create_connection(("127.0.0.1", port), timeout=0.5).close()
            return
        except OSError:
            if child.process.poll() is not None:
                raise StartupError(f"{child.name} exited:\n{child.log_tail()}") from None
            time.sleep(POLL_INTERVAL_S)
    raise StartupError(f"{child.name} did not listen on {port}:\n{child.log_tail()}")


def process_tree(pid: int) -> list[int]:
    """`pid` and its live descendants."""
    parents: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                ppid = int(stat_fields(int(entry.name))[1])
            except OSError:
                continue
            parents.setdefault(ppid, []).append(int(entry.name))
    tree, queue = [], [pid]
    while queue:
        current = queue.pop()
        tree.append(current)
        queue.extend(parents.get(current, []))
    return tree


def stat_fields(pid: int) -> list[str]:
    """/proc/<pid>/stat after the command name, which may contain spaces: state is [0]."""
    text = Path(f"/proc/{pid}/stat").read_text()
    return text[text.rindex(")") + 2 :].split()


def cpu_seconds(pid: int) -> float:
    """User plus system CPU time of `pid` and its descendants."""
    ticks = 0
    for member in process_tree(pid):
        try:
            fields = stat_fields(member)
        except OSError:
            continue
        ticks += int(fields[11]) + int(fields[12])  # utime, stime
    return ticks / CLOCK_TICKS


def rss_mib(pid: int) -> float:
    """Resident memory of `pid` and its descendants, in MiB."""
    kib = 0
    for member in process_tree(pid):
        try:
            status = Path(f"/proc/{member}/status").read_text()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                kib += int(line.split()[1])
    return kib / 1024
