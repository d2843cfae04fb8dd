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
- `record_calls(*clients)` records every API call (its API parameters, from botocore's
  `before-parameter-build` event; `before-call` only sees the serialized request), to assert
  that a skip touched nothing (`mutating()`).
"""

from __future__ import annotations

import json
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

#: Read-only API prefixes: anything else counts as a mutation.
READ_ONLY_PREFIXES = ("Describe", "Get", "List", "Query", "Scan", "BatchGet")


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
    #: Subnets whose launches die while pending, and the instances doomed so far (not yet terminated).
    dying_subnets: set[str] = field(default_factory=set)
    doomed: list[Any] = field(default_factory=list)

    def fail(
        self,
        service: str,
        action: str,
        code: str,
        *,
        times: int = 1,
        when: Callable[[BaseResponse], bool] | None = None,
        status: int = 400,
        extra: dict[str, Any] | None = None,
    ) -> Fault:
        """Register a fault; `times` may be large for 'always'."""
        fault = Fault(service, action, code, times, when, status, extra=dict(extra or {}))
        self.faults.append(fault)
        return fault

    def fail_in_subnets(self, subnet_ids: set[str], code: str = "InsufficientInstanceCapacity") -> Fault:
        """RunInstances into any of these subnets fails with a capacity error (always)."""
        return self.fail(
            "ec2", "RunInstances", code, times=10**6, when=lambda r: r._get_param("SubnetId") in subnet_ids
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
    """Patch moto for the duration: fault injection, ClientToken idempotency, atomic DynamoDB writes."""
    injector = FaultInjector()
    original_call_action = BaseResponse.call_action
    original_run_instances = EC2Backend.run_instances

    def call_action(self: BaseResponse) -> Any:
        service = _service_of(self)
        with injector.lock:
            fault = injector._match(service, self._get_action(), self)
        if fault is not None:
            return _error_response(service, fault)
        if service == "ec2" and self._get_action() == "DescribeInstances":
            with injector.lock:
                injector._kill_doomed()
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
