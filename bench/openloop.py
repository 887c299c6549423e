"""Open-loop load: requests start at a fixed rate whatever the server does, from several processes.

A closed loop (wrk) sends the next request when one ends, so a slow server is sent less and
looks better than it is. Here arrivals are scheduled at `rate` per second for `duration_s`;
latency runs from the scheduled start (a request that had to wait for the generator counts that
wait), so a server that falls behind shows it as latency and in-flight growth. Each worker is
its own process on uvloop with httptools parsing; it reports how late it started requests
against their schedule and its own CPU, so that a generator that cannot keep up is seen.

    python -m bench.openloop --url URL --rate R --duration S [--stream] [--header 'k: v'] BODY
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from contextlib import ExitStack
from dataclasses import asdict, dataclass, field
from typing import cast
from urllib.parse import urlsplit

import httptools
import uvloop

DONE_TAIL = b"data: [DONE]\n\n"
# The end of a stream kept for what it says: [DONE], and the mock's own time for the stream
# where it tells it (bench/llm_mock.py: in the last content chunk, a few hundred bytes back).
TAIL_BYTES = 1024
OWN_TIME = re.compile(rb"mock-s=([0-9]+\.[0-9]+)")
SAMPLE_S = 0.1
# A connection lost with a request on it, by what the client had seen: no byte on a new one is
# a connection the server never took up (its accept queue overflowed and the kernel reset the
# handshake it had queued); on a reused one, a keep-alive close that crossed the request; a
# response already begun, a response cut.
UNANSWERED_NEW = "unanswered, new connection"
UNANSWERED_REUSED = "unanswered, reused connection"
CUT = "response cut"
# A 503 is the server refusing the request at once (Floorgate overloaded: `overloaded`, with
# Retry-After), kept apart from requests it took up and then answered late or never.
REFUSED = "refused"


@dataclass(frozen=True)
class Plan:
    url: str
    body: str
    rate: float  # requests per second, all workers together
    duration_s: float
    stream: bool = False  # success needs the body to end with data: [DONE]
    headers: tuple[tuple[str, str], ...] = ()
    timeout_s: float = 30.0


@dataclass
class Outcome:
    """One worker's figures, or all of them merged."""

    sent: int = 0
    ok: int = 0
    failures: dict[str, int] = field(default_factory=dict)
    latency_ms: list[float] = field(default_factory=list)  # of the successful requests
    refused_ms: list[float] = field(default_factory=list)  # of the 503s: how fast a refusal came
    ended_s: list[float] = field(default_factory=list)  # when each of those ended, from the start
    ttfb_ms: list[float] = field(default_factory=list)
    # Of the successful streams that told the mock's own time for them: latency less that time,
    # what the path to the mock and back added (the mock's timers taken out).
    beyond_upstream_ms: list[float] = field(default_factory=list)
    late_ms: list[float] = field(default_factory=list)  # start behind schedule, every request
    in_flight: list[int] = field(default_factory=list)  # sampled every SAMPLE_S
    cpu_s: float = 0.0
    wall_s: float = 0.0

    def merge(self, other: Outcome) -> None:
        self.sent += other.sent
        self.ok += other.ok
        self.failures = dict(Counter(self.failures) + Counter(other.failures))
        self.latency_ms += other.latency_ms
        self.refused_ms += other.refused_ms
        self.ended_s += other.ended_s
        self.ttfb_ms += other.ttfb_ms
        self.beyond_upstream_ms += other.beyond_upstream_ms
        self.late_ms += other.late_ms
        width = max(len(self.in_flight), len(other.in_flight))
        mine, theirs = self.in_flight, other.in_flight
        self.in_flight = [
            (mine[i] if i < len(mine) else 0) + (theirs[i] if i < len(theirs) else 0)
            for i in range(width)
        ]
        self.cpu_s += other.cpu_s
        self.wall_s = max(self.wall_s, other.wall_s)

    @property
    def success(self) -> float:
        return self.ok / self.sent if self.sent else 0.0


class Lost(ConnectionError):
    """The connection ended before the response did; `kind` says what the client had seen."""

    def __init__(self, kind: str) -> None:
        super().__init__(kind)
        self.kind = kind


class Exchange(asyncio.Protocol):
    """One connection; carries one request at a time, kept alive between them."""

    def __init__(self, idle: list[Exchange]) -> None:
        self._idle = idle
        self._transport: asyncio.Transport | None = None
        self._parser = httptools.HttpResponseParser(self)
        self._done: asyncio.Future[bool] | None = None
        self.first_byte = 0.0
        self.status = 0
        self._tail = b""
        self._has_body = False
        self._answered = False  # a byte of this request's response has arrived
        self.uses = 0  # requests sent on this connection, the one in flight included
        self.open = False

    def connection_made(self, transport: asyncio.BaseTransport) -> None:
        self._transport, self.open = cast(asyncio.Transport, transport), True

    def connection_lost(self, exc: Exception | None) -> None:
        self.open = False
        if self in self._idle:
            self._idle.remove(self)
        if self._done is not None and not self._done.done():
            self._done.set_exception(Lost(self._lost_kind()))

    def _lost_kind(self) -> str:
        if self._answered:
            return CUT
        return UNANSWERED_REUSED if self.uses > 1 else UNANSWERED_NEW

    def data_received(self, data: bytes) -> None:
        self._answered = True
        try:
            self._parser.feed_data(data)
        except httptools.HttpParserError as exc:
            if self._done is not None and not self._done.done():
                self._done.set_exception(ConnectionError(f"bad response: {exc}"))
            self.close()

    def on_status(self, status: bytes) -> None:
        self.status = self._parser.get_status_code()

    def on_body(self, body: bytes) -> None:
        if not self._has_body:
            self._has_body, self.first_byte = True, time.perf_counter()
        self._tail = (self._tail + body)[-TAIL_BYTES:]

    def on_message_complete(self) -> None:
        if self._done is not None and not self._done.done():
            self._done.set_result(self._parser.should_keep_alive())

    def send(self, request: bytes) -> asyncio.Future[bool]:
        assert self._transport is not None
        self.status, self._tail, self._has_body, self.first_byte = 0, b"", False, 0.0
        self._answered, self.uses = False, self.uses + 1
        self._done = asyncio.get_running_loop().create_future()
        self._transport.write(request)
        return self._done

    @property
    def ended_with_done(self) -> bool:
        return self._tail.endswith(DONE_TAIL)

    def upstream_ms(self) -> float | None:
        """The mock's own time for the stream, if its end told it."""
        told = OWN_TIME.findall(self._tail)
        return float(told[-1]) * 1000 if told else None

    def close(self) -> None:
        self.open = False
        if self._transport is not None:
            self._transport.close()


class Worker:
    def __init__(self, plan: Plan) -> None:
        self.plan = plan
        parts = urlsplit(plan.url)
        self.host, self.port = parts.hostname or "127.0.0.1", parts.port or 80
        self.request = encode(plan)
        self.outcome = Outcome()
        self._idle: list[Exchange] = []
        self._running = 0
        self._t0 = 0.0  # perf_counter() at the first arrival

    async def one(self, scheduled: float) -> None:
        out = self.outcome
        self._running += 1
        try:
            conn = await self._connection()
            try:
                async with asyncio.timeout(self.plan.timeout_s):
                    keep_alive = await conn.send(self.request)
            except BaseException:
                conn.close()
                raise
            self._finish(conn, keep_alive, scheduled)
        except TimeoutError:
            out.failures["timeout"] = out.failures.get("timeout", 0) + 1
        except Lost as exc:
            out.failures[exc.kind] = out.failures.get(exc.kind, 0) + 1
        except Exception as exc:  # counted by kind: one failed request must not end the run
            kind = type(exc).__name__
            out.failures[kind] = out.failures.get(kind, 0) + 1
        finally:
            self._running -= 1

    def _finish(self, conn: Exchange, keep_alive: bool, scheduled: float) -> None:
        out, now = self.outcome, time.perf_counter()
        if conn.status != 200:
            key = REFUSED if conn.status == 503 else f"status {conn.status}"
            out.failures[key] = out.failures.get(key, 0) + 1
            if key == REFUSED:
                out.refused_ms.append(round((now - scheduled) * 1000, 3))
        elif self.plan.stream and not conn.ended_with_done:
            out.failures["no [DONE]"] = out.failures.get("no [DONE]", 0) + 1
        else:
            out.ok += 1
            latency = (now - scheduled) * 1000
            out.latency_ms.append(round(latency, 3))
            upstream = conn.upstream_ms() if self.plan.stream else None
            if upstream is not None:
                out.beyond_upstream_ms.append(round(latency - upstream, 3))
            out.ended_s.append(round(now - self._t0, 3))
            out.ttfb_ms.append(round((conn.first_byte - scheduled) * 1000, 3))
        if keep_alive and conn.open:
            self._idle.append(conn)
        else:
            conn.close()

    async def _connection(self) -> Exchange:
        while self._idle:
            conn = self._idle.pop()
            if conn.open:
                return conn
        loop = asyncio.get_running_loop()
        _, conn = await loop.create_connection(lambda: Exchange(self._idle), self.host, self.port)
        return conn

    async def run(self, start_at: float) -> Outcome:
        """Arrivals every 1/rate s from `start_at` (time.time()), then wait for the last."""
        plan, out = self.plan, self.outcome
        count = int(plan.rate * plan.duration_s)
        await asyncio.sleep(max(0.0, start_at - time.time()))
        cpu0, t0 = _cpu(), time.perf_counter()
        self._t0 = t0
        tasks: set[asyncio.Task[None]] = set()
        sampler = asyncio.create_task(self._sample())
        for index in range(count):
            scheduled = t0 + index / plan.rate
            delay = scheduled - time.perf_counter()
            if delay > 0:
                await asyncio.sleep(delay)
            out.late_ms.append(round(max(0.0, time.perf_counter() - scheduled) * 1000, 3))
            task = asyncio.create_task(self.one(scheduled))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
            out.sent += 1
        if tasks:
            await asyncio.wait(set(tasks))
        sampler.cancel()
        out.cpu_s, out.wall_s = _cpu() - cpu0, time.perf_counter() - t0
        for conn in self._idle:
            conn.close()
        return out

    async def _sample(self) -> None:
        while True:
            self.outcome.in_flight.append(self._running)
            await asyncio.sleep(SAMPLE_S)


def encode(plan: Plan) -> bytes:
    parts = urlsplit(plan.url)
    body = plan.body.encode()
    lines = [
        f"POST {parts.path or '/'} HTTP/1.1",
        f"host: {parts.netloc}",
        "content-type: application/json",
        f"content-length: {len(body)}",
        *(f"{name}: {value}" for name, value in plan.headers),
    ]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


def _cpu() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run(plan: Plan, workers: int = 2, start_at: float | None = None) -> Outcome:
    """The plan split over `workers` processes that start it together at `start_at`
    (time.time(); half a second from now by default); their figures merged."""
    start_at = time.time() + 0.5 if start_at is None else start_at
    share = Plan(**{**asdict(plan), "rate": plan.rate / workers})
    argv = [sys.executable, "-m", "bench.openloop", "--worker", json.dumps(asdict(share))]
    # Each worker's figures go to a file, not a pipe: at 2,000 streams they pass a pipe's
    # 64 KiB, and the output of a worker that finished while this process waited on another
    # arrived cut there (held streams at 2,000: "Expecting value: line 2 column 1 (char 65537)").
    merged = Outcome()
    limit = plan.duration_s + plan.timeout_s + 30
    with ExitStack() as files:
        outputs = [files.enter_context(tempfile.TemporaryFile()) for _ in range(workers)]
        command = [*argv, "--start-at", repr(start_at)]
        procs = [subprocess.Popen(command, stdout=out, env=dict(os.environ)) for out in outputs]
        for proc, output in zip(procs, outputs, strict=True):
            if proc.wait(timeout=limit) != 0:
                raise RuntimeError(f"load worker exited with {proc.returncode}")
            output.seek(0)
            merged.merge(Outcome(**json.loads(output.read())))
    return merged


def worker_main(raw: str, start_at: float) -> int:
    data = json.loads(raw)
    data["headers"] = tuple(tuple(pair) for pair in data["headers"])
    outcome = uvloop.run(Worker(Plan(**data)).run(start_at))
    print(json.dumps(asdict(outcome)))
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m bench.openloop", description=__doc__)
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    parser.add_argument("--start-at", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--url")
    parser.add_argument("--rate", type=float, default=10.0)
    parser.add_argument("--duration", type=float, default=5.0)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--stream", action="store_true")
    parser.add_argument("--header", action="append", default=[], help="'name: value'")
    parser.add_argument("body", nargs="?", default="{}")
    args = parser.parse_args(argv)
    if args.worker:
        return worker_main(args.worker, args.start_at)
    headers = tuple(tuple(h.split(":", 1)[i].strip() for i in (0, 1)) for h in args.header)
    plan = Plan(args.url, args.body, args.rate, args.duration, args.stream, headers)
    out = run(plan, args.workers)
    print(json.dumps({k: v for k, v in asdict(out).items() if not isinstance(v, list)}))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
