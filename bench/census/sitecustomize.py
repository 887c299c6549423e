"""A census of the collector's objects inside a gateway under bench (bench/held_objects.py puts
this directory on the gateway's PYTHONPATH; nothing else imports it).

With BENCH_CENSUS set to a path, it times every collection (gc.callbacks), records every tick
of the gateway's loop-lag timer (gateway/loop_lag.py, wrapped as it is imported), and, on
SIGUSR1, writes to that path (atomically: a temporary file renamed) the tracked objects the
collector would walk (`len(gc.get_objects())`; what gc.freeze() moved out of its reach is not
counted), their count by type, every collection so far: [wall-clock start, generation, ms,
objects found unreachable, objects walked] (those walked counted before its clock starts),
every tick: [wall-clock when it ran, ms late, ms the loop's thread waited for a CPU and ms it
ran since the tick before], and when each census so far began and ended (its own pause).
"""

from __future__ import annotations

import gc
import importlib.util
import json
import os
import signal
import sys
import time
from collections import Counter
from collections.abc import Callable
from importlib.abc import MetaPathFinder
from types import ModuleType
from typing import Any

PATH = os.environ.get("BENCH_CENSUS", "")
LAG_MODULE = "gateway.loop_lag"
_collections: list[list[float]] = []
_ticks: list[list[float]] = []
_censuses: list[list[float]] = []
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


class _Ticks:
    """The lag timer's `then`: each tick's lateness, and the loop thread's CPU wait and CPU
    time since the tick before (made in the loop's thread: schedstat is the opener's)."""

    def __init__(self, then: Callable[[float, float], None] | None, waited: Any) -> None:
        self._then, self._waited = then, waited
        self._cpu, self._wait = time.thread_time(), waited.seconds() or 0.0

    def __call__(self, due: float, now: float) -> None:
        cpu, wait = time.thread_time(), self._waited.seconds() or 0.0
        late = round(max(0.0, now - due) * 1e3, 3)
        waited, ran = round((wait - self._wait) * 1e3, 3), round((cpu - self._cpu) * 1e3, 3)
        _ticks.append([time.time(), late, waited, ran])
        self._cpu, self._wait = cpu, wait
        if self._then is not None:
            self._then(due, now)


def _wrap(module: ModuleType) -> None:
    original = module.watch

    def watch(lag: Any, interval_s: float = module.INTERVAL_S, then: Any = None, own: Any = None):  # type: ignore[no-untyped-def]
        return original(lag, interval_s, _Ticks(then, module.CpuWait()), own)

    module.watch = watch


class _LagHook(MetaPathFinder):
    """Wraps gateway.loop_lag's watch as the module is first imported."""

    def find_spec(self, name: str, path: Any, target: Any = None) -> Any:
        if name != LAG_MODULE:
            return None
        sys.meta_path.remove(self)
        spec = importlib.util.find_spec(name)
        if spec is None or spec.loader is None:
            return spec
        run = spec.loader.exec_module  # type: ignore[attr-defined]

        def exec_module(module: ModuleType) -> None:
            run(module)
            _wrap(module)

        spec.loader.exec_module = exec_module  # type: ignore[method-assign]
        return spec


def _write(signum: int, frame: object) -> None:
    began = time.time()
    objects = gc.get_objects()
    types = Counter(type(o).__qualname__ for o in objects)
    tracked = len(objects)
    del objects
    census = {
        "time": began,
        "tracked": tracked,
        "types": dict(types.most_common()),
        "collections": list(_collections),
        "ticks": list(_ticks),
        "censuses": list(_censuses),
    }
    with open(PATH + ".tmp", "w") as out:
        json.dump(census, out)
    os.replace(PATH + ".tmp", PATH)
    _censuses.append([began, time.time()])  # in the next census's file: its whole pause


if PATH:
    gc.callbacks.append(_timed)
    signal.signal(signal.SIGUSR1, _write)
    sys.meta_path.insert(0, _LagHook())
    gc.collect()  # what importing the hook's modules left, not in the first census
