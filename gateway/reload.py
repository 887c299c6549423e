"""Hot reload of the policy, from three triggers: a change to its files (polled), SIGHUP, and
`POST /admin/policies/reload`.

Every trigger runs the same reload: the files are loaded and proven sound (the policy's own
tests included) off the event loop, and only then swapped in. A rejected policy is logged with
file:line:col and counted; the last good policy keeps serving.
"""

from __future__ import annotations

import asyncio
import logging
import signal
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager, suppress

from gateway.metrics import Metrics
from gateway.policy.compiled import Policy
from gateway.policy.store import PolicyStore, Reload

log = logging.getLogger("floorgate.policy")


class PolicyReloader:
    def __init__(
        self,
        store: PolicyStore,
        metrics: Metrics,
        prepare: Callable[[Policy], None] | None = None,
    ) -> None:
        self.store = store
        self.metrics = metrics
        self.prepare = prepare  # run on the new policy in the reload's thread, before the swap
        self._lock = asyncio.Lock()  # one reload at a time, whatever triggered it
        self._pending: set[asyncio.Task[Reload]] = set()

    async def reload(self, trigger: str) -> Reload:
        async with self._lock:
            outcome = await asyncio.to_thread(self.store.reload, self.prepare)
        self._record(outcome, trigger)
        return outcome

    def _record(self, outcome: Reload, trigger: str) -> None:
        self.metrics.policy_reload(outcome.result, trigger)
        policy = outcome.policy
        if outcome.error is not None:
            log.error(
                "policy reload (%s) rejected; still serving version %s:\n%s",
                trigger,
                policy.version,
                outcome.error,
            )
            return
        self.metrics.policy_loaded(policy)
        if outcome.result == "success":
            log.info(
                "policy %s reloaded (%s): version %s -> %s",
                policy.name,
                trigger,
                outcome.previous.version,
                policy.version,
            )

    async def watch(self, interval_s: float) -> None:
        """Poll the files' fingerprint; reload when it changes. Runs until cancelled."""
        while True:
            await asyncio.sleep(interval_s)
            try:
                if await asyncio.to_thread(self.store.changed):
                    await self.reload("watch")
            except Exception:  # the watcher's top level: one bad turn must not end hot reload
                log.exception("policy watcher failed; trying again in %ss", interval_s)

    def on_sighup(self) -> None:
        task = asyncio.get_running_loop().create_task(self.reload("sighup"))
        self._pending.add(task)
        task.add_done_callback(self._pending.discard)

    @asynccontextmanager
    async def running(self, interval_s: float, sighup: bool) -> AsyncIterator[None]:
        """Watch the files (unless `interval_s` is 0) and, if asked, reload on SIGHUP."""
        loop = asyncio.get_running_loop()
        watcher = loop.create_task(self.watch(interval_s)) if interval_s > 0 else None
        if sighup:
            loop.add_signal_handler(signal.SIGHUP, self.on_sighup)
        try:
            yield
        finally:
            if sighup:
                loop.remove_signal_handler(signal.SIGHUP)
            if watcher is not None:
                watcher.cancel()
                with suppress(asyncio.CancelledError):
                    await watcher
