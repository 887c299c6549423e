"""`floorgate check` and `floorgate explain`, run as the command a platform team runs."""

from __future__ import annotations

import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from gateway.policy.loader import PolicyError, load_policy

ROOT = Path(__file__).parent.parent
SHIPPED = ROOT / "policies" / "default.yaml"
EXAMPLES = ROOT / "policies" / "examples"
TEAM_FILE = """\
apiVersion: floorgate.dev/v1
kind: RoutingPolicy
metadata: {name: team}
spec:
  workflows:
    triage: {traits: {reversible: true}}
  tests:
    - {workflow: triage, expect: calibration-first}
    - {workflow: triage, expect: capability-first}
"""


def floorgate(
    *args: str | Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "gateway", *map(str, args)],
        env={"PATH": os.environ["PATH"], **(env or {})},
        capture_output=True,
        text=True,
        timeout=60,
        cwd=ROOT,
    )


def line_of(path: Path, needle: str) -> int:
    return next(i for i, line in enumerate(path.read_text().splitlines(), 1) if needle in line)


@dataclass(frozen=True)
class Case:
    name: str
    old: str
    new: str
    at: str  # text on the line the problem must point at
    says: str  # what the message must say, including what to change


CASES = [
    Case(
        "unknown trait asked",
        "ask: human_reviewed,",
        "ask: human_reveiwed,",
        "human_reveiwed",
        "asks about trait 'human_reveiwed', which is not declared; declare it under spec.traits",
    ),
    Case(
        "unknown trait declared by a workflow",
        "traits: {reversible: false}\n",
        "traits: {reversable: false}\n",
        "reversable",
        "sets trait 'reversable', which is not declared; declare it under spec.traits",
    ),
    Case(
        "unreachable node",
        "    start: reversible\n",
        "    start: human_reviewed\n",
        "reversible:       {ask",
        "node 'reversible' is not reached from start 'human_reviewed'; link it or remove it",
    ),
    Case(
        "cycle",
        '"yes": {route: capability-first}',
        '"yes": reversible',
        "reversible:       {ask",
        "cycle (reversible -> human_reviewed -> throughput_bound -> reversible); every path",
    ),
    Case(
        "leaf naming a missing route",
        '"yes": {route: capability-first}',
        '"yes": {route: capabilty-first}',
        "capabilty-first",
        "route 'capabilty-first', which is not defined; define it under spec.routes",
    ),
    Case(
        "pool naming a missing model",
        "pool: [local-fast]",
        "pool: [local-fsat]",
        "local-fsat",
        "pools model 'local-fsat', which is not defined; define it under spec.models",
    ),
    Case(
        "inline api key",
        "      timeout_s: 120\n",
        "      timeout_s: 120\n      api_key: sk-live-123\n",
        "sk-live-123",
        "reference it instead: api_key: {env: PROVIDER_API_KEY}",
    ),
    Case(
        "inline secret parameter",
        "      timeout_s: 120\n",
        "      timeout_s: 120\n      params: {access_token: sk-live-123}\n",
        "sk-live-123",
        "params.access_token looks like a secret; write it as {env: VAR_NAME}",
    ),
    Case(
        "credentials in api_base",
        'api_base: "http://127.0.0.1:${FLOORGATE_LOCAL_MODEL_PORT:-8081}/v1"',
        'api_base: "http://me:sk-live-123@127.0.0.1:${FLOORGATE_LOCAL_MODEL_PORT:-8081}/v1"',
        "sk-live-123",
        "api_base carries credentials; remove them from the URL",
    ),
    Case(
        "unknown field",
        "    capability-first:\n",
        "    capability-first:\n      pol: []\n",
        "pol: []",
        "unknown field 'pol'; check its spelling or remove it",
    ),
    Case(
        "policy test that fails",
        "{workflow: draft-generation, expect: capability-first}",
        "{workflow: draft-generation, expect: calibration-first}",
        "workflow: draft-generation, expect",
        "test expects workflow 'draft-generation' to route to 'calibration-first', but the tree "
        "took: reversible? yes (declared) -> human_reviewed? yes (declared) -> throughput_bound? "
        "yes (declared) -> route capability-first; fix the tree",
    ),
    Case(
        "policy test naming an undeclared workflow",
        "{workflow: deploy-pipeline, expect",
        "{workflow: deploy-pipline, expect",
        "deploy-pipline",
        "test names workflow 'deploy-pipline', which is not declared",
    ),
    Case(
        "policy test with both a workflow and traits",
        "{workflow: deploy-pipeline, expect",
        "{workflow: deploy-pipeline, traits: {}, expect",
        "{workflow: deploy-pipeline, traits",
        "a test names either a workflow or traits (not both, not neither)",
    ),
    Case(
        "a key's limit looser than its workflow's",
        "      traits: {reversible: false}\n",
        "      traits: {reversible: false}\n      limits:\n        requests_per_minute: 60\n"
        "        keys:\n          ci-bot: {requests_per_minute: 600}\n",
        "ci-bot: {requests_per_minute: 600}",
        "key 'ci-bot' may not loosen workflow 'deploy-pipeline': its requests_per_minute 600 "
        "is above the workflow's 60; lower it to at most 60",
    ),
    Case(
        "a key failing open where its workflow fails closed",
        "      traits: {reversible: false}\n",
        "      traits: {reversible: false}\n      limits:\n"
        "        spend_per_day: {max: 50, when_store_down: fail_closed}\n"
        "        keys:\n          ci-bot:\n            spend_per_day: 5\n",
        "spend_per_day: 5",
        "key 'ci-bot' may not loosen workflow 'deploy-pipeline': its spend_per_day fails open",
    ),
    Case(
        "a limit that is not positive",
        "      traits: {reversible: false}\n",
        "      traits: {reversible: false}\n      limits: {tokens_per_minute: 0}\n",
        "tokens_per_minute: 0",
        "tokens_per_minute.max: Input should be greater than 0",
    ),
    Case(
        "a wait longer than the whole call",
        "      timeout_s: 120\n",
        "      timeout_s: 120\n      queue_timeout_s: 300\n",
        "queue_timeout_s: 300",
        "model 'local-fast': queue_timeout_s 300 s is longer than its timeout_s 120 s, which "
        "bounds the whole call; lower it to at most 120",
    ),
    Case(
        "the direct path's queue on a model litellm calls",
        "      timeout_s: 120\n",
        "      timeout_s: 120\n      transport: litellm\n      max_queued: 8\n",
        "max_queued: 8",
        "model 'local-fast': max_queued applies to the direct path only, and this model is "
        "called through litellm",
    ),
    Case(
        "a character YAML does not allow",
        "  default_workflow: deploy-pipeline\n",
        "  default_workflow: deploy-pipeline\x07\n",
        "default_workflow",
        "invalid YAML: special characters are not allowed; remove it",
    ),
]


def test_every_shipped_policy_is_clean_and_tests_every_workflow() -> None:
    paths = [ROOT / "policies", SHIPPED, EXAMPLES / "providers.yaml", EXAMPLES / "customer-data"]
    result = floorgate("check", *paths)
    assert result.returncode == 0, result.stdout + result.stderr
    assert result.stdout.count(": ok (policy ") == len(paths)
    assert "note:" not in result.stdout  # every shipped workflow has a test
    assert set(EXAMPLES.iterdir()) == {EXAMPLES / "providers.yaml", EXAMPLES / "customer-data"}


def test_each_problem_points_at_its_line_and_says_what_to_change(tmp_path: Path) -> None:
    text = SHIPPED.read_text()
    paths = []
    for i, case in enumerate(CASES):
        assert case.old in text, f"{case.name}: {case.old!r} is not in {SHIPPED}"
        path = tmp_path / f"case{i}.yaml"
        path.write_text(text.replace(case.old, case.new, 1))
        paths.append(path)
    result = floorgate("check", *paths)
    assert result.returncode == 1
    lines = result.stdout.splitlines()
    for case, path in zip(CASES, paths, strict=True):
        found = [line for line in lines if line.startswith(f"{path}:")]
        where = f"{path}:{line_of(path, case.at)}:"
        assert any(line.startswith(where) and case.says in line for line in found), (
            f"{case.name}: expected {where} ... {case.says!r} in:\n" + "\n".join(found)
        )
        assert f"{path}: 1 problem(s)" in found[-1], case.name
    assert "sk-live-123" not in "\n".join(line for line in lines if "problem(s)" not in line)


def test_an_upstream_the_environments_proxy_cannot_reach_is_refused_at_its_line(
    tmp_path: Path,
) -> None:
    path = tmp_path / "policy.yaml"
    path.write_text(SHIPPED.read_text())
    socks = {"HTTP_PROXY": "socks5://floorgate:pr0xy-secret@socks.internal:1080"}
    result = floorgate("check", path, env=socks)
    assert result.returncode == 1
    at = line_of(path, 'api_base: "http://127.0.0.1')
    assert f"{path}:{at}:" in result.stdout
    assert "model 'local-fast': the proxy socks5://socks.internal:1080 is not http://" in (
        result.stdout
    )
    assert "list its host in NO_PROXY, use an http:// proxy, or set transport: litellm" in (
        result.stdout
    )
    assert "pr0xy-secret" not in result.stdout + result.stderr
    # Listed in NO_PROXY, or behind an http:// proxy, the same upstream is fine.
    assert floorgate("check", path, env={**socks, "NO_PROXY": "127.0.0.1"}).returncode == 0
    http = {"HTTP_PROXY": "http://floorgate:pr0xy-secret@proxy.internal:3128"}
    assert floorgate("check", path, env=http).returncode == 0


def test_a_name_defined_in_two_files_points_at_both(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SHIPPED.read_text())
    team = tmp_path / "b.yaml"
    team.write_text(TEAM_FILE.replace("triage:", "deploy-pipeline:", 1))
    result = floorgate("check", tmp_path)
    assert result.returncode == 1
    first = f"{tmp_path / 'a.yaml'}:{line_of(tmp_path / 'a.yaml', '    deploy-pipeline:')}:"
    assert f"{team}:6:5: 'spec.workflows.deploy-pipeline' is already defined at {first}" in (
        result.stdout
    )
    assert "define each name once across the policy files" in result.stdout


def test_each_file_carries_its_own_tests_and_failures_point_into_it(tmp_path: Path) -> None:
    (tmp_path / "a.yaml").write_text(SHIPPED.read_text())
    team = tmp_path / "b.yaml"
    team.write_text(TEAM_FILE)
    result = floorgate("check", tmp_path)
    assert result.returncode == 1
    [problem] = [line for line in result.stdout.splitlines() if "test expects" in line]
    assert problem.startswith(f"{team}:9:7: test expects workflow 'triage' to route to ")
    assert "human_reviewed? no (not declared: unsafe answer) -> route calibration-first" in problem

    team.write_text(TEAM_FILE.replace("    - {workflow: triage, expect: capability-first}\n", ""))
    result = floorgate("check", tmp_path)
    assert result.returncode == 0, result.stdout
    assert f"{len(load_policy(SHIPPED).spec.tests) + 1} test(s) pass" in result.stdout


def test_check_exit_codes(tmp_path: Path) -> None:
    missing, empty = tmp_path / "missing.yaml", tmp_path / "empty"
    empty.mkdir()
    result = floorgate("check", SHIPPED, missing, empty)
    assert result.returncode == 2
    assert f"{missing}: no such policy file or directory" in result.stderr
    assert f"{empty}: no *.yaml policy files in this directory" in result.stderr
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHIPPED.read_text().replace("pool: [local-fast]", "pool: [nope]"))
    assert floorgate("check", SHIPPED, bad).returncode == 1
    assert floorgate("check", env={"FLOORGATE_POLICIES": str(bad)}).returncode == 1
    assert floorgate("check", env={"FLOORGATE_POLICIES": str(SHIPPED)}).returncode == 0


def test_a_policy_that_fails_its_own_tests_does_not_load(tmp_path: Path) -> None:
    bad = tmp_path / "policy.yaml"
    bad.write_text(
        SHIPPED.read_text().replace(
            "{workflow: deploy-pipeline, expect: calibration-first}",
            "{workflow: deploy-pipeline, expect: capability-first}",
        )
    )
    with pytest.raises(PolicyError, match="test expects workflow 'deploy-pipeline'"):
        load_policy(bad)
    result = floorgate("serve", env={"FLOORGATE_POLICIES": str(bad), "FLOORGATE_PORT": "0"})
    assert result.returncode == 2
    assert f"{bad}:{line_of(bad, 'workflow: deploy-pipeline, expect')}:" in result.stderr


def test_explain_shows_each_question_the_route_and_the_model() -> None:
    result = floorgate("explain", "deploy-pipeline", "--policies", SHIPPED)
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "workflow deploy-pipeline: declared in the policy" in out
    assert "  1. reversible? no, declared  (Actions are reversible" in out
    assert "  -> route calibration-first" in out
    assert "  1. local-careful (openai_compatible smollm2): serves now" in out
    assert "model: local-careful" in out

    result = floorgate("explain", "no-such-workflow", "--policies", SHIPPED)
    assert "workflow 'no-such-workflow' is not declared: routed as the default" in result.stdout


def test_explain_with_traits_shows_given_and_unsafe_answers() -> None:
    result = floorgate(
        "explain", "deploy-pipeline", "--trait", "reversible=true", "--trait",
        "human_reviewed=yes", env={"FLOORGATE_POLICIES": str(SHIPPED)},
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert "reversible? yes, given with --trait" in result.stdout
    assert "throughput_bound? no, not declared: unsafe answer" in result.stdout
    assert "  -> route calibration-first" in result.stdout
    result = floorgate(
        "explain", "bulk-summarization", "--policies", EXAMPLES / "providers.yaml",
    )  # fmt: skip
    assert "gpt-fast (openai gpt-4.1-mini): not usable: OPENAI_API_KEY not set" in result.stdout
    assert "model: none: No model of route 'capability-first' can be called" in result.stdout


def test_explain_refuses_unknown_traits_and_broken_policies(tmp_path: Path) -> None:
    result = floorgate("explain", "x", "--trait", "reversibel=true", "--policies", SHIPPED)
    assert result.returncode == 2
    assert "declares no trait reversibel; it declares: reversible," in result.stderr
    assert floorgate("explain", "x", "--trait", "reversible", "--policies", SHIPPED).returncode == 2
    bad = tmp_path / "bad.yaml"
    bad.write_text(SHIPPED.read_text().replace("pool: [local-fast]", "pool: [nope]"))
    result = floorgate("explain", "x", "--policies", bad)
    assert result.returncode == 2
    assert f"{bad}:{line_of(bad, 'pool: [nope]')}:" in result.stderr


def test_the_readmes_limits_example_passes_check(tmp_path: Path) -> None:
    limits_section = (ROOT / "README.md").read_text().split("\n## Limits\n", 1)[1]
    example = yaml.safe_load(limits_section.split("```yaml\n", 1)[1].split("```", 1)[0])
    policy = yaml.safe_load(SHIPPED.read_text())
    policy["spec"]["workflows"].update(example["workflows"])
    file = tmp_path / "limits.yaml"
    file.write_text(yaml.safe_dump(policy))
    limits = load_policy(file).spec.workflows["deploy-pipeline"].limits
    assert limits is not None and limits.keys["ci-bot"].requests_per_minute.max == 60  # type: ignore[union-attr]
