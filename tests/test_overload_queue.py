"""A real `floorgate serve` refusing new model requests while new connections wait in the
kernel's accept queue (gateway/overload.py, gateway/accept_wait.py), with the loop-lag rule off
so that nothing else can refuse. Frozen (SIGSTOP) for 2 s while a client connects every 0.1 s,
the gateway resumes with a queue in which every connection that arrived over more than a second
waited 0.25 s or more, as a saturated loop's does: it takes up the whole queue in one turn and
judges it before reading any of its requests, so it refuses even the first of them, the stream
it was serving goes on, and it serves again once waits are short. Frozen
half a second, twice the threshold but half the period, it refuses nothing."""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import openai
import pytest

from tests.fake_upstream import FakeUpstream
from tests.overload_support import Served, chat, refusal_of, said, serve, served_again, slow_stream

FREEZE_S = 2.0  # arrivals over 1.75 s wait 0.25 s or more: past the default 1 s period
APART_S = 0.1
CALLERS = 18  # one every 0.1 s, the last 0.3 s before the end of the freeze


@pytest.fixture(scope="module")
def served(upstream: FakeUpstream, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    workdir = tmp_path_factory.mktemp("overload-queue")
    with serve(upstream, workdir, FLOORGATE_OVERLOAD_LAG_S="0") as gateway:
        yield gateway


def refused(served: Served, reason: str) -> float:
    return served.sample("floorgate_overload_refusals_total", reason=reason)


def waited_longer(served: Served, le: str) -> float:
    """New connections that waited more than `le` seconds in the accept queue."""
    total = served.sample("floorgate_accept_queue_wait_seconds_count")
    return total - served.sample("floorgate_accept_queue_wait_seconds_bucket", le=le)


def test_a_standing_accept_queue_refuses_new_requests_then_it_serves_again(
    served: Served, upstream: FakeUpstream
) -> None:
    assert served_again(served) == "fake answer"
    before = refused(served, "queue_wait")
    long_before = waited_longer(served, "0.25")
    with served.client() as streamer:
        chunks, answer = slow_stream(streamer)
        seen = upstream.seen

        calls = [lambda: chat(served)] * CALLERS
        calls += [
            lambda: chat(served, key="wrong"),
            lambda: served.sample("floorgate_overloaded"),
            lambda: httpx.get(f"{served.url}/healthz", timeout=30).status_code,
        ]
        outcomes = served.frozen(FREEZE_S, *calls, apart_s=APART_S)
        answer += said(chunks)

    *chats, stranger, overloaded, health = outcomes
    refusals = [o for o in chats if not isinstance(o, str)]
    assert refusals, f"none of {CALLERS} queued for up to {FREEZE_S} s was refused"
    for outcome in refusals:
        assert "waited more than 0.25 s to be taken up" in refusal_of(outcome)["message"]
    # Taken up one a turn (uvloop's own server), the first was served: the queue had not yet
    # stood 1 s when its request was read.
    assert not isinstance(chats[0], str), "the queue is judged whole before a request is read"
    assert isinstance(stranger, openai.AuthenticationError), "a wrong key is a 401, not a 503"
    assert (overloaded, health) == (1, 200), "ops endpoints answer, and say it"
    assert answer == "fake answer", "the stream in flight was served to its end"
    assert upstream.seen == seen + CALLERS - len(refusals), "nothing refused reached it"
    assert refused(served, "queue_wait") - before == len(refusals)
    assert refused(served, "loop_lag") == 0
    assert waited_longer(served, "0.25") - long_before >= CALLERS // 2, "the wait is exported"

    assert served_again(served) == "fake answer"
    assert served.sample("floorgate_overloaded") == 0


def test_a_freeze_past_the_threshold_but_shorter_than_the_period_refuses_nothing(
    served: Served,
) -> None:
    assert served_again(served) == "fake answer"
    before = refused(served, "queue_wait")
    outcomes = served.frozen(0.5, *[lambda: chat(served)] * 8, apart_s=0.05)
    assert outcomes == ["fake answer"] * 8
    assert refused(served, "queue_wait") == before
    assert served.sample("floorgate_overloaded") == 0
