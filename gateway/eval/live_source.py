"""Where `eval report --live` reads production's numbers: a running gateway's
`GET /admin/eval/live` (`--via URL`; the only way to an in-memory store), or the Redis store
named by FLOORGATE_REDIS_URL directly."""

from __future__ import annotations

import asyncio
import json
import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

from gateway.eval.live import from_json, live_rows, live_table, parse_since
from gateway.policy.compiled import Policy
from gateway.policy.loader import PolicyError, PolicyReadError, load_policy
from gateway.settings import Settings
from gateway.state import open_store
from gateway.state.base import StoreUnavailable

TIMEOUT_S = 30.0


class LiveError(Exception):
    """Production's numbers cannot be read; the message says why and what to do."""


def read_live(since: str, via: str | None, policies: Path | None) -> str:
    try:
        parse_since(since)
    except ValueError as exc:
        raise LiveError(exc) from exc
    if via is not None:
        return live_table(from_json(_fetch(via, since)), since)
    settings = Settings()
    if settings.redis_url is None:
        raise LiveError(
            "FLOORGATE_REDIS_URL is not set, and an in-memory store lives only in the "
            "gateway's process: pass --via http://GATEWAY (with FLOORGATE_ADMIN_KEY)"
        )
    try:
        policy = load_policy(policies or settings.policies, require_admissions=False)
    except (PolicyError, PolicyReadError) as exc:
        raise LiveError(exc) from exc
    return asyncio.run(_from_store(settings, policy, since))


async def _from_store(settings: Settings, policy: Policy, since: str) -> str:
    store = open_store(settings)
    try:
        rows = await live_rows(store, policy, parse_since(since), time.time())
    except StoreUnavailable as exc:
        raise LiveError(f"the Redis store cannot be read: {exc}") from exc
    finally:
        await store.close()
    return live_table(rows, since)


def _fetch(base: str, since: str) -> dict[str, object]:
    url = f"{base.rstrip('/')}/admin/eval/live?{urllib.parse.urlencode({'since': since})}"
    request = urllib.request.Request(url)
    key = os.environ.get("FLOORGATE_ADMIN_KEY")
    if key:
        request.add_header("Authorization", f"Bearer {key}")
    try:
        with urllib.request.urlopen(request, timeout=TIMEOUT_S) as response:
            data: dict[str, object] = json.load(response)
            return data
    except urllib.error.HTTPError as exc:
        detail = exc.read().decode(errors="replace")[:300]
        raise LiveError(f"{url}: {exc.code} {detail}") from exc
    except (urllib.error.URLError, OSError, ValueError) as exc:
        raise LiveError(f"{url}: {exc}") from exc
