"""A model of the Lambda runtime around the switcher, on a simulated clock (tests and bench share it).

What it models, and from where:
- Asynchronous invocation (EventBridge and the reconciler's schedule invoke the switcher that way): an
  attempt that fails, by an error or by dying, is retried twice, one minute and then two minutes after
  the previous attempt ended, then the event is dropped (to the DLQ) — AWS Lambda Developer Guide, "How
  Lambda handles errors and retries with asynchronous invocation". Retries keep the request id (AWS
  Knowledge Center, "Why is my Lambda function receiving duplicate invocations").
- The function's timeout (900 s): `remaining_ms` counts down on the simulated clock.
- A kill (out of memory, a runtime crash, the timeout) ends the invocation where it is: no `except` of
  the function runs (it is raised as a BaseException from a botocore hook; the switcher has no `finally`).
- A handled error: a call that fails after botocore's own retries (a ClientError), either before it
  reached AWS or after it took effect (the response was lost: "committed but raised").
- The reconciler's schedule: an invocation every `interval` seconds.
- A switch parked at its fence returns normally (outcome `WAITING`): an "ok" attempt, which Lambda
  does not retry; the reconciler (or a later event) resumes it.

Invocations run one after another in simulated-time order (calls are instantaneous); true concurrency
is the ThreadedMotoServer test's job.
"""

from __future__ import annotations

import heapq
import itertools
import json
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from botocore.exceptions import ClientError
from switcher import contract
from switcher.clients import Clients
from switcher.reconcile import reconcile
from switcher.settings import Settings
from switcher.switch import run_event

TIMEOUT_SECONDS = 900
#: Delay before Lambda's first and second retry of a failed asynchronous invocation.
RETRY_DELAYS = (60.0, 120.0)
#: Simulated duration of an invocation that is not killed (its calls take no simulated time).
INVOCATION_SECONDS = 1.0

RECONCILE_EVENT = {"source": contract.RECONCILE_EVENT_SOURCE, "detail-type": "SWR Reconcile", "detail": {}}


class Killed(BaseException):
    """The invocation dies here (out of memory, runtime crash, timeout): nothing of the function runs."""


@dataclass(frozen=True)
class PlannedFault:
    """At the `call`-th AWS call of the run (counted over all invocations), inject a fault."""

    call: int
    kind: str  # "error" | "kill"
    when: str  # "before" (the call never reaches AWS) | "after" (it took effect, then the fault)
    #: For a kill: how long (simulated seconds) the invocation had run when it died (<= the timeout).
    ran_for: float = 1.0


@dataclass
class Attempt:
    """One invocation attempt as the runtime saw it."""

    kind: str  # "event" | "reconcile"
    request_id: str
    attempt: int
    started: float
    ended: float = 0.0
    outcome: str = ""  # "ok" | "error" | "killed"
    result: dict[str, Any] | None = None
    error: str | None = None


@dataclass(order=True)
class _Queued:
    at: float
    seq: int
    kind: str = field(compare=False)
    event: dict[str, Any] = field(compare=False)
    request_id: str = field(compare=False)
    attempt: int = field(compare=False)


@dataclass
class LambdaRuntime:
    """Deliver events and scheduled reconciles to the switcher with Lambda's retry schedule and faults."""

    clients: Clients
    settings: Settings
    clock: list[float]
    faults: list[PlannedFault] = field(default_factory=list)
    reconcile_interval: float | None = 60.0
    #: Called after every attempt (e.g. to watch the node's state over time).
    after_attempt: Callable[[Attempt], None] | None = None
    #: Faults for one invocation, given (kind, request id, attempt); their `call` counts that invocation's
    #: calls only (e.g. "every attempt of this event is killed").
    attempt_faults: Callable[[str, str, int], list[PlannedFault]] | None = None
    #: When the schedule first invokes the reconciler (default: one interval after the clock's start).
    first_reconcile_at: float | None = None
    attempts: list[Attempt] = field(default_factory=list)
    dropped: list[str] = field(default_factory=list)
    #: Calls that took effect: (service, operation, params).
    effective: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)
    calls: int = 0
    #: Faults injected so far, with the kind of invocation each hit ("event" | "reconcile").
    injected: list[tuple[PlannedFault, str]] = field(default_factory=list)
    #: The simulated time of each injected fault (calls take no simulated time: the invocation's start).
    injected_at: list[float] = field(default_factory=list)
    #: False once the run is over: later calls (the test's own checks) get no fault.
    injecting: bool = True
    _current_kind: str = ""
    _queue: list[_Queued] = field(default_factory=list)
    _seq: Any = field(default_factory=itertools.count)
    _ids: Any = field(default_factory=lambda: itertools.count(1))
    _next_reconcile: float | None = None
    _kill: PlannedFault | None = None
    _params: dict[int, dict[str, Any]] = field(default_factory=dict)
    _local: dict[int, PlannedFault] = field(default_factory=dict)
    _local_calls: int = 0

    def __post_init__(self) -> None:
        by_call = {f.call: f for f in self.faults}
        self._by_call = by_call
        for client in (
            self.clients.ec2,
            self.clients.elbv2,
            self.clients.cloudwatch,
            self.clients.dynamodb,
            self.clients.sns,
            self.clients.events,
        ):
            client.meta.events.register("before-parameter-build", self._remember_params)
            client.meta.events.register("before-call", self._before_call)
            client.meta.events.register("after-call", self._after_call)
        if self.reconcile_interval is not None:
            first = self.first_reconcile_at
            self._next_reconcile = self.clock[0] + self.reconcile_interval if first is None else first

    # --- botocore hooks ------------------------------------------------------------------------------

    def _remember_params(self, params: Any, context: Any, **_: Any) -> None:
        context["swr_params"] = dict(params)

    def _before_call(self, model: Any, context: Any, **_: Any) -> None:
        self.calls += 1
        self._local_calls += 1
        context["swr_call"] = self.calls
        fault = self._by_call.get(self.calls) or self._local.pop(self._local_calls, None)
        context["swr_fault"] = fault
        if fault is not None and fault.when == "before":
            self._fire(fault, model.name)

    def _after_call(self, model: Any, parsed: Any, context: Any, http_response: Any, **_: Any) -> None:
        if http_response is not None and http_response.status_code < 300:
            params = dict(context.get("swr_params") or {})
            self.effective.append((model.service_model.service_name, model.name, params))
        fault = context.get("swr_fault")
        if fault is not None and fault.when == "after":
            self._fire(fault, model.name)

    def _fire(self, fault: PlannedFault, operation: str) -> None:
        if not self.injecting:
            return
        self.injected.append((fault, self._current_kind))
        self.injected_at.append(self.clock[0])
        if fault.kind == "kill":
            self._kill = fault
            raise Killed(f"killed at call {fault.call} ({operation}, {fault.when})")
        error = {"Code": "InternalError", "Message": f"injected at call {fault.call} ({fault.when})"}
        raise ClientError({"Error": error, "ResponseMetadata": {"HTTPStatusCode": 500}}, operation)

    # --- scheduling ----------------------------------------------------------------------------------

    def deliver(self, event: dict[str, Any], *, at: float | None = None) -> str:
        """Queue an asynchronous invocation of `event` (a new request id); returns the request id."""
        request_id = f"req-{next(self._ids)}"
        self._push(self.clock[0] if at is None else at, "event", event, request_id, 1)
        return request_id

    def _push(self, at: float, kind: str, event: dict[str, Any], request_id: str, attempt: int) -> None:
        heapq.heappush(self._queue, _Queued(at, next(self._seq), kind, event, request_id, attempt))

    def run_until(self, until: float, *, stop: Callable[[], bool] | None = None) -> None:
        """Run queued invocations and scheduled reconciles in time order up to `until` (or `stop()`)."""
        while True:
            next_queued = self._queue[0].at if self._queue else math.inf
            next_reconcile = math.inf if self._next_reconcile is None else self._next_reconcile
            if min(next_queued, next_reconcile) > until:
                self.clock[0] = max(self.clock[0], until)
                return
            if next_reconcile < next_queued:
                self._push(next_reconcile, "reconcile", RECONCILE_EVENT, f"rec-{next(self._ids)}", 1)
                assert self.reconcile_interval is not None
                self._next_reconcile = next_reconcile + self.reconcile_interval
            self._invoke(heapq.heappop(self._queue))
            if stop is not None and stop():
                return

    def _invoke(self, queued: _Queued) -> None:
        started = max(self.clock[0], queued.at)
        self.clock[0] = started
        attempt = Attempt(queued.kind, queued.request_id, queued.attempt, started)

        def now() -> float:
            return self.clock[0]

        def remaining_ms() -> int:
            return max(0, int((started + TIMEOUT_SECONDS - self.clock[0]) * 1000))

        self._kill = None
        self._current_kind = queued.kind
        self._local_calls = 0
        planned = (
            self.attempt_faults(queued.kind, queued.request_id, queued.attempt) if self.attempt_faults else []
        )
        self._local = {f.call: f for f in planned}
        try:
            if queued.kind == "reconcile":
                report = reconcile(
                    clients=self.clients,
                    settings=self.settings,
                    now=now,
                    remaining_ms=remaining_ms,
                    request_id=queued.request_id,
                )
                attempt.result = report.__dict__
            else:
                result = run_event(
                    queued.event,
                    clients=self.clients,
                    settings=self.settings,
                    now=now,
                    remaining_ms=remaining_ms,
                    request_id=queued.request_id,
                )
                attempt.result = result.__dict__
            attempt.outcome = "ok"
            attempt.ended = started + INVOCATION_SECONDS
        except Killed as killed:
            attempt.outcome, attempt.error = "killed", str(killed)
            ran_for = min(self._kill.ran_for if self._kill else 1.0, TIMEOUT_SECONDS)
            attempt.ended = started + ran_for
        except Exception as err:  # the function's error, as Lambda records it
            attempt.outcome, attempt.error = "error", f"{type(err).__name__}: {err}"
            attempt.ended = started + INVOCATION_SECONDS
        # A killed invocation's calls all happened before it died; it only holds the timeline of its own
        # retry (scheduled from when it ended), not the other invocations', which run meanwhile.
        self.clock[0] = max(self.clock[0], started + INVOCATION_SECONDS)
        self.attempts.append(attempt)
        if attempt.outcome != "ok":
            if queued.attempt <= len(RETRY_DELAYS):
                delay = RETRY_DELAYS[queued.attempt - 1]
                self._push(
                    attempt.ended + delay, queued.kind, queued.event, queued.request_id, queued.attempt + 1
                )
            else:
                self.dropped.append(queued.request_id)
        if self.after_attempt is not None:
            self.after_attempt(attempt)

    def published(self, detail_type: str) -> list[dict[str, Any]]:
        """The notices of one detail type that reached SNS (JSON bodies), in order."""
        return [
            json.loads(params["Message"])
            for service, operation, params in self.effective
            if service == "sns" and operation == "Publish" and params.get("Subject") == detail_type[:100]
        ]
