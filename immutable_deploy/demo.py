"""`make demo`: Immutable Deploy's main job on the built-in local AWS, driven through the
``immutable-deploy`` command exactly as an operator would use it.

1. deploy web 2.0.0 over 1.0.0 (staging is approved by the demo, as an operator would);
2. status;
3. deploy 2.1.0, whose instances never pass their health checks: the workflow rolls back on its own;
4. deploy 2.2.0, whose load balancer 5xx alarm goes off in its bake window: it rolls back in seconds;
5. roll 2.0.0 back by hand to 1.0.0;
6. status and history, then a summary of what served when.

Every deployment watches the alarm ``web-elb-5xx-high`` for a two-minute bake window after its switch.

The local AWS is moto running the synthesized state machines, the project's handlers in this
process, and a simulator that gives AWS its pace (images pending for minutes, instances booting,
health checks) on a compressed clock: by default one simulated minute lasts one second.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import sys
import threading
import time
import warnings
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
for _path in (str(ROOT / "lambdas"), str(ROOT)):
    if _path not in sys.path:
        sys.path.insert(0, _path)

APP = "web"
COMMIT = "9fceb02"
#: the team's alarm each deployment's bake window watches
ALARM = "web-elb-5xx-high"


class Watched:
    """The demo's output, watched: the operator reads the live view before answering, as a person
    would (so the view shows the approval block before the answer, whatever the machine's speed)."""

    def __init__(self, out: TextIO) -> None:
        self.out = out
        self.seen = ""
        self.changed = threading.Condition()

    def write(self, text: str) -> int:
        with self.changed:
            self.seen = (self.seen + text)[-20_000:]
            self.changed.notify_all()
        return self.out.write(text)

    def flush(self) -> None:
        self.out.flush()

    def isatty(self) -> bool:
        return self.out.isatty()

    def wait_for(self, text: str, seconds: float) -> bool:
        with self.changed:
            return self.changed.wait_for(lambda: text in self.seen, timeout=seconds)

    def __getattr__(self, name: str) -> Any:
        return getattr(self.out, name)


class Demo:
    def __init__(self, aws: Any, out: TextIO, poll_seconds: float) -> None:
        self.aws = aws
        self.out = Watched(out)
        self.poll = poll_seconds
        self.served: list[tuple[str, str, str]] = []  # (simulated time, group, why)
        self.outcomes: dict[str, int] = {}

    # -- output ------------------------------------------------------------------------------------
    def say(self, text: str = "") -> None:
        self.out.write(text + "\n")
        self.out.flush()

    def banner(self, text: str) -> None:
        self.say()
        self.say(f"== {text} " + "=" * max(0, 70 - len(text)))

    def now(self) -> str:
        return self.aws.clock.now().strftime("%H:%M:%S")

    # -- the command -------------------------------------------------------------------------------
    def cli(self, *words: str) -> int:
        from immutable_deploy.cli import main

        self.say(f"$ immutable-deploy {' '.join(words)}")
        argv = ["--poll-seconds", str(self.poll), *words]
        with contextlib.redirect_stdout(self.out):
            code = main(argv)
        self.say(f"(exit code {code})")
        return code

    def approve_when_asked(self, comment: str, version: str) -> threading.Thread:
        """The operator: wait until the live view asks for approval of ``version`` and the approval is
        pending, then approve it."""
        from immutable_deploy.domain.logic import approval

        def run() -> None:
            deadline = time.monotonic() + 300
            self.out.wait_for(f"Waiting for approval: {APP} {version}", 300)
            while time.monotonic() < deadline:
                if approval.pending(APP):
                    self.say("\n[operator] staging looks good; approving")
                    self.cli("approve", APP, "--comment", comment)
                    return
                time.sleep(self.poll)

        thread = threading.Thread(target=run, name="demo-operator", daemon=True)
        thread.start()
        return thread

    def alarm_in_window(self, version: str) -> None:
        """The monitoring: when ``version`` takes the traffic and its bake window opens, the load
        balancer's 5xx alarm goes off (as a bad release's errors would set it off). Hooked on the window's
        first look, in simulated time: the window (two minutes, half a second of real time at 240x)
        cannot pass before the alarm is set, however busy the machine."""
        lambdas = self.aws.lambdas
        original = lambdas.invoke

        def invoke(name: str, body: str, headers: Any) -> bytes:
            event = json.loads(body)
            request = (event.get("state") or {}).get("request") or {}
            if event.get("action") == "start_window" and (request.get("release") or {}).get("version") == version:
                lambdas.invoke = original
                self.say(f"\n[monitoring] {ALARM} goes into ALARM: 5xx responses from {version}")
                self.aws.client("cloudwatch").set_alarm_state(
                    AlarmName=ALARM, StateValue="ALARM", StateReason="Threshold Crossed: 1 datapoint [57.0] > 10"
                )
            return bytes(original(name, body, headers))

        lambdas.invoke = invoke

    def record(self, why: str) -> None:
        serving = self.aws.serving()
        self.served.append((self.now(), ", ".join(serving["elb"]) or "nothing", why))

    # -- the story ---------------------------------------------------------------------------------
    def run(self) -> bool:
        world = self.aws.world
        self.say("Immutable Deploy demo: blue/green deployments on the built-in local AWS")
        self.say(f"(simulated AWS pace, {self.aws.clock.speedup:g}x faster than real time; times below are simulated)")
        self.say(f"World: VPC {world.vpc_id}, classic ELB {world.load_balancer_name} and an ALB target group,")
        self.say(f"       blue group {world.blue_asg} (1.0.0, 3 instances) serving; the stored profile of {APP!r}")
        self.say("       requires approval of staging.")
        self.record("at the start")

        self.banner("1. Deploy web 2.0.0 over 1.0.0")
        operator = self.approve_when_asked("demo: checked staging by hand", "2.0.0")
        self.outcomes["deploy 2.0.0"] = self.cli("deploy", APP, "2.0.0", "--commit", COMMIT)
        operator.join(timeout=5)
        self.record("2.0.0 deployed")

        self.banner("2. What serves now")
        self.cli("status", APP)

        self.banner("3. Deploy web 2.1.0: its instances never become healthy")
        operator = self.approve_when_asked("demo: staging of 2.1.0 looked fine", "2.1.0")
        self.outcomes["deploy 2.1.0"] = self.cli("deploy", APP, "2.1.0", "--commit", COMMIT)
        operator.join(timeout=5)
        self.record("2.1.0 failed its health checks and was rolled back automatically")

        self.banner("4. Deploy web 2.2.0: its 5xx alarm goes off in the bake window")
        self.out.seen = ""  # the operator reads what the view shows from now on
        operator = self.approve_when_asked("demo: staging of 2.2.0 looked fine", "2.2.0")
        self.alarm_in_window("2.2.0")
        self.outcomes["deploy 2.2.0"] = self.cli("deploy", APP, "2.2.0", "--commit", COMMIT)
        operator.join(timeout=5)
        self.aws.client("cloudwatch").set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="quiet again")
        self.record(f"2.2.0 set {ALARM} off in its bake window and was rolled back automatically")

        self.banner("5. Roll 2.0.0 back by hand")
        self.outcomes["rollback"] = self.cli("rollback", APP)
        self.record("rolled back by hand")

        self.banner("6. Status and history")
        self.cli("status", APP)
        self.cli("history", APP)

        self.banner("Summary: what served web-elb when")
        for when, group, why in self.served:
            self.say(f"  {when}  {group:<24} {why}")
        expected = {"deploy 2.0.0": 0, "deploy 2.1.0": 5, "deploy 2.2.0": 5, "rollback": 0}
        ok = self.outcomes == expected and self.served[-1][1] == world.blue_asg
        self.say()
        self.say(
            "Every step ended as expected." if ok else f"Unexpected outcomes: {self.outcomes} (expected {expected})"
        )
        return ok


def run(speedup: float = 60.0, out: TextIO | None = None, poll_seconds: float = 0.25) -> int:
    from immutable_deploy.localaws.faults import Scenario
    from immutable_deploy.localaws.harness import LocalAws

    out = out or sys.stdout
    started = time.monotonic()
    out.write("Synthesizing the stack and starting the local AWS...\n")
    out.flush()
    with LocalAws(speedup=speedup, scenario=Scenario(unhealthy_versions={"2.1.0"})) as aws:
        # the app's stored profile, as the stack deploys it from inventory/web.yaml
        aws.store_profile(
            APP,
            aws.world.profile(approval=True, healthy_timeout_seconds=300, bake_window=120, window_alarms=(ALARM,)),
        )
        # the team's alarm on the load balancer's 5xx responses (quiet at the start)
        cloudwatch = aws.client("cloudwatch")
        cloudwatch.put_metric_alarm(
            AlarmName=ALARM,
            Namespace="AWS/ELB",
            MetricName="HTTPCode_Backend_5XX",
            Dimensions=[{"Name": "LoadBalancerName", "Value": aws.world.load_balancer_name}],
            Statistic="Sum",
            Period=60,
            EvaluationPeriods=1,
            Threshold=10,
            ComparisonOperator="GreaterThanThreshold",
        )
        cloudwatch.set_alarm_state(AlarmName=ALARM, StateValue="OK", StateReason="quiet")
        ok = Demo(aws, out, poll_seconds).run()
        out.write(f"Real time: {time.monotonic() - started:.0f} s. Local AWS stopped.\n")
    return 0 if ok else 1


def main(argv: list[str] | None = None) -> int:
    from immutable_deploy.cli.app import SPEEDUP

    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--speedup", type=SPEEDUP, default=60.0, help="simulated seconds per real second (default 60)")
    args = parser.parse_args(argv)
    # The handlers' own structured logs and metrics would drown the operator's view.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    return run(args.speedup)


if __name__ == "__main__":
    sys.exit(main())
