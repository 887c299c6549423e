"""The `floorgate` command: serve | check | explain | schema | classify | eval."""

from __future__ import annotations

import argparse
import contextlib
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Any

from pydantic import ValidationError

from gateway.classify import classify_lines
from gateway.eval.commands import add_eval_commands
from gateway.eval.schema import render_tickets_schema
from gateway.explain import as_text, explain_workflow
from gateway.limits_report import limits_text
from gateway.policy.compiled import Policy
from gateway.policy.loader import PolicyError, PolicyReadError, load_policy
from gateway.policy.schema import render_schema
from gateway.selection import Health
from gateway.settings import Settings

log = logging.getLogger("floorgate")
ANSWERS = {"true": True, "yes": True, "1": True, "false": False, "no": False, "0": False}


def main(argv: list[str] | None = None) -> int:
    args = _parser().parse_args(argv)
    try:
        code: int = args.run(args)
    except ValidationError as exc:
        print(f"floorgate: invalid settings:\n{exc}", file=sys.stderr)
        return 2
    return code


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="floorgate", description=__doc__)
    commands = parser.add_subparsers(dest="command", required=True)
    serve_p = commands.add_parser(
        "serve", help="run the gateway (configured by FLOORGATE_* variables)"
    )
    serve_p.set_defaults(run=lambda args: serve(Settings()))
    check_p = commands.add_parser(
        "check",
        help="validate policies and run their tests; exit 0 clean, 1 problems, 2 unreadable",
    )
    check_p.add_argument(
        "paths", nargs="*", type=Path, help="files or directories (one policy each)"
    )
    check_p.set_defaults(run=lambda args: check_policies(args.paths or [Settings().policies]))
    explain_p = commands.add_parser("explain", help="show the path a workflow takes, and its model")
    explain_p.add_argument("workflow")
    explain_p.add_argument(
        "--trait", action="append", type=_trait, default=[], metavar="NAME=true|false",
        help="answer a question differently from the workflow (repeatable)",
    )  # fmt: skip
    explain_p.add_argument("--policies", type=Path, help="default: FLOORGATE_POLICIES")
    explain_p.set_defaults(run=_explain)
    schema_p = commands.add_parser("schema", help="print the policies' JSON Schema")
    schema_p.add_argument("-o", "--output", type=Path, help="write it here instead")
    schema_p.add_argument(
        "--tickets", action="store_true", help="the evaluation tickets file's schema instead"
    )
    schema_p.set_defaults(run=lambda args: write_schema(args.output, args.tickets))
    classify_p = commands.add_parser(
        "classify",
        help='label JSON lines on stdin, {"prompt", "response"}: one {label, kind, source, '
        "evidence} line out per line in",
    )
    classify_p.set_defaults(run=lambda args: classify_lines(sys.stdin, sys.stdout))
    add_eval_commands(commands)
    return parser


def _trait(text: str) -> tuple[str, bool]:
    name, _, value = text.partition("=")
    if not name or value.lower() not in ANSWERS:
        raise argparse.ArgumentTypeError(f"'{text}': write NAME=true or NAME=false")
    return name, ANSWERS[value.lower()]


def _explain(args: Any) -> int:
    return explain(args.workflow, args.policies or Settings().policies, dict(args.trait))


# Connections the kernel may hold for the gateway to accept; it caps this at net.core.somaxconn
# (4,096 here). uvicorn's 2,048 overflowed at 880 streams/s: the kernel drops the handshakes
# beyond it and later resets them, each with a request sent that the gateway never read.
LISTEN_BACKLOG = 65535


def serve(settings: Settings) -> int:
    import uvicorn
    from uvicorn.config import STARTUP_FAILURE

    from gateway.api.listener import Server
    from gateway.api.server import head_limited
    from gateway.app import create_app

    logging.basicConfig(
        level=settings.log_level.upper(), format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    try:
        # uvicorn's default for the proxies it trusts, applied to the FastAPI part only.
        forwarded_from = os.environ.get("FORWARDED_ALLOW_IPS", "127.0.0.1,::1")
        app = create_app(settings, sighup=True, forwarded_from=forwarded_from)
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
    # uvicorn drains the open requests on SIGTERM, then raises the signal again: with the
    # default handler the process would die of it (exit -15) after a clean stop.
    signal.signal(signal.SIGTERM, _stopped)
    policy = app.runtime.policies.current
    log.info("policy %s version %s from %s", policy.name, policy.version, ", ".join(policy.files))
    config = uvicorn.Config(
        app.boundary,  # the app's ASGI entry, without the frame of its __call__
        host=settings.host,
        port=settings.port,
        loop="uvloop",
        http=head_limited(
            settings.max_header_bytes,
            settings.client_header_timeout_s,
            accepted=app.runtime.overload.accepted,  # the accept queue's wait, to the rule
        ),
        log_level=settings.log_level,
        access_log=False,
        server_header=False,
        proxy_headers=False,  # the app applies them where they are read (gateway/app.py)
        backlog=LISTEN_BACKLOG,
    )
    server = Server(config)  # every queued connection accepted a turn, not one
    # uvicorn raises SIGINT again after its clean stop, as it does SIGTERM
    with contextlib.suppress(KeyboardInterrupt):
        server.run()
    return 0 if server.started else STARTUP_FAILURE


def _stopped(signum: int, frame: object) -> None:
    raise SystemExit(0)


def check_policies(paths: list[Path]) -> int:
    """Check each path as one policy, as serve would: 0 clean, 1 problems, 2 unreadable."""
    return max(_check(path) for path in paths)


def _check(path: Path) -> int:
    try:
        policy = load_policy(path)
    except PolicyReadError as exc:
        print(f"floorgate: {exc}", file=sys.stderr)
        return 2
    except PolicyError as exc:
        print(exc)
        print(f"{path}: {len(exc.problems)} problem(s); the gateway would refuse this policy")
        return 1
    tests = len(policy.spec.tests)
    print(f"{path}: ok (policy {policy.name}, version {policy.version}, {tests} test(s) pass)")
    untested = _untested(policy)
    if untested:
        print(f"{path}: note: no test names workflow {', '.join(untested)}; add one to spec.tests")
    return 0


def _untested(policy: Policy) -> list[str]:
    tested = {test.workflow for test in policy.spec.tests}
    return sorted(set(policy.spec.workflows) - tested)


def explain(workflow: str, path: Path, given: dict[str, bool]) -> int:
    try:
        policy = load_policy(path)
    except (PolicyError, PolicyReadError) as exc:
        print(exc, file=sys.stderr)
        return 2
    unknown = sorted(set(given) - set(policy.spec.traits))
    if unknown:
        print(
            f"floorgate: the policy declares no trait {', '.join(unknown)}; it declares: "
            f"{', '.join(policy.spec.traits)}",
            file=sys.stderr,
        )
        return 2
    # A fresh process has seen no failures: health is only known to a running gateway.
    print(as_text(explain_workflow(policy, workflow, given, Health())))
    print("(model health is known only to a running gateway: POST /v1/route/explain)")
    print("\n".join(limits_text(policy, workflow, Settings())))
    return 0


def write_schema(output: Path | None, tickets: bool = False) -> int:
    text = render_tickets_schema() if tickets else render_schema()
    if output is None:
        sys.stdout.write(text)
        return 0
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(text, encoding="utf-8")
    print(f"wrote {output}")
    return 0
