"""A census of the collector's objects inside a gateway under bench (bench/held_objects.py puts
this directory on the gateway's PYTHONPATH; nothing else imports it).

With BENCH_CENSUS set to a path, it times every collection (gc.callbacks) and, on SIGUSR1,
writes to that path (atomically: a temporary file renamed) the tracked objects the collector
would walk (`len(gc.get_objects())`; what gc.freeze() moved out of its reach is not counted),
their count by type, and every collection so far: [wall-clock start, generation, ms, objects
found unreachable, objects walked] (those walked counted before its clock starts).
"""

from __future__ import annotations

import gc
import json
import os
import signal
import time
from collections import Counter
from typing import Any

PATH = os.environ.get("BENCH_CENSUS", "")
_collections: list[list[float]] = []
_started = [0.0, 0.0]  # the running collection's wall-clock and perf_counter starts
_walked = [0]  # the tracked objects in the generations it collects


def _timed(phase: str, info: dict[str, Any]) -> None:
    generation = info["generation"]
    if phase == "start":
        # What the collection will walk, counted before its clock starts.
        _walked[0] = sum(len(gc.get_objects(g)) for g in range(generation + 1))
        _started[:] = time.time(), time.perf_counter()
        return
    ms = round((time.perf_counter() - _started[1]) * 1e3, 3)
    _collections.append([_started[0], generation, ms, info["collected"], _walked[0]])


def _write(signum: int, frame: object) -> None:
    objects = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in objects)
    census = {
        "time": time.time(),
        "tracked": len(objects),
        "types": dict(types.most_common()),
        "collections": list(_collections),
    }
    del objects
    with open(PATH + ".tmp", "w") as out:
        json.dump(census, out)
    os.replace(PATH + ".tmp", PATH)


if PATH:
    gc.callbacks.append(_timed)
    signal.signal(signal.SIGUSR1, _write)
