"""Stored responses: what `previous_response_id` continues and `GET /v1/responses/{id}`
returns, kept in the state store (memory or Redis) for the ledger's retention.

Each response is kept under its owner, a digest of the API key that created it: another key
asking for it finds nothing, as if it never existed. What is kept is the Response object and
the conversation it ended (input items, its output among them, without the instructions), so
the next turn is built without walking a chain of earlier responses.
"""

from __future__ import annotations

import hashlib
import logging
from dataclasses import dataclass
from typing import Any

import orjson
from prometheus_client import Counter

from gateway.errors import NotFound, Unavailable
from gateway.state.base import Store, StoreUnavailable

log = logging.getLogger("floorgate.responses")
ANONYMOUS = "anonymous"


def owner_of(authorization: str | None, open_gateway: bool) -> str:
    """Whose responses these are: a digest of the key (never the key), or everyone's on a
    gateway without keys."""
    if open_gateway or not authorization:
        return ANONYMOUS
    key = authorization.removeprefix("Bearer ").strip()
    return hashlib.sha256(b"floorgate-responses:" + key.encode()).hexdigest()[:32]


@dataclass(frozen=True, slots=True)
class Stored:
    response: dict[str, Any]
    conversation: list[dict[str, Any]]


class ResponseStore:
    def __init__(self, store: Store, retention_s: float, unstored: Counter) -> None:
        self.store = store
        self.retention_s = retention_s
        self.unstored = unstored  # floorgate_responses_unstored_total

    async def save(self, owner: str, stored: Stored) -> bool:
        """Keep it; False (logged) when the store is down: the response is still served."""
        value = orjson.dumps({"response": stored.response, "conversation": stored.conversation})
        try:
            await self.store.put_document(_key(owner, stored.response["id"]), value.decode(),
                                          self.retention_s)  # fmt: skip
        except StoreUnavailable as exc:
            self.unstored.inc()
            log.warning("response %s not stored: %s", stored.response["id"], exc)
            return False
        return True

    async def load(self, owner: str, response_id: str, param: str | None = None) -> Stored:
        """The stored response, or 404 naming `param`; 503 while the store is down."""
        try:
            value = await self.store.get_document(_key(owner, response_id))
        except StoreUnavailable as exc:
            raise Unavailable(
                "Stored responses cannot be read right now; retry, or send the whole "
                "conversation as input instead of previous_response_id.",
                code="state_unavailable",
                headers={"retry-after": "1"},
            ) from exc
        if value is None:
            raise NotFound(
                f"Response with id '{response_id[:80]}' not found: it was not stored "
                "(store: false), has expired, or belongs to another API key.",
                param=param,
            )
        data = orjson.loads(value)
        return Stored(data["response"], data["conversation"])


def _key(owner: str, response_id: str) -> str:
    return f"resp:{owner}:{response_id}"
