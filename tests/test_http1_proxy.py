"""The direct path's HTTP client through a real forward proxy on loopback (tests/proxy_server.py):
absolute-form requests for http:// origins, a CONNECT tunnel for https:// ones, the proxy's
credentials sent to the proxy alone, NO_PROXY going direct; httpx, through the same proxy,
takes the same way."""

from __future__ import annotations

import ssl
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from gateway.upstream.http1 import Client, ConnectError
from gateway.upstream.proxy import Proxies
from tests.proxy_server import ProxyServer
from tests.scripted_server import Conn, answer_all, get, run, scripted

SECRET = "pr0xy-s3cret-passw0rd"


@pytest.fixture
def proxy() -> Iterator[ProxyServer]:
    server = ProxyServer(credentials=("floorgate", SECRET))
    server.start()
    yield server
    server.stop()


def through(proxy: ProxyServer, **environ: str) -> Proxies:
    url = proxy.url(f"floorgate:{SECRET}")
    return Proxies.from_environ({"HTTP_PROXY": url, "HTTPS_PROXY": url, **environ})


async def answer_with_peer(conn: Conn) -> None:
    """Answer every request with the port the connection came from."""
    peer = conn.writer.get_extra_info("peername")[1]
    while await conn.read_request() is not None:
        body = str(peer).encode()
        await conn.send(b"HTTP/1.1 200 OK\r\ncontent-length: %d\r\n\r\n%s" % (len(body), body))


@run
async def test_an_http_origin_is_asked_for_in_absolute_form_through_the_proxy(
    proxy: ProxyServer,
) -> None:
    async with scripted(answer_with_peer) as server:
        client = Client(proxies=through(proxy))
        first = await get(client, server.url())
        second = await get(client, server.url())
        await client.close()
    assert proxy.asked == [("POST", server.url())] * 2
    assert {int(first.body), int(second.body)} == proxy.origin_ports  # one, kept alive
    assert all(b"proxy-authorization" not in r.lower() for r in server.requests)


@run
async def test_an_https_origin_is_reached_through_a_connect_tunnel(
    proxy: ProxyServer, certificate: tuple[Path, Path]
) -> None:
    cert, key = certificate
    server_tls = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    server_tls.load_cert_chain(cert, key)
    trusting = ssl.create_default_context(cafile=str(cert))
    async with scripted(answer_with_peer, tls=server_tls) as server:
        client = Client(tls=trusting, proxies=through(proxy))
        ours = await get(client, server.url())
        await client.close()
        authority = f"127.0.0.1:{server.port}"
        assert proxy.asked == [("CONNECT", authority)]
        async with httpx.AsyncClient(proxy=proxy.url(f"floorgate:{SECRET}"), verify=trusting) as h:
            theirs = await h.post(server.url(), content=b"{}")
    assert proxy.asked == [("CONNECT", authority)] * 2  # httpx takes the same way
    assert int(ours.body) in proxy.origin_ports and int(theirs.content) in proxy.origin_ports
    # The credentials are the proxy's: nothing of them goes through the tunnel.
    assert all(b"proxy-authorization" not in r.lower() for r in server.requests)


@run
async def test_no_proxy_goes_direct(proxy: ProxyServer) -> None:
    async with scripted(answer_all) as server:
        for listed in ("127.0.0.1", "*", f"127.0.0.1:{server.port}", "http://127.0.0.1"):
            client = Client(proxies=through(proxy, NO_PROXY=f"example.com, {listed}"))
            assert (await get(client, server.url())).body == b"hello"
            await client.close()
    assert proxy.asked == []


@run
async def test_a_proxy_that_refuses_is_a_connect_error_without_its_credentials(
    proxy: ProxyServer,
) -> None:
    wrong = Proxies.from_environ({"HTTPS_PROXY": proxy.url("floorgate:wrong-" + SECRET)})
    client = Client(proxies=wrong)
    with pytest.raises(ConnectError) as raised:
        await get(client, "https://api.example.com/v1/chat/completions")
    await client.close()
    assert "407" in str(raised.value) and SECRET not in str(raised.value)
    assert proxy.refused == 1
