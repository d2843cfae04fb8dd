"""Apply the latency model to boto3 clients talking to moto, through botocore event hooks.

moto answers every call at once and moves instances to running/stopped/terminated immediately.
`ModeledAws` puts AWS's time back:

* `before-call.*.*` sleeps the operation's modeled round trip (through the run's clock);
* `after-call` on RunInstances/StopInstances/TerminateInstances starts a modeled state transition
  for each instance (pending -> running, stopping -> stopped, shutting-down -> terminated);
* `after-call` on DescribeInstances/DescribeInstanceStatus and the state-changing calls rewrites
  the instance state in the parsed response to the transitional one until the modeled time of
  that instance has passed - so a waiter keeps polling exactly as it would against AWS;
* `patched_sleeps()` routes botocore's own sleeps (waiter delay, retry backoff) through the clock,
  so they are modeled seconds too;
* `before-send.ec2.RunInstances` (optional) consults a token bucket and answers
  `RequestLimitExceeded` like EC2 does, which botocore's retry handler then retries.

Every call is logged (start, end, operation, thread) for the call-count and overhead figures.
"""

from __future__ import annotations

import math
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any, Protocol

import botocore.endpoint
import botocore.retries.bucket
import botocore.waiter
from botocore.awsrequest import AWSResponse

from bench.latency_model import Sampler
from bench.token_bucket import TokenBucket

STATE_CODES = {
    "pending": 0,
    "running": 16,
    "shutting-down": 32,
    "terminated": 48,
    "stopping": 64,
    "stopped": 80,
}


_CAPACITY_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>InsufficientInstanceCapacity'
    b"</Code><Message>Insufficient capacity.</Message></Error></Errors>"
    b"<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)


class Clock(Protocol):
    def now(self) -> float: ...

    def sleep(self, modeled_seconds: float) -> None: ...


@dataclass
class Transition:
    """An instance in a transitional state until `until` (modeled seconds), then `final`."""

    transitional: str
    until: float
    final: str


@dataclass(frozen=True)
class CallRecord:
    """One AWS call as the switcher made it: modeled start/end, operation, calling thread."""

    service: str
    operation: str
    start: float
    end: float
    thread: str
    #: At least one attempt of this call was refused by the token bucket (botocore then retried).
    throttled: bool = False
    #: The call ended in an AWS error response (after botocore's retries).
    failed: bool = False


@dataclass
class ThrottleStats:
    """How often the token bucket refused RunInstances."""

    refused: int = 0
    admitted: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock, repr=False)


_THROTTLE_BODY = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n<Response><Errors><Error><Code>RequestLimitExceeded</Code>'
    b"<Message>Request limit exceeded.</Message></Error></Errors>"
    b"<RequestID>00000000-0000-0000-0000-000000000000</RequestID></Response>"
)


class _ClockTime:
    """Stands in for the `time` module inside botocore: `sleep` goes through the clock."""

    def __init__(self, clock: Clock, real_time_module: Any, *, modeled_time: bool) -> None:
        self._clock = clock
        self._real = real_time_module
        self._modeled_time = modeled_time

    def sleep(self, seconds: float) -> None:
        self._clock.sleep(seconds)

    def time(self) -> float:
        return self._clock.now() if self._modeled_time else self._real.time()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._real, name)


class ModeledAws:
    """The latency model bound to one clock and one sampler (see module docstring).

    Hooks are attached once per client; `start_run` swaps the clock and sampler between runs so the
    same clients serve many runs.
    """

    def __init__(
        self, sampler: Sampler, clock: Clock, run_instances_bucket: TokenBucket | None = None
    ) -> None:
        self._lock = threading.Lock()
        self._local = threading.local()
        self.start_run(sampler, clock, run_instances_bucket)

    def start_run(
        self, sampler: Sampler, clock: Clock, run_instances_bucket: TokenBucket | None = None
    ) -> None:
        """A new run: new clock, draws and token bucket; no transitions, no calls recorded yet."""
        with self._lock:
            self.sampler = sampler
            self.model = sampler.model
            self.clock = clock
            self.bucket = run_instances_bucket
            self._transitions: dict[str, Transition] = {}
            self.calls: list[CallRecord] = []
            self.throttles = ThrottleStats()
            #: Instances of a lost AZ: their stop and termination never complete (P6).
            self.lost: set[str] = set()
            #: RunInstances requests (their form body) answered InsufficientInstanceCapacity (P6).
            self.refuse_capacity: Callable[[str], bool] | None = None
            self.capacity_refused = 0

    def draw(self, path: str) -> float:
        """Draw one value of a figure from the run's sampler."""
        return self.sampler.draw(path)

    # --- instance transitions -------------------------------------------------------------------
    def begin_transition(self, instance_id: str, transitional: str, duration: float, final: str) -> None:
        """From now on, `instance_id` shows `transitional` for `duration` modeled seconds."""
        self.set_transition(instance_id, Transition(transitional, self.clock.now() + duration, final))

    def set_transition(self, instance_id: str, transition: Transition) -> None:
        """Set an instance's transition with an absolute end (e.g. a stop that began before the switch)."""
        with self._lock:
            self._transitions[instance_id] = transition

    def transition_of(self, instance_id: str) -> Transition | None:
        """The instance's modeled transition, if one was started in this run."""
        with self._lock:
            return self._transitions.get(instance_id)

    def _remaining(self, instance_id: str) -> tuple[Transition | None, float]:
        with self._lock:
            transition = self._transitions.get(instance_id)
        if transition is None:
            return None, 0.0
        return transition, max(0.0, transition.until - self.clock.now())

    def modeled_state(self, instance_id: str, reported: str) -> str:
        """The state AWS would report now, given what moto reported."""
        transition, remaining = self._remaining(instance_id)
        if transition is None:
            return reported
        return transition.transitional if remaining > 0 else transition.final

    def _on_stop(self, instance_id: str, forced: bool) -> None:
        if instance_id in self.lost:
            # The AZ lost its power or network: the stop is accepted by the regional API, never done.
            self.set_transition(instance_id, Transition("stopping", math.inf, "stopping"))
            return
        transition, remaining = self._remaining(instance_id)
        figure = "instance_transition.forced_stop" if forced else "instance_transition.os_shutdown_on_stop"
        duration = self.draw(figure)
        if transition is not None and transition.transitional == "stopping" and remaining > 0:
            # A forced stop can only shorten a stop already under way, never lengthen it.
            duration = min(duration, remaining)
        elif transition is not None and transition.final in ("stopped", "terminated") and remaining <= 0:
            return
        self.begin_transition(instance_id, "stopping", duration, "stopped")

    def _on_terminate(self, instance_id: str) -> None:
        if instance_id in self.lost:
            self.set_transition(instance_id, Transition("shutting-down", math.inf, "shutting-down"))
            return
        transition, remaining = self._remaining(instance_id)
        if transition is not None and transition.final == "terminated":
            return  # a second TerminateInstances does not restart the clock
        shutdown = 0.0
        if transition is not None and transition.transitional == "stopping" and remaining > 0:
            shutdown = remaining  # the OS shutdown under way completes first
        elif transition is None or transition.final in ("running",):
            shutdown = self.draw("instance_transition.os_shutdown_on_stop")
        self.begin_transition(
            instance_id,
            "shutting-down",
            shutdown + self.draw("instance_transition.shutting_down_to_terminated"),
            "terminated",
        )

    # --- botocore hooks -------------------------------------------------------------------------
    def attach(self, client: Any) -> Any:
        """Register the hooks on one boto3 client; returns the client."""
        events = client.meta.events
        events.register("before-call.*.*", self._before_call)
        events.register("after-call.*.*", self._after_call)
        events.register("after-call-error.*.*", self._after_call_error)
        events.register("provide-client-params.ec2.StopInstances", self._watch_stop_params)
        events.register("before-send.ec2.RunInstances", self._before_send_run_instances)
        return client

    def _before_call(self, model: Any, **_: Any) -> None:
        self._local.start = self.clock.now()
        self._local.throttled = False
        self.clock.sleep(self.sampler.draw_api(model.service_model.service_name, model.name))

    def _record(self, model: Any, *, failed: bool) -> None:
        start = getattr(self._local, "start", None)
        if start is None:
            return
        record = CallRecord(
            service=model.service_model.service_name,
            operation=model.name,
            start=start,
            end=self.clock.now(),
            thread=threading.current_thread().name,
            throttled=getattr(self._local, "throttled", False),
            failed=failed,
        )
        with self._lock:
            self.calls.append(record)
        self._local.start = None

    def _after_call_error(self, model: Any, **_: Any) -> None:
        self._record(model, failed=True)

    def _after_call(self, model: Any, parsed: dict[str, Any], **_: Any) -> None:
        self._record(model, failed="Error" in parsed)
        if model.service_model.service_name != "ec2" or "Error" in parsed:
            return
        name = model.name
        if name == "RunInstances":
            for instance in parsed.get("Instances", []):
                self.begin_transition(
                    instance["InstanceId"],
                    "pending",
                    self.draw("instance_transition.pending_to_running"),
                    "running",
                )
        elif name == "StopInstances":
            forced = bool(getattr(self._local, "force", False))
            for change in parsed.get("StoppingInstances", []):
                self._on_stop(change["InstanceId"], forced=forced)
        elif name == "TerminateInstances":
            for change in parsed.get("TerminatingInstances", []):
                self._on_terminate(change["InstanceId"])
        self._rewrite_states(parsed)

    def _rewrite_states(self, parsed: dict[str, Any]) -> None:
        """Show the modeled transitional state wherever the response carries an instance state."""
        for reservation in parsed.get("Reservations", []):
            for instance in reservation.get("Instances", []):
                self._set_state(instance, "State", instance["InstanceId"])
        for instance in parsed.get("Instances", []):
            self._set_state(instance, "State", instance["InstanceId"])
        for status in parsed.get("InstanceStatuses", []):
            self._set_state(status, "InstanceState", status["InstanceId"])
        for key in ("StoppingInstances", "TerminatingInstances", "StartingInstances"):
            for change in parsed.get(key, []):
                self._set_state(change, "CurrentState", change["InstanceId"])

    def _set_state(self, holder: dict[str, Any], key: str, instance_id: str) -> None:
        reported = holder.get(key, {}).get("Name", "")
        state = self.modeled_state(instance_id, reported)
        holder[key] = {"Code": STATE_CODES.get(state, 0), "Name": state}

    def _before_send_run_instances(self, request: Any, **_: Any) -> AWSResponse | None:
        body = request.body.decode() if isinstance(request.body, bytes) else str(request.body or "")
        if self.refuse_capacity is not None and self.refuse_capacity(body):
            with self.throttles.lock:
                self.capacity_refused += 1
            # A server error (500) as EC2 sends it ("Error codes for the Amazon EC2 API").
            return AWSResponse(request.url, 500, {"Content-Type": "text/xml"}, _RawBody(_CAPACITY_BODY))
        if self.bucket is None:
            return None
        admitted = self.bucket.try_take()
        with self.throttles.lock:
            if admitted:
                self.throttles.admitted += 1
            else:
                self.throttles.refused += 1
        if admitted:
            return None
        self._local.throttled = True
        return AWSResponse(request.url, 503, {"Content-Type": "text/xml"}, _RawBody(_THROTTLE_BODY))

    # --- force flag of StopInstances (after-call does not see the request's parameters) ----------
    def _watch_stop_params(self, params: dict[str, Any], **_: Any) -> None:
        self._local.force = bool(params.get("Force", False))

    # --- botocore's own sleeps ------------------------------------------------------------------
    @contextmanager
    def patched_sleeps(self) -> Iterator[None]:
        """Waiter delays and retry backoff sleep modeled seconds through the clock for the block."""
        modules = (botocore.waiter, botocore.endpoint, botocore.retries.bucket)
        saved = [module.time for module in modules]  # type: ignore[attr-defined]
        for module, real in zip(modules, saved, strict=True):
            # The adaptive retry mode's client-side rate limiter also reads the time: give it the
            # modeled one, or its refill would be computed in real (scaled-down) seconds.
            module.time = _ClockTime(self.clock, real, modeled_time=module is botocore.retries.bucket)  # type: ignore[attr-defined]
        try:
            yield
        finally:
            for module, real in zip(modules, saved, strict=True):
                module.time = real  # type: ignore[attr-defined]


class _RawBody:
    """The minimal raw-stream interface `AWSResponse.content` reads."""

    def __init__(self, data: bytes) -> None:
        self._data = data

    def stream(self, **_: Any) -> Iterator[bytes]:
        yield self._data
