"""`make bench`'s gate table (bench/report.py): CPU per request and streaming TTFB judged
against the floor measured in the same rounds, their absolute figures and goals beside."""

from __future__ import annotations

import json

import pytest

from bench.load import LoadResult
from bench.report import goals, print_all, summary
from bench.results import FLOOR, FLOORGATE, MOCK, Results, Sample


def sample(cpu_ms: float) -> Sample:
    return Sample(LoadResult(5000, 5.0, 1.0, 2.0, 3.0, 0), cpu_ms)


def results(cpu: dict[str, list[float]], ttfb: dict[str, list[float]]) -> Results:
    measured = Results()
    for target, per_round in cpu.items():
        for cpu_ms in per_round:
            for connections in (1, 64):
                measured.add_load(target, connections, sample(cpu_ms))
    measured.ttfb_p50_ms = ttfb
    return measured


def by_label(measured: Results) -> dict[str, tuple[float | None, str, str]]:
    """Each goal's value and verdict, and its absolute form's verdict if it has one."""
    listed = {}
    for goal in goals(measured):
        beside = "" if goal.beside is None else goal.beside.verdict()
        listed[goal.label] = (goal.value, goal.verdict(), beside)
    return listed


def test_cpu_is_judged_round_by_round_against_the_floor_s() -> None:
    # A slow round for both (the machine was busy) moves each ratio little.
    measured = results(
        {MOCK: [0.01, 0.01, 0.01], FLOOR: [0.10, 0.20, 0.10], FLOORGATE: [0.12, 0.26, 0.14]},
        {MOCK: [0.2, 0.2, 0.2], FLOOR: [0.4, 0.4, 0.4], FLOORGATE: [0.45, 0.5, 0.45]},
    )
    value, verdict, absolute = by_label(measured)["CPU per request, c=64 / floor's"]
    assert value == pytest.approx(1.3)  # the median of 1.2, 1.3 and 1.4
    assert (verdict, absolute) == ("pass", "pass")  # 1.3 <= 1.3x; 0.14 ms <= 0.5 ms


def test_a_goal_met_absolutely_can_miss_against_the_floor_and_the_other_way() -> None:
    fast_machine = results(
        {MOCK: [0.01], FLOOR: [0.11], FLOORGATE: [0.17]},
        {MOCK: [0.17], FLOOR: [0.43], FLOORGATE: [0.57]},
    )
    listed = by_label(fast_machine)
    assert listed["CPU per request, c=64 / floor's"][1:] == ("MISS", "pass")
    value, verdict, absolute = listed["stream TTFB overhead p50 / floor's"]
    assert value == pytest.approx(0.40 / 0.26)
    assert (verdict, absolute) == ("MISS", "pass")
    slow_machine = results(
        {MOCK: [0.01], FLOOR: [0.40], FLOORGATE: [0.50]},
        {MOCK: [0.30], FLOOR: [0.92], FLOORGATE: [1.01]},
    )
    listed = by_label(slow_machine)
    assert listed["CPU per request, c=64 / floor's"][1:] == ("pass", "pass")
    assert listed["stream TTFB overhead p50 / floor's"][1:] == ("pass", "MISS")  # 0.71 > 0.6


def test_without_the_floor_the_relative_goals_are_not_judged() -> None:
    measured = results({MOCK: [0.01], FLOORGATE: [0.17]}, {MOCK: [0.2], FLOORGATE: [0.5]})
    listed = by_label(measured)
    assert listed["CPU per request, c=64 / floor's"][1:] == ("n/a", "pass")
    assert listed["stream TTFB overhead p50 / floor's"][1:] == ("n/a", "pass")


def test_the_table_and_the_json_line_carry_both_forms(capsys: pytest.CaptureFixture[str]) -> None:
    measured = results(
        {MOCK: [0.01], FLOOR: [0.11], FLOORGATE: [0.17]},
        {MOCK: [0.17], FLOOR: [0.43], FLOORGATE: [0.57]},
    )
    print_all(measured)
    out = capsys.readouterr().out
    label = "CPU per request, c=64 / floor's"
    [row] = [line.split() for line in out.splitlines() if line.strip().startswith(label)]
    assert " ".join(row[-10:]) == "1.545x <= 1.3x MISS 0.170 ms (<= 0.5 ms: pass)"
    line = json.loads(out.splitlines()[-1])
    assert line == summary(measured)
    assert line["goals"]["CPU per request, c=64 / floor's"] == "MISS"
    assert line["goals"]["CPU per request, c=64"] == "pass"
    assert line["cpu_vs_floor_c64"] == pytest.approx(0.17 / 0.11, abs=1e-4)
    assert line["floor_stream_ttfb_overhead_p50_ms"] == pytest.approx(0.26)
