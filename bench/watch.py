"""What the benchmark watches on a server while it is loaded: a trivial GET's latency (how long
its event loop keeps a ready request waiting, as seen from outside), its peak resident memory,
and Floorgate's own event-loop lag histogram (floorgate_event_loop_lag_seconds)."""

from __future__ import annotations

import http.client
import threading
import time
import urllib.request
from types import TracebackType
from urllib.parse import urlsplit

from bench.procs import rss_mib

PROBE_INTERVAL_S = 0.05
RSS_INTERVAL_S = 0.25


class Watch:
    """Probe `probe_url` every 50 ms and sample `pid`'s RSS every 250 ms, in threads."""

    def __init__(self, probe_url: str, pid: int) -> None:
        self._url = urlsplit(probe_url)
        self._pid = pid
        self._stop = threading.Event()
        self.probe_ms: list[float] = []
        self.probe_errors = 0
        self.rss_peak_mib = 0.0
        self._threads = [
            threading.Thread(target=self._probe, daemon=True),
            threading.Thread(target=self._rss, daemon=True),
        ]

    def __enter__(self) -> Watch:
        for thread in self._threads:
            thread.start()
        return self

    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join(10)

    def _probe(self) -> None:
        conn: http.client.HTTPConnection | None = None
        while not self._stop.wait(PROBE_INTERVAL_S):
            try:
                if conn is None:
                    conn = http.client.HTTPConnection(self._url.netloc, timeout=10)
                    conn.connect()
                started = time.perf_counter()
                conn.request("GET", self._url.path or "/")
                conn.getresponse().read()
                self.probe_ms.append((time.perf_counter() - started) * 1000)
            except (OSError, http.client.HTTPException):
                self.probe_errors += 1
                if conn is not None:
                    conn.close()
                conn = None
        if conn is not None:
            conn.close()

    def _rss(self) -> None:
        while True:
            self.rss_peak_mib = max(self.rss_peak_mib, rss_mib(self._pid))
            if self._stop.wait(RSS_INTERVAL_S):
                return


LAG_SERIES = "floorgate_event_loop_lag_seconds_bucket"
# The lag less the loop's wait for a CPU held by other processes (gateway/loop_lag.py).
OWN_LAG_SERIES = "floorgate_event_loop_lag_own_seconds_bucket"


def lag_buckets(metrics_url: str, series: str = LAG_SERIES) -> dict[float, float]:
    """Floorgate's event-loop lag histogram (or `series`, one with the same buckets) from its
    /metrics: upper bound -> cumulative count (empty if the server has none)."""
    try:
        with urllib.request.urlopen(metrics_url, timeout=10) as reply:
            text = reply.read().decode()
    except OSError:
        return {}
    buckets = {}
    for line in text.splitlines():
        if line.startswith(series + '{le="'):
            bound, _, value = line[len(series) + 5 :].partition('"} ')
            buckets[float(bound)] = float(value)
    return buckets


def lag_p99_ms(before: dict[float, float], after: dict[float, float]) -> float | None:
    """The p99 of the lag observed between two scrapes, interpolated within its bucket as
    PromQL's histogram_quantile does; None with no observations."""
    bounds = sorted(after)
    counts = [after[b] - before.get(b, 0.0) for b in bounds]
    if not counts or counts[-1] <= 0:
        return None
    rank, lower, below = 0.99 * counts[-1], 0.0, 0.0
    for bound, cumulative in zip(bounds, counts, strict=True):
        if cumulative >= rank:
            if bound == float("inf"):
                return lower * 1000  # beyond the last finite bucket: its bound, a lower bound
            inside = cumulative - below
            return (lower + (bound - lower) * (rank - below) / inside) * 1000
        lower, below = bound, cumulative
    return None
