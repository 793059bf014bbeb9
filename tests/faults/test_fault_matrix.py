"""A sample of the fault matrix (tests/faults/matrix.py) for ``make test``: a case of every kind, and one
of the rollback machine. ``make faults`` runs every case as a test (test_every_case.py, collected with
``--fault-matrix``; CI runs it after ``make test``) and writes docs/fault-matrix.md. The invariants every
case is checked against are shown here to catch what they are for."""

from __future__ import annotations

from collections import Counter

import pytest

from tests.faults import matrix

SAMPLE = [
    matrix.Case(
        "lost response",
        "deploy: CreateAutoScalingGroup",
        matrix.faulted("deploy", lost_responses={"CreateAutoScalingGroup": 1}),
    ),
    matrix.Case(
        "lost response",
        "rollback: AttachLoadBalancers",
        matrix.faulted("rollback", lost_responses={"AttachLoadBalancers": 1}),
    ),
    matrix.Case(
        "throttling burst",
        "compensation: DescribeAutoScalingGroups",
        matrix.faulted("compensation", throttle={"DescribeAutoScalingGroups": 6}),
    ),
    matrix.Case(
        "access denied",
        "deploy: autoscaling:DetachLoadBalancers by Traffic",
        matrix.denied_on_deploy("Traffic", "autoscaling:DetachLoadBalancers"),
    ),
    matrix.Case("stopped", "deploy stopped in SuspendBlue", matrix.stopped_in("Traffic", "suspend_blue")),
    matrix.Case("spot interruption", "staging interrupted 60 s after it runs", matrix.spot_interrupted(60)),
    matrix.Case(
        "lambda timeout", "CreateGreenGroup times out after its work", matrix.timed_out_after("Fleet", "create_group")
    ),
]


@pytest.mark.parametrize("case", SAMPLE, ids=[f"{c.kind}: {c.target}" for c in SAMPLE])
def test_the_world_is_whole_after_the_fault(case):
    result = matrix.run_case(case)
    assert result.outcome is not None and not result.problems, result.problems


def test_the_invariants_see_a_half_switched_world_a_leftover_and_a_held_lock(local_aws):
    aws = local_aws()
    matrix._subscribe(aws)
    arn, desc = matrix._deploy(aws)
    assert desc["status"] == "SUCCEEDED"
    outcome = matrix.Outcome("SUCCEEDED", None, [arn], "2.0.0")
    assert matrix.invariants(aws, outcome, matrix._notifications(aws)) == []
    # a staging instance of the execution left running, the lock held, announced twice
    image = aws.client("ec2").describe_images(Owners=["self"])["Images"][0]["ImageId"]
    (stray,) = aws.client("ec2").run_instances(
        ImageId=image,
        MinCount=1,
        MaxCount=1,
        TagSpecifications=[{"ResourceType": "instance", "Tags": [{"Key": "immutable-deploy:execution", "Value": arn}]}],
    )["Instances"]
    aws.client("dynamodb").put_item(TableName=aws.stack.table_name, Item={"pk": {"S": "LOCK#web"}, "owner": {"S": arn}})
    problems = matrix.invariants(aws, outcome, Counter({arn: 2}))
    short = arn.rsplit(":", 1)[-1]
    table = f"{aws.stack.table_name}: LOCK#web"
    assert [p for p in problems if p.startswith(f"{short} left")] == [
        f"{short} left {{'instances': ['{stray['InstanceId']}'], 'table_items': ['{table}']}}"
    ]
    assert f"the lock is held: {arn}" in problems and f"{short} was announced 2 times, not once" in problems
    # blue put back beside green: two versions serve the classic ELB
    aws.client("autoscaling").attach_load_balancers(AutoScalingGroupName=matrix.BLUE, LoadBalancerNames=["web-elb"])
    problems = matrix.invariants(aws, outcome, Counter({arn: 1}))
    assert any(p.startswith("elb is served by") and "not exactly one group" in p for p in problems), problems


def test_the_summary_counts_each_kind_and_its_endings(tmp_path):
    run = matrix.faulted("deploy")
    results = [
        matrix.Result(matrix.Case("stopped", "a", run), matrix.Outcome("SUCCEEDED", None, [], "2.1.0"), [], 1.0),
        matrix.Result(matrix.Case("stopped", "b", run), matrix.Outcome("SUCCEEDED", None, [], "2.1.0"), [], 1.0),
        matrix.Result(
            matrix.Case("access denied", "c", run),
            matrix.Outcome("FAILED", "DeploymentRolledBack", [], "1.0.0"),
            ["the lock is held"],
            1.0,
        ),
        matrix.Result(matrix.Case("access denied", "d", run), None, ["the case failed to run"], 1.0),
    ]
    text = matrix.summary(results)
    assert text.startswith("4 cases, 2 with a problem")
    assert "| access denied | 2 | FAILED DeploymentRolledBack 1, did not run 1 | 2 |" in text
    assert "| stopped | 2 | SUCCEEDED 2 | 0 |" in text
    page = tmp_path / "reliability.md"
    page.write_text(f"# R\n\nbefore\n\n{matrix.SUMMARY_START}\nold\n{matrix.SUMMARY_END}\n\nafter\n")
    matrix.write_summary(text, page)
    assert page.read_text() == f"# R\n\nbefore\n\n{matrix.SUMMARY_START}\n{text}{matrix.SUMMARY_END}\n\nafter\n"


def test_the_reliability_page_summarises_the_run_the_matrix_page_shows():
    """Both pages are written by the same `make faults` run: a page edited, or written by a partial run,
    disagrees on the counts."""
    import re

    whole = re.search(r"\*\*(\d+) cases, (\d+) with a problem\.\*\*", matrix.DOC.read_text())
    summarised = re.search(
        rf"{re.escape(matrix.SUMMARY_START)}\n(\d+) cases, (\d+) with a problem", matrix.RELIABILITY.read_text()
    )
    assert whole and summarised and whole.groups() == summarised.groups()
    assert whole.group(2) == "0"


def test_the_page_lists_every_case_it_counts_which_ci_checks_the_run_against():
    import re

    listed = matrix.listed_cases()
    (count,) = re.findall(r"\*\*(\d+) cases, \d+ with a problem\.\*\*", matrix.DOC.read_text())
    assert len(listed) == int(count) == len(set(listed))
    assert listed[0] == ("lost response", "deploy: AttachLoadBalancerTargetGroups")
    assert ("stopped", "rollback stopped waiting in WaitForPrevious") in listed
