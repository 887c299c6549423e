"""A gateway of its own over a small policy of named models (one route each, `route/<model>`),
with settings of the test's choosing: for the upstream client's caps, proxies and queue."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import openai
from prometheus_client import CollectorRegistry

from gateway.app import Floorgate, create_app
from gateway.settings import Settings
from tests.servers import serve_in_thread

KEY_ENV = "FAKE_UPSTREAM_KEY"
HEAD = """\
apiVersion: floorgate.dev/v1
kind: RoutingPolicy
metadata: {name: upstream-test}
spec:
  traits: {reversible: {unsafe: false}}
  tree:
    start: q
    nodes: {q: {ask: reversible, "yes": {route: __FIRST__}, "no": {route: __FIRST__}}}
  default_workflow: any
  workflows: {any: {}}
"""


def policy(models: dict[str, str], routes: dict[str, list[str]] | None = None) -> str:
    """`models`: name -> the model's YAML flow mapping; every model gets a route of its name,
    and `routes` adds pools of several."""
    pools = {name: [name] for name in models} | (routes or {})
    lines = [HEAD.replace("__FIRST__", next(iter(pools))), "  models:"]
    lines += [f"    {name}: {spec}" for name, spec in models.items()]
    lines += ["  routes:"]
    lines += [
        f"    {name}: {{strictness: 9, pool: [{', '.join(pool)}]}}" for name, pool in pools.items()
    ]
    return "\n".join(lines) + "\n"


@contextmanager
def upstream_gateway(
    directory: Path, text: str, **settings: Any
) -> Iterator[tuple[openai.OpenAI, Floorgate]]:
    """The gateway under uvicorn over `text`, and an openai client for it (key-any)."""
    os.environ.setdefault(KEY_ENV, "sk-fake-upstream-0123456789")
    path = directory / "policy.yaml"
    path.write_text(text)
    config = Settings(policies=path, api_keys="key-any=*", _env_file=None, **settings)  # type: ignore[call-arg]
    app = create_app(config, CollectorRegistry())
    with serve_in_thread(app) as url:
        # Not through the proxy a test may have set in the environment: only the gateway's
        # calls to its upstreams are the test's business.
        http = httpx.Client(trust_env=False)
        with openai.OpenAI(
            base_url=f"{url}/v1", api_key="key-any", max_retries=0, http_client=http
        ) as client:
            yield client, app
