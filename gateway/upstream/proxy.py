"""Which proxy an upstream URL goes through: HTTP_PROXY, HTTPS_PROXY, ALL_PROXY and NO_PROXY
(either case, the lower-case one first), read as httpx reads them, so that the direct path and
the litellm path (on httpx, gateway/upstream/litellm_wire.py) reach the same places.

NO_PROXY, as httpx takes it: a comma-separated list where `*` turns every proxy off;
`example.com` bypasses example.com and its subdomains (not wwwexample.com); `.example.com` its
subdomains only; `localhost`, an IPv4 or an IPv6 address only that host; `host:port` only
that port (a scheme's default port is never written, so `example.com:443` matches no
https://example.com); `http://example.com` only that scheme. Loopback is proxied like any
other host unless NO_PROXY names it (httpx and curl agree; urllib and aiohttp do not).

Only http:// proxies are spoken (https:// origins through a CONNECT tunnel); another scheme
(https://, socks5://) is refused on each request it would carry, never silently bypassed.
"""

from __future__ import annotations

import base64
import ipaddress
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

DEFAULT_PORTS = {"http": 80, "https": 443}


class ProxyUnsupported(ValueError):
    """The environment names a proxy the direct path cannot speak (its message is safe)."""


@dataclass(frozen=True, slots=True)
class Proxy:
    """An http:// proxy. Its credentials live only in `authorization`, never in its repr."""

    scheme: str
    host: str
    port: int
    authorization: bytes | None = field(default=None, repr=False)  # b"Basic ..."

    @property
    def address(self) -> str:
        """scheme://host:port, with no credentials: what a message or a log may show."""
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"{self.scheme}://{host}:{self.port}"

    @classmethod
    def parse(cls, url: str) -> Proxy:
        """A proxy URL as httpx takes it (`host:port` means http://host:port)."""
        if "://" not in url:
            url = "http://" + url
        try:
            parts = urlsplit(url)
            scheme, host, port = parts.scheme.lower(), parts.hostname, parts.port
        except ValueError:
            raise ProxyUnsupported("a proxy variable is not a URL with a valid port") from None
        if not host:
            raise ProxyUnsupported("a proxy variable has no host")
        default = 1080 if scheme.startswith("socks") else DEFAULT_PORTS.get(scheme, 80)
        auth = None
        if parts.username is not None or parts.password is not None:
            user, password = unquote(parts.username or ""), unquote(parts.password or "")
            auth = b"Basic " + base64.b64encode(f"{user}:{password}".encode())
        return cls(scheme, host, port or default, auth)


@dataclass(frozen=True, slots=True)
class _Pattern:
    """httpx's URLPattern: scheme ('' = any), host ('' = any, '*x' = x and subdomains,
    '*.x' = subdomains only), port (None = any)."""

    scheme: str
    host: str
    port: int | None

    @property
    def priority(self) -> tuple[int, int, int]:
        # httpx's order: with a port first, then longer hosts, then longer schemes.
        return (0 if self.port is not None else 1, -len(self.host), -len(self.scheme))

    def matches(self, scheme: str, host: str, port: int | None) -> bool:
        if self.scheme and self.scheme != scheme:
            return False
        if self.host and not _host_matches(self.host, host):
            return False
        return self.port is None or self.port == port

    @classmethod
    def parse(cls, key: str) -> _Pattern:
        scheme, _, rest = key.partition("://")
        authority = rest.split("/", 1)[0].rsplit("@", 1)[-1].lower()
        host, port = authority, None
        if authority.startswith("["):
            host, _, tail = authority[1:].partition("]")
            port = int(tail[1:]) if tail.startswith(":") and tail[1:].isdigit() else None
        elif authority.count(":") == 1:
            name, _, digits = authority.partition(":")
            if digits.isdigit():
                host, port = name, int(digits)
        scheme = "" if scheme == "all" else scheme.lower()
        if port is not None and port == DEFAULT_PORTS.get(scheme):
            port = None  # as a URL's port, a scheme's default is no port at all
        return cls(scheme, "" if host == "*" else host, port)


def _host_matches(pattern: str, host: str) -> bool:
    if pattern.startswith("*."):
        return host.endswith(pattern[1:]) and len(host) > len(pattern) - 1
    if pattern.startswith("*"):
        domain = pattern[1:]
        return host == domain or host.endswith("." + domain)
    return host == pattern


def environment(environ: Mapping[str, str]) -> dict[str, str]:
    """urllib's getproxies_environment() over `environ`: {scheme: value}, with `no` for
    NO_PROXY; a lower-case variable wins over its upper-case twin, and HTTP_PROXY is ignored
    under CGI (REQUEST_METHOD set: it could come from a client's Proxy header)."""
    found: dict[str, str] = {}
    for name, value in environ.items():
        if value and name.lower().endswith("_proxy"):
            found[name.lower()[:-6]] = value
    if "REQUEST_METHOD" in environ:
        found.pop("http", None)
    for name, value in environ.items():
        if name.endswith("_proxy"):  # lower-case only: these have the last word
            if value:
                found[name[:-6]] = value
            else:
                found.pop(name[:-6], None)
    return found


class Proxies:
    """The proxy (or none) for each origin, from the environment, decided as httpx does."""

    def __init__(self, mounts: list[tuple[_Pattern, str | None]]) -> None:
        # Most specific first; stable, so equal priorities keep the environment's order.
        self._mounts = sorted(mounts, key=lambda mount: mount[0].priority)
        self._parsed: dict[str, Proxy | ProxyUnsupported] = {}

    @classmethod
    def none(cls) -> Proxies:
        return cls([])

    @classmethod
    def from_environ(cls, environ: Mapping[str, str]) -> Proxies:
        info = environment(environ)
        mounts: list[tuple[_Pattern, str | None]] = []
        for scheme in ("http", "https", "all"):
            if info.get(scheme):
                value = info[scheme]
                mounts.append((_Pattern.parse(f"{scheme}://"), value))
        for entry in (name.strip() for name in info.get("no", "").split(",")):
            if entry == "*":
                return cls([])
            if entry:
                mounts.append((_Pattern.parse(_no_proxy_key(entry)), None))
        return cls(mounts)

    @property
    def configured(self) -> bool:
        return any(value is not None for _, value in self._mounts)

    def for_origin(self, scheme: str, host: str, port: int) -> Proxy | None:
        """The proxy for scheme://host:port, None to go direct; ProxyUnsupported when the
        environment names one the direct path cannot speak."""
        url_port = None if port == DEFAULT_PORTS.get(scheme) else port
        for pattern, value in self._mounts:
            if pattern.matches(scheme, host.lower(), url_port):
                return None if value is None else self._proxy(value)
        return None

    def _proxy(self, value: str) -> Proxy:
        parsed = self._parsed.get(value)
        if parsed is None:
            try:
                parsed = Proxy.parse(value)
                if parsed.scheme != "http":
                    raise ProxyUnsupported(
                        f"the proxy {parsed.address} is not http://, the only kind the "
                        "direct path speaks"
                    )
            except ProxyUnsupported as exc:
                parsed = exc
            self._parsed[value] = parsed
        if isinstance(parsed, ProxyUnsupported):
            raise parsed
        return parsed


def _no_proxy_key(entry: str) -> str:
    """A NO_PROXY entry as the mount key httpx makes of it."""
    if "://" in entry:
        return entry
    if _is_address(entry, ipaddress.IPv4Address):
        return f"all://{entry}"
    if _is_address(entry, ipaddress.IPv6Address):
        return f"all://[{entry}]"
    if entry.lower() == "localhost":
        return f"all://{entry}"
    return f"all://*{entry}"


def _is_address(name: str, kind: type[ipaddress.IPv4Address | ipaddress.IPv6Address]) -> bool:
    """As httpx tells an address from a name: what comes before a `/` parses as one."""
    try:
        kind(name.split("/")[0])
    except ValueError:
        return False
    return True
