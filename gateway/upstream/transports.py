"""Picks the transport for a model: direct for the OpenAI wire format, litellm for the rest."""

from __future__ import annotations

import os

from gateway.policy.compiled import ModelTarget
from gateway.upstream.base import QueueWatch, Transport
from gateway.upstream.direct import DirectTransport
from gateway.upstream.proxy import Proxies


class Transports:
    """Both paths with the same limits and proxies: the proxy variables are read once, here,
    from the environment (as httpx reads them when a client is made) unless given."""

    def __init__(
        self,
        max_header_bytes: int = 64 * 1024,
        max_body_bytes: int = 64 * 1024 * 1024,
        proxies: Proxies | None = None,
        watch: QueueWatch | None = None,
    ) -> None:
        self.proxies = proxies if proxies is not None else Proxies.from_environ(os.environ)
        self._limits = (max_header_bytes, max_body_bytes)
        self.direct = DirectTransport(max_header_bytes, max_body_bytes, self.proxies, watch)
        self._litellm: Transport | None = None

    def for_target(self, target: ModelTarget) -> Transport:
        if target.spec.direct:
            return self.direct
        return self.litellm()

    @property
    def litellm_ready(self) -> bool:
        """True once litellm is imported: a model that needs it costs no import wait."""
        return self._litellm is not None

    def litellm(self) -> Transport:
        """Import litellm on first need: it takes seconds, and many policies never need it."""
        if self._litellm is None:
            from gateway.upstream.litellm_path import LitellmTransport

            self._litellm = LitellmTransport(*self._limits, self.proxies)
        return self._litellm

    async def close(self) -> None:
        await self.direct.close()
