"""What the benchmark watches on a server while it is loaded: a trivial GET's latency (how long
its event loop keeps a ready request waiting) and its peak resident memory."""

from __future__ import annotations

import http.client
import threading
import time
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
