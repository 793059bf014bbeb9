"""The fault matrix's own checks: the invariants every case is checked against (test_every_case.py runs
every case, in ``make test``) are shown to catch what they are for, and its pages agree."""

from __future__ import annotations

from collections import Counter

from tests.faults import matrix


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


def test_a_run_whose_cases_are_not_those_the_page_lists_is_told_apart():
    listed = [("stopped", "a"), ("stopped", "b"), ("lost response", "c")]
    assert matrix.page_mismatch(list(listed), listed) is None
    new_case = matrix.page_mismatch([*listed, ("access denied", "d")], listed)
    assert new_case is not None and "1 not listed ['access denied: d'], 0 not run []" in new_case
    gone = matrix.page_mismatch(listed[:2], listed)
    assert gone is not None and "0 not listed [], 1 not run ['lost response: c']" in gone
    reordered = matrix.page_mismatch(listed[::-1], listed)
    assert reordered is not None and reordered.endswith("the order differs")
