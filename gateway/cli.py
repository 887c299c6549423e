"""The `floorgate` command: serve | check | explain."""

from __future__ import annotations

import argparse
import logging
import sys
from pathlib import Path

from pydantic import ValidationError

from gateway.policy.loader import PolicyError, PolicyReadError, load_policy
from gateway.policy.tree import decide
from gateway.settings import Settings

log = logging.getLogger("floorgate")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="floorgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("serve", help="run the gateway (configured by FLOORGATE_* variables)")
    check = commands.add_parser("check", help="validate policy files; exit 0 clean, 1, 2")
    check.add_argument("paths", nargs="*", type=Path, help="files or directories")
    explain = commands.add_parser("explain", help="show the path a workflow takes")
    explain.add_argument("workflow")
    explain.add_argument("--policies", type=Path, help="default: FLOORGATE_POLICIES")
    args = parser.parse_args(argv)
    try:
        if args.command == "serve":
            return serve(Settings())
        if args.command == "check":
            return check_policies(args.paths or [Settings().policies])
        return explain_workflow(args.workflow, args.policies or Settings().policies)
    except ValidationError as exc:
        print(f"floorgate: invalid settings:\n{exc}", file=sys.stderr)
        return 2


def serve(settings: Settings) -> int:
    import uvicorn

    from gateway.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        app = create_app(settings)
    except PolicyError as exc:
        print(f"floorgate: the policy is not valid, not starting:\n{exc}", file=sys.stderr)
        return 2
    except (PolicyReadError, OSError, ValueError) as exc:
        print(f"floorgate: cannot start: {exc}", file=sys.stderr)
        return 2
    if app.runtime.keys.open:
        if not settings.binds_loopback_only:
            print(
                f"floorgate: refusing to listen on {settings.host} with no API keys; set "
                "FLOORGATE_API_KEYS or FLOORGATE_KEYS_FILE, or bind to 127.0.0.1.",
                file=sys.stderr,
            )
            return 2
        log.warning("no API keys configured: serving without authentication, on loopback only")
    policy = app.runtime.policies.current
    log.info("policy %s version %s from %s", policy.name, policy.version, ", ".join(policy.files))
    uvicorn.run(
        app,
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http="httptools",
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
    )
    return 0


def check_policies(paths: list[Path]) -> int:
    worst = 0
    for path in paths:
        try:
            policy = load_policy(path)
        except PolicyReadError as exc:
            print(exc, file=sys.stderr)
            worst = 2
        except PolicyError as exc:
            print(exc)
            worst = max(worst, 1)
        else:
            print(f"{path}: ok (policy {policy.name}, version {policy.version})")
    return worst


def explain_workflow(workflow: str, path: Path) -> int:
    try:
        policy = load_policy(path)
    except (PolicyError, PolicyReadError) as exc:
        print(exc, file=sys.stderr)
        return 2
    spec = policy.spec
    declared = workflow in spec.workflows
    name = workflow if declared else spec.default_workflow
    if not declared:
        print(f"workflow '{workflow}' is not declared: it routes as '{name}' (the default)")
    decision = decide(spec, spec.workflows[name].traits)
    for step in decision.path:
        source = "declared" if step.declared else "not declared: unsafe answer"
        answer = "yes" if step.answer else "no"
        print(f"  {step.node}: {step.trait}? {answer} ({source})")
    print(f"  -> route {decision.route}: pool {', '.join(spec.routes[decision.route].pool)}")
    return 0
