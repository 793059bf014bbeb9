"""The command line on click: the global options, the commands and their sections, dispatch and error
reporting. Each command is a thin function over its module in :mod:`immutable_deploy.cli.commands`,
which receives ``(ctx: Context, args)`` with ``args`` the parsed options as attributes."""

from __future__ import annotations

import math
import shlex
import sys
from types import SimpleNamespace
from typing import Any, Callable

import click
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError, NoRegionError, ProfileNotFound

from immutable_deploy.cli import exitcodes
from immutable_deploy.cli.aws import DEFAULT_STACK, Aws, CliError
from immutable_deploy.cli.commands.common import Context
from immutable_deploy.domain.errors import TransientAwsError

PROG = "immutable-deploy"
COMPLETE_VAR = "_IMMUTABLE_DEPLOY_COMPLETE"

DESCRIPTION = """\
Immutable blue/green deployments of EC2 applications: start, follow, approve, cancel, roll back and
inspect the Immutable Deploy state machines.

The state machines, state table and profile parameters are found from the outputs of the
CloudFormation stack (--stack, default ImmutableDeploy) unless given explicitly. Works against
any endpoint (--endpoint-url or AWS_ENDPOINT_URL). The global options may also follow the command."""

DEPLOY_HELP = """\
Validate the request locally with the workflow's own rules and model (--overrides may set only the
fields the stored profile of APP makes overridable, and is merged over it; a bad request starts
nothing), start an execution named <app>-<version>-<UTC time>-<random>, and follow it.

--git-ref defaults to refs/tags/VERSION. Without --commit, the commit is that ref's in the git
repository of the working directory; when the ref is not there (or the directory is not a git
repository) it is a usage error: pass --commit. With --commit, a ref that exists locally must point
to that commit. Ctrl-C stops following, not the deployment."""


# --- option types ---------------------------------------------------------------------------------


class _Range(click.ParamType):
    """Shared by :class:`IntRange` and :class:`FloatRange`: a finite number in the range, else a usage
    error that says what is expected (and names the option)."""

    kind: type
    noun: str

    def __init__(self, low: float, high: float, *, above: bool = False) -> None:
        super().__init__(low, high, min_open=above)  # type: ignore[call-arg]
        self.low, self.high, self.above = low, high, above
        self.wanted = (
            f"{self.noun} above {low:g} and at most {high:g}" if above else f"{self.noun} from {low:g} to {high:g}"
        )

    def _describe_range(self) -> str:
        return ""  # the option's help says the range in words

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> Any:
        if isinstance(value, (int, float)) and not isinstance(value, bool):
            number = value
        else:
            try:
                number = self.kind(value)
            except (TypeError, ValueError):
                self.fail(f"{value!r} is not {self.wanted}", param, ctx)
        if not math.isfinite(number):
            self.fail(f"{value!r} is not {self.wanted}", param, ctx)
        try:
            return super().convert(number, param, ctx)
        except click.BadParameter:
            self.fail(f"{value!r} is not {self.wanted}", param, ctx)


class IntRange(_Range, click.IntRange):
    kind, noun = int, "an integer"


class FloatRange(_Range, click.FloatRange):
    kind, noun = float, "a number"


#: seconds between two polls while following: not so short that it hammers the Step Functions API
POLL_SECONDS = FloatRange(0.01, 3600)
#: seconds without a change after which the plain view says what it waits for
HEARTBEAT_SECONDS = FloatRange(5, 3600)
#: simulated seconds per real second (local up, the demo)
SPEEDUP = FloatRange(0, 100_000, above=True)


# --- global options: on the group, and accepted after the command too ------------------------------


def _store(ctx: click.Context, param: click.Parameter, value: Any) -> Any:
    """Keep a global option in ``ctx.meta`` (shared by the group's and the command's contexts) only when
    it was given: the one after the command wins over the one before it."""
    if value is not None and param.name:
        ctx.meta.setdefault("globals", {})[param.name] = value
    return value


GLOBAL_OPTIONS: list[tuple[tuple[str, ...], dict[str, Any]]] = [
    (("--region",), {"metavar": "REGION", "help": "AWS region (default: AWS_REGION / AWS_DEFAULT_REGION / profile)"}),
    (
        ("--aws-profile",),
        {"metavar": "NAME", "help": "AWS named profile of the credentials and config files (default: AWS_PROFILE)"},
    ),
    (
        ("--endpoint-url",),
        {"metavar": "URL", "help": "send every AWS call to this endpoint (default: AWS_ENDPOINT_URL)"},
    ),
    (("--stack",), {"metavar": "NAME", "help": f"stack whose outputs locate everything (default {DEFAULT_STACK})"}),
    (("--deploy-arn",), {"metavar": "ARN", "help": "deploy state machine (instead of the stack output)"}),
    (("--rollback-arn",), {"metavar": "ARN", "help": "rollback state machine (instead of the stack output)"}),
    (("--cleanup-arn",), {"metavar": "ARN", "help": "clean-up state machine (instead of the stack output)"}),
    (("--table",), {"metavar": "NAME", "help": "state table (instead of the stack output)"}),
    (
        ("--poll-seconds",),
        {
            "type": POLL_SECONDS,
            "metavar": "S",
            "help": "seconds between two polls while following, 0.01 to 3600 (default 2)",
        },
    ),
    (
        ("--heartbeat",),
        {
            "type": HEARTBEAT_SECONDS,
            "metavar": "SECONDS",
            "help": "without a terminal: at least one line every SECONDS while nothing changes, saying what "
            "is waited for, 5 to 3600 (default 60)",
        },
    ),
]
GLOBAL_NAMES = ("region", "aws_profile", "endpoint_url", "stack", "deploy_arn", "rollback_arn", "cleanup_arn", "table")


def global_options(hidden: bool) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """The global options as click options that store into ``ctx.meta`` (not passed to the function);
    listed in the group's help, accepted but not listed again after a command."""

    def decorate(f: Callable[..., Any]) -> Callable[..., Any]:
        for decls, attrs in reversed(GLOBAL_OPTIONS):
            f = click.option(*decls, default=None, expose_value=False, callback=_store, hidden=hidden, **attrs)(f)
        return f

    return decorate


def _globals() -> dict[str, Any]:
    return dict(click.get_current_context().meta.get("globals", {}))


def _prefix(given: dict[str, Any]) -> str:
    """``immutable-deploy`` with the global options given, for the commands the tool prints."""
    words = [PROG]
    for name in GLOBAL_NAMES:
        value = given.get(name)
        if value and not (name == "stack" and value == DEFAULT_STACK):
            words += ["--" + name.replace("_", "-"), shlex.quote(str(value))]
    return " ".join(words)


def _run(handler: Callable[[Context, Any], int], params: dict[str, Any]) -> int:
    """Run a command against AWS: its context from the global options, and its failures as one line
    with their exit code."""
    given = _globals()
    args = SimpleNamespace(**{name: given.get(name) for name in GLOBAL_NAMES}, **params)
    args.stack = args.stack or DEFAULT_STACK
    as_json = bool(params.get("json", False))
    out = sys.stderr if as_json else sys.stdout
    try:
        aws = Aws(
            region=args.region,
            endpoint_url=args.endpoint_url,
            stack=args.stack,
            deploy_arn_option=args.deploy_arn,
            rollback_arn_option=args.rollback_arn,
            cleanup_arn_option=args.cleanup_arn,
            table_option=args.table,
            profile_name=args.aws_profile,
        )
        ctx = Context(
            aws=aws,
            json=as_json,
            out=out,
            stdout=sys.stdout,
            prefix=_prefix(given),
            poll_seconds=given.get("poll_seconds"),
            heartbeat=given.get("heartbeat"),
        )
        return int(handler(ctx, args))
    except CliError as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exc.code
    except KeyboardInterrupt:
        sys.stderr.write(f"{PROG}: interrupted\n")
        return exitcodes.FOLLOW_STOPPED
    except ProfileNotFound as exc:
        sys.stderr.write(f"{PROG}: error: --aws-profile: {exc}\n")
        return exitcodes.USAGE
    except (NoCredentialsError, NoRegionError) as exc:
        sys.stderr.write(f"{PROG}: error: {exc}\n")
        return exitcodes.ERROR
    except ClientError as exc:
        sys.stderr.write(f"{PROG}: AWS error: {exc}\n")
        return exitcodes.ERROR
    except TransientAwsError as exc:  # the domain's code that a command runs: throttling, 5xx, no connection
        sys.stderr.write(f"{PROG}: AWS error: {exc.__cause__ or exc}\n")
        return exitcodes.ERROR
    except BotoCoreError as exc:
        sys.stderr.write(f"{PROG}: AWS error: {exc}\n")
        return exitcodes.ERROR


# --- the group and its help ------------------------------------------------------------------------

SECTIONS: list[tuple[str, list[str]]] = [
    ("Deploying", ["deploy", "watch", "approve", "reject", "promote", "cancel", "rollback"]),
    ("Inspecting", ["status", "history"]),
    ("Profiles", ["profile"]),
    ("Local AWS", ["local"]),
    ("Shell", ["completion"]),
]


class SectionedGroup(click.Group):
    """Commands listed in their order, in sections (Deploying, Inspecting, ...)."""

    def list_commands(self, ctx: click.Context) -> list[str]:
        ordered = [name for _, names in SECTIONS for name in names if name in self.commands]
        return ordered + sorted(set(self.commands) - set(ordered))

    def format_commands(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        placed: set[str] = set()
        for title, names in SECTIONS:
            rows = [(n, self.commands[n].get_short_help_str(80)) for n in names if n in self.commands]
            placed.update(names)
            if rows:
                with formatter.section(title):
                    formatter.write_dl(rows)
        rest = [(n, c.get_short_help_str(80)) for n, c in self.commands.items() if n not in placed and not c.hidden]
        if rest:
            with formatter.section("Other"):
                formatter.write_dl(rest)

    def format_epilog(self, ctx: click.Context, formatter: click.HelpFormatter) -> None:
        """The exit codes, as a table (not rewrapped), on the top-level help only."""
        if self.epilog:
            formatter.write("\n" + self.epilog)


def _version() -> str:
    """The installed package's version (``unknown`` when run from a tree that was never installed)."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return version("immutable-deploy")
    except PackageNotFoundError:
        return "unknown"


CONTEXT = {"help_option_names": ["-h", "--help"], "max_content_width": 100}


@click.group(
    cls=SectionedGroup,
    help=DESCRIPTION,
    epilog=exitcodes.EPILOG,
    context_settings=CONTEXT,
)
@global_options(hidden=False)
@click.version_option(_version(), "--version", prog_name=PROG, message="%(prog)s %(version)s")
def cli() -> None:
    pass


def command(group: click.Group, name: str, short: str, help_text: str | None = None) -> Callable[..., Any]:
    """A command of ``group`` that accepts the global options after it too (not listed in its help)."""

    def decorate(f: Callable[..., Any]) -> click.Command:
        return group.command(name, help=help_text or short, short_help=short, context_settings=CONTEXT)(
            global_options(hidden=True)(f)
        )

    return decorate


def json_option(what: str) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    return click.option("--json", "json", is_flag=True, help=what)


def follow_options(f: Callable[..., Any]) -> Callable[..., Any]:
    f = json_option("print one JSON result on stdout at the end; progress goes to stderr")(f)
    return click.option(
        "--wait/--no-wait", default=True, help="follow the execution until it ends (default), or start it and return"
    )(f)


def _no_profile(ctx: click.Context, param: click.Parameter, value: Any) -> None:
    if value is not None:
        raise click.UsageError(
            "--profile was removed: give a profile file with --overrides FILE, or an AWS named profile with "
            "--aws-profile NAME",
            ctx,
        )


def removed_profile_option(f: Callable[..., Any]) -> Callable[..., Any]:
    return click.option("--profile", hidden=True, expose_value=False, callback=_no_profile, is_eager=True)(f)


# --- deploying -------------------------------------------------------------------------------------


@command(cli, "deploy", "deploy a release of an app and follow it", DEPLOY_HELP)
@click.argument("app")
@click.argument("version")
@click.option("--git-ref", metavar="REF", help="branch or tag of the release (default refs/tags/VERSION)")
@click.option(
    "--commit",
    metavar="SHA",
    help="commit id, 7-40 hex digits (default: the commit of --git-ref in the local git repository)",
)
@click.option(
    "--overrides",
    metavar="FILE",
    help="a profile file (YAML or JSON): the stored profile's overridable fields, merged over it field by "
    "field (for an app without a stored profile, the whole profile)",
)
@removed_profile_option
@click.option(
    "--force",
    is_flag=True,
    help="deploy even if this release (version and commit) serves already; without it such a deployment "
    "changes nothing and ends ALREADY_DEPLOYED",
)
@follow_options
def deploy_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import deploy

    return _run(deploy.deploy, params)


@command(
    cli,
    "watch",
    "follow APP's running deployment, rollback or clean-up to its end",
    "Re-attach to the execution that holds APP's lock (a deployment, a rollback or a clean-up) and follow it "
    "exactly as deploy does: the same view, the same exit codes at the end. Nothing running: exit 10.",
)
@click.argument("app")
@json_option("print one JSON result on stdout at the end; progress goes to stderr")
def watch_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import control

    return _run(control.watch, params)


@command(cli, "approve", "approve the deployment of APP that waits for approval")
@click.argument("app")
@click.option("--comment", default="", help="recorded with the approval")
@json_option('print {"status": "APPROVED", "app", "execution", "version", "by"} on stdout')
def approve_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import approval

    return _run(approval.approve, params)


@command(cli, "reject", "reject the deployment of APP that waits for approval (staging is cleaned up)")
@click.argument("app")
@click.option("--reason", required=True, help="why (recorded in the execution's cause)")
@json_option('print {"status": "REJECTED", "app", "execution", "version", "by", "reason"} on stdout')
def reject_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import approval

    return _run(approval.reject, params)


@command(cli, "promote", "end the bake window of APP's deployment now: it is done (no more waiting on its alarms)")
@click.argument("app")
@json_option("print the result as JSON on stdout")
def promote_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import window

    return _run(window.promote, params)


@command(
    cli,
    "cancel",
    "stop APP's running deployment or rollback; the clean-up undoes what it did",
    "Stop the deployment or rollback of APP that runs (StopExecution, error Cancelled, with who cancelled it "
    "and --reason), then follow the clean-up the stack starts for every stopped execution: what it created "
    "is undone and what served before serves again. Asks first on a terminal; elsewhere --yes is required. "
    "Exit 0 when the clean-up succeeded; with --no-wait, once the execution is stopped.",
)
@click.argument("app")
@click.option("--reason", default="", help="why (recorded in the stopped execution's cause)")
@click.option("--yes", "-y", is_flag=True, help="do not ask for confirmation (required without a terminal)")
@follow_options
def cancel_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import control

    return _run(control.cancel, params)


@command(
    cli,
    "rollback",
    "put the kept group of APP back in service and follow it",
    "Start the rollback state machine for APP: the most recently retired kept group serves again. Traffic "
    "targets come from the stored profile, or from --overrides FILE. While a deployment of APP is in its bake "
    "window, it rolls that deployment back instead (blue, still warm, serves again). A rollback away from a "
    "release that ran an irreversible migration is refused without --force.",
)
@click.argument("app")
@click.option(
    "--overrides",
    metavar="FILE",
    help="a profile file (YAML or JSON) whose timing (and, for an app without a stored profile, traffic) to use",
)
@removed_profile_option
@click.option(
    "--force",
    is_flag=True,
    help="roll back even past an irreversible migration of the serving release (profile migrations)",
)
@follow_options
def rollback_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import rollback

    return _run(rollback.rollback, params)


# --- inspecting ------------------------------------------------------------------------------------


@command(cli, "status", "what serves APP now, what is kept for rollback, what is running")
@click.argument("app")
@json_option("print the status as JSON on stdout")
def status_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import status

    return _run(status.status, params)


@command(cli, "history", "past deployments and rollbacks of APP, newest first")
@click.argument("app")
@click.option("--limit", type=IntRange(1, 2000), default=20, metavar="N", help="at most N executions, 1 to 2000")
@click.option("--page", metavar="TOKEN", help="the next page: the token the previous page printed")
@click.option(
    "--timeline",
    metavar="FILE.html",
    help="write one execution's timeline there as a self-contained HTML page (its phases, waits, what served)",
)
@click.option("--execution", metavar="NAME", help="with --timeline: this execution (default: the newest)")
@json_option("print the executions and next_page as JSON on stdout")
def history_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import history

    return _run(history.history, params)


# --- profiles (no AWS) -----------------------------------------------------------------------------


@cli.group(
    "profile",
    short_help="check an inventory file, or print its JSON Schema (no AWS needed)",
    help="An app's stored profile (inventory/<app>.yaml), checked as the stack's synth checks it.",
    context_settings=CONTEXT,
)
def profile_group() -> None:
    pass


@profile_group.command(
    "check",
    short_help="every problem of an inventory file, one line each with its field (exit 3 if any)",
    help="Check FILE (inventory/<app>.yaml or .json) as `cdk synth` does: every field, the overridable list, "
    "the required fields a request may not set, its size. Exit 0 when it is valid, 3 when it is not.",
    context_settings=CONTEXT,
)
@click.argument("file")
@json_option('print {"file", "app", "problems": [...]} on stdout')
def profile_check_command(**params: Any) -> int:
    from immutable_deploy.cli.commands import profile

    return profile.check(SimpleNamespace(**params))


@profile_group.command(
    "schema",
    help="print the JSON Schema of an inventory file (for editors: # yaml-language-server: $schema=...)",
    context_settings=CONTEXT,
)
def profile_schema_command() -> int:
    from immutable_deploy.cli.commands import profile

    return profile.schema(SimpleNamespace())


# --- the local AWS ---------------------------------------------------------------------------------

LOCAL_UP_HELP = """\
Serve an AWS endpoint on 127.0.0.1 (moto's server in this process, with state machines that really
execute and the project's Lambda handlers running in it), deploy the synthesized stack into it and
seed a sample world: a VPC with two subnets, security groups, a base image, a classic ELB and an ALB
target group, and a blue group web at --blue-version with three instances serving; the profile of
web is stored as the stack stores inventory/web.yaml. AWS's pace (pending images, booting instances,
health checks, draining) is simulated on a clock --speedup times faster than real time. Runs until
Ctrl-C or SIGTERM.

\b
--scenario KEY=VALUE (repeatable) injects faults:
  spot_capacity_refused=t3.medium,t3a.medium   spot RunInstances refused (* for every type)
  on_demand_capacity_refused=m5.large          on-demand RunInstances refused
  spot_interruption_after_seconds=60           the staging spot instance is interrupted (simulated s)
  image_fails=true                             images end 'failed'
  unhealthy_versions=2.1.0                     instances of these versions never become healthy
  ready_command_failures=2                     the first N SSM command invocations fail
  throttle=DescribeImages:3                    the first N calls of an operation are throttled"""


@cli.group(
    "local",
    short_help="a local AWS to try Immutable Deploy on, without an AWS account",
    help="The built-in local AWS: moto with the Immutable Deploy stack and a simulator of AWS's pace and faults.",
    context_settings=CONTEXT,
)
def local_group() -> None:
    pass


@local_group.command(
    "up", short_help="serve the local AWS on 127.0.0.1 until Ctrl-C", help=LOCAL_UP_HELP, context_settings=CONTEXT
)
@click.option("--port", type=IntRange(0, 65535), default=4566, help="port (default 4566; 0: any free port)")
@click.option(
    "--host",
    default="127.0.0.1",
    type=click.Choice(["127.0.0.1", "::1", "localhost"]),
    help="loopback address to listen on (default 127.0.0.1)",
)
@click.option(
    "--speedup",
    type=SPEEDUP,
    default=60.0,
    metavar="N",
    help="simulated seconds per real second, above 0 and at most 100000 (default 60)",
)
@click.option("--scenario", multiple=True, metavar="KEY=VALUE", help="a fault to simulate (see above)")
@click.option(
    "--blue-version",
    default="1.0.0",
    metavar="VERSION",
    help="version of the group serving at the start (default 1.0.0)",
)
@click.option("--approval", is_flag=True, help="web's stored profile requires approval of the staging instance")
@click.option(
    "--timeline",
    metavar="FILE",
    help="on stop, write the simulator's timeline there as JSON (FILE.html: the newest execution's page)",
)
@click.option("--events", is_flag=True, help="print the simulated AWS's events as they happen (instances, images, ...)")
@click.option("--verbose", is_flag=True, help="log every request, and the handlers' logs")
def local_up_command(**params: Any) -> int:
    from immutable_deploy.cli.local_extras import HINT, missing

    absent = missing()
    if absent:  # an install without the [local] extra: say what to install, not an ImportError
        sys.stderr.write(f"immutable-deploy: error: {HINT} (missing: {', '.join(absent)})\n")
        return exitcodes.ERROR
    from immutable_deploy.localaws.server import up

    return int(up(local_up_args(params)))


def local_up_args(params: dict[str, Any]) -> SimpleNamespace:
    """``local up``'s options as the server's ``up(args)`` reads them."""
    return SimpleNamespace(**{**params, "scenario": list(params.get("scenario") or [])})


# --- shell completion ------------------------------------------------------------------------------


@cli.command(
    "completion",
    short_help="print the shell completion script (bash, zsh or fish)",
    help="Print the completion script of SHELL. For example, in ~/.bashrc: "
    'eval "$(immutable-deploy completion bash)"; zsh: eval "$(immutable-deploy completion zsh)"; fish: '
    "immutable-deploy completion fish > ~/.config/fish/completions/immutable-deploy.fish",
    context_settings=CONTEXT,
)
@click.argument("shell", type=click.Choice(["bash", "zsh", "fish"]))
def completion_command(shell: str) -> int:
    click.echo(completion_script(shell), nl=False)
    return exitcodes.OK


def completion_script(shell: str) -> str:
    """click's completion script of ``shell`` for this command (it calls back with ``_IMMUTABLE_DEPLOY_COMPLETE``)."""
    from click.shell_completion import get_completion_class

    completion = get_completion_class(shell)
    if completion is None:  # pragma: no cover - the Choice allows only the shells click has
        raise click.BadParameter(f"no completion for {shell}")
    source = completion(cli, {}, PROG, COMPLETE_VAR).source()
    return source if source.endswith("\n") else source + "\n"


# --- the entry point -------------------------------------------------------------------------------


def _usage_error(exc: click.UsageError) -> None:
    """A usage error as the tool reports it: the usage line, then what is wrong, naming the option."""
    if isinstance(exc, click.exceptions.NoArgsIsHelpError):  # a group without its command: its help
        sys.stderr.write(exc.format_message() + "\n")
        return
    if exc.ctx is not None:
        sys.stderr.write(exc.ctx.get_usage() + "\n")
        sys.stderr.write(f"Try '{exc.ctx.command_path} --help' for help.\n")
    message = exc.format_message()
    if isinstance(exc, click.BadParameter) and exc.param is not None and exc.param.param_type_name == "option":
        names = "/".join(exc.param.opts)
        message = f"argument {names}: {exc.message}"
    sys.stderr.write(f"{PROG}: error: {message}\n")


def main(argv: list[str] | None = None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit code (--help: 0, a
    usage error: 2, see :mod:`immutable_deploy.cli.exitcodes`)."""
    try:
        code = cli.main(args=argv, prog_name=PROG, complete_var=COMPLETE_VAR, standalone_mode=False)
    except click.UsageError as exc:
        _usage_error(exc)
        return exitcodes.USAGE
    except click.ClickException as exc:
        exc.show()
        return exc.exit_code
    except click.Abort:
        sys.stderr.write(f"{PROG}: aborted\n")
        return exitcodes.FOLLOW_STOPPED
    return int(code) if isinstance(code, int) else exitcodes.OK
