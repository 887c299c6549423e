"""Shared state: the Store seam (base.py), in memory (memory.py) or in Redis (redis.py)."""

from __future__ import annotations

from gateway.settings import Settings
from gateway.state.base import Store
from gateway.state.memory import MemoryStore


def open_store(settings: Settings) -> Store:
    """Redis when FLOORGATE_REDIS_URL is set (redis is imported only then), else memory."""
    if settings.redis_url is None:
        return MemoryStore(settings.ledger_retention_s, settings.ledger_memory_max)
    from gateway.state.redis import RedisStore

    return RedisStore(
        settings.redis_url.get_secret_value(),
        settings.redis_key_prefix,
        settings.ledger_retention_s,
        settings.redis_timeout_s,
        settings.redis_max_connections,
        settings.redis_cluster,
    )
