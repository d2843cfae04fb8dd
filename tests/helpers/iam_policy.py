"""An IAM policy evaluator for tests: does a set of policies allow one authorization request?

It follows AWS's documented evaluation logic for a principal and a resource of the same account
(IAM User Guide, "Policy evaluation logic" and "Determining whether a request is allowed or denied
within an account"): an explicit Deny in any applicable policy wins; otherwise an Allow in an
identity-based policy OR in the resource-based policy allows; otherwise the request is implicitly
denied. A statement applies when its Action (or NotAction), its Resource (or NotResource), for a
resource policy its Principal, and ALL of its conditions match.

Conditions follow "IAM JSON policy elements: Condition operators": several operators in a block and
several keys under one operator are ANDed, several values for one key are ORed; a key absent from the
request context makes a condition false, except for negated operators (StringNotEquals, ArnNotLike...)
where it makes it true, and for ...IfExists (true) and Null. The set operators follow "Set operators
for multivalued context keys": ForAllValues is true when every request value matches (and when the key
is absent or empty), ForAnyValue when at least one does (false when absent).

Only the operators swr's policies use, and their negations, are implemented: an unknown operator
raises, so a policy that starts using one fails the tests instead of being silently misjudged.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cache
from typing import Any

ContextValue = str | bool | Sequence[str]


@dataclass(frozen=True)
class Request:
    """One authorization AWS evaluates: a principal doing an action on a resource, in a context."""

    principal: str
    action: str
    resource: str
    context: Mapping[str, ContextValue] = field(default_factory=dict)
    #: Where the request comes from, for messages (e.g. "RunInstances" for a dependent CreateTags).
    origin: str = ""

    def key(self, name: str) -> ContextValue | None:
        """A context value; condition key names are case-insensitive (tag keys in them too)."""
        wanted = name.lower()
        for key, value in self.context.items():
            if key.lower() == wanted:
                return value
        return None


@dataclass(frozen=True)
class Statement:
    """One policy statement, normalised (lists everywhere)."""

    effect: str
    sid: str
    actions: tuple[str, ...]
    not_actions: tuple[str, ...]
    resources: tuple[str, ...]
    not_resources: tuple[str, ...]
    conditions: Mapping[str, Mapping[str, tuple[str, ...]]]
    principals: Mapping[str, tuple[str, ...]] | None  # None: identity-based statement
    policy: str  # name of the policy it came from

    @classmethod
    def parse(cls, raw: Mapping[str, Any], policy: str) -> Statement:
        """Normalise a statement as written in a policy document."""
        unknown = set(raw) - {
            "Sid",
            "Effect",
            "Action",
            "NotAction",
            "Resource",
            "NotResource",
            "Condition",
            "Principal",
            "NotPrincipal",
        }
        if unknown or "NotPrincipal" in raw:
            raise ValueError(f"{policy}: statement element(s) not supported here: {sorted(unknown)}")
        if raw["Effect"] not in ("Allow", "Deny"):
            raise ValueError(f"{policy}: Effect {raw['Effect']!r}")
        principals = None
        if "Principal" in raw:
            value = raw["Principal"]
            principals = {"AWS": ("*",)} if value == "*" else {k: _tuple(v) for k, v in value.items()}
        conditions = {
            op: {key: _tuple(values) for key, values in block.items()}
            for op, block in (raw.get("Condition") or {}).items()
        }
        return cls(
            effect=raw["Effect"],
            sid=str(raw.get("Sid", "")),
            actions=_tuple(raw.get("Action", ())),
            not_actions=_tuple(raw.get("NotAction", ())),
            resources=_tuple(raw.get("Resource", ())),
            not_resources=_tuple(raw.get("NotResource", ())),
            conditions=conditions,
            principals=principals,
            policy=policy,
        )

    @property
    def name(self) -> str:
        """How messages name the statement."""
        return f"{self.policy}/{self.sid or '(no Sid)'}"


def _tuple(value: Any) -> tuple[str, ...]:
    if isinstance(value, list | tuple):
        return tuple(str(v) if not isinstance(v, bool) else str(v).lower() for v in value)
    if isinstance(value, bool):
        return (str(value).lower(),)
    return (str(value),)


def parse_policy(document: Mapping[str, Any], name: str) -> list[Statement]:
    """The statements of a policy document (a single statement object is allowed, as in IAM)."""
    raw = document.get("Statement", [])
    if isinstance(raw, Mapping):
        raw = [raw]
    return [Statement.parse(s, name) for s in raw]


# --- matching -------------------------------------------------------------------------------------


@cache
def _glob(pattern: str, *, ignore_case: bool) -> re.Pattern[str]:
    """IAM wildcards: * any run of characters (also across ':' and '/'), ? one character."""
    body = "".join(".*" if c == "*" else "." if c == "?" else re.escape(c) for c in pattern)
    return re.compile(f"^{body}$", re.DOTALL | (re.IGNORECASE if ignore_case else 0))


def action_matches(pattern: str, action: str) -> bool:
    """Action names are case-insensitive and may carry wildcards ("ec2:Describe*", "*")."""
    return bool(_glob(pattern, ignore_case=True).match(action))


def arn_matches(pattern: str, arn: str) -> bool:
    """ArnLike semantics ("IAM JSON policy elements: Resource"): the six ARN parts are matched one by
    one, each with wildcards; "*" alone matches any resource."""
    if pattern == "*":
        return True
    p_parts, a_parts = pattern.split(":", 5), arn.split(":", 5)
    if len(p_parts) != 6 or len(a_parts) != 6:
        return pattern == arn
    return all(_glob(p, ignore_case=False).match(a) for p, a in zip(p_parts, a_parts, strict=True))


def _principal_matches(principals: Mapping[str, tuple[str, ...]] | None, principal: str) -> bool:
    """A resource policy's Principal. Naming the account (or its root) does NOT match a role of the
    account: it delegates to the account's identity policies ("Policy evaluation logic": within an
    account, a resource policy that names the account grants nothing by itself)."""
    if principals is None:
        return True  # identity-based: the principal is the policy's owner
    return any(
        value == "*" or value == principal
        for kind, values in principals.items()
        if kind in ("AWS", "Service")
        for value in values
    )


# --- conditions -----------------------------------------------------------------------------------

_SINGLE = {
    "StringEquals": lambda policy, value: value == policy,
    "StringEqualsIgnoreCase": lambda policy, value: value.lower() == policy.lower(),
    "StringLike": lambda policy, value: bool(_glob(policy, ignore_case=False).match(value)),
    "ArnEquals": lambda policy, value: arn_matches(policy, value),
    "ArnLike": lambda policy, value: arn_matches(policy, value),
    "Bool": lambda policy, value: value.lower() == policy.lower(),
}
_NEGATED = {
    "StringNotEquals": "StringEquals",
    "StringNotEqualsIgnoreCase": "StringEqualsIgnoreCase",
    "StringNotLike": "StringLike",
    "ArnNotEquals": "ArnEquals",
    "ArnNotLike": "ArnLike",
}


@dataclass(frozen=True)
class ConditionResult:
    """The outcome of one (operator, key) pair: whether it held, and the context value it saw."""

    operator: str
    key: str
    expected: tuple[str, ...]
    actual: ContextValue | None
    held: bool

    def describe(self) -> str:
        """E.g. `StringEquals aws:RequestTag/swr:vpc: expected ['prod'], request has (absent)`."""
        actual = "(absent)" if self.actual is None else repr(self.actual)
        return f"{self.operator} {self.key}: expected {list(self.expected)}, request has {actual}"


def _as_values(value: ContextValue | None) -> list[str] | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return [str(value).lower()]
    if isinstance(value, str):
        return [value]
    return [str(v) for v in value]


def evaluate_condition(operator: str, key: str, expected: tuple[str, ...], request: Request) -> bool:
    """One condition (operator, key, policy values) against the request context."""
    actual = _as_values(request.key(key))
    set_op = ""
    if operator.startswith(("ForAllValues:", "ForAnyValue:")):
        set_op, operator = operator.split(":", 1)
    if_exists = operator.endswith("IfExists")
    if if_exists:
        operator = operator.removesuffix("IfExists")
    if operator == "Null":
        if set_op or if_exists:
            raise ValueError(f"{set_op}:{operator}IfExists is not a valid operator")
        want_absent = expected[0].lower() == "true"
        return (actual is None) == want_absent
    negated = operator in _NEGATED
    base = _NEGATED.get(operator, operator)
    if base not in _SINGLE:
        raise NotImplementedError(f"condition operator {operator!r} is not implemented by the test evaluator")
    match = _SINGLE[base]

    def one(value: str) -> bool:
        hit = any(match(p, value) for p in expected)
        return not hit if negated else hit

    if set_op == "ForAllValues":
        return actual is None or all(one(v) for v in actual)
    if set_op == "ForAnyValue":
        return actual is not None and any(one(v) for v in actual)
    if actual is None:
        return if_exists or negated
    if len(actual) != 1 or not isinstance(request.key(key), str | bool):
        raise ValueError(f"{operator} on multivalued key {key}: AWS requires ForAllValues/ForAnyValue for it")
    return one(actual[0])


def check_conditions(statement: Statement, request: Request) -> list[ConditionResult]:
    """Every (operator, key) of the statement, evaluated."""
    return [
        ConditionResult(op, key, values, request.key(key), evaluate_condition(op, key, values, request))
        for op, block in statement.conditions.items()
        for key, values in block.items()
    ]


# --- decision -------------------------------------------------------------------------------------


def _action_applies(statement: Statement, action: str) -> bool:
    if statement.not_actions:
        return not any(action_matches(p, action) for p in statement.not_actions)
    return any(action_matches(p, action) for p in statement.actions)


def _resource_applies(statement: Statement, resource: str) -> bool:
    if statement.not_resources:
        return not any(arn_matches(p, resource) for p in statement.not_resources)
    if statement.principals is not None and not statement.resources:
        return True  # a resource policy's statement may omit Resource: it is the resource itself
    return any(arn_matches(p, resource) for p in statement.resources)


def applies(statement: Statement, request: Request) -> bool:
    """True if the statement matches the request in every element."""
    return (
        _action_applies(statement, request.action)
        and _resource_applies(statement, request.resource)
        and _principal_matches(statement.principals, request.principal)
        and all(c.held for c in check_conditions(statement, request))
    )


@dataclass(frozen=True)
class Decision:
    """The evaluator's answer, with what decided it."""

    request: Request
    allowed: bool
    deciding: tuple[Statement, ...]  # the explicit Deny(s), or the Allow(s); empty for implicit deny
    closest: Statement | None = None
    mismatches: tuple[str, ...] = ()

    def explain(self) -> str:
        """A one-paragraph reason, naming the statement closest to allowing a denied request."""
        r = self.request
        head = f"{r.action} on {r.resource}" + (f" (from {r.origin})" if r.origin else "")
        if self.allowed:
            return f"ALLOW {head} by {', '.join(s.name for s in self.deciding)}"
        if self.deciding:
            return f"EXPLICIT DENY {head} by {', '.join(s.name for s in self.deciding)}"
        if self.closest is None:
            return f"IMPLICIT DENY {head}: no statement grants the action"
        why = "; ".join(self.mismatches)
        return f"IMPLICIT DENY {head}: closest statement {self.closest.name}: {why}"


def _closeness(statement: Statement, request: Request) -> tuple[int, list[str]]:
    """How near an Allow statement comes to the request, and what it lacks."""
    if not _action_applies(statement, request.action):
        return -1, []
    score, missing = 1, []
    if _resource_applies(statement, request.resource):
        score += 2
    else:
        missing.append(
            f"resource {request.resource} not in {list(statement.resources or statement.not_resources)}"
        )
    if not _principal_matches(statement.principals, request.principal):
        missing.append(f"principal {request.principal} not in {dict(statement.principals or {})}")
    for result in check_conditions(statement, request):
        if result.held:
            score += 1
        else:
            missing.append(result.describe())
    return score, missing


def evaluate(
    request: Request,
    identity: Iterable[Statement],
    resource_policy: Iterable[Statement] = (),
) -> Decision:
    """Decide a same-account request against identity-based statements and a resource policy."""
    statements = [*identity, *resource_policy]
    denies = tuple(s for s in statements if s.effect == "Deny" and applies(s, request))
    if denies:
        return Decision(request, False, denies)
    allows = tuple(s for s in statements if s.effect == "Allow" and applies(s, request))
    if allows:
        return Decision(request, True, allows)
    ranked = sorted(
        ((_closeness(s, request), i, s) for i, s in enumerate(statements) if s.effect == "Allow"),
        key=lambda item: (-item[0][0], item[1]),
    )
    if not ranked or ranked[0][0][0] < 0:
        return Decision(request, False, ())
    (_, missing), _, best = ranked[0]
    return Decision(request, False, (), closest=best, mismatches=tuple(missing))


__all__ = [
    "ConditionResult",
    "Decision",
    "Request",
    "Statement",
    "action_matches",
    "applies",
    "arn_matches",
    "evaluate",
    "evaluate_condition",
    "parse_policy",
]
