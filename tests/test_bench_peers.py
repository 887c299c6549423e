"""The LLM-shaped benchmark's own logic: the figures and the pass rule, the mock's script, and
the open-loop generator against a loopback server (counts only: no timing is asserted)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import replace

import pytest
import uvloop

from bench import held, held_report, llm_mock, openloop, peer_report, portkey
from bench.chunk_cost import Sample, summary
from bench.peer_figures import (
    DIRECT,
    MIN_REQUESTS,
    Step,
    best_step,
    percentile,
    ratio,
    rung_seconds,
    steady_mean,
)
from bench.watch import lag_p99_ms
from tests.scripted_server import CHUNKED_HEAD, LAST_CHUNK, Conn, chunk, scripted


def step(target: str, rate: float, ok: int = 1000, p99: float = 2300.0) -> Step:
    return Step(
        target=target, rate=rate, sent=1000, ok=ok, latency_p50_ms=p99 - 50,
        latency_p99_ms=p99, ttfb_p99_ms=310.0, in_flight=rate * 2.3, server_cpu_s=2.0,
        rss_idle_mib=60.0, rss_peak_mib=80.0, probe_p99_ms=1.0, generator_cpu_pct=20.0,
        generator_late_p99_ms=0.5, failures={}, duration_s=10.0,
    )  # fmt: skip


def test_percentiles_are_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert percentile(values, 50) == 50 and percentile(values, 99) == 99
    assert percentile([], 99) is None and percentile([7.0], 1) == 7


def test_in_flight_is_the_mean_of_the_middle_half() -> None:
    assert steady_mean([0, 0, 10, 10, 10, 10, 0, 0]) == 10
    assert steady_mean([]) == 0


def test_a_step_passes_on_success_and_overhead_against_the_same_rung() -> None:
    base = step(DIRECT, 100)
    assert step("floorgate", 100, p99=2304).passes(base)
    assert not step("floorgate", 100, p99=2306).passes(base)  # 6 ms over the mock's p99
    assert not step("floorgate", 100, ok=998).passes(base)  # 99.8 %
    assert step("floorgate", 100, ok=999).passes(base)  # 99.9 %
    assert not step("floorgate", 100).passes(None)  # no mock measured: no overhead, no pass


def test_the_strict_rule_needs_a_p99_that_is_not_the_slowest_request() -> None:
    def of(target: str, n: int, p99: float = 2300.0) -> Step:
        return replace(step(target, 2, ok=n, p99=p99), sent=n)  # every request answered

    few = MIN_REQUESTS - 1  # 16 whole answers at 2/s was the case: their p99 was their max
    assert not of("floorgate", few).passes(of(DIRECT, MIN_REQUESTS))
    assert not of("floorgate", MIN_REQUESTS).passes(of(DIRECT, few))
    assert of("floorgate", few).sustained(of(DIRECT, few))  # the 1 s rule: unaffected
    # Enough requests, and the 5 ms bound is the same as ever.
    assert of("floorgate", MIN_REQUESTS, 2304).passes(of(DIRECT, MIN_REQUESTS))
    assert not of("floorgate", MIN_REQUESTS, 2306).passes(of(DIRECT, MIN_REQUESTS))


def test_a_rung_lasts_long_enough_to_send_the_requests_a_p99_needs() -> None:
    for rate in (2.0, 3.0, 5.0, 7.0, 25.0):
        seconds = rung_seconds(rate, 8.0)
        assert seconds >= 8.0
        assert 2 * int(rate / 2 * seconds) >= MIN_REQUESTS  # two workers, each rounding down
    assert rung_seconds(100.0, 8.0) == 8.0  # 800 requests: no longer than asked


def test_the_strict_rule_takes_the_mocks_own_time_out_of_each_stream() -> None:
    # The mock's timers drifted 100 ms further in the target's step than in its own; what the
    # path added to each stream is what is judged, against the mock's own step's.
    def told(target: str, p99: float, beyond: float) -> Step:
        return replace(step(target, 100, p99=p99), beyond_upstream_p99_ms=beyond)

    base = told(DIRECT, 2300, 3.0)
    assert told("floorgate", 2400, 7.5).passes(base)  # 4.5 ms more than the mock's path
    assert told("floorgate", 2400, 7.5).own_overhead_p99_ms(base) == 4.5
    assert not told("floorgate", 2300, 8.5).passes(base)  # same p99, but 5.5 ms per stream
    assert told("floorgate", 2400, 8.5).sustained(base)  # the 1 s rule reads the latency
    # A step whose streams did not all tell the mock's time is judged on latency as before.
    assert not step("floorgate", 100, p99=2306).passes(base)
    assert step("floorgate", 100, p99=2304).passes(base)


def test_the_highest_rate_is_the_last_before_the_first_step_that_falls_short() -> None:
    directs = {r: step(DIRECT, r) for r in (10, 50, 100, 200)}
    steps = [step("g", 10), step("g", 50), step("g", 100, ok=900), step("g", 200)]
    best = best_step(steps, directs)
    assert best is not None and best.rate == 50
    assert best_step([step("g", 10, ok=0)], directs) is None


def test_a_rate_is_sustained_within_a_second_of_the_mock() -> None:
    directs = {r: step(DIRECT, r) for r in (10, 50, 100, 200)}
    slow = [step("g", 10, p99=2400), step("g", 50, p99=3200), step("g", 100, p99=3400)]
    assert best_step(slow, directs) is None  # 100 ms over the mock's p99 from the start
    sustained = best_step(slow, directs, strict=False)
    assert sustained is not None and sustained.rate == 50  # 100/s fell 1.1 s behind
    assert not step("g", 200, ok=990).sustained(directs[200])


def test_per_chunk_cpu_and_memory_per_request_in_flight() -> None:
    s = replace(step("g", 100), ok=500, server_cpu_s=1.0, in_flight=1024.0)
    assert s.cpu_us_per_chunk(100) == 20.0  # 1 s over 50,000 chunks
    assert s.rss_kib_per_in_flight() == 20.0  # 20 MiB over 1,024 in flight
    assert ratio(10.0, 4.0) == 2.5 and ratio(1.0, 0.0) is None and ratio(None, 1.0) is None


def test_the_loop_lag_p99_is_read_between_two_scrapes_as_histogram_quantile_does() -> None:
    inf = float("inf")
    before = {0.001: 500.0, 0.005: 500.0, 0.01: 500.0, inf: 500.0}  # observed before the step
    after = {0.001: 600.0, 0.005: 1400.0, 0.01: 1500.0, inf: 1500.0}
    # 1,000 in the step: 100 within 1 ms, 800 in (1, 5], 100 in (5, 10]; rank 990 is 90 % of
    # the way into the last.
    assert abs((lag_p99_ms(before, after) or 0) - 9.5) < 1e-9
    assert lag_p99_ms(before, after | {inf: 2500.0}) == 10  # beyond the last bound: its bound
    assert lag_p99_ms(after, after) is None and lag_p99_ms({}, {}) is None


def test_a_chunk_costs_the_difference_in_cpu_between_two_chunk_counts() -> None:
    # 100 requests each: 6 ms of CPU a request with 100 chunks, 1.5 ms with 10.
    samples = [
        Sample("this", 100, ok=100, sent=100, user_s=0.5, system_s=0.1, mock_s=0.1,
               generator_s=0.2),
        Sample("this", 10, ok=100, sent=100, user_s=0.1, system_s=0.05, mock_s=0.01,
               generator_s=0.02),
    ]  # fmt: skip
    figures = summary(samples, 100, 10)["this"]
    assert figures["us per relayed chunk"] == 50.0  # (6 - 1.5) ms / 90 chunks
    assert figures["ms per request besides"] == 1.0  # 1.5 ms - 10 chunks x 50 us
    assert samples[0].row()["of which sys"] == 10.0  # 0.1 s over 10,000 chunks


def test_the_mock_streams_every_chunk_with_its_delays() -> None:
    shape = llm_mock.Shape(ttft_ms=300, chunk_ms=20, chunks=100)
    script = llm_mock.stream_directives(shape)
    assert script.count("echo_flush;") == 100
    assert script.count("echo_sleep 0.020;") == 99 and script.startswith("echo_sleep 0.300;")
    assert script.count("data: [DONE]") == 1 and abs(shape.stream_s - 2.28) < 1e-9
    # The mock's own time for the stream, in the last content chunk: after the last sleep.
    told = script.index(f"word99 {llm_mock.OWN_TIME}$request_time")
    assert script.count("$request_time") == 1 and told > script.rindex("echo_sleep")


def test_portkey_is_told_the_upstream_per_request() -> None:
    headers = dict(portkey.headers("http://127.0.0.1:9/llm/v1"))
    assert headers["x-portkey-provider"] == "openai"
    assert headers["x-portkey-custom-host"] == "http://127.0.0.1:9/llm/v1"


async def sse(conn: Conn) -> None:
    while await conn.read_request() is not None:
        await conn.send(CHUNKED_HEAD + chunk(b"data: {}\n\n"))
        await conn.send(chunk(b"data: [DONE]\n\n") + LAST_CHUNK)


async def cut(conn: Conn) -> None:
    while await conn.read_request() is not None:  # complete responses, but no [DONE]
        await conn.send(CHUNKED_HEAD + chunk(b"data: {}\n\n") + LAST_CHUNK)


async def drive(handler: object, count: int) -> openloop.Outcome:
    async with scripted(handler) as server:  # type: ignore[arg-type]
        plan = openloop.Plan(server.url(), "{}", rate=50, duration_s=count / 50, stream=True)
        return await openloop.Worker(plan).run(time.time())


def test_the_generator_counts_streams_that_end_with_done() -> None:
    out = uvloop.run(drive(sse, 10))
    assert (out.sent, out.ok, out.failures) == (10, 10, {})
    assert len(out.latency_ms) == 10 and len(out.late_ms) == 10 and out.in_flight
    assert len(out.ended_s) == 10  # when each ended, for a step's steady window


async def told(conn: Conn) -> None:
    while await conn.read_request() is not None:  # the mock's own time in the last chunk
        await conn.send(CHUNKED_HEAD + chunk(b'data: {"c":"word99 mock-s=0.000"}\n\n'))
        await conn.send(chunk(b"data: [DONE]\n\n") + LAST_CHUNK)


def test_the_generator_reads_the_mocks_own_time_from_the_end_of_a_stream() -> None:
    out = uvloop.run(drive(told, 4))
    assert out.ok == 4 and len(out.beyond_upstream_ms) == 4
    assert out.beyond_upstream_ms == out.latency_ms  # a mock that took no time of its own
    assert uvloop.run(drive(sse, 2)).beyond_upstream_ms == []  # a stream that does not tell


def test_a_stream_without_done_is_a_failure() -> None:
    out = asyncio.run(drive(cut, 3))
    assert (out.sent, out.ok, out.failures) == (3, 0, {"no [DONE]": 3})


def test_a_request_is_written_with_its_headers() -> None:
    plan = openloop.Plan("http://127.0.0.1:8/v1/x", '{"a":1}', 1, 1, headers=(("k", "v"),))
    raw = openloop.encode(plan)
    assert raw.startswith(b"POST /v1/x HTTP/1.1\r\nhost: 127.0.0.1:8\r\n")
    assert b"\r\nk: v\r\n" in raw and raw.endswith(b'content-length: 7\r\nk: v\r\n\r\n{"a":1}')


async def unanswered(conn: Conn) -> None:
    await conn.read_request()  # read, then closed without a byte of answer


async def one_then_unanswered(conn: Conn) -> None:
    if await conn.read_request() is not None:  # the first request on it is answered whole
        await conn.send(CHUNKED_HEAD + chunk(b"data: [DONE]\n\n") + LAST_CHUNK)
    await conn.read_request()  # the second is read, then the connection closed


async def begun(conn: Conn) -> None:
    if await conn.read_request() is not None:
        await conn.send(CHUNKED_HEAD + chunk(b"data: {}\n\n"))  # then closed mid-stream


async def one_by_one(handler: object, count: int) -> openloop.Outcome:
    """`count` requests one after another through one worker, so a connection is reused."""
    async with scripted(handler) as server:  # type: ignore[arg-type]
        worker = openloop.Worker(openloop.Plan(server.url(), "{}", 1, 1, stream=True))
        for _ in range(count):
            await worker.one(time.perf_counter())
        return worker.outcome


def test_a_lost_connection_is_counted_by_what_the_client_had_seen() -> None:
    # A request never answered on a new connection is one the server did not take up (at
    # overload: its accept queue full), not a response cut; on a reused connection it is a
    # keep-alive close crossing the request; a response begun and not ended is a cut.
    assert uvloop.run(one_by_one(unanswered, 2)).failures == {openloop.UNANSWERED_NEW: 2}
    out = uvloop.run(one_by_one(one_then_unanswered, 2))
    assert (out.ok, out.failures) == (1, {openloop.UNANSWERED_REUSED: 1})
    assert uvloop.run(one_by_one(begun, 2)).failures == {openloop.CUT: 2}


def _status(code: int) -> object:
    async def answer(conn: Conn) -> None:
        body = b'{"error": {"code": "overloaded"}}'
        head = f"HTTP/1.1 {code} X\r\nretry-after: 1\r\ncontent-length: {len(body)}\r\n\r\n"
        while await conn.read_request() is not None:
            await conn.send(head.encode() + body)

    return answer


def test_a_503_is_counted_as_refused_apart_from_other_statuses() -> None:
    # A server refusing at once (Floorgate overloaded) is not one that answered late or never.
    assert uvloop.run(one_by_one(_status(503), 2)).failures == {openloop.REFUSED: 2}
    assert uvloop.run(one_by_one(_status(500), 1)).failures == {"status 500": 1}


HELD_SHAPE = llm_mock.Shape(ttft_ms=300, chunk_ms=200, chunks=100)  # 20.1 s a stream


def held_step(target: str, level: int, **changes: object) -> Step:
    """A held-streams step at `level` in flight, 40 s of arrivals: 100 % ok, p99 20.1 s."""
    rate = held.rate_of(level, HELD_SHAPE.stream_s)
    base = replace(step(target, rate, p99=20_110.0), sent=int(rate * 40), ok=int(rate * 40))
    return replace(base, in_flight=float(level), duration_s=60.0, **changes)  # type: ignore[arg-type]


def test_a_level_is_the_rate_that_keeps_that_many_streams_in_flight() -> None:
    rate = held.rate_of(2000, HELD_SHAPE.stream_s)
    assert abs(rate - 99.502) < 1e-3  # 2,000 streams of 20.1 s
    assert held.level_of(rate, HELD_SHAPE.stream_s) == 2000


def test_the_steady_window_runs_from_the_first_streams_end_to_the_last_arrival() -> None:
    window = held.Window.of(HELD_SHAPE.stream_s, 40.0)
    assert (window.start_s, window.end_s) == (20.6, 40.0)
    # Requests that ended during the ramp-up or the drain are not read.
    latency, ended = [20_100.0, 20_300.0, 20_200.0, 20_900.0], [20.1, 25.0, 39.9, 41.0]
    assert window.ended_within(latency, ended) == [20_300.0, 20_200.0]
    samples = list(range(600))  # one every 0.1 s for 60 s
    inside = window.samples(samples)
    assert (inside[0], inside[-1], len(inside)) == (206, 399, 194)


def test_held_steps_pair_with_the_mock_of_their_own_rung() -> None:
    # Two rungs at the same level (an A/B run): each gateway against its rung's mock.
    steps = [
        held_step(DIRECT, 2000, latency_p99_ms=20_110.0),
        held_step("floorgate", 2000, latency_p99_ms=20_113.0),
        held_step(DIRECT, 2000, latency_p99_ms=20_150.0),
        held_step("floorgate", 2000, latency_p99_ms=20_152.0),
    ]
    assert [len(loaded) for _, loaded in held_report.rungs(steps)] == [1, 1]
    bases = held_report.bases(steps)
    assert bases[0] is None and bases[1] is steps[0] and bases[3] is steps[2]
    overheads = [r["overhead p99 ms"] for r in held_report.level_rows(steps, HELD_SHAPE)]
    assert overheads == [3.0, 2.0]


def test_the_held_targets_are_judged_at_the_first_rung_of_2000_in_flight() -> None:
    steps = [
        held_step(DIRECT, 1000),
        held_step("floorgate", 1000, ok=10),  # failing below the target level does not count
        held_step(DIRECT, 2000),
        held_step("floorgate", 2000, latency_p99_ms=20_114.0, rss_peak_mib=140.0,
                  loop_lag_p99_ms=3.5),
        held_step(DIRECT, 3000),
        held_step("floorgate", 3000, ok=100),
    ]  # fmt: skip
    goals = {g.label: g for g in held_report.targets(steps, HELD_SHAPE)}
    prefix = "held streams (200 ms apart), 2,000 in flight:"
    assert all(label.startswith(prefix) for label in goals)
    figures = {label[len(prefix) + 1 :]: (g.value, g.verdict()) for label, g in goals.items()}
    assert figures["success"] == (100.0, "pass")
    assert figures["overhead p99 vs the mock's"] == (4.0, "pass")
    assert figures["goodput / direct"] == (1.0, "pass")
    assert figures["RSS per request in flight"] == (40.96, "pass")  # 80 MiB over 2,000
    assert figures["event-loop lag p99"] == (3.5, "pass")


def test_the_held_targets_miss_on_a_failed_stream_and_are_na_below_the_level() -> None:
    # 2 of 3,980 lost: 99.95 %
    lost = held_step("floorgate", 2000, ok=3978, loop_lag_p99_ms=None, probe_p99_ms=9.0)
    goals = held_report.targets([held_step(DIRECT, 2000), lost], HELD_SHAPE)
    verdicts = {g.label.rsplit(": ", 1)[1]: g.verdict() for g in goals}
    assert verdicts["success"] == "MISS" and verdicts["goodput / direct"] == "pass"
    assert verdicts["event-loop lag p99"] == "MISS"  # no histogram: the probe's 9 ms
    below = held_report.targets([held_step(DIRECT, 1000), held_step("floorgate", 1000)],
                                HELD_SHAPE)  # fmt: skip
    assert {g.verdict() for g in below} == {"n/a"}


def test_goodput_is_judged_at_the_highest_rate_the_mock_kept_to_its_schedule() -> None:
    steps = [
        step(DIRECT, 400), step("floorgate", 400, ok=850),
        step(DIRECT, 880, p99=6500.0), step("floorgate", 880, ok=300),  # the mock 4.2 s behind
    ]  # fmt: skip
    goals = {g.label: g for g in peer_report.stream_targets(steps, llm_mock.Shape())}
    goodput = goals["streams (20 ms apart): goodput at the mock's most (400/s) / direct"]
    assert (goodput.value, goodput.verdict()) == (0.85, "MISS")
    behind = [step(DIRECT, 880, p99=6500.0), step("floorgate", 880)]
    goals = {g.label: g for g in peer_report.stream_targets(behind, llm_mock.Shape())}
    label = "streams (20 ms apart): goodput at the mock's most (none kept to schedule) / direct"
    assert goals[label].verdict() == "n/a"


def test_the_report_names_each_shape_and_its_json_prints_the_same_tables_again(
    capsys: pytest.CaptureFixture[str],
) -> None:
    stream = [step(DIRECT, 880), step("floorgate", 880, ok=700)]
    held_steps = [held_step(DIRECT, 2000), held_step("floorgate", 2000, loop_lag_p99_ms=2.0)]
    steps = {"stream": stream, held_report.HELD: held_steps}
    peer_report.print_all(steps, llm_mock.Shape(), 70.0, 128.0, HELD_SHAPE)
    first = capsys.readouterr().out
    summary = json.loads(first.strip().splitlines()[-1])
    verdicts = {label: t["verdict"] for label, t in summary["targets"].items()}
    assert verdicts["streams (20 ms apart): goodput at the mock's most (880/s) / direct"] == "MISS"
    assert verdicts["held streams (200 ms apart), 2,000 in flight: goodput / direct"] == "pass"
    assert summary["held_shape"]["chunk_ms"] == 200
    again = {v: [Step(**raw) for raw in ladder] for v, ladder in summary["steps"].items()}
    peer_report.print_all(
        again, llm_mock.Shape(), 70.0, 128.0, llm_mock.Shape(**summary["held_shape"])
    )
    assert capsys.readouterr().out == first
