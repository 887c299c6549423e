"""An upstream's oversized reply or error body is refused as it arrives, on both paths: a clear
OpenAI-shaped 502, counted, and never held whole (the fake upstream stops well short of it)."""

from __future__ import annotations

from pathlib import Path

import openai
import pytest

from tests.conftest import count
from tests.fake_upstream import FakeUpstream
from tests.upstream_gateway import KEY_ENV, policy, upstream_gateway

USER = [{"role": "user", "content": "Summarise the log."}]
CAP = 2**20  # 1 MiB for the test; 64 MiB by default
BODY_MIB = 300


def models(upstream: FakeUpstream) -> dict[str, str]:
    base = f'api_base: "{upstream.base_url}", api_key: {{env: {KEY_ENV}}}, retries: 0'
    out = {}
    for path in ("direct", "litellm"):
        for kind in ("big", "bigerror"):
            out[f"{kind}-{path}"] = (
                f'{{provider: openai, model: "{kind}:{BODY_MIB}", {base}, transport: {path}}}'
            )
    return out


@pytest.mark.parametrize("path", ["direct", "litellm"])
@pytest.mark.parametrize("kind", ["big", "bigerror"])
def test_a_300_mb_body_is_refused_at_the_cap_not_buffered(
    upstream: FakeUpstream, tmp_path: Path, path: str, kind: str
) -> None:
    text = policy(models(upstream))
    with upstream_gateway(tmp_path, text, upstream_max_body_bytes=CAP) as (client, app):
        sent = len(upstream.big_sent)
        with pytest.raises(openai.InternalServerError) as raised:
            client.chat.completions.create(model=f"route/{kind}-{path}", messages=USER)
        registry = app.runtime.metrics.registry
        errors = count(registry, "floorgate_upstream_errors_total", model=f"{kind}-{path}",
                       kind="protocol")  # fmt: skip
    assert raised.value.status_code == 502
    assert raised.value.type == "upstream_error"
    assert f"larger than {CAP} bytes" in raised.value.message
    assert errors == 1
    # What the upstream wrote before the gateway hung up: the cap and what sockets buffer,
    # a few MiB, never the 300 it had to send (so none of it was held whole).
    written = upstream.big_sent[sent:]
    assert written and written[0] < 32 * 2**20
