"""The ONE place where tests bend moto (5.2.x) towards AWS behaviour or inject AWS faults.

- `aws_faults()` patches moto's request dispatch (`BaseResponse.call_action`), so it works both with
  `mock_aws` in-process and with a `ThreadedMotoServer` in the same process. Injected errors come back as
  real HTTP error responses, so botocore's retry modes see them exactly like AWS throttling.
- moto ignores RunInstances' `ClientToken` (measured: the same token launches a second instance). Inside
  `aws_faults()` the helper emulates AWS idempotency: the same token in the same region returns the
  instance of the first call. The switcher still sends the token; this only makes moto honour it.
- moto's DynamoDB checks a condition and writes without a lock; under a threaded server two conditional
  writes can interleave. AWS makes each conditional write atomic, so the helper serialises DynamoDB calls.
- A replacement can die while pending (AWS: `pending` → `terminated` with a `Server.*` state reason, e.g.
  capacity lost after the launch was accepted): `die_while_pending(subnets)` lets RunInstances answer as
  usual, then terminates the instance before the next DescribeInstances sees it.
- moto terminates an instance at once; AWS passes through `shutting-down` first, and its network
  interface stays attached meanwhile. `terminating_slowly(describes)` keeps instances terminated during
  the block `shutting-down` for that many DescribeInstances calls.
- moto has no Lambda `GetAccountSettings`: `lambda_account_settings(quota)` answers it on a moto server
  from moto's own functions and their reserved concurrency.
- Injected EC2 errors carry the HTTP status EC2 sends with that code ("Error codes for the Amazon EC2 API",
  https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html: client errors come with a
  4xx status, server errors with a 5xx one; InsufficientInstanceCapacity and RequestLimitExceeded are server
  errors). The status decides whether botocore's retry modes retry the call, so it matters: see
  `EC2_ERROR_STATUS`. `Fault.injected` counts the attempts that reached "EC2".
- A reused ClientToken with other parameters gets `IdempotentParameterMismatch` (400), as EC2 answers it
  ("Ensuring idempotency in Amazon EC2 API requests"); moto would launch again.
- RunInstances from a launch template gives the instance the template's IAM instance profile when the
  request names none (moto drops it; EC2 applies every template field the request does not override), and
  tags the primary network interface with the request's `network-interface` TagSpecification (moto tags
  only instances and volumes).
- `enforce_swr_policy(vpc, node_profile_arn)` emulates the tag-scoped IAM policy of the switcher (moto does
  not evaluate IAM): stop, terminate and modify-attribute only on instances tagged `swr:vpc=<vpc>`,
  iam:PassRole only for the node's own instance profile, CreateTags on an existing instance only of the
  `swr:vpc` key. A denied call gets `UnauthorizedOperation` (403), as EC2 answers it.
- `record_calls(*clients)` records every API call (its API parameters, from botocore's
  `before-parameter-build` event; `before-call` only sees the serialized request), to assert
  that a skip touched nothing (`mutating()`).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from unittest import mock

import botocore.session
from botocore.retries import standard
from moto.core.responses import BaseResponse
from moto.ec2.models import EC2Backend
from moto.ec2.models.instances import StateReason
from switcher.contract import TAG_VPC

from swr_local.gaps import network_interface_gaps

#: Read-only API prefixes: anything else counts as a mutation.
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")

#: HTTP status EC2 sends with an error code ("Error codes for the Amazon EC2 API": server error codes come
#: with a 5xx status, client error codes with a 4xx one). Codes not listed here are client errors (400).
EC2_ERROR_STATUS = {
    # Server errors.
    "InsufficientInstanceCapacity": 500,
    "InsufficientAddressCapacity": 500,
    "InsufficientHostCapacity": 500,
    "InsufficientReservedInstanceCapacity": 500,
    "InternalError": 500,
    "InternalFailure": 500,
    "RequestLimitExceeded": 503,
    "ServiceUnavailable": 503,
    "Unavailable": 503,
    # Client errors named by the tests.
    "UnauthorizedOperation": 403,
    "IdempotentParameterMismatch": 400,
    "InsufficientFreeAddressesInSubnet": 400,
    "Unsupported": 400,
}


def status_of(service: str, code: str) -> int:
    """The HTTP status AWS sends with `code` (EC2's table above; 400 for any other service's code)."""
    return EC2_ERROR_STATUS.get(code, 400) if service == "ec2" else 400


@dataclass
class Fault:
    """Answer `action` of `service` with error `code`, `times` times, when `when(response)` holds."""

    service: str
    action: str
    code: str
    times: int
    when: Callable[[BaseResponse], bool] | None = None
    status: int = 400
    injected: int = 0
    #: Extra members of a JSON error body, e.g. DynamoDB's `CancellationReasons`.
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass
class FaultInjector:
    """Faults to inject, and what was injected (`Fault.injected`)."""

    faults: list[Fault] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)
    #: (region, ClientToken) -> instance id of the first RunInstances with that token.
    tokens: dict[tuple[str, str], str] = field(default_factory=dict)
    #: How many RunInstances reached moto with a ClientToken that had already launched an instance.
    token_replays: int = 0
    #: (region, ClientToken) -> the parameters of the first RunInstances with that token.
    token_params: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    #: Subnets whose launches die while pending, and the instances doomed so far (not yet terminated).
    dying_subnets: set[str] = field(default_factory=set)
    doomed: list[Any] = field(default_factory=list)
    #: DescribeInstances calls a terminated instance stays `shutting-down` for (0: moto's instant end),
    #: and the instances still shutting down with their remaining count.
    termination_describes: int = 0
    shutting_down: dict[Any, int] = field(default_factory=dict)

    @contextmanager
    def terminating_slowly(self, describes: int) -> Iterator[None]:
        """Instances terminated in the block stay `shutting-down` for `describes` DescribeInstances."""
        self.termination_describes = describes
        try:
            yield
        finally:
            self.termination_describes = 0
            for instance in self.shutting_down:
                instance._state.name, instance._state.code = "terminated", 48
            self.shutting_down.clear()

    def _hold_terminated(self, backend: Any, instance_ids: list[str]) -> None:
        for instance_id in instance_ids:
            instance = backend.get_instance(instance_id)
            if instance._state.name == "terminated" and instance not in self.shutting_down:
                instance._state.name, instance._state.code = "shutting-down", 32
                self.shutting_down[instance] = self.termination_describes

    def _advance_shutting_down(self) -> None:
        for instance, left in list(self.shutting_down.items()):
            if left <= 1:
                instance._state.name, instance._state.code = "terminated", 48
                del self.shutting_down[instance]
            else:
                self.shutting_down[instance] = left - 1

    def fail(
        self,
        service: str,
        action: str,
        code: str,
        *,
        times: int = 1,
        when: Callable[[BaseResponse], bool] | None = None,
        status: int | None = None,
        extra: dict[str, Any] | None = None,
    ) -> Fault:
        """Register a fault; `times` may be large for 'always'. `status` defaults to the one AWS sends;
        `extra` adds members to a JSON error body (e.g. DynamoDB's `CancellationReasons`)."""
        fault = Fault(
            service,
            action,
            code,
            times,
            when,
            status_of(service, code) if status is None else status,
            extra=dict(extra or {}),
        )
        self.faults.append(fault)
        return fault

    def enforce_swr_policy(self, vpc_name: str, node_profile_arn: str) -> list[Fault]:
        """Deny, as the switcher's tag-scoped IAM policy does, what moto would allow (see module doc)."""

        def untagged(r: BaseResponse) -> bool:
            ids = r._get_param("InstanceIds", []) or [r._get_param("InstanceId")]
            return any(_instance_tags(r, i).get(TAG_VPC) != vpc_name for i in ids)

        def foreign_profile(r: BaseResponse) -> bool:
            arn = r._get_param("IamInstanceProfile.Arn")
            return arn is not None and arn != node_profile_arn

        def beyond_vpc_tag(r: BaseResponse) -> bool:
            keys = {t["Key"] for t in r._get_param("Tags", [])}
            on_instances = any(str(i).startswith("i-") for i in r._get_param("Resources", []))
            return on_instances and keys != {TAG_VPC}

        always = 10**6
        denied = [
            self.fail("ec2", action, "UnauthorizedOperation", times=always, when=untagged)
            for action in ("StopInstances", "TerminateInstances", "ModifyInstanceAttribute")
        ]
        denied.append(
            self.fail("ec2", "RunInstances", "UnauthorizedOperation", times=always, when=foreign_profile)
        )
        denied.append(
            self.fail("ec2", "CreateTags", "UnauthorizedOperation", times=always, when=beyond_vpc_tag)
        )
        return denied

    def fail_in_subnets(self, subnet_ids: set[str], code: str = "InsufficientInstanceCapacity") -> Fault:
        """RunInstances into any of these subnets fails with a capacity error (always)."""
        return self.fail(
            "ec2", "RunInstances", code, times=10**6, when=lambda r: _launch_subnet(r) in subnet_ids
        )

    def die_while_pending(self, subnet_ids: set[str]) -> None:
        """Instances launched into these subnets are accepted, then terminated by EC2 before they run."""
        self.dying_subnets |= subnet_ids

    def _kill_doomed(self) -> None:
        for instance in self.doomed:
            instance.terminate()
            instance.state_reason = StateReason(
                "Server.InsufficientInstanceCapacity: Insufficient capacity.",
                "Server.InsufficientInstanceCapacity",
            )
        self.doomed.clear()

    def _match(self, service: str, action: str, response: BaseResponse) -> Fault | None:
        for fault in self.faults:
            applies = fault.service == service and fault.action == action and fault.injected < fault.times
            if applies and (fault.when is None or fault.when(response)):
                fault.injected += 1
                return fault
        return None


def _launch_subnet(response: BaseResponse) -> str | None:
    """The subnet a RunInstances request launches into: SubnetId, or that of the interface it is given."""
    subnet_id = response._get_param("SubnetId")
    if subnet_id:
        return str(subnet_id)
    backend: Any = getattr(response, "ec2_backend")  # noqa: B009 - EC2 responses only
    for nic in response._get_param("NetworkInterfaces", []):
        if nic.get("NetworkInterfaceId") and int(nic.get("DeviceIndex", 0)) == 0:
            return str(backend.get_network_interface(nic["NetworkInterfaceId"]).subnet.id)
    return None


def _instance_tags(response: BaseResponse, instance_id: str) -> dict[str, str]:
    backend: Any = getattr(response, "ec2_backend")  # noqa: B009 - EC2 responses only
    tags = backend.describe_tags(filters={"resource-id": [instance_id]})
    return {t["key"]: t["value"] for t in tags}


def _service_of(response: BaseResponse) -> str:
    # e.g. moto.ec2.responses.instances -> "ec2", moto.elbv2.responses -> "elbv2"
    return type(response).__module__.split(".")[1]


def _error_response(service: str, fault: Fault) -> tuple[int, dict[str, str], str]:
    """An error response in the wire protocol botocore expects from `service` (ec2, query or json)."""
    message = f"injected by tests/helpers/aws_faults.py: {fault.code}"
    protocol = botocore.session.get_session().get_service_model(service).protocol
    if protocol == "ec2":
        body = (
            '<?xml version="1.0" encoding="UTF-8"?><Response><Errors><Error>'
            f"<Code>{fault.code}</Code><Message>{message}</Message></Error></Errors>"
            "<RequestID>injected</RequestID></Response>"
        )
        return fault.status, {"Content-Type": "text/xml"}, body
    if protocol == "query":
        body = (
            f"<ErrorResponse><Error><Type>Sender</Type><Code>{fault.code}</Code>"
            f"<Message>{message}</Message></Error><RequestId>injected</RequestId></ErrorResponse>"
        )
        return fault.status, {"Content-Type": "text/xml"}, body
    if protocol == "json":
        body = json.dumps({"__type": fault.code, "message": message, **fault.extra})
        return fault.status, {"Content-Type": "application/x-amz-json-1.0"}, body
    raise ValueError(f"cannot inject a fault into {service}: protocol {protocol!r} is not supported here")


_dynamodb_lock = threading.Lock()


@contextmanager
def aws_faults() -> Iterator[FaultInjector]:
    """Patch moto for the duration: fault injection, ClientToken idempotency, atomic DynamoDB writes, and
    moto's network-interface gaps (`swr_local.gaps.network_interface_gaps`, patched first so that the token
    replay below answers before them)."""
    with network_interface_gaps(), _aws_faults() as injector:
        yield injector


@contextmanager
def _aws_faults() -> Iterator[FaultInjector]:
    injector = FaultInjector()
    original_call_action = BaseResponse.call_action
    original_run_instances = EC2Backend.run_instances

    def call_action(self: BaseResponse) -> Any:
        service = _service_of(self)
        with injector.lock:
            fault = injector._match(service, self._get_action(), self)
        if fault is not None:
            return _error_response(service, fault)
        if service == "ec2" and self._get_action() == "RunInstances":
            mismatch = _token_mismatch(injector, self)
            if mismatch is not None:
                return _error_response(service, mismatch)
        if service == "ec2" and self._get_action() == "DescribeInstances":
            with injector.lock:
                injector._kill_doomed()
                injector._advance_shutting_down()
        if service == "ec2" and self._get_action() == "TerminateInstances" and injector.termination_describes:
            result = original_call_action(self)
            ec2_response: Any = self  # an EC2Response: it has the region's backend
            with injector.lock:
                injector._hold_terminated(ec2_response.ec2_backend, self._get_param("InstanceIds", []))
            return result
        if service == "dynamodb":
            with _dynamodb_lock:
                return original_call_action(self)
        return original_call_action(self)

    def run_instances(backend: Any, *args: Any, **kwargs: Any) -> Any:
        token = kwargs.get("client_token")
        with injector.lock:
            key = (backend.region_name, token)
            if token and key in injector.tokens:
                injector.token_replays += 1
                instance = backend.get_instance(injector.tokens[key])
                return _reservation_of(backend, instance)
            reservation = original_run_instances(backend, *args, **kwargs)
            _apply_launch_template_profile(backend, reservation, kwargs)
            _tag_network_interfaces(backend, reservation, kwargs.get("tags", {}))
            if token:
                injector.tokens[key] = reservation.instances[0].id
            if kwargs.get("subnet_id") in injector.dying_subnets:
                injector.doomed.extend(reservation.instances)
            return reservation

    with (
        mock.patch.object(BaseResponse, "call_action", call_action),
        mock.patch.object(EC2Backend, "run_instances", run_instances),
    ):
        yield injector


def _token_mismatch(injector: FaultInjector, response: BaseResponse) -> Fault | None:
    """IdempotentParameterMismatch if this RunInstances reuses a ClientToken with other parameters."""
    token = response._get_param("ClientToken")
    if not token:
        return None
    querystring: dict[str, Any] = getattr(response, "querystring", {})
    params = {k: v for k, v in querystring.items() if k not in ("Action", "Version")}
    key = (response.region, token)
    with injector.lock:
        first = injector.token_params.setdefault(key, params)
    if first == params:
        return None
    return Fault("ec2", "RunInstances", "IdempotentParameterMismatch", 1, status=400, injected=1)


def _apply_launch_template_profile(backend: Any, reservation: Any, kwargs: dict[str, Any]) -> None:
    if not kwargs.get("launch_template"):
        return
    if kwargs.get("iam_instance_profile_arn") or kwargs.get("iam_instance_profile_name"):
        return  # the request overrides the template
    profile = backend._get_template_from_args(kwargs["launch_template"]).data.get("IamInstanceProfile") or {}
    for instance in reservation.instances:
        if profile.get("Arn"):
            backend.associate_iam_instance_profile(
                instance_id=instance.id, iam_instance_profile_arn=profile["Arn"]
            )
        elif profile.get("Name"):
            backend.associate_iam_instance_profile(
                instance_id=instance.id, iam_instance_profile_name=profile["Name"]
            )


def _tag_network_interfaces(backend: Any, reservation: Any, tags: dict[str, dict[str, str]]) -> None:
    eni_tags = tags.get("network-interface") or {}
    for instance in reservation.instances:
        for nic in instance.nics.values():
            if eni_tags:
                backend.create_tags([nic.id], dict(eni_tags))


def _reservation_of(backend: Any, instance: Any) -> Any:
    for reservation in backend.reservations.values():
        if instance in reservation.instances:
            return reservation
    raise LookupError(f"no reservation holds {instance.id}")


@contextmanager
def fast_retries() -> Iterator[None]:
    """botocore's standard retry backoff shortened to milliseconds (the retries still happen)."""
    with mock.patch.object(standard.ExponentialBackoff, "delay_amount", lambda self, context: 0.001):
        yield


# --- call recording -----------------------------------------------------------------------------


@dataclass(frozen=True)
class Call:
    """One API call as the client made it."""

    service: str
    operation: str
    params: dict[str, Any]

    @property
    def mutating(self) -> bool:
        """True unless the operation only reads."""
        return not self.operation.startswith(READ_ONLY_PREFIXES)


@dataclass
class CallLog:
    """API calls recorded from clients, in order."""

    calls: list[Call] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def mutating(self) -> list[Call]:
        """The calls that change something."""
        return [c for c in self.calls if c.mutating]

    def named(self, operation: str) -> list[Call]:
        """Calls of one operation (e.g. 'RunInstances')."""
        return [c for c in self.calls if c.operation == operation]

    def clear(self) -> None:
        """Forget what was recorded so far."""
        with self.lock:
            self.calls.clear()


def record_calls(*clients: Any) -> CallLog:
    """Record every call the given boto3 clients make, with its API parameters."""
    log = CallLog()

    def before_call(model: Any, params: dict[str, Any], **_: Any) -> None:
        # Registered on before-parameter-build: fires once per API call (retries do not repeat it).
        call = Call(model.service_model.service_name, model.name, dict(params))
        with log.lock:
            log.calls.append(call)

    for client in clients:
        client.meta.events.register("before-parameter-build", before_call)
    return log


# --- Lambda GetAccountSettings on a moto server --------------------------------------------------

_ACCOUNT_SETTINGS_PATH = re.compile(r"^/2016-08-19/account-settings/?$")
_CREDENTIAL_REGION = re.compile(r"Credential=[^/]+/\d{8}/([a-z0-9-]+)/lambda/")


@contextmanager
def lambda_account_settings(concurrent_executions: int) -> Iterator[None]:
    """moto (5.2.x) has no Lambda `GetAccountSettings`; answer it on a moto server as AWS does.

    AWS: `AccountLimit.ConcurrentExecutions` is the region's quota and `UnreservedConcurrentExecutions`
    that quota minus every function's reserved concurrency (Lambda API reference, GetAccountSettings /
    AccountLimit). Computed from moto's functions, with the quota given here (a new account's can be 10).
    """
    from moto.awslambda.models import lambda_backends
    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original = DomainDispatcherApplication.__call__

    def call(app: Any, environ: dict[str, Any], start_response: Any) -> Any:
        if not _ACCOUNT_SETTINGS_PATH.match(environ.get("PATH_INFO", "")):
            return original(app, environ, start_response)
        match = _CREDENTIAL_REGION.search(environ.get("HTTP_AUTHORIZATION", ""))
        region = match.group(1) if match else "us-east-1"
        functions = lambda_backends[DEFAULT_ACCOUNT_ID][region].list_functions()
        reserved = sum(int(f.reserved_concurrency or 0) for f in functions)
        body = json.dumps(
            {
                "AccountLimit": {
                    "TotalCodeSize": 80530636800,
                    "CodeSizeUnzipped": 262144000,
                    "CodeSizeZipped": 52428800,
                    "ConcurrentExecutions": concurrent_executions,
                    "UnreservedConcurrentExecutions": concurrent_executions - reserved,
                },
                "AccountUsage": {"TotalCodeSize": 0, "FunctionCount": len(functions)},
            }
        ).encode()
        start_response("200 OK", [("Content-Type", "application/json"), ("Content-Length", str(len(body)))])
        return [body]

    with mock.patch.object(DomainDispatcherApplication, "__call__", call):
        yield
