"""The command line: argparse, global options, dispatch and error reporting."""

from __future__ import annotations

import argparse
import math
import shlex
import sys
from typing import Any, Callable

from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError

from immutable_deploy.domain.errors import TransientAwsError
from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.aws import DEFAULT_STACK, Aws, CliError
from immutable_deploy.cli.commands import approval, deploy, history, rollback, status, window
from immutable_deploy.cli.commands.common import Context

DESCRIPTION = """\
Immutable blue/green deployments of EC2 applications: start, follow, approve, roll back and
inspect the Immutable Deploy state machines.

The state machines, state table and profile parameters are found from the outputs of the
CloudFormation stack (--stack, default ImmutableDeploy) unless given explicitly. Works against
any endpoint (--endpoint-url or AWS_ENDPOINT_URL)."""

DEPLOY_HELP = """\
Validate the request locally with the workflow's own rules and model (--profile may set only the
fields the stored profile of APP makes overridable, and is merged over it; a bad request starts
nothing), start an execution named
<app>-<version>-<UTC time>-<random>, and follow it. --git-ref defaults to refs/tags/VERSION;
--commit defaults to that ref's commit in the git repository of the working directory, else its
HEAD (outside a git repository --commit is required). Ctrl-C stops following, not the deployment."""


def number(kind: type, low: float, high: float, *, above: bool = False) -> Callable[[str], Any]:
    """An argparse ``type`` for a numeric option: ``kind`` (int or float) from ``low`` (excluded
    with ``above``) to ``high``. Anything else is a usage error (exit 2) that says what is expected,
    instead of a traceback once the command has started."""
    noun = "an integer" if kind is int else "a number"
    wanted = f"{noun} above {low:g} and at most {high:g}" if above else f"{noun} from {low:g} to {high:g}"

    def parse(text: str) -> Any:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}") from None
        if not math.isfinite(value) or value < low or (above and value == low) or value > high:
            raise argparse.ArgumentTypeError(f"{text!r} is not {wanted}")
        return value

    return parse


#: seconds between two polls while following: not so short that it hammers the Step Functions API
POLL_SECONDS = number(float, 0.01, 3600)
#: simulated seconds per real second (local up, the demo)
SPEEDUP = number(float, 0, 100_000, above=True)


def _common(parser: argparse.ArgumentParser, suppress: bool) -> None:
    """Global options, accepted before and after the command (defaults live on the top parser)."""
    d = (lambda v: argparse.SUPPRESS) if suppress else (lambda v: v)
    g = parser.add_argument_group("AWS and stack")
    g.add_argument("--region", default=d(None), help="AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)")
    g.add_argument(
        "--endpoint-url",
        default=d(None),
        metavar="URL",
        help="send every AWS call to this endpoint (default: AWS_ENDPOINT_URL)",
    )
    g.add_argument(
        "--stack", default=d(DEFAULT_STACK), help=f"stack whose outputs locate everything (default {DEFAULT_STACK})"
    )
    g.add_argument(
        "--deploy-arn", default=d(None), metavar="ARN", help="deploy state machine (instead of the stack output)"
    )
    g.add_argument(
        "--rollback-arn", default=d(None), metavar="ARN", help="rollback state machine (instead of the stack output)"
    )
    g.add_argument("--table", default=d(None), metavar="NAME", help="state table (instead of the stack output)")
    g.add_argument(
        "--poll-seconds",
        type=POLL_SECONDS,
        default=d(None),
        metavar="S",
        help="seconds between two polls while following, 0.01 to 3600 (default 2)",
    )


def _follow_options(parser: argparse.ArgumentParser) -> None:
    wait = parser.add_mutually_exclusive_group()
    wait.add_argument(
        "--wait", dest="wait", action="store_true", default=True, help="follow the execution until it ends (default)"
    )
    wait.add_argument("--no-wait", dest="wait", action="store_false", help="start it and return (exit 0 once started)")
    parser.add_argument(
        "--json", action="store_true", help="print one JSON result on stdout at the end; progress goes to stderr"
    )


def _version() -> str:
    """The installed package's version (``unknown`` when run from a tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("immutable-deploy")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="immutable-deploy",
        description=DESCRIPTION,
        epilog=exitcodes.EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    _common(parser, suppress=False)
    parser.add_argument("--version", action="version", version=f"immutable-deploy {_version()}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND", required=True)

    def command(name: str, help_text: str, description: str | None = None) -> argparse.ArgumentParser:
        p = sub.add_parser(
            name,
            help=help_text,
            description=description or help_text,
            epilog=exitcodes.EPILOG,
            formatter_class=argparse.RawDescriptionHelpFormatter,
        )
        _common(p, suppress=True)
        return p

    p = command("deploy", "deploy a release of an app and follow it", DEPLOY_HELP)
    p.add_argument("app", metavar="APP")
    p.add_argument("version", metavar="VERSION")
    p.add_argument("--git-ref", help="branch or tag of the release (default refs/tags/VERSION)")
    p.add_argument("--commit", help="commit id, 7-40 hex digits (default: from the local git repository)")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="a profile (YAML or JSON): the stored profile's overridable fields, merged over it "
        "field by field (for an app without a stored profile, the whole profile)",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="deploy even if this release (version and commit) serves already; without it such a "
        "deployment changes nothing and ends ALREADY_DEPLOYED",
    )
    _follow_options(p)
    p.set_defaults(handler=deploy.deploy)

    p = command("approve", "approve the deployment of APP that waits for approval")
    p.add_argument("app", metavar="APP")
    p.add_argument("--comment", default="", help="recorded with the approval")
    p.set_defaults(handler=approval.approve, json=False)

    p = command("reject", "reject the deployment of APP that waits for approval (staging is cleaned up)")
    p.add_argument("app", metavar="APP")
    p.add_argument("--reason", required=True, help="why (recorded in the execution's cause)")
    p.set_defaults(handler=approval.reject, json=False)

    p = command(
        "promote",
        "end the bake window of APP's deployment now: it is done (no more waiting on its alarms)",
    )
    p.add_argument("app", metavar="APP")
    p.add_argument("--json", action="store_true", help="print the result as JSON on stdout")
    p.set_defaults(handler=window.promote)

    p = command(
        "rollback",
        "put the kept group of APP back in service and follow it",
        "Start the rollback state machine for APP: the most recently retired kept group serves "
        "again. Traffic targets come from the stored profile, or from --profile FILE. While a deployment of APP "
        "is in its bake window, it rolls that deployment back instead (blue, still warm, serves again). A "
        "rollback away from a release that ran an irreversible migration is refused without --force.",
    )
    p.add_argument("app", metavar="APP")
    p.add_argument(
        "--profile",
        metavar="FILE",
        help="a profile (YAML or JSON) whose timing (and, for an app without a stored profile, traffic) to use",
    )
    p.add_argument(
        "--force",
        action="store_true",
        help="roll back even past an irreversible migration of the serving release (profile migrations)",
    )
    _follow_options(p)
    p.set_defaults(handler=rollback.rollback)

    p = command("status", "what serves APP now, what is kept for rollback, what is running")
    p.add_argument("app", metavar="APP")
    p.add_argument("--json", action="store_true", help="print the status as JSON on stdout")
    p.set_defaults(handler=status.status)

    p = command("history", "past deployments and rollbacks of APP, newest first")
    p.add_argument("app", metavar="APP")
    p.add_argument(
        "--limit",
        type=number(int, 1, 2000),
        default=20,
        metavar="N",
        help="at most N executions, 1 to 2000 (default 20)",
    )
    p.add_argument("--json", action="store_true", help="print the executions and next_page as JSON on stdout")
    p.add_argument("--page", metavar="TOKEN", help="the next page: the token the previous page printed")
    p.add_argument("--timeline", metavar="FILE.html", help="write one execution's timeline there as an HTML page")
    p.add_argument("--execution", metavar="NAME", help="with --timeline: this execution (default: the newest)")
    p.set_defaults(handler=history.history)

    _local_commands(sub)
    _profile_commands(sub)
    return parser


LOCAL_UP_HELP = """\
Serve an AWS endpoint on 127.0.0.1 (moto's server in this process, with state machines that really
execute and the project's Lambda handlers running in it), deploy the synthesized stack into it and
seed a sample world: a VPC with two subnets, security groups, a base image, a classic ELB and an ALB
target group, and a blue group web at --blue-version with three instances serving; the profile of
web is stored as the stack stores inventory/web.yaml. AWS's pace (pending images, booting instances,
health checks, draining) is simulated on a clock --speedup times faster than real time. Runs until
Ctrl-C or SIGTERM.

--scenario KEY=VALUE (repeatable) injects faults:
  spot_capacity_refused=t3.medium,t3a.medium   spot RunInstances refused (* for every type)
  on_demand_capacity_refused=m5.large          on-demand RunInstances refused
  spot_interruption_after_seconds=60           the staging spot instance is interrupted (simulated s)
  image_fails=true                             images end 'failed'
  unhealthy_versions=2.1.0                     instances of these versions never become healthy
  ready_command_failures=2                     the first N SSM command invocations fail
  throttle=DescribeImages:3                    the first N calls of an operation are throttled"""


def _profile_commands(sub: Any) -> None:
    """``profile``: inventory files checked and described without AWS."""
    from immutable_deploy.cli.commands import profile

    group = sub.add_parser(
        "profile",
        help="check an inventory file, or print its JSON Schema (no AWS needed)",
        description="An app's stored profile (inventory/<app>.yaml), checked as the stack's synth checks it.",
    )
    commands_ = group.add_subparsers(dest="profile_command", metavar="COMMAND", required=True)
    p = commands_.add_parser(
        "check",
        help="every problem of an inventory file, one line each with its field (exit 3 if any)",
        description="Check FILE (inventory/<app>.yaml or .json) as `cdk synth` does: every field, the "
        "overridable list, the required fields a request may not set, its size. Exit 0 when it is valid, 3 "
        "when it is not.",
    )
    p.add_argument("file", metavar="FILE")
    p.add_argument("--json", action="store_true", help='print {"file", "app", "problems": [...]} on stdout')
    p.set_defaults(local_handler=profile.check)
    p = commands_.add_parser(
        "schema",
        help="print the JSON Schema of an inventory file (for editors: # yaml-language-server: $schema=...)",
    )
    p.set_defaults(local_handler=profile.schema)


def _local_commands(sub: Any) -> None:
    """``local``: the built-in local AWS (imported only when used: it needs the dev dependencies)."""
    local = sub.add_parser(
        "local",
        help="a local AWS to try Immutable Deploy on, without an AWS account",
        description="The built-in local AWS: moto with the Immutable Deploy stack and "
        "a simulator of AWS's pace and faults.",
    )
    commands_ = local.add_subparsers(dest="local_command", metavar="COMMAND", required=True)
    p = commands_.add_parser(
        "up",
        help="serve the local AWS on 127.0.0.1 until Ctrl-C",
        description=LOCAL_UP_HELP,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--port", type=number(int, 0, 65535), default=4566, help="port (default 4566; 0: any free port)")
    p.add_argument(
        "--host",
        default="127.0.0.1",
        choices=("127.0.0.1", "::1", "localhost"),
        help="loopback address to listen on (default 127.0.0.1)",
    )
    p.add_argument(
        "--speedup",
        type=SPEEDUP,
        default=60.0,
        metavar="N",
        help="simulated seconds per real second, above 0 and at most 100000 (default 60)",
    )
    p.add_argument(
        "--scenario", action="append", default=[], metavar="KEY=VALUE", help="a fault to simulate (see above)"
    )
    p.add_argument(
        "--blue-version",
        default="1.0.0",
        metavar="VERSION",
        help="version of the group serving at the start (default 1.0.0)",
    )
    p.add_argument(
        "--approval", action="store_true", help="web's stored profile requires approval of the staging instance"
    )
    p.add_argument(
        "--timeline",
        metavar="FILE",
        help="on stop, write the simulator's timeline there as JSON (FILE.html: the newest execution's page)",
    )
    p.add_argument(
        "--events",
        action="store_true",
        help="print the simulated AWS's events as they happen (instances, images, health, ...)",
    )
    p.add_argument("--verbose", action="store_true", help="log every request, and the handlers' logs")
    p.set_defaults(local_handler=_local_up)


def _local_up(args: Any) -> int:
    from immutable_deploy.localaws.server import up

    return up(args)


def _prefix(args: Any) -> str:
    """``immutable-deploy`` with the global options given, for the commands the tool prints."""
    words = ["immutable-deploy"]
    for option, value in (
        ("--region", args.region),
        ("--endpoint-url", args.endpoint_url),
        ("--stack", args.stack if args.stack != DEFAULT_STACK else None),
        ("--deploy-arn", args.deploy_arn),
        ("--rollback-arn", args.rollback_arn),
        ("--table", args.table),
    ):
        if value:
            words += [option, shlex.quote(value)]
    return " ".join(words)


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    try:
        args = parser.parse_args(argv)
    except SystemExit as exc:  # --help (0) and usage errors (2)
        return exc.code if isinstance(exc.code, int) else exitcodes.USAGE
    if getattr(args, "local_handler", None) is not None:
        return int(args.local_handler(args))
    as_json = bool(getattr(args, "json", False))
    out = sys.stderr if as_json else sys.stdout
    try:
        aws = Aws(
            region=args.region,
            endpoint_url=args.endpoint_url,
            stack=args.stack,
            deploy_arn_option=args.deploy_arn,
            rollback_arn_option=args.rollback_arn,
            table_option=args.table,
        )
        ctx = Context(
            aws=aws, json=as_json, out=out, stdout=sys.stdout, prefix=_prefix(args), poll_seconds=args.poll_seconds
        )
        return int(args.handler(ctx, args))
    except CliError as exc:
        sys.stderr.write(f"immutable-deploy: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write("immutable-deploy: interrupted\n")
        return exitcodes.FOLLOW_STOPPED
    except (NoCredentialsError, NoRegionError) as exc:
        sys.stderr.write(f"immutable-deploy: error: {exc}\n")
        return exitcodes.ERROR
    except ClientError as exc:
        sys.stderr.write(f"immutable-deploy: AWS error: {exc}\n")
        return exitcodes.ERROR
    except TransientAwsError as exc:  # the domain's code that a command runs: throttling, 5xx, no connection
        sys.stderr.write(f"immutable-deploy: AWS error: {exc.__cause__ or exc}\n")
        return exitcodes.ERROR
    except BotoCoreError as exc:
        sys.stderr.write(f"immutable-deploy: AWS error: {exc}\n")
        return exitcodes.ERROR
