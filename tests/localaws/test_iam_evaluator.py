"""The local IAM policy evaluator, rule by rule, mostly with the examples of the AWS IAM User Guide.

Page names refer to docs.aws.amazon.com/IAM/latest/UserGuide/<page>.html.
"""

from __future__ import annotations

import pytest

from immutable_deploy.localaws.iam.evaluator import evaluate, validate_policy
from immutable_deploy.localaws.iam.model import AuthzRequest, Decision

ACCOUNT = "123456789012"
INSTANCE = f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-0abc"


Strings = str | list[str]


def allow(action: Strings = "*", resource: Strings = "*", condition: dict | None = None, **more: str) -> dict:
    return {
        "Effect": "Allow",
        "Action": action,
        "Resource": resource,
        **({"Condition": condition} if condition else {}),
        **more,
    }


def deny(action: Strings = "*", resource: Strings = "*", condition: dict | None = None, **more: str) -> dict:
    return {**allow(action, resource, condition, **more), "Effect": "Deny"}


def decide(
    statements: list[dict],
    action: str,
    resource: str = "*",
    context: dict | None = None,
    *,
    version: str | None = "2012-10-17",
) -> Decision:
    policy = {"Statement": statements} if version is None else {"Version": version, "Statement": statements}
    return evaluate([policy], AuthzRequest(action, resource, context or {}))


def result(statements: list[dict], action: str, resource: str = "*", context: dict | None = None, **kw) -> str:
    return decide(statements, action, resource, context, **kw).result


def holds(condition: dict, context: dict) -> bool:
    """Whether an Allow statement with ``condition`` (and nothing else to fail) allows a request."""
    return decide([allow(condition=condition)], "svc:Act", "*", context).allowed


# -- evaluation logic (reference_policies_evaluation-logic) -------------------------------------


def test_an_allow_that_matches_allows_and_is_the_deciding_statement() -> None:
    # Given a policy allowing s3:GetObject
    statement = allow("s3:GetObject", "arn:aws:s3:::bucket/*", Sid="Read")
    # When the action is requested on an object
    decision = decide([statement], "s3:GetObject", "arn:aws:s3:::bucket/key")
    # Then it is allowed by that statement
    assert (decision.result, decision.statement) == ("Allowed", statement)
    assert "'Read'" in decision.explanation


def test_nothing_matching_is_an_implicit_deny() -> None:
    # Given a policy allowing only s3:GetObject
    # When another action is requested
    decision = decide([allow("s3:GetObject")], "s3:PutObject", "arn:aws:s3:::bucket/key")
    # Then it is implicitly denied, decided by no statement
    assert (decision.result, decision.statement) == ("ImplicitDeny", None)
    assert "no statement's Action matches s3:PutObject" in decision.explanation


def test_an_explicit_deny_in_any_policy_wins_over_allows_before_and_after_it() -> None:
    # Given two policies, the second denying what the first and a later statement allow
    denial = deny("ec2:TerminateInstances", Sid="NeverTerminate")
    policies = [
        {"Version": "2012-10-17", "Statement": [allow("ec2:*")]},
        {"Version": "2012-10-17", "Statement": [denial, allow("ec2:TerminateInstances")]},
    ]
    # When the action is requested
    decision = evaluate(policies, AuthzRequest("ec2:TerminateInstances", INSTANCE))
    # Then the deny decides
    assert (decision.result, decision.statement) == ("ExplicitDeny", denial)
    assert "'NeverTerminate' of policy 1" in decision.explanation


def test_statement_may_be_a_single_object() -> None:
    # Given a policy whose Statement is one object rather than a list
    policy = {"Version": "2012-10-17", "Statement": allow("s3:GetObject")}
    # When the action is requested / Then it is allowed
    assert evaluate([policy], AuthzRequest("s3:GetObject", "*")).allowed


def test_the_first_allowing_statement_is_the_deciding_one() -> None:
    first, second = allow("s3:*", Sid="First"), allow("s3:GetObject", Sid="Second")
    assert decide([first, second], "s3:GetObject").statement == first


def test_a_request_action_must_be_service_colon_action() -> None:
    with pytest.raises(ValueError, match="service:Action"):
        decide([allow()], "GetObject")


def test_no_policies_is_an_implicit_deny() -> None:
    assert evaluate([], AuthzRequest("s3:GetObject", "*")).result == "ImplicitDeny"


# -- Action / NotAction (reference_policies_elements_action, ..._notaction) ----------------------


@pytest.mark.parametrize("action", ["iam:ListAccessKeys", "IAM:listaccesskeys", "Iam:LISTACCESSKEYS"])
def test_action_is_case_insensitive(action: str) -> None:
    # Given (docs) "iam:ListAccessKeys is the same as IAM:listaccesskeys"
    # When either spelling is requested against the other / Then it matches
    assert result([allow("iam:listAccessKeys")], action) == "Allowed"


@pytest.mark.parametrize(
    "action, expected",
    [
        ("iam:CreateAccessKey", "Allowed"),
        ("iam:DeleteAccessKey", "Allowed"),
        ("iam:ListAccessKeys", "Allowed"),
        ("iam:UpdateAccessKey", "Allowed"),
        ("iam:ListUsers", "ImplicitDeny"),
        ("sts:GetAccessKeyInfo", "ImplicitDeny"),
    ],
)
def test_action_star_is_any_run_of_characters(action: str, expected: str) -> None:
    # Given (docs) "iam:*AccessKey*"
    # When an action is requested / Then it matches only IAM actions containing AccessKey
    assert result([allow("iam:*AccessKey*")], action) == expected


@pytest.mark.parametrize(
    "action, expected",
    [
        ("ec2:StartInstances", "Allowed"),
        ("ec2:StopInstances", "ImplicitDeny"),
        ("ec2:RestartInstances", "ImplicitDeny"),
    ],
)
def test_action_question_mark_is_exactly_one_character(action: str, expected: str) -> None:
    assert result([allow("ec2:?tartInstances")], action) == expected


def test_action_star_alone_is_every_action() -> None:
    assert result([allow("*")], "dynamodb:PutItem") == "Allowed"


def test_not_action_matches_every_action_it_does_not_list() -> None:
    # Given an Allow of everything except IAM
    statement = {"Effect": "Allow", "NotAction": "iam:*", "Resource": "*"}
    # When an S3 and an IAM action are requested
    # Then S3 is allowed and IAM is not
    assert result([statement], "s3:GetObject") == "Allowed"
    assert result([statement], "iam:CreateUser") == "ImplicitDeny"


# -- Resource / NotResource (reference_policies_elements_resource, ..._notresource) --------------


def test_resource_is_case_sensitive() -> None:
    # Given (docs) "In the Resource element, the IAM user name is case sensitive"
    statement = allow("iam:*AccessKey*", f"arn:aws:iam::{ACCOUNT}:user/Bob")
    # Then Bob matches and bob does not
    assert result([statement], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/Bob") == "Allowed"
    assert result([statement], "iam:CreateAccessKey", f"arn:aws:iam::{ACCOUNT}:user/bob") == "ImplicitDeny"


@pytest.mark.parametrize(
    "key, expected",
    [
        *[
            (key, "Allowed")
            for key in [
                "1/test/object.jpg",
                "1/2/test/object.jpg",
                "1/2/test/3/object.jpg",
                "1/2/3/test/4/object.jpg",
                "1///test///object.jpg",
                "1/test/.jpg",
                "/test/object.jpg",
                "1/test/",
            ]
        ],
        *[(key, "ImplicitDeny") for key in ["1-test/object.jpg", "test/object.jpg", "1/2/test.jpg"]],
    ],
)
def test_resource_star_expands_over_slashes_within_a_segment(key: str, expected: str) -> None:
    # Given (docs) "arn:aws:s3:::amzn-s3-demo-bucket/*/test/*" and its lists of matching and non-matching objects
    statement = allow("s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/*/test/*")
    # When an object is requested / Then it matches as the docs list
    assert result([statement], "s3:GetObject", f"arn:aws:s3:::amzn-s3-demo-bucket/{key}") == expected


@pytest.mark.parametrize("pattern", ["arn:aws:ec2:*", "arn:aws:ec2:*:*:*", f"arn:aws:ec2:*:{ACCOUNT}:instance/*"])
def test_resource_star_ending_a_segment_may_match_beyond_colons(pattern: str) -> None:
    # Given (docs) "If the * wildcard is the last character of a resource ARN segment, it can expand to
    # match beyond the colon boundaries"
    # When an instance ARN is requested / Then each pattern covers it
    assert result([allow("ec2:StopInstances", pattern)], "ec2:StopInstances", INSTANCE) == "Allowed"


def test_resource_star_ending_a_segment_spans_colons_where_arn_like_does_not() -> None:
    # Given (docs, ARN condition operators) the pattern and the value that StringLike matches but ArnLike does not
    pattern = "arn:aws:someservice:*:111122223333:finance/*"
    value = "arn:aws:someservice:us-east-2:999999999999:store/abc:111122223333:finance/document.txt"
    # When the pattern is a Resource / Then its region "*" ends a segment and spans the colons
    assert result([allow("someservice:Get", pattern)], "someservice:Get", value) == "Allowed"
    # And as ArnLike it fails (the account is compared on its own) while StringLike matches
    assert not holds({"ArnLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value})
    assert holds({"StringLike": {"aws:SourceArn": pattern}}, {"aws:SourceArn": value})


@pytest.mark.parametrize(
    "resource, expected",
    [
        (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app-web-logs", "Allowed"),
        (f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app:web-logs", "ImplicitDeny"),
    ],
)
def test_resource_star_inside_a_segment_does_not_cross_a_colon(resource: str, expected: str) -> None:
    # Given a "*" that is not the last character of its segment
    statement = allow("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app*-logs")
    # Then it matches within the segment only
    assert result([statement], "logs:PutLogEvents", resource) == expected


@pytest.mark.parametrize("name, expected", [("a-b", "Allowed"), ("a:b", "ImplicitDeny"), ("ab", "ImplicitDeny")])
def test_resource_question_mark_is_one_character_other_than_a_colon(name: str, expected: str) -> None:
    statement = allow("logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:a?b")
    assert result([statement], "logs:PutLogEvents", f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:{name}") == expected


def test_resource_star_alone_matches_every_resource_and_the_no_resource_type_star() -> None:
    assert result([allow("ec2:*", "*")], "ec2:StopInstances", INSTANCE) == "Allowed"
    assert result([allow("ec2:*", "*")], "ec2:DescribeInstances", "*") == "Allowed"


def test_an_action_without_resource_type_is_covered_only_by_resource_star() -> None:
    # Given (docs) "Some AWS services do not allow you to specify actions for individual resources ...
    # you use the wildcard character (*) in the Resource element": an ARN pattern does not cover them
    decision = decide([allow("ec2:Describe*", "arn:aws:ec2:*:*:*")], "ec2:DescribeInstances", "*")
    # Then ec2:DescribeInstances (requested on "*") is not allowed, and the explanation says why
    assert decision.result == "ImplicitDeny"
    assert 'covered only by Resource "*"' in decision.explanation


def test_several_resources_are_ored() -> None:
    # Given (docs) two DynamoDB tables
    table = f"arn:aws:dynamodb:us-east-2:{ACCOUNT}:table/"
    statements = [allow("dynamodb:GetItem", [table + "books_table", table + "magazines_table"])]
    # Then each is allowed and a third is not
    assert result(statements, "dynamodb:GetItem", table + "magazines_table") == "Allowed"
    assert result(statements, "dynamodb:GetItem", table + "comics_table") == "ImplicitDeny"


@pytest.mark.parametrize(
    "resource, expected",
    [
        ("arn:aws:s3:::HRBucket/Payroll", "Allowed"),
        ("arn:aws:s3:::HRBucket/Payroll/march.csv", "Allowed"),
        ("arn:aws:s3:::HRBucket/Recruiting/cv.pdf", "ExplicitDeny"),
        ("arn:aws:s3:::OtherBucket", "ExplicitDeny"),
    ],
)
def test_not_resource_matches_every_resource_it_does_not_list(resource: str, expected: str) -> None:
    # Given (docs) the HRPayroll Deny of all S3 resources but the Payroll folder, and an Allow of all S3
    statements = [
        {
            "Effect": "Deny",
            "Action": "s3:*",
            "NotResource": ["arn:aws:s3:::HRBucket/Payroll", "arn:aws:s3:::HRBucket/Payroll/*"],
        },
        allow("s3:*", "*"),
    ]
    # Then only the Payroll folder stays reachable
    assert result(statements, "s3:GetObject", resource) == expected


def test_not_resource_explains_the_exclusion() -> None:
    statement = {"Effect": "Allow", "Action": "s3:*", "NotResource": "arn:aws:s3:::secret/*"}
    decision = decide([statement], "s3:GetObject", "arn:aws:s3:::secret/key")
    assert "resource arn:aws:s3:::secret/key is excluded by NotResource arn:aws:s3:::secret/*" in decision.explanation


# -- string condition operators (reference_policies_elements_condition_operators#Conditions_String)


@pytest.mark.parametrize(
    "op, wanted, found, expected",
    [
        ("StringEquals", "john", "john", True),
        ("StringEquals", "john", "John", False),  # docs: "Users named John are denied access"
        ("StringEquals", "jo*", "john", False),  # no wildcards
        ("StringNotEquals", "john", "John", True),
        ("StringNotEquals", "john", "john", False),
        ("StringEqualsIgnoreCase", "john", "John", True),  # docs: matches john or John
        ("StringEqualsIgnoreCase", "john", "jane", False),
        ("StringNotEqualsIgnoreCase", "john", "JOHN", False),
        ("StringNotEqualsIgnoreCase", "john", "jane", True),
        ("StringLike", "jo*", "john", True),
        ("StringLike", "j?hn", "john", True),
        ("StringLike", "j?hn", "jooohn", False),
        ("StringLike", "jo*", "John", False),  # case-sensitive
        ("StringLike", "jo?n", "jo:n", True),  # a string is not an ARN: "?" is any character
        ("StringNotLike", "jo*", "john", False),
        ("StringNotLike", "jo*", "jane", True),
    ],
)
def test_string_operators(op: str, wanted: str, found: str, expected: bool) -> None:
    # Given a condition on aws:username / When the request has a user name / Then the operator decides
    assert holds({op: {"aws:username": wanted}}, {"aws:username": found}) is expected


def test_string_like_home_directory_example() -> None:
    # Given (docs) s3:ListBucket with s3:prefix like "", "home/" or "home/${aws:username}/"
    condition = {"StringLike": {"s3:prefix": ["", "home/", "home/${aws:username}/"]}}
    # Then the user's own home and the top levels are listable, another user's home is not
    assert holds(condition, {"s3:prefix": "home/david/", "aws:username": "david"})
    assert holds(condition, {"s3:prefix": "", "aws:username": "david"})
    assert not holds(condition, {"s3:prefix": "home/adele/", "aws:username": "david"})


# -- numeric, date, bool, binary, IP, ARN operators --------------------------------------------


@pytest.mark.parametrize(
    "op, found, expected",
    [
        ("NumericEquals", 10, True),
        ("NumericEquals", "10.0", True),
        ("NumericEquals", 11, False),
        ("NumericNotEquals", 11, True),
        ("NumericNotEquals", 10, False),
        ("NumericLessThan", "9", True),
        ("NumericLessThan", 10, False),  # "9" < "10" as numbers, not as text
        ("NumericLessThanEquals", 10, True),
        ("NumericLessThanEquals", 11, False),
        ("NumericGreaterThan", 11, True),
        ("NumericGreaterThan", 10, False),
        ("NumericGreaterThanEquals", 10, True),
        ("NumericGreaterThanEquals", "9.99", False),
    ],
)
def test_numeric_operators(op: str, found: object, expected: bool) -> None:
    # Given (docs) s3:max-keys compared with "10"
    assert holds({op: {"s3:max-keys": "10"}}, {"s3:max-keys": found}) is expected


@pytest.mark.parametrize(
    "op, wanted, found, expected",
    [
        ("DateGreaterThan", "2020-01-01T00:00:01Z", "2020-06-01T00:00:00Z", True),  # docs: aws:TokenIssueTime
        ("DateGreaterThan", "2020-01-01T00:00:01Z", "2020-01-01T00:00:01Z", False),
        ("DateGreaterThanEquals", "2020-01-01T00:00:01Z", "2020-01-01T00:00:01Z", True),
        ("DateLessThan", "2020-01-01T00:00:00Z", "2019-12-31T23:59:59Z", True),
        ("DateLessThan", "2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z", False),
        ("DateLessThanEquals", "2020-01-01", "2020-01-01T00:00:00Z", True),
        ("DateEquals", "2020-01-01T01:00:00+01:00", "2020-01-01T00:00:00Z", True),  # the same instant
        ("DateNotEquals", "2020-01-01T01:00:00+01:00", "2020-01-01T01:00:00Z", True),
        ("DateEquals", "1577836800", "2020-01-01T00:00:00Z", True),  # epoch seconds in the policy
        ("DateLessThan", "2020-01-02", 1577836800, True),  # epoch seconds in the request (aws:EpochTime)
        ("DateLessThan", "2021", "2020-12-31T23:59:59Z", True),  # W3C year
        ("DateGreaterThanEquals", "2020-06", "2020-06-01T00:00:00Z", True),  # W3C year-month
    ],
)
def test_date_operators(op: str, wanted: str, found: object, expected: bool) -> None:
    assert holds({op: {"aws:CurrentTime": wanted}}, {"aws:CurrentTime": found}) is expected


@pytest.mark.parametrize("secure, expected", [(False, "ExplicitDeny"), ("false", "ExplicitDeny"), (True, "Allowed")])
def test_bool_operator(secure: object, expected: str) -> None:
    # Given (docs) "BooleanExample": deny s3:* when aws:SecureTransport is false, and an allow of S3
    statements = [
        deny(
            "s3:*",
            ["arn:aws:s3:::DOC-EXAMPLE-BUCKET", "arn:aws:s3:::DOC-EXAMPLE-BUCKET/*"],
            {"Bool": {"aws:SecureTransport": "false"}},
        ),
        allow("s3:*"),
    ]
    # When the request's transport is or is not secure / Then only insecure requests are denied
    context = {"aws:SecureTransport": secure}
    assert result(statements, "s3:GetObject", "arn:aws:s3:::DOC-EXAMPLE-BUCKET/k", context) == expected


def test_bool_operator_takes_a_json_boolean() -> None:
    assert holds({"Bool": {"aws:MultiFactorAuthPresent": True}}, {"aws:MultiFactorAuthPresent": "true"})
    assert not holds({"Bool": {"aws:MultiFactorAuthPresent": True}}, {"aws:MultiFactorAuthPresent": False})


def test_binary_equals_compares_base64_bytes() -> None:
    # Given (docs) a BinaryEquals value in base-64
    condition = {"BinaryEquals": {"svc:Blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="}}
    # Then the same bytes match and other bytes do not
    assert holds(condition, {"svc:Blob": "QmluYXJ5VmFsdWVJbkJhc2U2NA=="})
    assert not holds(condition, {"svc:Blob": "T3RoZXJWYWx1ZQ=="})


@pytest.mark.parametrize(
    "source, expected",
    [
        ("203.0.113.7", True),
        ("198.51.100.1", False),
        ("2001:db8:1234:5678::1", True),
        ("2001:db8:1234:9999::1", False),
    ],
)
def test_ip_address_operators(source: str, expected: bool) -> None:
    # Given (docs) a mix of IPv4 and IPv6 ranges for aws:SourceIp
    ranges = ["203.0.113.0/24", "2001:DB8:1234:5678::/64"]
    # Then IpAddress holds inside a range and NotIpAddress outside all of them
    assert holds({"IpAddress": {"aws:SourceIp": ranges}}, {"aws:SourceIp": source}) is expected
    assert holds({"NotIpAddress": {"aws:SourceIp": ranges}}, {"aws:SourceIp": source}) is not expected


def test_ip_address_without_prefix_is_one_host() -> None:
    # Given (docs) "If you specify an IP address without the associated routing prefix, IAM uses ... /32"
    assert holds({"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.5"})
    assert not holds({"IpAddress": {"aws:SourceIp": "203.0.113.5"}}, {"aws:SourceIp": "203.0.113.6"})


@pytest.mark.parametrize("op", ["ArnEquals", "ArnLike"])
def test_arn_equals_and_arn_like_behave_identically(op: str) -> None:
    # Given (docs) "The ArnEquals and ArnLike condition operators behave identically", wildcards included
    condition = {op: {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:deploy-*"}}
    # Then a topic of the account matches and one of another account does not
    assert holds(condition, {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:deploy-events"})
    assert not holds(condition, {"aws:SourceArn": "arn:aws:sns:us-east-1:999999999999:deploy-events"})


def test_arn_like_keeps_the_resource_components_colons() -> None:
    # Given an ArnLike whose resource component has a colon
    condition = {"ArnLike": {"aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:*"}}
    # Then the sixth component keeps its colons; a pattern with fewer than six components matches nothing
    assert holds(condition, {"aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app:log-stream:x"})
    assert not holds(
        {"ArnLike": {"aws:SourceArn": "arn:aws:logs:*"}},
        {"aws:SourceArn": f"arn:aws:logs:us-east-1:{ACCOUNT}:log-group:app"},
    )
    # And a value that is no ARN matches no ARN pattern, even one with as few components
    assert not holds({"ArnLike": {"aws:SourceArn": "x*"}}, {"aws:SourceArn": "xyz"})


@pytest.mark.parametrize("op, expected", [("ArnNotEquals", False), ("ArnNotLike", False)])
def test_arn_negated_operators(op: str, expected: bool) -> None:
    condition = {op: {"aws:SourceArn": f"arn:aws:sns:*:{ACCOUNT}:*"}}
    assert holds(condition, {"aws:SourceArn": f"arn:aws:sns:us-east-1:{ACCOUNT}:t"}) is expected
    assert holds(condition, {"aws:SourceArn": "arn:aws:sns:us-east-1:999999999999:t"}) is not expected


# -- Null, missing keys, IfExists ---------------------------------------------------------------


@pytest.mark.parametrize(
    "context, expected",
    [
        ({}, "Allowed"),
        ({"aws:TokenIssueTime": "2030-01-01T00:00:00Z"}, "ImplicitDeny"),
    ],
)
def test_null_true_requires_the_key_to_be_absent(context: dict, expected: str) -> None:
    # Given (docs) EC2 allowed only without temporary credentials: {"Null": {"aws:TokenIssueTime": "true"}}
    statement = allow("ec2:*", "*", {"Null": {"aws:TokenIssueTime": "true"}})
    assert result([statement], "ec2:DescribeInstances", "*", context) == expected


@pytest.mark.parametrize("found, expected", [("prod", True), (None, False), ("", False), ([], False), (["a"], True)])
def test_null_false_requires_a_value_and_empty_values_are_null(found: object, expected: bool) -> None:
    # Given (docs) Null false: "the key exists and its value is not null", empty values included in null
    context = {} if found is None else {"aws:TagKeys": found}
    assert holds({"Null": {"aws:TagKeys": "false"}}, context) is expected


@pytest.mark.parametrize(
    "op, expected",
    [
        ("StringEquals", False),
        ("StringLike", False),
        ("NumericLessThan", False),
        ("DateLessThan", False),
        ("Bool", False),
        ("IpAddress", False),
        ("ArnLike", False),
        ("BinaryEquals", False),
        ("StringNotEquals", True),
        ("StringNotLike", True),
        ("StringNotEqualsIgnoreCase", True),
        ("NumericNotEquals", True),
        ("DateNotEquals", True),
        ("NotIpAddress", True),
        ("ArnNotEquals", True),
        ("ArnNotLike", True),
        ("StringEqualsIfExists", True),
        ("NumericLessThanIfExists", True),
        ("StringNotEqualsIfExists", True),
        ("ForAllValues:StringEquals", True),
        ("ForAllValues:StringNotEquals", True),
        ("ForAnyValue:StringEquals", False),
        ("ForAnyValue:StringNotEquals", False),
        ("ForAnyValue:StringEqualsIfExists", True),
    ],
)
def test_a_missing_key(op: str, expected: bool) -> None:
    # Given (docs, Condition operators) "If the key ... is not present in the request context, the values
    # do not match and the condition is false. If the policy condition requires that the key is not
    # matched, such as StringNotLike or ArnNotLike ... the condition is true", except IfExists; and
    # (multivalued context keys) ForAllValues is true and ForAnyValue false for a missing key
    value = {
        "Numeric": "1",
        "Date": "2020-01-01",
        "Bool": "true",
        "IpAddress": "10.0.0.0/8",
        "NotIpAddress": "10.0.0.0/8",
        "Arn": "arn:aws:s3:::b",
        "Binary": "QQ==",
    }
    wanted = next((v for prefix, v in value.items() if op.split(":")[-1].startswith(prefix)), "x")
    # When the key is not in the request context / Then the operator decides as documented
    assert holds({op: {"svc:Key": wanted}}, {}) is expected


def test_a_missing_key_is_explained() -> None:
    decision = decide([allow("s3:*", condition={"StringEquals": {"aws:PrincipalTag/team": "deploy"}})], "s3:GetObject")
    assert "condition StringEquals aws:PrincipalTag/team: key not present" in decision.explanation


@pytest.mark.parametrize(
    "context, expected",
    [
        ({}, "Allowed"),  # the image, the subnet... have no ec2:InstanceType
        ({"ec2:InstanceType": "t2.micro"}, "Allowed"),
        ({"ec2:InstanceType": "m5.large"}, "ImplicitDeny"),
    ],
)
def test_if_exists_checks_the_key_only_when_present(context: dict, expected: str) -> None:
    # Given (docs, ...IfExists) RunInstances allowed for t1/t2/m3 types with StringLikeIfExists
    statement = allow("ec2:RunInstances", "*", {"StringLikeIfExists": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}})
    assert result([statement], "ec2:RunInstances", "*", context) == expected


def test_without_if_exists_the_missing_key_fails_the_other_resources() -> None:
    # Given (docs) "THISPOLICYDOESNOTWORK": StringLike on ec2:InstanceType
    statement = allow("ec2:RunInstances", "*", {"StringLike": {"ec2:InstanceType": ["t1.*", "t2.*", "m3.*"]}})
    # When the image (no ec2:InstanceType) is authorized / Then it is not allowed
    assert result([statement], "ec2:RunInstances", "arn:aws:ec2:us-east-1::image/ami-1") == "ImplicitDeny"


def test_deny_with_a_negated_if_exists_operator_still_denies_a_missing_key() -> None:
    # Given (docs) "If you are using an "Effect": "Deny" element with a negated condition operator like
    # StringNotEqualsIfExists, the request is still denied even if the tag is missing"
    statements = [deny("ec2:*", "*", {"StringNotEqualsIfExists": {"aws:ResourceTag/team": "deploy"}}), allow("ec2:*")]
    assert result(statements, "ec2:StopInstances", INSTANCE) == "ExplicitDeny"
    assert result(statements, "ec2:StopInstances", INSTANCE, {"aws:ResourceTag/team": "deploy"}) == "Allowed"


# -- several keys and values (reference_policies_multi-value-conditions) -----------------------

DEPARTMENT_AND_ROLE = {
    "aws:PrincipalTag/department": ["finance", "hr", "legal"],
    "aws:PrincipalTag/role": ["audit", "security"],
}
ANA_OR_MARY = {"aws:PrincipalArn": ["arn:aws:iam::222222222222:user/Ana", "arn:aws:iam::222222222222:user/Mary"]}


@pytest.mark.parametrize(
    "department, role, user, expected",
    [
        ("legal", "audit", "Mary", True),
        ("hr", "audit", "Nikki", False),
        ("hr", "payroll", "Mary", False),
        ("hr", None, "Mary", False),
        (None, None, "Mary", False),
    ],
)
def test_operators_and_keys_are_anded_and_values_ored(department, role, user, expected: bool) -> None:
    # Given (docs) StringEquals on department and role plus ArnLike on the principal, and its table
    condition = {"StringEquals": DEPARTMENT_AND_ROLE, "ArnLike": ANA_OR_MARY}
    context = {
        "aws:PrincipalArn": f"arn:aws:iam::222222222222:user/{user}",
        **({"aws:PrincipalTag/department": department} if department else {}),
        **({"aws:PrincipalTag/role": role} if role else {}),
    }
    assert holds(condition, context) is expected


@pytest.mark.parametrize(
    "department, role, user, expected",
    [
        ("legal", "audit", "Nikki", True),
        ("hr", "audit", "Mary", False),
        ("hr", "payroll", "Nikki", False),
        ("hr", None, "Nikki", False),
        (None, None, "Nikki", False),
    ],
)
def test_values_of_a_negated_operator_are_nored(department, role, user, expected: bool) -> None:
    # Given (docs) the same with ArnNotLike: the principal must match none of Ana and Mary
    condition = {"StringEquals": DEPARTMENT_AND_ROLE, "ArnNotLike": ANA_OR_MARY}
    context = {
        "aws:PrincipalArn": f"arn:aws:iam::222222222222:user/{user}",
        **({"aws:PrincipalTag/department": department} if department else {}),
        **({"aws:PrincipalTag/role": role} if role else {}),
    }
    assert holds(condition, context) is expected


@pytest.mark.parametrize("key", ["aws:SourceIp", "AWS:SourceIP", "aws:sourceip"])
def test_condition_key_names_are_case_insensitive(key: str) -> None:
    # Given (docs) "including the aws:SourceIP context key is equivalent to testing for AWS:SourceIp"
    assert holds({"IpAddress": {key: "203.0.113.0/24"}}, {"aws:SourceIp": "203.0.113.9"})


def test_the_tag_key_part_of_a_key_name_is_case_insensitive() -> None:
    # Given (docs) "aws:ResourceTag/TagKey1": "Value1" "matches a resource tag key named either TagKey1 or tagkey1"
    condition = {"StringEquals": {"aws:ResourceTag/TagKey1": "Value1"}}
    assert holds(condition, {"aws:ResourceTag/tagkey1": "Value1"})
    # And the value stays case-sensitive
    assert not holds(condition, {"aws:ResourceTag/tagkey1": "value1"})


def test_context_keys_differing_only_by_case_are_an_error() -> None:
    # Given (docs) tags "ec2=test1" and "EC2=test2": the key name matches both, with unexpected results
    context = {"aws:ResourceTag/EC2": "test1", "aws:ResourceTag/ec2": "test2"}
    with pytest.raises(ValueError, match="differing only by case"):
        holds({"StringEquals": {"aws:ResourceTag/EC2": "test1"}}, context)


# -- set operators (reference_policies_condition-single-vs-multi-valued-context-keys) -----------


@pytest.mark.parametrize(
    "attributes, expected",
    [
        (["Message", "Tags"], True),
        (["PostDateTime", "UserName"], False),
        (["UserName"], False),
        ([], True),
        ("", True),
        (None, True),
    ],
)
def test_for_all_values(attributes, expected: bool) -> None:
    # Given (docs) dynamodb:GetItem with ForAllValues:StringEquals dynamodb:Attributes
    condition = {"ForAllValues:StringEquals": {"dynamodb:Attributes": ["ID", "PostDateTime", "Message", "Tags"]}}
    # When the request asks for attributes / Then every one must be listed (and none, or an empty value, passes)
    assert holds(condition, {} if attributes is None else {"dynamodb:Attributes": attributes}) is expected


@pytest.mark.parametrize(
    "attributes, expected",
    [
        (["UserName", "Message", "PostDateTime"], "ExplicitDeny"),
        (["UserName"], "Allowed"),
        ([], "Allowed"),
        (None, "Allowed"),
    ],
)
def test_for_any_value(attributes, expected: str) -> None:
    # Given (docs) a Deny of dynamodb:PutItem when ForAnyValue:StringEquals dynamodb:Attributes is ID or PostDateTime
    statements = [
        deny(
            "dynamodb:PutItem",
            "arn:aws:dynamodb:*:*:table/Thread",
            {"ForAnyValue:StringEquals": {"dynamodb:Attributes": ["ID", "PostDateTime"]}},
        ),
        allow("dynamodb:*"),
    ]
    context = {} if attributes is None else {"dynamodb:Attributes": attributes}
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/Thread"
    assert result(statements, "dynamodb:PutItem", table, context) == expected


@pytest.mark.parametrize(
    "tag_keys, expected",
    [
        (["environment"], True),
        (["cost-center"], True),
        (["environment", "cost-center"], True),
        (["environment", "dept"], False),
        (None, False),
    ],
)
def test_for_all_values_with_a_null_check(tag_keys, expected: bool) -> None:
    # Given (docs) ec2:DeleteTags with ForAllValues:StringEquals aws:TagKeys and Null aws:TagKeys false, and its table
    condition = {
        "ForAllValues:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]},
        "Null": {"aws:TagKeys": "false"},
    }
    assert holds(condition, {} if tag_keys is None else {"aws:TagKeys": tag_keys}) is expected


@pytest.mark.parametrize(
    "tag_keys, expected",
    [
        (["environment"], True),
        (["cost-center"], True),
        (["environment", "cost-center"], True),
        (["environment", "dept"], True),
        (["dept"], False),
        (None, False),
    ],
)
def test_for_any_value_table(tag_keys, expected: bool) -> None:
    # Given (docs) ForAnyValue:StringEquals aws:TagKeys environment or cost-center, and its table
    condition = {"ForAnyValue:StringEquals": {"aws:TagKeys": ["environment", "cost-center"]}}
    assert holds(condition, {} if tag_keys is None else {"aws:TagKeys": tag_keys}) is expected


@pytest.mark.parametrize(
    "tag_keys, expected",
    [
        (["key1:legal"], "Allowed"),
        (["key1:hr", "key1:personnel"], "Allowed"),
        (["key1:hr", "key2:audit"], "Allowed"),
        (["key3:legal"], "ExplicitDeny"),
        (None, "ExplicitDeny"),
    ],
)
def test_for_all_values_with_a_negated_operator(tag_keys, expected: str) -> None:
    # Given (docs, multivalued context key examples) a Deny of IAM tagging with
    # ForAllValues:StringNotLike aws:TagKeys ["key1*", "key2*"], and its table
    statements = [
        deny(["iam:Tag*", "iam:UnTag*"], "*", {"ForAllValues:StringNotLike": {"aws:TagKeys": ["key1*", "key2*"]}}),
        allow("iam:*"),
    ]
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert result(statements, "iam:TagRole", f"arn:aws:iam::{ACCOUNT}:role/r", context) == expected


def test_for_any_value_with_a_negated_operator() -> None:
    # Given ForAnyValue:StringNotEquals: at least one request value must be none of the policy's
    condition = {"ForAnyValue:StringNotEquals": {"aws:TagKeys": ["a", "b"]}}
    assert holds(condition, {"aws:TagKeys": ["a", "c"]})
    assert not holds(condition, {"aws:TagKeys": ["a", "b"]})


def test_a_multivalued_key_without_a_set_operator_is_an_error() -> None:
    # Given (docs) "Multivalued context keys require a condition set operator"
    with pytest.raises(ValueError, match="ForAllValues: or ForAnyValue:"):
        holds({"StringEquals": {"aws:TagKeys": "a"}}, {"aws:TagKeys": ["a"]})


def test_a_single_value_under_a_set_operator_is_a_one_value_set() -> None:
    assert holds({"ForAnyValue:StringEquals": {"aws:RequestTag/env": ["prod", "dev"]}}, {"aws:RequestTag/env": "dev"})
    assert not holds({"ForAnyValue:StringEquals": {"aws:RequestTag/env": ["prod"]}}, {"aws:RequestTag/env": "dev"})


# -- policy variables (reference_policies_variables) --------------------------------------------


def test_variable_in_resource() -> None:
    # Given (docs, Resource) dynamodb:* on table/${aws:username}
    table = "arn:aws:dynamodb:us-east-2:111122223333:table/"
    statement = allow("dynamodb:*", table + "${aws:username}")
    context = {"aws:username": "alice"}
    # Then the user's own table is allowed and another is not
    assert result([statement], "dynamodb:GetItem", table + "alice", context) == "Allowed"
    assert result([statement], "dynamodb:GetItem", table + "bob", context) == "ImplicitDeny"


def test_variable_key_names_are_case_insensitive() -> None:
    # Given (docs) "aws:CurrentTime is equivalent to AWS:currenttime"
    statement = allow("s3:*", "arn:aws:s3:::bucket/${AWS:USERNAME}/*")
    assert result([statement], "s3:GetObject", "arn:aws:s3:::bucket/alice/k", {"aws:username": "alice"}) == "Allowed"


def test_variable_without_value_in_resource_matches_no_resource() -> None:
    # Given (docs) "the resource that includes a policy variable with no value will not match any resource"
    statement = allow("s3:*", "arn:aws:s3:::bucket/${aws:username}/*")
    decision = decide([statement], "s3:GetObject", "arn:aws:s3:::bucket/alice/k")
    assert decision.result == "ImplicitDeny"
    assert "${aws:username} has no value" in decision.explanation


def test_variable_without_value_is_not_its_own_text() -> None:
    # Given a request whose resource and context value spell the unresolved variable literally
    literal = "arn:aws:s3:::bucket/${aws:username}/k"
    # Then neither matches: a variable with no value matches nothing
    assert result([allow("s3:*", "arn:aws:s3:::bucket/${aws:username}/*")], "s3:GetObject", literal) == "ImplicitDeny"
    assert not holds({"StringEquals": {"svc:Name": "${aws:username}"}}, {"svc:Name": "${aws:username}"})


def test_variable_without_value_in_not_resource_excludes_nothing() -> None:
    # Given a Deny of every object but the user's own: without a user name the exclusion matches nothing
    statements = [
        {"Effect": "Deny", "Action": "s3:*", "NotResource": "arn:aws:s3:::bucket/${aws:username}/*"},
        allow("s3:*"),
    ]
    assert result(statements, "s3:GetObject", "arn:aws:s3:::bucket/alice/k", {"aws:username": "alice"}) == "Allowed"
    assert result(statements, "s3:GetObject", "arn:aws:s3:::bucket/alice/k") == "ExplicitDeny"


@pytest.mark.parametrize(
    "context, expected",
    [
        ({"aws:PrincipalTag/Team": "red", "s3:ExistingObjectTag/Team": "red"}, "Allowed"),
        ({"aws:PrincipalTag/Team": "red", "s3:ExistingObjectTag/Team": "blue"}, "ExplicitDeny"),
        ({"s3:ExistingObjectTag/Team": "red"}, "ExplicitDeny"),  # no principal tag: the negated operator matches
    ],
)
def test_variable_without_value_in_a_negated_condition_matches(context: dict, expected: str) -> None:
    # Given (docs) Deny s3:GetObject unless s3:ExistingObjectTag/Team equals ${aws:PrincipalTag/Team}
    statements = [
        deny(
            "s3:GetObject",
            "arn:aws:s3:::amzn-s3-demo-bucket/*",
            {"StringNotEquals": {"s3:ExistingObjectTag/Team": "${aws:PrincipalTag/Team}"}},
        ),
        allow("s3:*"),
    ]
    assert result(statements, "s3:GetObject", "arn:aws:s3:::amzn-s3-demo-bucket/k", context) == expected


def test_variable_without_value_in_a_positive_condition_does_not_match() -> None:
    # Given (docs) "StringEquals or StringLike do not match" a variable with no value
    condition = {"StringEquals": {"s3:ExistingObjectTag/owner": "${aws:PrincipalTag/owner}"}}
    assert holds(condition, {"s3:ExistingObjectTag/owner": "ana", "aws:PrincipalTag/owner": "ana"})
    assert not holds(condition, {"s3:ExistingObjectTag/owner": "ana"})


@pytest.mark.parametrize(
    "context, bucket, expected",
    [
        ({"aws:PrincipalTag/team": "yellow"}, "amzn-s3-demo-bucket-yellow", "Allowed"),
        ({}, "amzn-s3-demo-bucket-company-wide", "Allowed"),
        ({}, "amzn-s3-demo-bucket-yellow", "ImplicitDeny"),
    ],
)
def test_variable_default_value(context: dict, bucket: str, expected: str) -> None:
    # Given (docs) "arn:aws:s3:::amzn-s3-demo-bucket-${aws:PrincipalTag/team, 'company-wide'}"
    statement = allow("s3:ListBucket", "arn:aws:s3:::amzn-s3-demo-bucket-${aws:PrincipalTag/team, 'company-wide'}")
    assert result([statement], "s3:ListBucket", f"arn:aws:s3:::{bucket}", context) == expected


@pytest.mark.parametrize(
    "wanted, found, expected",
    [
        ("a${*}b", "a*b", True),
        ("a${*}b", "axb", False),
        ("a${?}b", "a?b", True),
        ("a${?}b", "axb", False),
        ("cost${$}", "cost$", True),
    ],
)
def test_special_character_variables_are_literal(wanted: str, found: str, expected: bool) -> None:
    # Given (docs) ${*}, ${?} and ${$} stand for the characters themselves, even in StringLike
    assert holds({"StringLike": {"svc:Name": wanted}}, {"svc:Name": found}) is expected


def test_a_substituted_value_is_literal_text() -> None:
    # Given a user named "*" and a Resource built from the user name
    statement = allow("s3:*", "arn:aws:s3:::bucket/${aws:username}")
    # Then the name is not a wildcard
    assert result([statement], "s3:GetObject", "arn:aws:s3:::bucket/other", {"aws:username": "*"}) == "ImplicitDeny"
    assert result([statement], "s3:GetObject", "arn:aws:s3:::bucket/*", {"aws:username": "*"}) == "Allowed"


@pytest.mark.parametrize("version", [None, "2008-10-17"])
def test_variables_are_literal_text_before_version_2012_10_17(version: str | None) -> None:
    # Given (docs) "If you don't include the Version element ... variables like ${aws:username} are
    # treated as literal strings"
    statement = allow("s3:*", "*", {"StringEquals": {"s3:prefix": "${aws:username}"}})
    literal, substituted = (
        {"s3:prefix": "${aws:username}", "aws:username": "x"},
        {"s3:prefix": "x", "aws:username": "x"},
    )
    assert result([statement], "s3:ListBucket", "*", literal, version=version) == "Allowed"
    assert result([statement], "s3:ListBucket", "*", substituted, version=version) == "ImplicitDeny"


def test_a_multivalued_key_cannot_be_a_variable() -> None:
    # Given (docs) "You can't use a multivalued condition key as a variable"
    with pytest.raises(ValueError, match="multivalued"):
        holds({"StringEquals": {"svc:Name": "${aws:TagKeys}"}}, {"svc:Name": "a", "aws:TagKeys": ["a"]})


# -- malformed policies -------------------------------------------------------------------------


@pytest.mark.parametrize(
    "statement, problem",
    [
        (
            {"Effect": "Allow", "Action": "s3:*", "NotAction": "iam:*", "Resource": "*"},
            "exactly one of Action and NotAction",
        ),
        ({"Effect": "Allow", "Resource": "*"}, "exactly one of Action and NotAction"),
        (
            {"Effect": "Allow", "Action": "s3:*", "Resource": "*", "NotResource": "*"},
            "exactly one of Resource and NotResource",
        ),
        ({"Effect": "Allow", "Action": "s3:*"}, "exactly one of Resource and NotResource"),
        ({"Effect": "allow", "Action": "s3:*", "Resource": "*"}, "Effect"),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "*", "Conditions": {}}, "unknown elements"),
        ({"Effect": "Allow", "Principal": "*", "Action": "s3:*", "Resource": "*"}, "identity-based"),
        ({"Effect": "Allow", "Action": "s3GetObject", "Resource": "*"}, "not service:Action"),
        ({"Effect": "Allow", "Action": [], "Resource": "*"}, "non-empty list"),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "bucket/*"}, "neither '*' nor an ARN"),
        ({"Effect": "Allow", "Action": "s3:*", "Resource": "arn:aws:s*:::bucket"}, "service segment"),
        (allow("sqs:*", "arn:aws:sqs:${aws:RequestedRegion}:123456789012:q"), "before the fifth colon"),
        (allow(condition={"StringEqual": {"aws:username": "a"}}), "unknown condition operator 'StringEqual'"),
        (allow(condition={"stringEquals": {"aws:username": "a"}}), "unknown condition operator"),
        (allow(condition={"ForAllValue:StringEquals": {"aws:TagKeys": "a"}}), "set qualifier"),
        (allow(condition={"NullIfExists": {"aws:TagKeys": "true"}}), "Null takes neither"),
        (allow(condition={"ForAnyValue:Null": {"aws:TagKeys": "true"}}), "Null takes neither"),
        (allow(condition={"Null": {"aws:TagKeys": "yes"}}), "not 'true' or 'false'"),
        (allow(condition={"NumericLessThan": {"s3:max-keys": "ten"}}), "not a number"),
        (allow(condition={"NumericLessThan": {"s3:max-keys": "${svc:Limit}"}}), "takes no policy variable"),
        (allow(condition={"DateLessThan": {"aws:CurrentTime": "tomorrow"}}), "not an ISO 8601 date"),
        (allow(condition={"IpAddress": {"aws:SourceIp": "10.0.0.0/33"}}), "IpAddress value"),
        (allow(condition={"Bool": {"aws:SecureTransport": "yes"}}), "not 'true' or 'false'"),
        (allow(condition={"Bool": {"aws:SecureTransport": "True"}}), "not 'true' or 'false'"),
        (allow(condition={"NumericEquals": {"s3:max-keys": "NaN"}}), "not a number"),
        (allow("s3:*", "arn:aws:s3:::bucket/${aws:username"), "unterminated policy variable"),
        (allow(condition={"StringLike": {"s3:prefix": "${aws:username/*"}}), "unterminated policy variable"),
        (allow("s3:*", "arn:aws:s3:::bucket/${}"), "malformed policy variable"),
        (allow(condition={"StringEquals": {"s3:prefix": "${aws:username, default}"}}), "malformed policy variable"),
        (allow(condition={"BinaryEquals": {"svc:Blob": "not base64!"}}), "not base-64"),
        (allow(condition={"StringEquals": {}}), "must map condition keys"),
        (allow(condition={"StringEquals": {"aws:username": {"a": 1}}}), "not a condition value"),
    ],
)
def test_a_malformed_statement_is_rejected(statement: dict, problem: str) -> None:
    # Given a malformed statement in a policy / When it is validated / Then a ValueError names the problem
    with pytest.raises(ValueError, match=problem.replace("$", r"\$").replace("*", r"\*")):
        validate_policy({"Version": "2012-10-17", "Statement": [statement]})


def test_a_malformed_statement_fails_evaluation_even_when_it_does_not_concern_the_request() -> None:
    # Given a typo in a statement about another action
    statements = [allow("s3:GetObject"), allow("ec2:*", condition={"StringEqauls": {"aws:username": "a"}}, Sid="Ec2")]
    # When an S3 request is evaluated / Then the typo still fails it, located
    with pytest.raises(ValueError, match="^policy 0: statement 1 'Ec2': unknown condition operator 'StringEqauls'"):
        decide(statements, "s3:GetObject")


def test_an_evaluation_error_names_its_statement() -> None:
    with pytest.raises(ValueError, match="^Allow statement 0 of policy 0: condition StringEquals aws:TagKeys"):
        decide([allow(condition={"StringEquals": {"aws:TagKeys": "a"}})], "s3:GetObject", "*", {"aws:TagKeys": ["a"]})


@pytest.mark.parametrize(
    "policy, problem",
    [
        ({"Version": "2012-10-17"}, "Statement"),
        ({"Version": "2012-10-17", "Statement": []}, "no statement"),
        ({"Version": "2012-10-18", "Statement": [allow()]}, "Version"),
        ({"Version": "2012-10-17", "Statement": [allow()], "Statements": []}, "unknown elements"),
    ],
)
def test_a_malformed_policy_is_rejected(policy: dict, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        validate_policy(policy)


# -- explanations -------------------------------------------------------------------------------


def test_an_implicit_deny_explains_each_statement_whose_action_matched() -> None:
    # Given a statement for instances abc*, one for staging instances, and one for another action
    statements = [
        allow("ec2:TerminateInstances", f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/abc*"),
        allow(
            "ec2:TerminateInstances",
            "*",
            {"StringEquals": {"ec2:ResourceTag/immutable-deploy:role": "staging"}},
            Sid="TerminateStaging",
        ),
        allow("s3:GetObject"),
    ]
    # When the green instance i-1 is terminated
    request = AuthzRequest(
        "ec2:TerminateInstances",
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-1",
        {"ec2:ResourceTag/immutable-deploy:role": "green"},
        why="retire blue",
    )
    explanation = evaluate([{"Version": "2012-10-17", "Statement": statements}], request).explanation
    # Then both EC2 statements say why they did not apply, and the S3 one is not mentioned
    assert (
        f"resource arn:aws:ec2:us-east-1:{ACCOUNT}:instance/i-1 does not match "
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/abc*"
    ) in explanation
    assert (
        "Allow statement 1 'TerminateStaging' of policy 0: condition StringEquals "
        "ec2:ResourceTag/immutable-deploy:role: context has 'green', wants 'staging'"
    ) in explanation
    assert "retire blue" in explanation and "statement 2" not in explanation


# -- the project's own permissions --------------------------------------------------------------


@pytest.mark.parametrize("role, expected", [("staging", "Allowed"), ("green", "ImplicitDeny"), (None, "ImplicitDeny")])
def test_terminate_only_staging_instances(role: str | None, expected: str) -> None:
    # Given ec2:TerminateInstances allowed only on instances tagged immutable-deploy:role=staging
    statement = allow(
        "ec2:TerminateInstances",
        f"arn:aws:ec2:us-east-1:{ACCOUNT}:instance/*",
        {"StringEquals": {"ec2:ResourceTag/immutable-deploy:role": "staging"}},
    )
    context = {} if role is None else {"ec2:ResourceTag/immutable-deploy:role": role}
    assert result([statement], "ec2:TerminateInstances", INSTANCE, context) == expected


@pytest.mark.parametrize(
    "tag_keys, expected",
    [
        (["immutable-deploy:version"], "Allowed"),
        (["immutable-deploy:version", "immutable-deploy:role"], "Allowed"),
        (["immutable-deploy:version", "Name"], "ImplicitDeny"),
    ],
)
def test_autoscaling_tags_only_the_deployment_keys(tag_keys: list[str], expected: str) -> None:
    # Given autoscaling:CreateOrUpdateTags with ForAllValues:StringEquals aws:TagKeys
    groups = f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:*:autoScalingGroupName/immutable-deploy-*"
    statement = allow(
        "autoscaling:CreateOrUpdateTags",
        groups,
        {"ForAllValues:StringEquals": {"aws:TagKeys": ["immutable-deploy:version", "immutable-deploy:role"]}},
    )
    group = (
        f"arn:aws:autoscaling:us-east-1:{ACCOUNT}:autoScalingGroup:0f1e-uuid:autoScalingGroupName/immutable-deploy-web"
    )
    assert result([statement], "autoscaling:CreateOrUpdateTags", group, {"aws:TagKeys": tag_keys}) == expected


@pytest.mark.parametrize(
    "service, expected",
    [
        ("ec2.amazonaws.com", "Allowed"),
        ("lambda.amazonaws.com", "ImplicitDeny"),
        (None, "ImplicitDeny"),
    ],
)
def test_pass_role_only_to_ec2(service: str | None, expected: str) -> None:
    # Given iam:PassRole on the instance role, only to EC2
    role = f"arn:aws:iam::{ACCOUNT}:role/immutable-deploy-instance"
    statement = allow("iam:PassRole", role, {"StringEquals": {"iam:PassedToService": "ec2.amazonaws.com"}})
    context = {} if service is None else {"iam:PassedToService": service}
    assert result([statement], "iam:PassRole", role, context) == expected


@pytest.mark.parametrize(
    "leading_keys, expected",
    [
        (["LOCK#web"], "Allowed"),
        (["STATE#web"], "ImplicitDeny"),
        (["LOCK#web", "X"], "ImplicitDeny"),
    ],
)
def test_put_item_only_lock_items(leading_keys: list[str], expected: str) -> None:
    # Given dynamodb:PutItem with ForAllValues:StringLike dynamodb:LeadingKeys ["LOCK#*"]
    table = f"arn:aws:dynamodb:us-east-1:{ACCOUNT}:table/immutable-deploy-locks"
    statement = allow("dynamodb:PutItem", table, {"ForAllValues:StringLike": {"dynamodb:LeadingKeys": ["LOCK#*"]}})
    assert result([statement], "dynamodb:PutItem", table, {"dynamodb:LeadingKeys": leading_keys}) == expected


@pytest.mark.parametrize(
    "alarm, expected",
    [
        ("immutable-deploy-web-5xx", "Allowed"),
        ("immutable-deploy-web:canary", "Allowed"),  # "*" ends the segment
        ("other-web-5xx", "ImplicitDeny"),
    ],
)
def test_put_metric_alarm_only_on_the_deployment_alarms(alarm: str, expected: str) -> None:
    # Given cloudwatch:PutMetricAlarm on alarm:immutable-deploy-*
    statement = allow("cloudwatch:PutMetricAlarm", f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:immutable-deploy-*")
    resource = f"arn:aws:cloudwatch:us-east-1:{ACCOUNT}:alarm:{alarm}"
    assert result([statement], "cloudwatch:PutMetricAlarm", resource) == expected
