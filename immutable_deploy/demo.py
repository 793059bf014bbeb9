"""`make demo`: a full blue/green deployment on the built-in local AWS, with live progress.

The local AWS is moto running the synthesized state machine, with the project's handlers in this
process and a simulator that gives AWS its pace (images pending for minutes, instances booting,
health checks) on a compressed clock: one simulated minute lasts about a second.
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import sys
import time
import warnings
from datetime import datetime
from pathlib import Path
from typing import Any, TextIO

ROOT = Path(__file__).resolve().parent.parent
sys.path[:0] = [str(ROOT / "lambdas"), str(ROOT)]

#: which document key a state's progress text lives in
PROGRESS_KEY = {
    "LaunchStaging": "bake", "CheckStaging": "bake", "RelaunchStaging": "bake",
    "ApplyProductionSettings": "bake", "CheckProductionSettings": "bake",
    "CreateImage": "image", "CheckImage": "image",
    "CreateLaunchSettings": "fleet", "CreateGreenGroup": "fleet", "CheckGreenHealth": "fleet",
    "AttachGreen": "traffic", "CheckGreenInService": "traffic", "DetachBlue": "traffic", "SuspendBlue": "traffic",
}
PHASES = {
    "ValidateRequest": "request", "AcquireLock": "request", "DiscoverBlue": "request",
    "LaunchStaging": "bake", "CheckStaging": "bake", "RelaunchStaging": "bake", "AwaitApproval": "approval",
    "ApplyProductionSettings": "image", "CheckProductionSettings": "image", "CreateImage": "image",
    "CheckImage": "image", "TerminateStaging": "image",
    "CreateLaunchSettings": "fleet", "CreateGreenGroup": "fleet", "CheckGreenHealth": "fleet",
    "AttachGreen": "traffic", "CheckGreenInService": "traffic", "DetachBlue": "traffic", "DrainBlue": "traffic",
    "SuspendBlue": "traffic", "ReleaseLock": "traffic",
}


class Progress:
    """Follows an execution's history and prints each step once, with what is being waited for."""

    def __init__(self, aws: Any, execution_arn: str, out: TextIO) -> None:
        self.aws = aws
        self.arn = execution_arn
        self.out = out
        self.seen = 0
        self.start: datetime | None = None
        self.last_progress: dict[str, str] = {}

    def stamp(self, event: dict) -> str:
        ts = event["timestamp"]
        if self.start is None:
            self.start = ts
        seconds = int((ts - self.start).total_seconds())
        return f"[+{seconds // 60:02d}:{seconds % 60:02d}]"

    def poll(self) -> None:
        events = self.aws.history(self.arn)
        for event in events[self.seen:]:
            self.show(event)
        self.seen = len(events)

    def show(self, event: dict) -> None:
        kind = event["type"]
        if kind.endswith("StateEntered"):
            name = event["stateEnteredEventDetails"]["name"]
            if name.startswith(("Wait", "Drain")) and name != "DrainBlue":
                return
            if kind == "TaskStateEntered" and name in PROGRESS_KEY and name.startswith("Check"):
                return  # checks print only when their progress text changes
            if kind in ("TaskStateEntered", "WaitStateEntered") or name in ("Compensate", "Deployed"):
                self.line(event, name, "")
        elif kind == "TaskStateExited":
            name = event["stateExitedEventDetails"]["name"]
            key = PROGRESS_KEY.get(name)
            if key is None:
                return
            output = json.loads(event["stateExitedEventDetails"].get("output") or "{}")
            text = (output.get(key) or {}).get("progress", "")
            if text and text != self.last_progress.get(key):
                self.last_progress[key] = text
                self.line(event, name, text)
        elif kind == "TaskFailed":
            details = event.get("taskFailedEventDetails", {})
            self.out.write(f"{self.stamp(event)}   ! {details.get('error')}\n")

    def line(self, event: dict, name: str, text: str) -> None:
        phase = PHASES.get(name, "rollback" if name not in ("Deployed",) else "done")
        self.out.write(f"{self.stamp(event)} {phase:<9} {name:<26} {text}\n")
        self.out.flush()


def describe_world(aws: Any) -> str:
    serving = aws.serving()
    lines = []
    for target, groups in (("classic ELB " + aws.world.load_balancer_name, serving["elb"]),
                           ("target group web-tg", serving["tg"])):
        lines.append(f"  {target:<26} <- {', '.join(groups) or 'nothing'}")
    return "\n".join(lines)


def run(speedup: float, version: str, out: TextIO) -> int:
    from immutable_deploy.localaws.harness import LocalAws

    out.write("Immutable Deploy demo: the deploy workflow on the built-in local AWS\n")
    out.write(f"(moto runs the synthesized state machine; simulated AWS pace, {speedup:g}x faster than real time)\n\n")
    real_start = time.monotonic()
    out.write("Synthesizing the stack and starting the local AWS...\n")
    out.flush()
    with LocalAws(speedup=speedup) as aws:
        out.write(f"Before:\n{describe_world(aws)}\n\n")
        request = aws.world.request(version)
        out.write(f"Deploying {request['app']} {version} ({request['release']['git_ref']}) over 1.0.0:\n")
        arn = aws.start_deploy(request)
        progress = Progress(aws, arn, out)
        sim_start = aws.clock.now()
        while True:
            progress.poll()
            desc = aws.client("stepfunctions").describe_execution(executionArn=arn)
            if desc["status"] != "RUNNING":
                progress.poll()
                break
            time.sleep(0.2)
        sim_minutes = (aws.clock.now() - sim_start).total_seconds() / 60
        out.write("\n")
        if desc["status"] != "SUCCEEDED":
            out.write(f"Deployment ended {desc['status']}: {desc.get('error')}\n{desc.get('cause')}\n")
            return 1
        result = json.loads(desc["output"])
        out.write(f"Deployed {result['app']} {result['version']}: image {result['image_id']}, "
                  f"green {result['green_asg']}, blue {result['blue_asg']} kept for rollback.\n")
        out.write(f"After:\n{describe_world(aws)}\n\n")
        out.write(f"Simulated time {sim_minutes:.0f} min, real time {time.monotonic() - real_start:.0f} s.\n")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--speedup", type=float, default=60.0, help="simulated seconds per real second")
    parser.add_argument("--version", default="2.0.0", help="the release to deploy over 1.0.0")
    args = parser.parse_args(argv)
    # The handlers' own structured logs and metrics would drown the progress view.
    os.environ.setdefault("POWERTOOLS_LOG_LEVEL", "ERROR")
    os.environ.setdefault("POWERTOOLS_METRICS_DISABLED", "true")
    warnings.filterwarnings("ignore")
    logging.disable(logging.CRITICAL)
    return run(args.speedup, args.version, sys.stdout)


if __name__ == "__main__":
    sys.exit(main())
