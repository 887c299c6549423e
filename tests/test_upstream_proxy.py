"""Both upstream paths honour HTTP_PROXY / HTTPS_PROXY / NO_PROXY the same way, through a real
proxy on loopback (tests/proxy_server.py): the upstream's requests come from the proxy's
sockets, NO_PROXY goes direct, and the proxy's credentials appear in no log, error or metric."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from pathlib import Path

import httpx
import openai
import pytest

from tests.fake_upstream import FakeUpstream
from tests.proxy_server import ProxyServer
from tests.upstream_gateway import KEY_ENV, policy, upstream_gateway

USER = [{"role": "user", "content": "Say hello."}]
SECRET = "pr0xy-s3cret-passw0rd"
PATHS = ["direct", "litellm"]
PROXY_VARIABLES = ["HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"]


@pytest.fixture
def proxy(monkeypatch: pytest.MonkeyPatch) -> Iterator[ProxyServer]:
    for name in PROXY_VARIABLES:
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    server = ProxyServer(credentials=("floorgate", SECRET))
    server.start()
    yield server
    server.stop()


def text(upstream: FakeUpstream, model: str = "ok") -> str:
    base = f'api_base: "{upstream.base_url}", api_key: {{env: {KEY_ENV}}}, retries: 0'
    spec = f"{{provider: openai, model: {model}, {base}, transport: __PATH__}}"
    return policy({f"m-{path}": spec.replace("__PATH__", path) for path in PATHS})


def ask(client: openai.OpenAI, path: str) -> str | None:
    reply = client.chat.completions.create(model=f"route/m-{path}", messages=USER)
    return reply.choices[0].message.content


def test_both_paths_go_through_the_proxy(
    upstream: FakeUpstream, proxy: ProxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("HTTP_PROXY", proxy.url(f"floorgate:{SECRET}"))
    with upstream_gateway(tmp_path, text(upstream)) as (client, _):
        for path in PATHS:
            seen = upstream.seen
            assert ask(client, path) == "fake answer"
            (received,) = upstream.since(seen)
            assert received["peer"] in proxy.origin_ports, path  # it came from the proxy
            assert "proxy-authorization" not in {k.lower() for k in received["headers"]}
    chat = f"{upstream.base_url}/chat/completions"
    assert proxy.asked == [("POST", chat), ("POST", chat)]  # absolute form, one per path
    assert proxy.refused == 0  # with the credentials from the variable


@pytest.mark.parametrize("listed", ["127.0.0.1", "*", "localhost,127.0.0.1:{port}"])
def test_no_proxy_goes_direct_on_both_paths(
    upstream: FakeUpstream, proxy: ProxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    listed: str,
) -> None:  # fmt: skip
    monkeypatch.setenv("HTTP_PROXY", proxy.url(f"floorgate:{SECRET}"))
    monkeypatch.setenv("NO_PROXY", listed.format(port=upstream.port))
    with upstream_gateway(tmp_path, text(upstream)) as (client, _):
        for path in PATHS:
            seen = upstream.seen
            assert ask(client, path) == "fake answer"
            (received,) = upstream.since(seen)
            assert received["peer"] not in proxy.origin_ports, path
    assert proxy.asked == []


def test_proxy_credentials_appear_in_no_log_error_or_metric(
    upstream: FakeUpstream, proxy: ProxyServer, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:  # fmt: skip
    # Wrong credentials: the proxy answers 407, and every message about it is written.
    monkeypatch.setenv("HTTP_PROXY", proxy.url(f"floorgate:wrong-{SECRET}"))
    caplog.set_level(logging.DEBUG)
    with upstream_gateway(tmp_path, text(upstream)) as (client, _):
        bodies = []
        for path in PATHS:
            with pytest.raises(openai.APIStatusError) as raised:
                ask(client, path)
            assert raised.value.status_code == 502, path
            bodies.append(raised.value.response.text)
        metrics = httpx.get(f"{client.base_url}".removesuffix("/v1/") + "/metrics",
                            trust_env=False).text  # fmt: skip
    assert proxy.refused == 2
    for seen in (*bodies, metrics, caplog.text):
        assert SECRET not in seen and "wrong-" not in seen
