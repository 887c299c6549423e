"""The direct path reads the proxy variables as httpx (the litellm path's client) does: the
same URL goes through the same proxy, or none, on both. httpx's own decision is the oracle."""

from __future__ import annotations

from unittest import mock
from urllib.parse import urlsplit

import httpx
import pytest
from httpx._utils import URLPattern, get_environment_proxies

from gateway.upstream.proxy import Proxies, Proxy, ProxyUnsupported, environment

ENVIRONMENTS = [
    {},
    {"HTTP_PROXY": "http://proxy.local:3128"},
    {"HTTPS_PROXY": "proxy.local:3128"},
    {"ALL_PROXY": "http://all.local:8080", "HTTPS_PROXY": "http://tls.local:3128"},
    {"HTTPS_PROXY": "http://p:1", "HTTP_PROXY": "http://p:2", "NO_PROXY": "example.com"},
    {"HTTPS_PROXY": "http://p:1", "NO_PROXY": ".example.com,localhost"},
    {"HTTPS_PROXY": "http://p:1", "HTTP_PROXY": "http://p:2", "NO_PROXY": "*"},
    {"HTTP_PROXY": "http://p:2", "NO_PROXY": "a.com, *, b.com"},
    {"ALL_PROXY": "http://p:1", "NO_PROXY": "127.0.0.1,::1,example.com:8443"},
    {"ALL_PROXY": "http://p:1", "NO_PROXY": "http://example.com,EXAMPLE.org"},
    {"ALL_PROXY": "http://p:1", "NO_PROXY": "example.com:443,10.0.0.0/8"},
    {"http_proxy": "http://lower:1", "HTTP_PROXY": "http://upper:2"},
    {"http_proxy": "", "HTTP_PROXY": "http://upper:2"},
    {"HTTP_PROXY": "http://p:2", "REQUEST_METHOD": "GET"},
]
URLS = [
    "http://example.com/v1",
    "https://example.com/v1",
    "https://api.example.com/v1",
    "http://wwwexample.com/v1",
    "https://example.com:8443/v1",
    "https://example.com:443/v1",
    "http://example.org/v1",
    "http://127.0.0.1:8081/v1",
    "http://localhost:8081/v1",
    "http://[::1]:8081/v1",
    "http://10.0.0.1/v1",
    "http://10.0.0.0/v1",
]


def httpx_choice(environ: dict[str, str], url: str) -> str | None:
    """The proxy httpx's AsyncClient(trust_env=True) picks for `url` (its mounts, in its order)."""
    with mock.patch.dict("os.environ", environ, clear=True):
        mounts = get_environment_proxies()
    patterns = sorted((URLPattern(key), proxy) for key, proxy in mounts.items())
    for pattern, proxy in patterns:
        if pattern.matches(httpx.URL(url)):
            return None if proxy is None else str(httpx.Proxy(proxy).url)
    return None


def our_choice(environ: dict[str, str], url: str) -> str | None:
    parts = urlsplit(url)
    scheme, host = parts.scheme, parts.hostname or ""
    proxy = Proxies.from_environ(environ).for_origin(
        scheme, host, parts.port or (443 if scheme == "https" else 80)
    )
    return None if proxy is None else proxy.address


def same_address(httpx_url: str | None) -> str | None:
    if httpx_url is None:
        return None
    parts = urlsplit(httpx_url)
    return f"{parts.scheme}://{parts.hostname}:{parts.port or 80}"


@pytest.mark.parametrize(
    "environ", ENVIRONMENTS, ids=lambda e: ",".join(f"{k}={v}" for k, v in e.items())
)
def test_the_same_proxy_as_httpx_for_every_url(environ: dict[str, str]) -> None:
    for url in URLS:
        assert our_choice(environ, url) == same_address(httpx_choice(environ, url)), url


def test_loopback_is_proxied_unless_no_proxy_names_it() -> None:
    # As httpx and curl do (urllib's proxy_bypass would not proxy it either way).
    environ = {"HTTP_PROXY": "http://proxy.local:3128"}
    assert our_choice(environ, "http://127.0.0.1:8081/v1") == "http://proxy.local:3128"
    environ["NO_PROXY"] = "127.0.0.1"
    assert our_choice(environ, "http://127.0.0.1:8081/v1") is None


def test_credentials_become_a_basic_header_and_stay_out_of_the_repr() -> None:
    proxy = Proxy.parse("http://us%40er:p%3Ass@proxy.local:3128")
    assert proxy.authorization == b"Basic dXNAZXI6cDpzcw=="  # us@er:p:ss
    assert "p%3Ass" not in repr(proxy) and "p:ss" not in repr(proxy)
    assert proxy.address == "http://proxy.local:3128"


def test_a_proxy_the_direct_path_cannot_speak_is_refused_without_its_credentials() -> None:
    proxies = Proxies.from_environ({"HTTPS_PROXY": "socks5://user:secret@socks.local"})
    with pytest.raises(ProxyUnsupported) as raised:
        proxies.for_origin("https", "api.example.com", 443)
    assert "secret" not in str(raised.value) and "socks5://socks.local:1080" in str(raised.value)
    assert proxies.for_origin("http", "api.example.com", 80) is None


def test_lower_case_variables_win_and_cgi_ignores_http_proxy() -> None:
    assert environment({"HTTP_PROXY": "http://a:1", "http_proxy": "http://b:1"}) == {
        "http": "http://b:1"
    }
    assert environment({"HTTP_PROXY": "http://a:1", "REQUEST_METHOD": "POST"}) == {}
