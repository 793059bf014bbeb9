"""Several apps deploying at once in one account, through the synthesized deploy machine: they share
virtual time (immutable_deploy/localaws/sim/concurrency.py), so each takes what it takes alone unless
AWS's API rate limits (sim/ratelimits.py) refuse some of their requests, which the retries absorb."""

from __future__ import annotations

import json
from typing import Any

import boto3

from immutable_deploy.localaws.sim.ratelimits import BucketSize, RateLimits
from immutable_deploy.localaws.world import add_app
from tests.scenarios.conftest import cause


def deploy_at_once(aws: Any, apps: int, limits: RateLimits | None = None) -> dict[str, tuple[dict, float, Any]]:
    worlds = {"web": aws.world} | {f"app{i}": add_app(aws.world, f"app{i}") for i in range(1, apps)}
    aws.sim.limit_rates(limits)  # from now on: the worlds are built
    with aws.sim.coordinator.hold():  # started at the same simulated moment
        arns = {app: aws.start_deploy(world.request("2.0.0", app=app)) for app, world in worlds.items()}
    out = {}
    for app, arn in arns.items():
        desc = aws.wait(arn, timeout=300)
        history = aws.history(arn)
        out[app] = (desc, (history[-1]["timestamp"] - history[0]["timestamp"]).total_seconds(), worlds[app])
    aws.sim.limit_rates(None)  # the test's own looks are not the deployments' (and would meet the limits)
    return out


def test_apps_deploying_at_once_each_take_what_one_takes_alone(local_aws):
    alone = local_aws(iam=None)
    desc = alone.wait(alone.start_deploy(alone.world.request("2.0.0")))
    assert desc["status"] == "SUCCEEDED", cause(desc)
    history = alone.history(desc["executionArn"])
    one = (history[-1]["timestamp"] - history[0]["timestamp"]).total_seconds()
    alone.__exit__(None, None, None)

    aws = local_aws(iam=None, concurrent=True)
    results = deploy_at_once(aws, 3)
    for app, (desc, seconds, world) in results.items():
        assert desc["status"] == "SUCCEEDED", (app, cause(desc))
        green = json.loads(desc["output"])["green_asg"]
        assert aws.serving_of(world) == {"elb": [green], "tg": [green]}, app
        # virtual time is shared, not summed: each took exactly what one deployment takes alone
        assert seconds == one, app
    # and their images were ready at the same simulated moment (they ran side by side)
    ready = {e.at for e in aws.sim.timeline if (e.subject, e.kind) == ("image", "ready")}
    assert len(ready) == 1


def test_many_apps_under_tight_rate_limits_all_deploy_with_the_throttling_absorbed(local_aws):
    aws = local_aws(iam=None, concurrent=True)
    # buckets far smaller than AWS's, so that six apps meet them as fifty would meet AWS's
    results = deploy_at_once(aws, 6, RateLimits(non_mutating=BucketSize(6, 2), mutating=BucketSize(3, 1)))
    for app, (desc, _, world) in results.items():
        assert desc["status"] == "SUCCEEDED", (app, cause(desc))
        output = json.loads(desc["output"])
        assert output["status"] == "DEPLOYED"
        assert aws.serving_of(world) == {"elb": [output["green_asg"]], "tg": [output["green_asg"]]}, app
    throttled = aws.sim.events("throttled", "api")
    assert len(throttled) >= 20 and all("rate limit" in e.detail for e in throttled)
    # the refusals cost time: some deployment took longer than the others' common time
    seconds = sorted(s for _, s, _ in results.values())
    assert seconds[-1] > seconds[0]
    # every app's lock was released
    table = aws.stack.table_name
    locks = [i for i in boto3.client("dynamodb").scan(TableName=table)["Items"] if i["pk"]["S"].startswith("LOCK#")]
    assert locks == []
