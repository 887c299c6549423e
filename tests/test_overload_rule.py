"""The overload rule (gateway/overload.py) fed the loop-lag watch's wake-ups as numbers: when it
starts and stops refusing, and what a refusal says. The real gateway refusing under a frozen
loop is tests/test_overload.py."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry

from gateway.errors import Unavailable
from gateway.metrics import Metrics
from gateway.overload import Overload

TICK = 0.025  # gateway/loop_lag.py's interval


class Loop:
    """A loop-lag watch's wake-ups, each `lag` seconds late, one after the other."""

    def __init__(self, overload: Overload) -> None:
        self.overload = overload
        self.now = 100.0

    def run(self, seconds: float, lag: float) -> None:
        """As many wake-ups as fit in `seconds`."""
        for _ in range(int(seconds / (TICK + lag))):
            self.wake(lag)

    def wake(self, lag: float) -> None:
        due = self.now + TICK
        self.now = due + lag
        self.overload.observe(due, self.now)

    def stall(self, seconds: float) -> None:
        """One callback holding the loop: one wake-up that late, as the watch sees it."""
        self.wake(seconds)


def overload(lag_s: float = 0.1, for_s: float = 1.0, max_in_flight: int = 0) -> Overload:
    return Overload(Metrics(CollectorRegistry()), lag_s, for_s, max_in_flight)


def refused(ov: Overload) -> Unavailable:
    """The 503 `overloaded` that admitting a request raises."""
    with pytest.raises(Unavailable) as raised:
        ov.admit()
    assert raised.value.code == "overloaded"
    return raised.value


def refusals(ov: Overload, reason: str) -> float:
    value = ov.metrics.registry.get_sample_value(
        "floorgate_overload_refusals_total", {"reason": reason}
    )
    assert value is not None, "the series exists at 0 before any refusal"
    return value


def test_late_at_every_wake_up_for_the_period_refuses_and_on_time_for_it_accepts() -> None:
    ov = overload()
    loop = Loop(ov)
    loop.run(2.0, 0.001)
    ov.admit()
    ov.release()
    loop.run(0.8, 0.12)
    assert not ov.refusing, "behind for less than for_s"
    loop.run(0.6, 0.12)
    assert ov.refusing
    assert ov.metrics.registry.get_sample_value("floorgate_overloaded") == 1
    loop.run(0.9, 0.001)
    assert ov.refusing, "on time for less than for_s: still refusing"
    loop.run(0.2, 0.001)
    assert not ov.refusing
    assert ov.metrics.registry.get_sample_value("floorgate_overloaded") == 0


def test_one_on_time_wake_up_starts_the_period_again() -> None:
    ov = overload()
    loop = Loop(ov)
    for _ in range(5):
        loop.run(0.8, 0.12)
        loop.wake(0.0)
    assert not ov.refusing


@pytest.mark.parametrize("stall_s", [0.1, 0.24, 0.6])
def test_one_slow_callback_does_not_refuse(stall_s: float) -> None:
    ov = overload()
    loop = Loop(ov)
    loop.run(1.0, 0.002)
    loop.stall(stall_s)
    loop.run(1.0, 0.002)
    loop.stall(stall_s)
    assert not ov.refusing
    ov.admit()


def test_a_freeze_longer_than_the_period_refuses_on_resume() -> None:
    ov = overload()
    loop = Loop(ov)
    loop.run(1.0, 0.002)
    loop.stall(1.5)
    assert ov.refusing
    err = refused(ov)
    assert (err.status, err.type, err.code) == (503, "service_unavailable", "overloaded")
    assert err.headers == {"retry-after": "1"}
    assert "Retry after 1 s" in err.message and "in flight are still served" in err.message
    assert refusals(ov, "loop_lag") == 1
    assert ov.in_flight == 0, "a refused request is not in flight"


def test_the_rule_is_off_with_lag_zero() -> None:
    ov = overload(lag_s=0.0)
    loop = Loop(ov)
    loop.run(3.0, 0.5)
    assert not ov.refusing


def test_the_in_flight_cap_refuses_beyond_it_and_admits_once_one_ends() -> None:
    ov = overload(max_in_flight=2)
    ov.admit()
    ov.admit()
    assert "FLOORGATE_MAX_IN_FLIGHT=2" in refused(ov).message
    assert refusals(ov, "in_flight") == 1
    assert refusals(ov, "loop_lag") == 0
    ov.release()
    ov.admit()
    assert ov.in_flight == 2


def test_retry_after_is_the_recovery_period_rounded_up() -> None:
    assert overload(for_s=2.5).retry_after == "3"
    assert overload(for_s=0.5).retry_after == "1"


class Accepts:
    """New connections taken up one after another, each having waited in the accept queue."""

    def __init__(self, overload: Overload, now: float = 100.0) -> None:
        self.overload = overload
        self.now = now

    def take(self, seconds: float, waited: float, apart_s: float = 0.01) -> None:
        """A connection every `apart_s` for `seconds`, each `waited` s after it arrived."""
        for _ in range(int(seconds / apart_s)):
            self.now += apart_s
            self.overload.accepted(waited, self.now)

    def tick(self, seconds: float) -> None:
        """The loop-lag watch's wake-ups, on time, for `seconds`: no connection taken up."""
        for _ in range(int(seconds / TICK)):
            self.now += TICK
            self.overload.observe(self.now, self.now)


def queue_rule(queue_wait_s: float = 0.25, for_s: float = 1.0) -> Overload:
    return Overload(Metrics(CollectorRegistry()), 0.0, for_s, queue_wait_s=queue_wait_s)


def test_every_connection_waiting_long_over_the_period_refuses_and_short_waits_end_it() -> None:
    ov = queue_rule()
    accepts = Accepts(ov)
    accepts.take(2.0, 0.01)
    accepts.take(0.8, 0.5)
    assert not ov.refusing, "long waits over arrivals spanning less than for_s"
    accepts.take(0.4, 0.5)
    assert ov.refusing and ov.queued
    assert ov.metrics.registry.get_sample_value("floorgate_overloaded") == 1
    assert "waited more than 0.25 s to be taken up" in refused(ov).message
    assert refusals(ov, "queue_wait") == 1
    assert refusals(ov, "loop_lag") == 0
    accepts.take(0.9, 0.01)
    accepts.tick(0.05)
    assert ov.refusing, "short waits for less than for_s: still refusing"
    accepts.take(0.2, 0.01)
    accepts.tick(0.05)
    assert not ov.refusing
    assert ov.metrics.registry.get_sample_value("floorgate_overloaded") == 0
    ov.admit()


def test_a_queue_still_growing_refuses_after_the_period_of_take_ups() -> None:
    """Each connection taken up waited longer than the one before: their arrivals span little
    (a loop taking up one connection a turn while they come faster), their take-ups span it."""
    ov = queue_rule()
    accepts = Accepts(ov)
    for i in range(20):
        ov.accepted(0.3 + i * 0.045, accepts.now + i * 0.05)  # arrivals 5 ms apart
    assert not ov.refusing, "take-ups over 0.95 s: not the period yet"
    ov.accepted(0.3 + 21 * 0.045, accepts.now + 21 * 0.05)
    assert ov.refusing


def test_no_new_connection_for_the_period_ends_it() -> None:
    """Clients that retry on their kept-alive connections are taken up without a wait."""
    ov = queue_rule()
    accepts = Accepts(ov)
    accepts.take(1.5, 2.0)
    assert ov.refusing
    accepts.tick(0.9)
    assert ov.refusing
    accepts.tick(0.2)
    assert not ov.refusing


def test_one_short_wait_starts_the_period_again() -> None:
    ov = queue_rule()
    accepts = Accepts(ov)
    for _ in range(5):
        accepts.take(0.8, 0.5)
        accepts.take(0.01, 0.0)
    assert not ov.refusing


@pytest.mark.parametrize("stall_s", [0.3, 0.6, 0.9])
def test_one_stall_delays_only_what_arrived_during_it(stall_s: float) -> None:
    """What queued during one stall is taken up at its end, each having waited the rest of it:
    their arrivals span the stall, less than for_s."""
    ov = queue_rule()
    accepts = Accepts(ov)
    accepts.take(1.0, 0.005)
    arrivals = [i * 0.01 for i in range(int(stall_s / 0.01))]
    for arrived in arrivals:
        ov.accepted(stall_s - arrived, accepts.now + stall_s + 0.001)
    accepts.now += stall_s + 0.001
    accepts.take(1.0, 0.005)
    assert not ov.refusing


def test_the_queue_rule_is_off_with_wait_zero() -> None:
    ov = queue_rule(queue_wait_s=0.0)
    Accepts(ov).take(3.0, 5.0)
    assert not ov.refusing


def test_either_signal_refuses_and_refusing_lasts_until_both_clear() -> None:
    ov = Overload(Metrics(CollectorRegistry()), 0.1, 1.0, queue_wait_s=0.25)
    loop = Loop(ov)
    accepts = Accepts(ov, now=loop.now)
    accepts.take(1.2, 0.5)
    assert ov.queued and not ov.lagging
    loop.now = accepts.now
    loop.run(1.2, 0.12)
    assert ov.lagging and ov.refusing
    assert "event loop has been behind" in refused(ov).message
    assert refusals(ov, "loop_lag") == 1, "the loop's lag named first"
    loop.run(1.1, 0.001)  # no connection taken up since the long waits: that clears too
    assert not ov.lagging and not ov.queued and not ov.refusing
