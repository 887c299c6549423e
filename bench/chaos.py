"""`make chaos`: the fault and attack suite, as named scenarios against a live gateway and the
fake upstream (bench/chaos_rig.py). Each prints PASS or FAIL and its figures; the run exits
1 if any failed. Run: `.venv/bin/python -m bench.chaos [NAME ...]`.
"""

from __future__ import annotations

import base64
import random
import re
import string
import sys
import threading
import time
from collections.abc import Callable

import httpx
import openai
import orjson
from pydantic import SecretStr, ValidationError

from bench.chaos_process import frozen_with_a_crowd, sigterm_with_open_streams
from bench.chaos_redis import redis_frozen_and_thawed, redis_killed_and_restarted
from bench.chaos_rig import ADMIN_KEY, BODY_TIMEOUT_S, Rig, p99, rig
from bench.chaos_schema import schemathesis_openapi
from gateway.settings import Settings
from tests.conftest import UPSTREAM_KEY
from tests.servers import post_and_leave

Figures = dict[str, str]
USER = [{"role": "user", "content": "hi"}]
RUNS = [UPSTREAM_KEY[i : i + 8] for i in range(len(UPSTREAM_KEY) - 7)]


def check(ok: bool, why: str) -> None:
    if not ok:
        raise AssertionError(why)


RELOADS = 10
ADMIN = {"Authorization": f"Bearer {ADMIN_KEY}"}
CANCELLED = re.compile(r"request (fg-[0-9a-f]{24}) cancelled")


def chat(rig: Rig, route: str, **body: object) -> httpx.Response:
    return rig.http.post(
        "/v1/chat/completions", json={"model": f"route/{route}", "messages": USER, **body}
    )


def done_inside_text(rig: Rig) -> Figures:
    text = "stop at data: [DONE] here"
    tool = {"type": "function", "function": {"name": "grep", "parameters": {"type": "object"}}}
    for route in ("tool", "tool-litellm"):
        stream = rig.openai().chat.completions.create(
            model=f"route/{route}", stream=True, tools=[tool],  # type: ignore[list-item]
            messages=[{"role": "user", "content": f'SAY: {text} ARGS: {{"x": 1}}'}],
        )  # fmt: skip
        said = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        check(said == text, f"{route}: the stream ended early: {said!r}")
    return {"paths": "direct, litellm"}


def framings(rig: Rig) -> Figures:
    reason = "Which region?"
    for route in ("contract-translate-crlf", "contract-translate-cr"):
        args = f'ARGS: {{"reason": "{reason}", "kind": "clarification"}}'
        stream = rig.openai().chat.completions.create(
            model=f"route/{route}", stream=True, messages=[{"role": "user", "content": args}]
        )
        said = "".join(c.choices[0].delta.content or "" for c in stream if c.choices)
        check(said == reason, f"{route}: {said!r}")
    return {"framings": "CRLF, CR"}


def broken_before_first_byte(rig: Rig) -> Figures:
    """A stream that stalls, is cut or sends a non-JSON event before the client has a byte
    falls back to the next model of the pool: the client sees a whole answer."""
    figures: Figures = {}
    for fault in ("stall", "cut", "garbled"):
        started = time.perf_counter()
        raw = rig.openai().chat.completions.with_raw_response.create(
            model=f"route/{fault}-first", stream=True, messages=USER
        )
        said = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
        check(said == "fake answer", f"{fault}: {said!r}")
        served = raw.headers["x-floorgate-model"]
        check(served == "careful", f"{fault}: served by {served}")
        figures[f"{fault}_s"] = f"{time.perf_counter() - started:.2f}"
    return {"fallback": "careful", **figures}


def error_event_before_first_byte(rig: Rig) -> Figures:
    """A 200 stream whose first event is an error (`data: {"error": ...}`, echoing the key)
    has failed before the client has a byte: it falls back like a stream cut there, and the
    client gets the next model's whole answer, never the error as one."""
    where = {"route": "error-first", "model": "error-first"}
    fallbacks = rig.sample("floorgate_fallbacks_total", **where)
    started = time.perf_counter()
    raw = rig.openai().chat.completions.with_raw_response.create(
        model="route/error-first", stream=True, messages=USER
    )
    said = "".join(c.choices[0].delta.content or "" for c in raw.parse() if c.choices)
    took = time.perf_counter() - started
    check(said == "fake answer", f"the client got {said!r}")
    served = raw.headers["x-floorgate-model"]
    check(served == "careful", f"served by {served}")
    fell_back = rig.sample("floorgate_fallbacks_total", **where) - fallbacks
    check(fell_back == 1, f"{fell_back:.0f} fallbacks counted")
    return {"fallback": served, "fallbacks_counted": "1", "answer_s": f"{took:.2f}"}


def broken_after_first_byte(rig: Rig) -> Figures:
    """After the first byte there is no falling back: the stream ends with an in-band error
    event, which the official SDK raises as an APIError (never a silent, short answer)."""
    figures: Figures = {}
    for fault in ("stall", "cut", "garbled"):
        stream = rig.openai().chat.completions.create(
            model=f"route/{fault}-later", stream=True, messages=USER
        )
        said: list[str] = []
        started = time.perf_counter()
        try:
            for c in stream:
                said += [choice.delta.content or "" for choice in c.choices]
        except openai.APIError as exc:
            check("stream broke" in str(exc), f"{fault}: {exc}")
        else:
            raise AssertionError(f"{fault}: the stream ended without an error: {said!r}")
        check("fake" in said, f"{fault}: the first chunks did not arrive: {said!r}")
        figures[f"{fault}_s"] = f"{time.perf_counter() - started:.2f}"
    return {"raised": "openai.APIError", **figures}


def hang_before_headers(rig: Rig) -> Figures:
    baseline = rig.healthz_ms()
    result: list[int] = []
    caller = threading.Thread(target=lambda: result.append(chat(rig, "hangs").status_code))
    started = time.perf_counter()
    caller.start()
    during = rig.healthz_ms()
    caller.join()
    took = time.perf_counter() - started
    check(result == [504], f"expected 504, got {result}")
    ratio = p99(during) / p99(baseline)
    check(p99(during) < 250, f"/healthz p99 {p99(during):.0f} ms while the upstream hangs")
    return {"status": "504", "after_s": f"{took:.2f}", "healthz_p99_ratio": f"{ratio:.2f}"}


def upstream_5xx(rig: Rig) -> Figures:
    statuses = [chat(rig, "fails-then-ok").status_code for _ in range(20)]
    errors = sum(s != 200 for s in statuses) / len(statuses)
    check(errors == 0, f"error rate {errors:.0%} with a fallback in the pool")
    return {"requests": "20", "error_rate": f"{errors:.0%}"}


def upstream_429(rig: Rig) -> Figures:
    limited = chat(rig, "rate-limited")
    inf = chat(rig, "retry-after-inf")
    check(limited.status_code == inf.status_code == 429, f"{limited.status_code} {inf.status_code}")
    check(inf.headers["retry-after"] == "1", f"Retry-After: {inf.headers['retry-after']}")
    return {"retry_after": limited.headers["retry-after"], "retry_after_inf": "1"}


def key_echo(rig: Rig) -> Figures:
    seen = []
    for route in ("echo-key", "echo-key-litellm"):
        seen.append(chat(rig, route).text)
    seen.append(chat(rig, "inband-error", stream=True).text)
    seen.append(rig.http.get("/metrics").text)
    seen += rig.logged.lines
    basic = base64.b64encode(f"user:{UPSTREAM_KEY}".encode()).decode()
    # ("upstream", a run of the test key, is also a word in the gateway's own messages)
    runs = [r for r in RUNS if not r.isalpha()]
    leaked = [r for r in runs if any(r in s for s in seen)] + [s for s in seen if basic in s]
    check(not leaked, f"key fragments leaked: {leaked[:3]}")
    return {"places": "responses, stream, /metrics, logs", "fragments": "0"}


def disconnect_during_ttft(rig: Rig) -> Figures:
    return _left_before_first_token(rig, "first-token")


def disconnect_during_ttft_litellm(rig: Rig) -> Figures:
    """As client-leaves-during-ttft, for a model called through litellm (its own client)."""
    return _left_before_first_token(rig, "first-token-litellm")


def _left_before_first_token(rig: Rig, route: str) -> Figures:
    """A client that gives up waiting for the first token: the upstream connection is closed
    within 1 s, nothing stays in flight, and the ledger says cancelled."""
    labels = {"workflow": "deploy-pipeline", "route": route, "stage": "before_first_byte"}
    before = rig.sample("floorgate_cancelled_total", **labels)
    hangups, logged = len(rig.upstream.hangups), len(rig.logged.lines)
    body = orjson.dumps({"model": f"route/{route}", "messages": USER, "stream": True})
    seen = rig.upstream.seen  # the client leaves once the upstream has the call
    left = post_and_leave(rig.url, "/v1/chat/completions", body, lambda: rig.upstream.seen > seen)
    cancel_s = rig.eventually("floorgate_cancelled_total", before + 1, **labels)
    closed_s = _upstream_closed(rig, hangups, left)
    check(rig.sample("floorgate_in_flight_requests") == 0, "requests left in flight")
    [request_id] = [m[1] for line in rig.logged.lines[logged:] if (m := CANCELLED.search(line))]
    outcome = _ledgered(rig, request_id)
    return {"time_to_cancel_s": f"{cancel_s:.3f}", "upstream_closed_after_s": f"{closed_s:.3f}",
            "in_flight_after": "0", "ledger": outcome}  # fmt: skip


def _upstream_closed(rig: Rig, hangups: int, left: float) -> float:
    """Seconds from the client leaving to the fake upstream seeing the gateway hang up."""
    deadline = left + 1.0
    while len(rig.upstream.hangups) == hangups and time.perf_counter() < deadline:
        time.sleep(0.005)
    check(len(rig.upstream.hangups) > hangups, "the upstream connection was still open after 1 s")
    return rig.upstream.hangups[-1] - left


def _ledgered(rig: Rig, request_id: str) -> str:
    record = rig.http.get(f"/admin/requests/{request_id}", headers=ADMIN)
    check(record.status_code == 200, f"ledger: {record.status_code} {record.text[:120]}")
    outcome = str(record.json()["outcome"])
    check(outcome == "cancelled", f"ledgered as {outcome}")
    return outcome


def disconnect_mid_stream(rig: Rig) -> Figures:
    """A client that leaves after the first chunks: the upstream's connection is closed (the
    fake sees it hang up), nothing stays in flight, the request is counted 499 and ledgered
    as cancelled, not as answered."""
    labels = {"workflow": "deploy-pipeline", "route": "stall-long", "model": "stall-long",
              "stream": "true", "code": "499"}  # fmt: skip
    before = rig.sample("floorgate_requests_total", **labels)
    hangups = len(rig.upstream.hangups)
    body = {"model": "route/stall-long", "messages": USER, "stream": True}
    with rig.http.stream("POST", "/v1/chat/completions", json=body) as response:
        request_id = response.headers["x-floorgate-request-id"]
        for line in response.iter_lines():
            if '"content":"fake"' in line:  # the first words: mid-stream
                break
        left = time.perf_counter()
    rig.eventually("floorgate_requests_total", before + 1, **labels)
    closed_s = _upstream_closed(rig, hangups, left)
    check(rig.sample("floorgate_in_flight_requests") == 0, "requests left in flight")
    outcome = _ledgered(rig, request_id)
    return {"upstream_closed_after_s": f"{closed_s:.3f}", "in_flight_after": "0", "code": "499",
            "ledger": outcome}  # fmt: skip


def garbage_bearers_and_hosts(rig: Rig) -> Figures:
    rng = random.Random(15)
    with httpx.Client(base_url=rig.url, timeout=10) as anonymous:
        warm = [_hostile(anonymous, rng) for _ in range(20)]
        series = rig.series()
        statuses = warm + [_hostile(anonymous, rng) for _ in range(200)]
    grown = rig.series() - series
    check(set(statuses) == {401}, f"statuses {sorted(set(statuses))}")
    check(grown == 0, f"{grown} new series")
    return {"requests": str(len(statuses)), "new_series": str(grown)}


def _hostile(anonymous: httpx.Client, rng: random.Random) -> int:
    bearer = "".join(rng.choice(string.printable[:94]) for _ in range(rng.randint(1, 80)))
    host = rng.choice(["evil.example", "127.0.0.1:1", "x" * 300, "[::1]", "a-b.internal"])
    headers = {"Authorization": f"Bearer {bearer.strip() or 'x'}", "Host": host}
    return anonymous.post("/v1/chat/completions", headers=headers, json={}).status_code


def oversized_bodies(rig: Rig) -> Figures:
    keyless, keyless_s = rig.raw(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\ncontent-length: 8000000\r\n\r\n"
    )
    declared, declared_s = rig.raw(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer key-any\r\n"
        "content-length: 900000000\r\n\r\n"
    )
    check((keyless, declared) == (401, 413), f"{keyless} {declared}")
    return {"no_key": f"401 in {keyless_s * 1000:.0f} ms", "declared_900MB": f"413 in "
            f"{declared_s * 1000:.0f} ms", "body_read": "none"}  # fmt: skip


def deep_json(rig: Rig) -> Figures:
    deep: object = 1
    for _ in range(400):
        deep = [deep]
    answer = chat(rig, "capability-first", metadata={"deep": deep})
    check(answer.status_code == 400, f"status {answer.status_code}")
    param = answer.json()["error"]["param"]
    check(param.startswith("metadata.deep"), f"param {param}")
    return {"depth": "400", "status": "400", "param": param[:24] + "..."}


def huge_flat_list(rig: Rig) -> Figures:
    """An 8 MiB body of a 4M-element list: refused with a 400 that says the limit, from its
    bytes before parsing (parsing and walking it held the loop 120-1,744 ms)."""
    body = orjson.dumps({"model": "route/capability-first", "messages": USER,
                         "metadata": {"rows": [0] * 4_000_000}})  # fmt: skip
    result: list[httpx.Response] = []
    caller = threading.Thread(target=lambda: result.append(rig.http.post(
        "/v1/chat/completions", content=body, headers={"content-type": "application/json"}
    )))  # fmt: skip
    caller.start()
    worst = max(rig.healthz_ms(40))
    caller.join()
    [answer] = result
    check(answer.status_code == 400, f"status {answer.status_code}")
    check(answer.json()["error"]["code"] == "too_many_items", answer.text[:200])
    check(worst < 250, f"/healthz waited {worst:.0f} ms")
    return {"body_mb": f"{len(body) / 1e6:.1f}", "status": "400 too_many_items",
            "healthz_worst_ms": f"{worst:.0f}"}  # fmt: skip


def huge_header(rig: Rig) -> Figures:
    result: list[tuple[int, float]] = []
    head = "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nx-filler: " + "y" * 16_000_000
    caller = threading.Thread(target=lambda: result.append(rig.raw(head + "\r\n\r\n")))
    caller.start()
    during = rig.healthz_ms(20)
    caller.join()
    status, took = result[0]
    # 431, or the connection reset under the rest of the head once the 431 was written
    check(status in (431, 0) and took < 5, f"status {status} after {took:.1f} s")
    check(p99(during) < 250, f"/healthz p99 {p99(during):.0f} ms")
    return {"header_mb": "16", "refused_s": f"{took:.2f}", "status": str(status or "reset"),
            "healthz_p99_ms": f"{p99(during):.0f}"}  # fmt: skip


def slow_client(rig: Rig) -> Figures:
    status, took = rig.raw(
        "POST /v1/chat/completions HTTP/1.1\r\nhost: x\r\nauthorization: Bearer key-any\r\n"
        "content-length: 100\r\n\r\n",
        b'{"model": ',
    )
    check(status == 408, f"status {status}")
    check(took < BODY_TIMEOUT_S + 2, f"held {took:.1f} s")
    return {"status": "408", "held_s": f"{took:.2f}", "in_flight_after": "0"}


def steering(rig: Rig) -> Figures:
    seen = rig.upstream.seen
    bodies: list[bytes] = []
    for field in ("api_base", "base_url", "api_key", "extra_headers", "litellm_params"):
        nest: object = {field: "http://attacker.example"}
        for depth in range(6):
            bodies.append(orjson.dumps({"model": "route/capability-first", "messages": USER,
                                        "metadata": nest}))  # fmt: skip
            nest = [{"x": nest}] if depth % 2 else {"x": nest}
    # A key JSON-escaped (api\u005fbase) is the same key once parsed.
    bodies.append(b'{"model": "route/x", "messages": [], "metadata": {"api\\u005fbase": 1}}')
    statuses = {rig.http.post("/v1/chat/completions", content=b, headers={"content-type":
                "application/json"}).status_code for b in bodies}  # fmt: skip
    check(statuses == {400}, f"statuses {statuses}")
    check(rig.upstream.seen == seen, "a request reached the upstream")
    return {"bodies": str(len(bodies)), "reached_upstream": "0"}


def model_names(rig: Rig) -> Figures:
    """Names no policy declares (a provider's model, a provider prefix, a URL, a path) route
    nowhere: a 4xx each, and not one request reaches an upstream. An undeclared *workflow*
    routes as the policy's default workflow (DESIGN), never to a model of its own naming."""
    default = rig.app.runtime.policies.current.spec.default_workflow
    unknown = rig.http.post(
        "/v1/chat/completions", json={"model": "workflow/unknown-to-the-policy", "messages": USER}
    )
    check(unknown.status_code == 200, f"workflow/unknown: {unknown.status_code}")
    routed_as = unknown.headers.get("x-floorgate-workflow")
    check(routed_as == default, f"workflow/unknown routed as {routed_as}, not {default}")
    seen = rig.upstream.seen
    names = ["gpt-4o", "openai/gpt-4o", "anthropic/claude-3-5-sonnet", "azure/gpt-4o",
             "ollama/llama3", "http://attacker.example/v1", "https://127.0.0.1:1/v1",
             "//attacker.example", "../../etc/passwd", "route/../capability-first",
             "route/unknown", "route:", "fast@attacker.example",
             "fast?api_base=http://attacker.example", "fast\u0000", " route/capability-first",
             "ROUTE/CAPABILITY-FIRST", "litellm_proxy/fast"]  # fmt: skip
    statuses = {
        name: rig.http.post(
            "/v1/chat/completions", json={"model": name, "messages": USER}
        ).status_code
        for name in names
    }
    wrong = {name: status for name, status in statuses.items() if not 400 <= status < 500}
    check(not wrong, f"not a 4xx: {wrong}")
    check(rig.upstream.seen == seen, "a request reached the upstream")
    codes = ",".join(map(str, sorted(set(statuses.values()))))
    return {"names": str(len(names)), "statuses": codes, "reached_upstream": "0",
            "unknown_workflow_routed_as": f"{routed_as} (the default)"}  # fmt: skip


def client_headers(rig: Rig) -> Figures:
    rng = random.Random(14)
    names = ["x-api-key", "api-key", "x-forwarded-for", "cookie", "openai-organization"]
    names += ["x-" + "".join(rng.choices(string.ascii_lowercase, k=8)) for _ in range(45)]
    seen = rig.upstream.seen
    extra = {name: f"client-{i}" for i, name in enumerate(names)}
    for _ in range(5):
        rig.http.post("/v1/chat/completions", headers=extra,
                      json={"model": "route/capability-first", "messages": USER})  # fmt: skip
    forwarded = {k.lower() for r in rig.upstream.since(seen) for k in r["headers"]}
    leaked = forwarded & set(names)
    check(not leaked, f"forwarded: {leaked}")
    return {"headers_tried": str(len(names)), "reached_upstream": "0"}


def reload_under_load(rig: Rig) -> Figures:
    """The policy swapped RELOADS times while requests flow: none fails, each reload lands."""
    path = rig.app.runtime.settings.policies
    original = path.read_text()
    one, other = "capability-first: {pool: [fast]}", "capability-first: {pool: [fast, careful]}"
    statuses: list[int] = []
    stop = threading.Event()

    def load() -> None:
        with httpx.Client(base_url=rig.url, timeout=30, headers=rig.http.headers) as client:
            while not stop.is_set():
                statuses.append(chat_with(client, "capability-first").status_code)

    workers = [threading.Thread(target=load) for _ in range(4)]
    for worker in workers:
        worker.start()
    versions = set()
    try:
        for i in range(RELOADS):
            path.write_text(original.replace(one, other) if i % 2 == 0 else original)
            answer = rig.http.post("/admin/policies/reload", headers=ADMIN)
            check(answer.status_code == 200, f"reload {i}: {answer.status_code} {answer.text}")
            versions.add(answer.json()["version"])
            time.sleep(0.05)
    finally:
        stop.set()
        for worker in workers:
            worker.join(10)
        path.write_text(original)
        rig.http.post("/admin/policies/reload", headers=ADMIN)
    failed = sum(s != 200 for s in statuses)
    check(failed == 0, f"{failed} of {len(statuses)} requests failed")
    check(len(versions) == 2, f"versions served: {versions}")
    return {"reloads": str(RELOADS), "requests": str(len(statuses)), "failures": "0"}


def chat_with(client: httpx.Client, route: str) -> httpx.Response:
    return client.post("/v1/chat/completions", json={"model": f"route/{route}", "messages": USER})


def empty_secrets(rig: Rig) -> Figures:
    for field in ("admin_key", "api_keys"):
        try:
            Settings(**{field: SecretStr("")}, _env_file=None)  # type: ignore[arg-type]
        except ValidationError:
            continue
        raise AssertionError(f"an empty {field} was accepted")
    return {"refused": "FLOORGATE_ADMIN_KEY, FLOORGATE_API_KEYS"}


SCENARIOS: dict[str, Callable[[Rig], Figures]] = {
    "stream-done-inside-text": done_inside_text,
    "stream-crlf-and-cr-framing": framings,
    "stream-breaks-before-first-byte": broken_before_first_byte,
    "stream-error-event-before-first-byte": error_event_before_first_byte,
    "stream-breaks-after-first-byte": broken_after_first_byte,
    "upstream-hangs-before-headers": hang_before_headers,
    "upstream-5xx-with-fallback": upstream_5xx,
    "upstream-429-retry-after": upstream_429,
    "upstream-echoes-the-key": key_echo,
    "client-leaves-during-ttft": disconnect_during_ttft,
    "client-leaves-during-ttft-litellm": disconnect_during_ttft_litellm,
    "client-leaves-mid-stream": disconnect_mid_stream,
    "garbage-bearers-hostile-hosts": garbage_bearers_and_hosts,
    "oversized-bodies": oversized_bodies,
    "deeply-nested-json": deep_json,
    "huge-flat-list-in-metadata": huge_flat_list,
    "huge-request-header": huge_header,
    "slow-client-body": slow_client,
    "steering-fields-any-depth": steering,
    "undeclared-model-names": model_names,
    "client-headers-never-forwarded": client_headers,
    "empty-secrets-refused": empty_secrets,
    "sigterm-with-open-streams": sigterm_with_open_streams,
    "gateway-frozen-overload-refusal": frozen_with_a_crowd,
    "redis-killed-and-restarted": redis_killed_and_restarted,
    "redis-frozen-sigstop": redis_frozen_and_thawed,
    "policy-reload-under-load": reload_under_load,
    "schemathesis-openapi": schemathesis_openapi,
}


def main(names: list[str]) -> int:
    chosen = names or list(SCENARIOS)
    failed = 0
    with rig() as live:
        for name in chosen:
            started = time.perf_counter()
            try:
                figures, verdict = SCENARIOS[name](live), "PASS"
            except (AssertionError, ValueError, httpx.HTTPError, openai.OpenAIError) as exc:
                figures, verdict = {"why": str(exc)[:200]}, "FAIL"
                failed += 1
            shown = "  ".join(f"{k}={v}" for k, v in figures.items())
            print(f"{verdict}  {name:<32} {time.perf_counter() - started:6.2f}s  {shown}")
    print(f"{len(chosen) - failed}/{len(chosen)} scenarios passed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
