"""Hot reload: a changed policy serves within seconds; a bad one never does, and the last good
policy keeps serving. Each test runs its own gateway over its own policy directory."""

from __future__ import annotations

import logging
import os
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest

from gateway.policy.compiled import Policy
from gateway.policy.loader import load_policy
from gateway.policy.store import PolicyStore
from tests.fake_upstream import FakeUpstream
from tests.policy_gateway import (
    POLICY,
    VERSION,
    chat,
    edited,
    line_of,
    own_gateway,
    policy_text,
    replace,
    sample,
    wait_for,
)
from tests.servers import free_port

ROOT = Path(__file__).parent.parent
RELOADS = "floorgate_policy_reloads_total"


def new_version(client: httpx.Client, old: str) -> httpx.Response | None:
    response = chat(client, "bulk-summarization")
    return response if response.headers[VERSION] != old else None


def test_an_edited_policy_serves_within_seconds(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(upstream))
    with own_gateway(tmp_path) as (client, app):
        before = chat(client, "bulk-summarization")
        assert before.headers["x-floorgate-route"] == "capability-first"
        old = before.headers[VERSION]
        started = time.time()
        replace(path, edited(path.read_text()))
        after = wait_for(lambda: new_version(client, old))
        assert after.headers["x-floorgate-route"] == "calibration-first"
        assert after.headers[VERSION] == load_policy(tmp_path).version
        assert sample(app, RELOADS, result="success", trigger="watch") == 1
        assert sample(app, RELOADS, result="failure", trigger="watch") == 0
        new = after.headers[VERSION]
        assert sample(app, "floorgate_policy_info", name="reload-test", version=new) == 1
        assert sample(app, "floorgate_policy_info", name="reload-test", version=old) is None
        reloaded_at = sample(app, "floorgate_policy_last_reload_success_timestamp_seconds")
        assert reloaded_at is not None and reloaded_at >= started


def test_a_broken_file_is_rejected_and_the_last_good_policy_serves(
    tmp_path: Path, upstream: FakeUpstream, caplog: pytest.LogCaptureFixture
) -> None:
    path = tmp_path / "policy.yaml"
    good = policy_text(upstream)
    path.write_text(good)
    with own_gateway(tmp_path) as (client, app):
        old = chat(client, "bulk-summarization").headers[VERSION]
        with caplog.at_level(logging.ERROR, logger="floorgate.policy"):
            replace(path, good.replace("pool: [fast]", "pool: [nowhere]"))
            wait_for(lambda: sample(app, RELOADS, result="failure", trigger="watch") == 1)
        for _ in range(3):
            response = chat(client, "bulk-summarization")
            assert response.headers[VERSION] == old
            assert response.headers["x-floorgate-route"] == "capability-first"
        assert sample(app, "floorgate_policy_last_reload_successful") == 0
        [record] = [r for r in caplog.records if r.name == "floorgate.policy"]
        assert f"still serving version {old}" in record.getMessage()
        assert f"{path}:{line_of(path, 'pool: [nowhere]')}:" in record.getMessage()

        # Contradicting its own tests is as bad as a broken tree.
        replace(path, good.replace("throughput_bound: true}}", "throughput_bound: false}}"))
        wait_for(lambda: sample(app, RELOADS, result="failure", trigger="watch") == 2)
        assert "test expects workflow 'bulk-summarization'" in caplog.records[-1].getMessage()
        assert chat(client, "bulk-summarization").headers[VERSION] == old

        replace(path, edited(good))
        wait_for(lambda: new_version(client, old))
        assert sample(app, "floorgate_policy_last_reload_successful") == 1


def test_a_configmap_symlink_swap_is_noticed(tmp_path: Path, upstream: FakeUpstream) -> None:
    # The layout the kubelet writes: files are symlinks through `..data`, which it swaps.
    mount = tmp_path / "policies"
    first = mount / "..2025_01_01_00_00_00.1"
    first.mkdir(parents=True)
    (first / "policy.yaml").write_text(policy_text(upstream))
    (mount / "..data").symlink_to(first.name)
    (mount / "policy.yaml").symlink_to("..data/policy.yaml")
    with own_gateway(mount) as (client, _):
        old = chat(client, "bulk-summarization").headers[VERSION]
        second = mount / "..2025_01_01_00_01_00.2"
        second.mkdir()
        (second / "policy.yaml").write_text(edited(policy_text(upstream)))
        (mount / "..data_tmp").symlink_to(second.name)
        os.replace(mount / "..data_tmp", mount / "..data")
        shutil.rmtree(first)
        after = wait_for(lambda: new_version(client, old))
        assert after.headers["x-floorgate-route"] == "calibration-first"


def test_sighup_reloads_a_served_gateway(tmp_path: Path, upstream: FakeUpstream) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(upstream))
    port = free_port()
    env = {
        "PATH": os.environ["PATH"],
        "FLOORGATE_POLICIES": str(path),
        "FLOORGATE_PORT": str(port),
        "FLOORGATE_POLICY_POLL_S": "0",  # no watcher: only the signal can reload
    }
    server = subprocess.Popen(
        [sys.executable, "-m", "gateway", "serve"], env=env, cwd=ROOT, stderr=subprocess.PIPE
    )
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5) as client:
            old = wait_for(lambda: _ready_version(client), timeout_s=120)
            replace(path, edited(path.read_text()))
            server.send_signal(signal.SIGHUP)
            new = wait_for(lambda: _ready_version(client) != old and _ready_version(client), 30)
            assert new == load_policy(path).version
            metrics = client.get("/metrics").text
            assert (
                'floorgate_policy_reloads_total{result="success",trigger="sighup"} 1.0' in metrics
            )
    finally:
        server.terminate()
        server.wait(10)
        assert server.stderr is not None
        server.stderr.close()


def _ready_version(client: httpx.Client) -> str | None:
    try:
        response = client.get("/readyz")
    except httpx.TransportError:
        return None
    version: str = response.json()["policy_version"]
    return version


def test_a_reload_readies_what_the_new_policy_needs_before_it_serves(tmp_path: Path) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(POLICY.replace("__UPSTREAM__", "http://127.0.0.1:9/v1"))
    store = PolicyStore.open(tmp_path)
    old = store.current.version
    seen: list[tuple[str, str]] = []

    def prepare(policy: Policy) -> None:
        seen.append((policy.version, store.current.version))

    replace(path, edited(path.read_text()))
    outcome = store.reload(prepare)
    assert outcome.result == "success"
    # Called with the new policy while the old one still served.
    assert seen == [(outcome.policy.version, old)]
    assert store.current.version == outcome.policy.version


def test_a_reload_that_brings_a_litellm_model_imports_litellm_before_the_swap(
    tmp_path: Path, upstream: FakeUpstream
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(policy_text(upstream))
    with own_gateway(tmp_path) as (client, app):
        assert not app.runtime.policies.current.needs_litellm
        assert not app.runtime.transports.litellm_ready
        old = chat(client, "bulk-summarization").headers[VERSION]
        text = edited(path.read_text()).replace(
            'fast: {provider: openai_compatible, model: ok, api_base: "',
            'fast: {provider: openai, transport: litellm, model: ok, api_base: "',
        )
        replace(path, text)
        after = wait_for(lambda: new_version(client, old))
        assert app.runtime.policies.current.needs_litellm
        assert app.runtime.transports.litellm_ready  # by the first request, not during it
        assert after.status_code == 200
