"""``immutable-deploy local up``: the local AWS as an endpoint on 127.0.0.1.

moto's server runs in a thread of this process (so the simulator's patches of moto's models and
the in-process Lambda handlers apply to what it serves), with Step Functions executing state
machines. On top of it: the simulator on a real-time compressed clock, the synthesized stack, and
the sample world with a blue group ``web`` 1.0.0 serving and the profile of ``web`` stored, so

    immutable-deploy --endpoint-url http://127.0.0.1:4566 deploy web 2.0.0 --commit abc1234

works against it, as do the AWS CLI and any SDK pointed at the endpoint.

    handle = serve(port=0, speedup=600)   # port 0: a free one
    ... handle.url ...
    handle.stop(timeline="timeline.json")

The process holds global state while it serves (os.environ: AWS_ENDPOINT_URL, fake credentials,
MOTO_PORT; moto's configuration; the simulator's patches): one server per process at a time, and
no ``mock_aws`` while it runs. :meth:`LocalServer.stop` puts everything back.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import os
import signal
import sys
import threading
import time
from contextlib import ExitStack
from datetime import datetime
from pathlib import Path
from typing import Any, Callable, TextIO
from unittest.mock import patch

from immutable_deploy.localaws.faults import Scenario
from immutable_deploy.localaws.harness import DEFAULT_ENV, Provisioned, provision, store_profile
from immutable_deploy.localaws.stack import cached_template

DEFAULT_PORT = 4566
DEFAULT_HOST = "127.0.0.1"
DEFAULT_SPEEDUP = 60.0
APP = "web"
REGION = "us-east-1"
#: moto's Step Functions interpreter reaches the other services at http://localhost:$MOTO_PORT,
#: so the server must listen where "localhost" gets to; and it has no authentication: loopback only.
LOOPBACK_HOSTS = ("127.0.0.1", "::1", "localhost")

#: What the server process sets for itself (the in-process handlers' and setup code's boto3 clients).
#: Credentials are forced to fake ones so that no real credential is ever used or sent.
SERVER_ENV = {
    **DEFAULT_ENV,
    "AWS_DEFAULT_REGION": REGION,
    "AWS_REGION": REGION,
}
#: Unset while serving: a named profile could bring credentials or another endpoint or region.
SERVER_ENV_REMOVED = ("AWS_PROFILE", "AWS_DEFAULT_PROFILE", "AWS_CA_BUNDLE")
#: Unless --verbose: the handlers' logs and metrics would flood the server's console.
QUIET_ENV = {"POWERTOOLS_LOG_LEVEL": "WARNING", "POWERTOOLS_METRICS_DISABLED": "true"}


# -- scenario from KEY=VALUE ------------------------------------------------------------------------


def _words(value: str) -> frozenset[str]:
    return frozenset(w.strip() for w in value.split(",") if w.strip())


def _boolean(value: str) -> bool:
    text = value.strip().lower()
    if text in ("1", "true", "yes", "on"):
        return True
    if text in ("0", "false", "no", "off"):
        return False
    raise ValueError(f"not a boolean: {value!r} (true or false)")


def _throttle(value: str) -> dict[str, int]:
    out: dict[str, int] = {}
    for item in _words(value):
        operation, sep, count = item.partition(":")
        if not sep or not operation:
            raise ValueError(f"not OPERATION:COUNT: {item!r} (e.g. DescribeImages:3)")
        out[operation] = int(count)
    return out


def _seconds(value: str) -> float | None:
    return None if value.strip().lower() in ("", "none", "off") else float(value)


#: Scenario field -> parser of its value; help text for --scenario.
SCENARIO_SETTINGS: dict[str, tuple[Callable[[str], Any], str]] = {
    "spot_capacity_refused": (_words, "instance types (comma-separated, * for all) refused as spot"),
    "on_demand_capacity_refused": (_words, "instance types refused on demand"),
    "spot_interruption_after_seconds": (
        _seconds,
        "the staging spot instance is interrupted N simulated s after it runs",
    ),
    "image_fails": (_boolean, "images end 'failed' (true/false)"),
    "unhealthy_versions": (_words, "versions whose instances never become healthy (comma-separated)"),
    "ready_command_failures": (int, "the first N SSM command invocations fail"),
    "throttle": (_throttle, "OPERATION:COUNT,... calls throttled before answering"),
}


def parse_scenario(settings: list[str] | None) -> Scenario:
    """``["image_fails=true", "throttle=DescribeImages:3"]`` -> ``Scenario(...)``. A set-valued or
    throttle setting given twice accumulates; others take the last value. Raises ValueError."""
    values: dict[str, Any] = {}
    for setting in settings or []:
        key, sep, raw = setting.partition("=")
        key = key.strip().replace("-", "_")
        if not sep:
            raise ValueError(f"scenario setting {setting!r} is not KEY=VALUE")
        if key not in SCENARIO_SETTINGS:
            raise ValueError(f"unknown scenario setting {key!r}; known: {', '.join(SCENARIO_SETTINGS)}")
        parse = SCENARIO_SETTINGS[key][0]
        try:
            value = parse(raw)
        except ValueError as exc:
            raise ValueError(f"scenario setting {key}: {exc}") from exc
        if isinstance(value, frozenset) and key in values:
            value = values[key] | value
        elif isinstance(value, dict) and key in values:
            value = {**values[key], **value}
        values[key] = value
    return Scenario(**values)


def describe_scenario(scenario: Scenario) -> str:
    changed = []
    for f in dataclasses.fields(Scenario):
        value = getattr(scenario, f.name)
        default = f.default_factory() if f.default_factory is not dataclasses.MISSING else f.default
        if value != default:
            if isinstance(value, frozenset):
                value = ",".join(sorted(value))
            elif isinstance(value, dict):
                value = ",".join(f"{k}:{v}" for k, v in value.items())
            changed.append(f"{f.name}={value}")
    return " ".join(changed) if changed else "healthy (no faults)"


# -- the server -----------------------------------------------------------------------------------


def _threaded_server_class() -> type:
    from moto.moto_server.threaded_moto_server import ThreadedMotoServer

    class _Server(ThreadedMotoServer):
        """ThreadedMotoServer that reports a failure to bind instead of waiting for ever."""

        error: BaseException | None = None

        def _server_entry(self) -> None:
            try:
                super()._server_entry()
            except BaseException as exc:  # noqa: BLE001 - handed to start()'s caller
                self.error = exc
                self._server_ready_event.set()

    return _Server


def _set_env(cleanup: ExitStack, values: dict[str, str], remove: tuple[str, ...] = ()) -> None:
    """Change os.environ; ``cleanup`` puts it back as it was."""
    saved = {k: os.environ.get(k) for k in (*values, *remove)}

    def restore() -> None:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value

    cleanup.callback(restore)
    for key in remove:
        os.environ.pop(key, None)
    os.environ.update(values)


def _restore_environ(cleanup: ExitStack) -> None:
    """``cleanup`` puts os.environ back exactly as it is now."""
    saved = dict(os.environ)

    def restore() -> None:
        for key in set(os.environ) - set(saved):
            del os.environ[key]
        os.environ.update(saved)

    cleanup.callback(restore)


def _quiet_handlers(cleanup: ExitStack) -> None:
    """The handlers' INFO logs (the stack sets POWERTOOLS_LOG_LEVEL=INFO) and metrics would flood
    the server's console: warnings only."""
    os.environ.update(QUIET_ENV)
    observability = sys.modules.get("immutable_deploy.domain.observability")
    if observability is not None:  # already imported (its logger read the level then)
        logger = observability.logger
        level = logger.log_level
        logger.setLevel(QUIET_ENV["POWERTOOLS_LOG_LEVEL"])
        cleanup.callback(logger.setLevel, level)


def _reset_boto3() -> None:
    """Forget clients and sessions made before the environment changed."""
    import boto3

    from immutable_deploy.domain import aws as bg_aws

    boto3.DEFAULT_SESSION = None
    bg_aws.reset_clients()


def _reset_moto() -> None:
    from moto.moto_api._internal.models import moto_api_backend

    moto_api_backend.reset()


def _url(host: str, port: int) -> str:
    return f"http://[{host}]:{port}" if ":" in host else f"http://{host}:{port}"


def _is_page(path: str | os.PathLike[str]) -> bool:
    """``--timeline FILE.html``: the newest execution's page (immutable_deploy.timeline), not the JSON."""
    return str(path).lower().endswith(".html")


class LocalServer:
    """A running local AWS endpoint (what :func:`serve` returns)."""

    def __init__(
        self,
        url: str,
        host: str,
        port: int,
        parts: Provisioned,
        scenario: Scenario,
        cleanup: ExitStack,
        started_in: float,
        profile_parameter: str,
    ) -> None:
        self.url = url
        self.host = host
        self.port = port
        self.parts = parts
        self.scenario = scenario
        self.started_in = started_in  # real seconds that serve() took
        self.profile_parameter = profile_parameter
        self._cleanup = cleanup
        self._stopped = False
        self._stop_lock = threading.Lock()

    # what is there
    @property
    def stack(self) -> Any:
        return self.parts.stack

    @property
    def world(self) -> Any:
        return self.parts.world

    @property
    def sim(self) -> Any:
        return self.parts.sim

    @property
    def clock(self) -> Any:
        return self.parts.clock

    def timeline(self) -> list[dict[str, Any]]:
        with self.sim._lock:
            return [dataclasses.asdict(event) for event in self.sim.timeline]

    def write_timeline(self, path: str | os.PathLike[str]) -> int:
        """The simulator's timeline as a JSON document; returns the number of events. A path ending in
        ``.html``: the page of the newest deploy or rollback execution instead (immutable_deploy.timeline),
        and the number of its history events."""
        if _is_page(path):
            return self._write_timeline_page(path)
        events = self.timeline()
        document = {
            "endpoint": self.url,
            "speedup": self.clock.speedup,
            "started": self.sim._origin.isoformat().replace("+00:00", "Z"),
            "scenario": describe_scenario(self.scenario),
            "events": events,
        }
        Path(path).write_text(json.dumps(document, indent=2) + "\n")
        return len(events)

    def _write_timeline_page(self, path: str | os.PathLike[str]) -> int:
        import boto3

        from immutable_deploy import timeline as pages

        region = self.stack.deploy_arn.split(":")[3]
        sfn = boto3.client("stepfunctions", endpoint_url=self.url, region_name=region)
        newest = pages.newest_of(sfn, [(self.stack.deploy_arn, "deploy"), (self.stack.rollback_arn, "rollback")])
        if newest is None:
            pages.write(path, pages.empty_page("No deploy or rollback execution ran on this local AWS."))
            return 0
        arn, kind = newest
        pages.write(path, pages.page_for(sfn, arn, kind))
        return len(pages.read_history(sfn, arn))

    def stop(self, timeline: str | os.PathLike[str] | None = None) -> None:
        """Stop serving and undo everything :func:`serve` changed in this process (idempotent).
        With ``timeline``, write the simulator's timeline there first."""
        with self._stop_lock:
            if self._stopped:
                return
            self._stopped = True
        try:
            if timeline:
                self.write_timeline(timeline)
        finally:
            self._cleanup.close()

    @property
    def stopped(self) -> bool:
        return self._stopped

    def __enter__(self) -> "LocalServer":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()


def serve(
    *,
    host: str = DEFAULT_HOST,
    port: int = DEFAULT_PORT,
    speedup: float | None = DEFAULT_SPEEDUP,
    scenario: Scenario | None = None,
    pace: Any = None,
    blue_version: str | None = "1.0.0",
    blue_capacity: int = 3,
    approval: bool = False,
    start: datetime | None = None,
    template: dict | None = None,
    verbose: bool = False,
) -> LocalServer:
    """Start the local AWS endpoint in a thread of this process and return at once when it is
    ready (stack created, world seeded, blue serving). ``port=0`` picks a free port.
    ``speedup``: simulated seconds per real second (``None``: a virtual clock that stands still)."""
    if host not in LOOPBACK_HOSTS:
        raise ValueError(f"--host must be one of {', '.join(LOOPBACK_HOSTS)} (the endpoint has no authentication)")
    from moto.core.config import default_user_config
    from moto.core.models import botocore_stubber

    if botocore_stubber.enabled:
        raise RuntimeError("a moto mock (mock_aws) is active in this process: stop it before serving")
    began = time.monotonic()
    scenario = scenario or Scenario()
    template = template or cached_template()
    cleanup = ExitStack()
    try:
        cleanup.callback(_reset_boto3)
        _restore_environ(cleanup)  # the Lambda functions' environment is added to os.environ too
        _set_env(cleanup, SERVER_ENV, SERVER_ENV_REMOVED)
        _quiet_logs(cleanup, verbose)
        # what mock_aws(config={"stepfunctions": {"execute_state_machine": True}}) sets
        config = patch.dict(default_user_config, {"stepfunctions": {"execute_state_machine": True}})
        config.start()
        cleanup.callback(config.stop)
        _reset_moto()

        server = _threaded_server_class()(ip_address=host, port=port, verbose=False)
        server.start()
        if server.error is not None:
            raise OSError(f"cannot serve on {host}:{port}: {server.error}") from server.error
        cleanup.callback(server.stop)
        bound_port = server.get_host_and_port()[1]
        url = _url(host, bound_port)
        # the interpreter's clients reach http://localhost:$MOTO_PORT; everyone else AWS_ENDPOINT_URL
        _set_env(cleanup, {"AWS_ENDPOINT_URL": url, "MOTO_PORT": str(bound_port)})
        _reset_boto3()

        parts = provision(
            cleanup,
            template,
            scenario=scenario,
            pace=pace,
            speedup=speedup,
            start=start,
            blue_version=blue_version,
            blue_capacity=blue_capacity,
        )
        if not verbose:
            _quiet_handlers(cleanup)
        # blue has been serving for a while: let its instances boot and pass their health checks
        parts.clock.advance(600)
        parameter = store_profile(parts.stack, APP, parts.world.profile(approval=approval), parts.world.region)
    except BaseException:
        cleanup.close()
        raise
    return LocalServer(url, host, bound_port, parts, scenario, cleanup, time.monotonic() - began, parameter)


def _quiet_logs(cleanup: ExitStack, verbose: bool) -> None:
    levels = {"moto": logging.CRITICAL, "moto.stepfunctions.parser": logging.CRITICAL}
    if not verbose:
        levels["werkzeug"] = logging.ERROR  # one line per request otherwise
    for name, level in levels.items():
        logger = logging.getLogger(name)
        previous = logger.level
        logger.setLevel(level)
        cleanup.callback(logger.setLevel, previous)


# -- what to print --------------------------------------------------------------------------------


def banner(handle: LocalServer) -> str:
    stack, world, clock = handle.stack, handle.world, handle.clock
    url = handle.url
    pace = (
        f"x{clock.speedup:g}: one real second is {clock.speedup:g} simulated seconds"
        if clock.realtime
        else "virtual (stands still)"
    )
    blue = world.blue_asg or "(none)"
    lines = [
        f"Local AWS serving at {url} (moto in this process, with the Immutable Deploy simulator); "
        f"ready in {handle.started_in:.1f} s.",
        "",
        f"  simulated clock  {pace}; now {clock.now():%Y-%m-%d %H:%M:%S} UTC",
        f"  scenario         {describe_scenario(handle.scenario)}",
        "  stack            ImmutableDeploy (describe-stacks gives its outputs)",
        f"    deploy         {stack.deploy_arn}",
        f"    rollback       {stack.rollback_arn}",
        f"    state table    {stack.table_name}",
        f"  world            region {world.region}, VPC {world.vpc_id}, subnets {', '.join(world.subnet_ids)}",
        f"                   security group {world.security_group_id}, base image {world.base_image_id}",
        f"    classic ELB    {world.load_balancer_name}",
        f"    target group   {world.target_group_arn}",
        f"    serving        {blue} (version {blue.rsplit('-', 1)[-1] if world.blue_asg else '-'}, "
        f"instances InService behind both)",
        f"  profile of {APP:<5} {handle.profile_parameter} (as the stack stores inventory/{APP}.yaml)",
        "",
        "Use it from another shell:",
        f"  export AWS_ENDPOINT_URL={url} AWS_DEFAULT_REGION={world.region} "
        "AWS_ACCESS_KEY_ID=testing AWS_SECRET_ACCESS_KEY=testing",
        f"  immutable-deploy deploy {APP} 2.0.0 --commit abc1234",
        f"  immutable-deploy status {APP}",
        f"  immutable-deploy history {APP}",
        f"  immutable-deploy rollback {APP}",
        "  aws autoscaling describe-auto-scaling-groups "
        "--query 'AutoScalingGroups[].[AutoScalingGroupName,LoadBalancerNames[0]]' --output text",
        f"  aws elb describe-instance-health --load-balancer-name {world.load_balancer_name}",
        f"  aws stepfunctions list-executions --state-machine-arn {stack.deploy_arn}",
        f"  (or pass --endpoint-url {url} to each command instead of exporting AWS_ENDPOINT_URL)",
        "",
        "Ctrl-C stops it.",
    ]
    return "\n".join(lines) + "\n"


def format_event(event: Any) -> str:
    """One timeline event as a line: simulated time, what happened, to what."""
    at = event.at[11:19]
    return f"[{at}] {event.subject:<14} {event.kind:<12} {event.resource}  {event.detail}".rstrip()


def _print_events(handle: LocalServer, shown: int, out: TextIO) -> int:
    with handle.sim._lock:
        fresh = handle.sim.timeline[shown:]
    for event in fresh:
        out.write(format_event(event) + "\n")
    if fresh:
        out.flush()
    return shown + len(fresh)


# -- the command ----------------------------------------------------------------------------------


def up(
    args: Any,
    out: TextIO | None = None,
    ready: Callable[[LocalServer], None] | None = None,
    stop_event: threading.Event | None = None,
) -> int:
    """``immutable-deploy local up``: serve until Ctrl-C or SIGTERM (or ``stop_event``), then stop
    cleanly. Returns the exit code."""
    from immutable_deploy.cli import exitcodes

    out = out or sys.stdout
    try:
        scenario = parse_scenario(args.scenario)
    except ValueError as exc:
        sys.stderr.write(f"immutable-deploy local up: error: {exc}\n")
        return exitcodes.USAGE
    if args.speedup is not None and args.speedup <= 0:
        sys.stderr.write("immutable-deploy local up: error: --speedup must be > 0\n")
        return exitcodes.USAGE
    stop = stop_event or threading.Event()
    previous_term = None
    if threading.current_thread() is threading.main_thread():
        previous_term = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    out.write(f"Starting the local AWS on {args.host}:{args.port}...\n")
    out.flush()
    try:
        try:
            handle = serve(
                host=args.host,
                port=args.port,
                speedup=args.speedup,
                scenario=scenario,
                blue_version=args.blue_version,
                approval=args.approval,
                verbose=args.verbose,
            )
        except (OSError, ValueError, RuntimeError) as exc:
            sys.stderr.write(f"immutable-deploy local up: error: {exc}\n")
            return exitcodes.ERROR
        try:
            out.write(banner(handle))
            if args.timeline:
                what = "the newest execution's timeline page" if _is_page(args.timeline) else "the simulator's timeline"
                out.write(f"On stop, {what} is written to {args.timeline}.\n")
            out.flush()
            if ready is not None:
                ready(handle)
            shown = len(handle.sim.timeline) if getattr(args, "events", False) else None
            try:
                while not stop.wait(0.5):
                    if shown is not None:
                        shown = _print_events(handle, shown, out)
            except KeyboardInterrupt:
                pass
            out.write("\nStopping the local AWS...\n")
            out.flush()
        finally:
            events = len(handle.sim.timeline)
            handle.stop(timeline=args.timeline)
        if args.timeline and _is_page(args.timeline):
            out.write(f"Timeline page written to {args.timeline}.\n")
        elif args.timeline:
            out.write(f"Timeline ({events} events) written to {args.timeline}.\n")
        out.write("Stopped.\n")
        out.flush()
        return exitcodes.OK
    finally:
        if previous_term is not None:
            signal.signal(signal.SIGTERM, previous_term)
