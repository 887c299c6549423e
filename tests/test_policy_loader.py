"""The policy loader: shipped policies route as documented; unsound ones name file:line."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from gateway.policy.loader import PolicyError, load_policy
from gateway.policy.tree import decide

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "policies" / "default.yaml"


def broken(tmp_path: Path, old: str, new: str, source: Path = SHIPPED) -> Path:
    text = source.read_text()
    assert old in text, f"fixture text {old!r} not in {source}"
    path = tmp_path / "policy.yaml"
    path.write_text(text.replace(old, new, 1))
    return path


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


def problems(path: Path) -> list[str]:
    with pytest.raises(PolicyError) as info:
        load_policy(path)
    return [str(p) for p in info.value.problems]


def test_shipped_policy_routes_as_documented() -> None:
    policy = load_policy(ROOT / "policies")
    assert policy.decision_for("bulk-summarization").route == "capability-first"
    assert policy.decision_for("deploy-pipeline").route == "calibration-first"
    assert policy.spec.default_workflow == "deploy-pipeline"


def test_example_policies_load() -> None:
    for path in (ROOT / "policies" / "examples").glob("*.yaml"):
        assert load_policy(path).version


def test_undeclared_trait_takes_the_unsafe_answer() -> None:
    spec = load_policy(SHIPPED).spec
    # reversible and reviewed, but silent on throughput: the unsafe answer (no) applies
    decision = decide(spec, {"reversible": True, "human_reviewed": True})
    assert decision.route == "calibration-first"
    assert [s.declared for s in decision.path] == [True, True, False]
    assert decide(spec, {}).route == "calibration-first"


def test_cycle_is_rejected_with_file_and_line(tmp_path: Path) -> None:
    path = broken(
        tmp_path,
        '"yes": {route: capability-first}',
        '"yes": reversible',
    )
    [problem] = problems(path)
    assert problem.startswith(f"{path}:{line_of(path, 'reversible:       {ask')}:")
    assert "cycle" in problem and "reversible -> human_reviewed -> throughput_bound" in problem


def test_leaf_naming_unknown_route_is_rejected(tmp_path: Path) -> None:
    path = broken(tmp_path, '"yes": {route: capability-first}', '"yes": {route: capabilty-first}')
    [problem] = problems(path)
    assert problem.startswith(f"{path}:{line_of(path, 'capabilty-first')}:")
    assert "route 'capabilty-first', which is not defined" in problem


def test_unknown_trait_and_pool_model_are_rejected(tmp_path: Path) -> None:
    path = broken(tmp_path, "pool: [local-fast]", "pool: [local-fsat]")
    text = path.read_text().replace("ask: human_reviewed,", "ask: human_reveiwed,")
    path.write_text(text)
    found = problems(path)
    assert any("trait 'human_reveiwed', which is not declared" in p for p in found)
    assert any(
        p.startswith(f"{path}:{line_of(path, 'local-fsat')}:") and "model 'local-fsat'" in p
        for p in found
    )


def test_a_route_cannot_pool_an_embedding_model(tmp_path: Path) -> None:
    path = broken(tmp_path, "    local-fast:\n", "    local-fast:\n      serves: embeddings\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:{line_of(path, 'pool: [local-fast]')}:")
    assert "model 'local-fast', which serves embeddings" in problem


def test_inline_secret_is_rejected(tmp_path: Path) -> None:
    path = broken(tmp_path, "model: smollm2\n", "model: smollm2\n      api_key: sk-live-123\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:{line_of(path, 'api_key: sk-live')}:")
    assert "{env: PROVIDER_API_KEY}" in problem
    assert "sk-live-123" not in problem


def test_unknown_field_and_unreachable_node(tmp_path: Path) -> None:
    path = broken(tmp_path, "    capability-first:\n", "    capability-first:\n      pol: []\n")
    assert any("unknown field 'pol'" in p for p in problems(path))
    path = broken(
        tmp_path,
        "  tree:\n    start: reversible\n",
        "  tree:\n    start: human_reviewed\n",
    )
    assert any("node 'reversible' is not reached" in p for p in problems(path))


def test_invalid_yaml_names_the_line(tmp_path: Path) -> None:
    path = broken(tmp_path, "  routes:\n", "  routes: [\n")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:") and "invalid YAML" in problem


def test_policy_may_span_files_but_names_are_defined_once(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SHIPPED.read_text())
    extra = tmp_path / "b.yaml"
    extra.write_text(
        "apiVersion: floorgate.dev/v1\nkind: RoutingPolicy\nmetadata: {name: team}\n"
        "spec:\n  workflows:\n    triage: {traits: {reversible: true}}\n"
    )
    assert "triage" in load_policy(tmp_path).spec.workflows
    extra.write_text(extra.read_text() + "    deploy-pipeline: {traits: {reversible: true}}\n")
    [problem] = problems(tmp_path)
    assert problem.startswith(f"{extra}:7:") and f"{tmp_path / 'a.yaml'}:" in problem


def test_serve_refuses_a_broken_policy(tmp_path: Path) -> None:
    path = broken(tmp_path, '"yes": {route: capability-first}', '"yes": {route: nowhere}')
    result = subprocess.run(
        [sys.executable, "-m", "gateway", "serve"],
        env={"FLOORGATE_POLICIES": str(path), "PATH": "/usr/bin:/bin"},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )
    assert result.returncode == 2
    assert f"{path}:{line_of(path, 'nowhere')}:" in result.stderr
    assert "define it under spec.routes" in result.stderr


@pytest.mark.parametrize(
    ("api_base", "says"),
    [("ftp://127.0.0.1:8081/v1", "http:// or https://"), ("127.0.0.1:8081/v1", "http://"),
     ("http://a..b/v1", "valid host name"), ("http://127.0.0.1:99999/v1", "valid host name"),
     ("http://127.0.0.1:${FLOORGATE_LOCAL_MODEL_PORT:-99999}/v1", "valid host name")],
)  # fmt: skip
def test_an_api_base_the_client_cannot_reach_is_refused_at_load(
    tmp_path: Path, api_base: str, says: str
) -> None:
    shipped = 'api_base: "http://127.0.0.1:${FLOORGATE_LOCAL_MODEL_PORT:-8081}/v1"'
    path = broken(tmp_path, shipped, f"api_base: {api_base}")
    [problem] = problems(path)
    assert problem.startswith(f"{path}:{line_of(path, api_base)}:")
    assert says in problem
