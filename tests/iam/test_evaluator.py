"""The IAM evaluator of the tests, checked against AWS's documented rules and examples.

Pages: IAM User Guide, "Policy evaluation logic" (explicit deny wins; an allow is needed; within one
account an allow in the identity OR the resource policy suffices), "IAM JSON policy elements: Condition
operators" (missing keys, negated operators, ...IfExists, Null, Bool, ARN operators), "Set operators
for multivalued context keys" (ForAllValues / ForAnyValue), "IAM JSON policy elements: Action" and
"...: Resource" (wildcards, NotAction, NotResource).
"""

from __future__ import annotations

from typing import Any

import pytest

from tests.helpers.iam_policy import Request, evaluate, evaluate_condition, parse_policy

ROLE = "arn:aws:iam::111122223333:role/app"
BUCKET = "arn:aws:s3:::amzn-s3-demo-bucket"


def _req(action: str, resource: str = "*", **context: Any) -> Request:
    return Request(principal=ROLE, action=action, resource=resource, context=context)


def _policy(*statements: dict[str, Any]) -> list[Any]:
    return parse_policy({"Version": "2012-10-17", "Statement": list(statements)}, "test")


def test_nothing_is_allowed_without_an_allow() -> None:
    decision = evaluate(_req("ec2:StopInstances", "arn:aws:ec2:us-east-1:111122223333:instance/i-1"), [])
    assert not decision.allowed and not decision.deciding


def test_an_explicit_deny_overrides_any_allow() -> None:
    policy = _policy(
        {"Effect": "Allow", "Action": "ec2:*", "Resource": "*"},
        {"Effect": "Deny", "Action": "ec2:TerminateInstances", "Resource": "*"},
    )
    assert evaluate(_req("ec2:StopInstances"), policy).allowed
    denied = evaluate(_req("ec2:TerminateInstances"), policy)
    assert not denied.allowed and denied.deciding[0].effect == "Deny"
    assert denied.explain().startswith("EXPLICIT DENY")


def test_a_resource_policy_deny_wins_over_an_identity_allow() -> None:
    # The EFS file-system policy swr uses: deny any request over an unencrypted connection.
    identity = _policy({"Effect": "Allow", "Action": "elasticfilesystem:ClientMount", "Resource": "*"})
    resource = _policy(
        {
            "Effect": "Deny",
            "Principal": {"AWS": "*"},
            "Action": "*",
            "Condition": {"Bool": {"aws:SecureTransport": "false"}},
        }
    )
    fs = "arn:aws:elasticfilesystem:us-east-1:111122223333:file-system/fs-1"
    assert evaluate(
        _req("elasticfilesystem:ClientMount", fs, **{"aws:SecureTransport": True}), identity, resource
    ).allowed
    plain = _req("elasticfilesystem:ClientMount", fs, **{"aws:SecureTransport": False})
    assert not evaluate(plain, identity, resource).allowed


def test_within_an_account_an_allow_in_either_policy_suffices() -> None:
    resource = _policy({"Effect": "Allow", "Principal": {"AWS": ROLE}, "Action": "s3:GetObject"})
    assert evaluate(_req("s3:GetObject", BUCKET + "/a"), [], resource).allowed
    # Naming the account delegates to its identity policies: it grants a role nothing by itself.
    account = _policy(
        {"Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::111122223333:root"}, "Action": "s3:*"}
    )
    assert not evaluate(_req("s3:GetObject", BUCKET + "/a"), [], account).allowed


def test_action_names_are_case_insensitive_and_take_wildcards() -> None:
    policy = _policy({"Effect": "Allow", "Action": ["ec2:Describe*", "iam:*AccessKey*"], "Resource": "*"})
    assert evaluate(_req("ec2:describeinstances"), policy).allowed
    assert evaluate(_req("iam:CreateAccessKey"), policy).allowed
    assert not evaluate(_req("ec2:RunInstances"), policy).allowed


def test_resource_wildcards_match_within_arn_parts() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": "cloudwatch:PutMetricAlarm",
            "Resource": "arn:aws:cloudwatch:*:*:alarm:swr-prod-*",
        }
    )
    ok = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:swr-prod-1-monitor"
    assert evaluate(_req("cloudwatch:PutMetricAlarm", ok), policy).allowed
    other = "arn:aws:cloudwatch:us-east-1:111122223333:alarm:swr-stage-1-monitor"
    assert not evaluate(_req("cloudwatch:PutMetricAlarm", other), policy).allowed


def test_not_action_and_not_resource() -> None:
    # "IAM JSON policy elements: NotAction": deny everything except IAM actions.
    policy = _policy(
        {"Effect": "Allow", "Action": "*", "Resource": "*"},
        {"Effect": "Deny", "NotAction": "iam:*", "NotResource": BUCKET},
    )
    assert evaluate(_req("iam:ListRoles"), policy).allowed
    assert not evaluate(
        _req("ec2:RunInstances", "arn:aws:ec2:us-east-1:111122223333:instance/*"), policy
    ).allowed
    assert evaluate(_req("s3:ListBucket", BUCKET), policy).allowed


def test_several_keys_and_operators_are_anded_several_values_ored() -> None:
    policy = _policy(
        {
            "Effect": "Allow",
            "Action": "ec2:StopInstances",
            "Resource": "*",
            "Condition": {
                "StringEquals": {"ec2:ResourceTag/swr:vpc": ["prod", "stage"], "ec2:ResourceTag/env": "a"},
                "StringLike": {"ec2:ResourceTag/fujitsu.pclswr.id": "*"},
            },
        }
    )
    tags = {
        "ec2:ResourceTag/swr:vpc": "stage",
        "ec2:ResourceTag/env": "a",
        "ec2:ResourceTag/fujitsu.pclswr.id": "1",
    }
    assert evaluate(_req("ec2:StopInstances", **tags), policy).allowed
    denied = evaluate(_req("ec2:StopInstances", **{**tags, "ec2:ResourceTag/env": "b"}), policy)
    assert not denied.allowed
    assert "StringEquals ec2:ResourceTag/env: expected ['a'], request has 'b'" in denied.explain()
    no_id = {k: v for k, v in tags.items() if "fujitsu" not in k}
    assert "request has (absent)" in evaluate(_req("ec2:StopInstances", **no_id), policy).explain()


@pytest.mark.parametrize(
    ("operator", "expected", "context", "held"),
    [
        # "If the key ... is not present in the request context, the values do not match and the
        # condition is false ... if the policy condition requires that the key is not matched, such as
        # StringNotLike or ArnNotLike, and the right key is not present, the condition is true."
        ("StringEquals", ("prod",), {}, False),
        ("StringNotEquals", ("prod",), {}, True),
        ("StringNotEquals", ("prod",), {"k": "prod"}, False),
        ("StringEquals", ("prod",), {"k": "Prod"}, False),  # case-sensitive
        ("StringEqualsIgnoreCase", ("prod",), {"k": "Prod"}, True),
        ("StringLike", ("swr-*-monitor",), {"k": "swr-1-monitor"}, True),
        ("StringLike", ("swr-?",), {"k": "swr-12"}, False),
        ("StringNotLike", ("swr-*",), {}, True),
        ("StringEqualsIfExists", ("prod",), {}, True),
        ("StringEqualsIfExists", ("prod",), {"k": "stage"}, False),
        (
            "ArnEquals",
            ("arn:aws:ec2:us-east-1:1:vpc/vpc-1",),
            {"k": "arn:aws:ec2:us-east-1:1:vpc/vpc-1"},
            True,
        ),
        ("ArnLike", ("arn:aws:events:*:*:rule/swr-*",), {"k": "arn:aws:events:us-east-1:1:rule/swr-a"}, True),
        ("ArnLike", ("arn:aws:events:*:*:rule/swr-*",), {"k": "arn:aws:events:us-east-1:1:rule/x"}, False),
        ("ArnNotLike", ("arn:aws:events:*:*:rule/swr-*",), {}, True),
        ("Bool", ("false",), {"k": False}, True),
        ("Bool", ("false",), {"k": True}, False),
        ("Bool", ("true",), {}, False),
        # "Condition operator to check existence of condition keys": Null true = absent.
        ("Null", ("true",), {}, True),
        ("Null", ("false",), {}, False),
        ("Null", ("false",), {"k": "1"}, True),
    ],
)
def test_condition_operators(
    operator: str, expected: tuple[str, ...], context: dict[str, Any], held: bool
) -> None:
    assert evaluate_condition(operator, "k", expected, _req("x:Y", **context)) is held


@pytest.mark.parametrize(
    ("operator", "tag_keys", "held"),
    [
        # "Set operators for multivalued context keys": ForAllValues returns true when every request
        # value matches, and also when the key is absent or its set is empty...
        ("ForAllValues:StringEquals", ["swr:vpc"], True),
        ("ForAllValues:StringEquals", ["swr:vpc", "owner"], False),
        ("ForAllValues:StringEquals", None, True),
        ("ForAllValues:StringEquals", [], True),
        # ... ForAnyValue when at least one does, and false when the key is absent.
        ("ForAnyValue:StringEquals", ["owner", "swr:vpc"], True),
        ("ForAnyValue:StringEquals", ["owner"], False),
        ("ForAnyValue:StringEquals", None, False),
        ("ForAnyValue:StringLike", ["swr:switch-id"], True),
        ("ForAllValues:StringNotEquals", ["owner"], True),
        ("ForAnyValue:StringNotEquals", ["swr:vpc"], False),
    ],
)
def test_set_operators_on_a_multivalued_key(operator: str, tag_keys: list[str] | None, held: bool) -> None:
    expected = ("swr:*",) if "Like" in operator else ("swr:vpc",)
    context = {} if tag_keys is None else {"aws:TagKeys": tag_keys}
    assert evaluate_condition(operator, "aws:TagKeys", expected, _req("x:Y", **context)) is held


def test_condition_key_names_are_case_insensitive_values_are_not() -> None:
    request = _req("x:Y", **{"AWS:RequestTag/SWR:VPC": "prod"})
    assert evaluate_condition("StringEquals", "aws:requesttag/swr:vpc", ("prod",), request)
    assert not evaluate_condition("StringEquals", "aws:requesttag/swr:vpc", ("PROD",), request)


def test_a_single_valued_operator_on_a_multivalued_key_is_refused() -> None:
    with pytest.raises(ValueError, match="ForAllValues/ForAnyValue"):
        evaluate_condition("StringEquals", "aws:TagKeys", ("a",), _req("x:Y", **{"aws:TagKeys": ["a", "b"]}))


def test_an_operator_the_evaluator_does_not_know_fails_loudly() -> None:
    with pytest.raises(NotImplementedError, match="NumericLessThan"):
        evaluate_condition("NumericLessThan", "k", ("3",), _req("x:Y", k="1"))


def test_the_closest_statement_names_what_is_missing() -> None:
    policy = _policy(
        {"Sid": "Other", "Effect": "Allow", "Action": "ec2:StopInstances", "Resource": "*"},
        {
            "Sid": "RunTagged",
            "Effect": "Allow",
            "Action": "ec2:RunInstances",
            "Resource": "arn:aws:ec2:*:*:volume/*",
            "Condition": {"StringEquals": {"aws:RequestTag/swr:vpc": "prod"}},
        },
    )
    decision = evaluate(_req("ec2:RunInstances", "arn:aws:ec2:us-east-1:1:volume/*"), policy)
    assert decision.closest is not None and decision.closest.sid == "RunTagged"
    assert "aws:RequestTag/swr:vpc: expected ['prod'], request has (absent)" in decision.explain()
