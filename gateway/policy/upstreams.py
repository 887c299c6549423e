"""Model settings no call could honour, refused by `floorgate check` and every load at their
line: a wait longer than the whole call it is part of, the direct path's connection settings
on a model that litellm calls, and an upstream that the environment's proxy would leave
unreachable on the direct path (gateway/upstream/proxy.py decides, as each call would)."""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from urllib.parse import urlsplit

from gateway.policy.model import ENV_REFERENCE, ModelSpec, Spec
from gateway.policy.tree import Problem
from gateway.upstream.proxy import DEFAULT_PORTS, Proxies, ProxyUnsupported

# Budgets within the call's timeout_s: a longer one can never run out.
_WITHIN_TIMEOUT = ("connect_timeout_s", "first_token_timeout_s", "queue_timeout_s")
# How the direct path's own pool connects and queues; litellm keeps a pool of its own.
_DIRECT_ONLY = ("max_connections", "max_queued", "queue_timeout_s")


def check_upstreams(spec: Spec, environ: Mapping[str, str]) -> Iterator[Problem]:
    proxies = Proxies.from_environ(environ)
    for name, model in spec.models.items():
        yield from _budgets(name, model)
        if not model.direct:
            yield from _direct_only(name, model)
        else:
            yield from _proxied(name, model, proxies, environ)


def _budgets(name: str, model: ModelSpec) -> Iterator[Problem]:
    for field in _WITHIN_TIMEOUT:
        value = getattr(model, field)
        if field in model.model_fields_set and value > model.timeout_s:
            yield Problem(
                ("spec", "models", name, field),
                f"model '{name}': {field} {value:g} s is longer than its timeout_s "
                f"{model.timeout_s:g} s, which bounds the whole call; lower it to at most "
                f"{model.timeout_s:g}",
            )


def _direct_only(name: str, model: ModelSpec) -> Iterator[Problem]:
    for field in _DIRECT_ONLY:
        if field in model.model_fields_set:
            yield Problem(
                ("spec", "models", name, field),
                f"model '{name}': {field} applies to the direct path only, and this model is "
                "called through litellm (its provider, or transport: litellm); remove it",
            )


def _proxied(
    name: str, model: ModelSpec, proxies: Proxies, environ: Mapping[str, str]
) -> Iterator[Problem]:
    if not model.api_base:
        return
    unresolved = False

    def value(found: re.Match[str]) -> str:
        nonlocal unresolved
        resolved = environ.get(found[1]) or found[2]
        unresolved = unresolved or resolved is None
        return resolved or ""

    try:
        url = urlsplit(ENV_REFERENCE.sub(value, model.api_base))
        host, scheme, port = url.hostname, url.scheme.lower(), url.port
    except ValueError:
        return  # a variable gave it a bad port: each call says so
    if unresolved or not host:
        return  # uncallable until its variable is set: readiness says so
    try:
        proxies.for_origin(scheme, host, port or DEFAULT_PORTS.get(scheme, 80))
    except ProxyUnsupported as exc:
        yield Problem(
            ("spec", "models", name, "api_base"),
            f"model '{name}': {exc}, and the environment sends this upstream through it; "
            "list its host in NO_PROXY, use an http:// proxy, or set transport: litellm",
        )
