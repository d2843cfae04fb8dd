"""The switch: event → node → decision → claim → phases, exactly once and resumable.

`run_event` is the in-process entry point used by the Lambda handler, the CLI demo and the benchmark
harness: it takes its clients and settings as arguments, plus an injectable clock and phase hook.
`act_on_node` is the path both the events and the reconciler (`switcher.reconcile`) take to a node.

The fence never holds an invocation for long: a source whose forced stop has not completed within
`fence_inline_wait_seconds` parks the switch until its fence deadline (outcome WAITING, no error, so
Lambda does not retry), and the source's `stopped` event or the reconciler resumes it (docs/fencing.md).
"""

from __future__ import annotations

import dataclasses
import math
import re
import time
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aws_lambda_powertools.metrics import MetricUnit
from botocore.exceptions import ClientError, WaiterError

from switcher import aws, contract, decide, fence, placement, standby, state
from switcher.clients import Clients
from switcher.observability import logger, metrics
from switcher.phases import CLAIMED, DETECTED, Phase, remaining
from switcher.settings import Settings

if TYPE_CHECKING:
    from mypy_boto3_ec2.type_defs import WaiterConfigTypeDef

#: Called as hook(phase, moment) with moment "acted" (AWS action done, not yet recorded) or "recorded".
#: Tests raise from it to simulate a crash at that point; production passes None.
PhaseHook = Callable[[str, str], None]

SKIPPED = "SKIPPED"
SUCCEEDED = state.SUCCEEDED
FAILED = state.SWITCH_FAILED
HELD = "HELD"
#: The switch is parked at its fence (docs/fencing.md): its source's stop had not completed within the
#: inline wait, or no fence could be confirmed. The node stays SWITCHING under it, nobody holds it, and
#: the source's `stopped` event or the reconciler resumes it; the invocation itself ended normally.
WAITING = "WAITING"
#: The reconciler applied a config that an Update stored during a switch.
REPAIRED = "REPAIRED"
#: The `outcome` of a failed-attempt notice: the switch is still in progress (Lambda or the reconciler
#: retries it).
ATTEMPT_FAILED = "ATTEMPT_FAILED"

#: Extra lease time beyond the invocation's remaining time, so a live switch is never taken over.
LEASE_MARGIN_SECONDS = 30


class CapacityExhausted(Exception):
    """No candidate AZ could launch the replacement (reasons per AZ are on the switch record)."""


class ReplacementLost(Exception):
    """The replacement ended or stopped before the switch closed (e.g. capacity lost while pending)."""

    def __init__(self, instance_id: str, message: str) -> None:
        super().__init__(message)
        self.instance_id = instance_id


@dataclass
class SwitchResult:
    """What one delivery of an event did: the outcome, the switch (if any) and its timeline."""

    outcome: str
    reason: str = ""
    node_id: int | None = None
    switch_id: str | None = None
    source_instance_id: str | None = None
    replacement_instance_id: str | None = None
    replacement_az: str | None = None
    timeline: dict[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Trigger:
    """The part of an EventBridge event the switcher acts on."""

    kind: str  # "ec2-state" | "alarm"
    description: str
    instance_id: str | None
    node_id_hint: int | None
    event_time: float | None


#: EC2 instance ids: `i-` and 8 or 17 lowercase hex digits. Anything else is not looked up at all.
_INSTANCE_ID_RE = re.compile(r"i-(?:[0-9a-f]{8}|[0-9a-f]{17})")


def instance_id_or_none(raw: object) -> str | None:
    """`raw` if it is a well-formed EC2 instance id, else None."""
    return raw if isinstance(raw, str) and _INSTANCE_ID_RE.fullmatch(raw) else None


def parse_event(event: Any, vpc_name: str) -> Trigger | str:
    """The trigger in an EventBridge event, or a reason (str) why it is not one of ours.

    Total over any input: a malformed event (missing keys, wrong types, non-canonical node id, malformed
    instance id) is a reason, never an exception, so a stray or hand-made event is one logged skip.
    """
    if not isinstance(event, Mapping):
        return f"event is a {type(event).__name__}, not an EventBridge event object"
    source, detail_type, detail = event.get("source"), event.get("detail-type"), event.get("detail")
    if not isinstance(detail, Mapping):
        return f"event {source!r}/{detail_type!r} has no detail object"
    event_time = _parse_time(event.get("time"))
    if source == contract.EC2_EVENT_SOURCE and detail_type == contract.EC2_STATE_CHANGE_DETAIL_TYPE:
        state_name = detail.get("state")
        if not isinstance(state_name, str) or state_name not in contract.EC2_TRIGGER_STATES:
            return f"EC2 state {state_name!r} is not a trigger"
        instance_id = instance_id_or_none(detail.get("instance-id"))
        if instance_id is None:
            return f"EC2 event: instance-id {detail.get('instance-id')!r} is not an instance id"
        return Trigger("ec2-state", f"instance {state_name}", instance_id, None, event_time)
    if source == contract.ALARM_EVENT_SOURCE and detail_type == contract.ALARM_STATE_CHANGE_DETAIL_TYPE:
        name = detail.get("alarmName")
        if not isinstance(name, str):
            return f"alarm event: alarmName {name!r} is not a name"
        alarm_state = detail.get("state")
        if not isinstance(alarm_state, Mapping) or alarm_state.get("value") != contract.ALARM_TRIGGER_STATE:
            return f"alarm {name} is not in {contract.ALARM_TRIGGER_STATE}"
        prefix = contract.alarm_prefix(vpc_name)
        if not name.startswith(prefix):
            return f"alarm {name} does not belong to VPC {vpc_name}"
        node_part = name[len(prefix) :].split("-", 1)[0]
        node_id = contract.parse_node_id(node_part)
        if node_id is None or name not in (
            contract.monitor_alarm_name(vpc_name, node_id),
            contract.status_alarm_name(vpc_name, node_id),
        ):
            return f"alarm {name} is not a node alarm of VPC {vpc_name}"
        return Trigger("alarm", f"alarm {name}", _alarm_instance_id(detail), node_id, event_time)
    return f"event {source!r}/{detail_type!r} is not a trigger"


def _alarm_instance_id(detail: Mapping[str, Any]) -> str | None:
    configuration = detail.get("configuration")
    metrics_ = configuration.get("metrics") if isinstance(configuration, Mapping) else None
    for metric in metrics_ if isinstance(metrics_, list) else []:
        stat = metric.get("metricStat") if isinstance(metric, Mapping) else None
        described = stat.get("metric") if isinstance(stat, Mapping) else None
        dims = described.get("dimensions") if isinstance(described, Mapping) else None
        if isinstance(dims, Mapping) and dims.get("InstanceId"):
            return instance_id_or_none(dims["InstanceId"])
    return None


def _parse_time(raw: Any) -> float | None:
    if not isinstance(raw, str):
        return None
    try:
        return datetime.fromisoformat(raw.replace("Z", "+00:00")).timestamp()
    except (ValueError, OverflowError):
        return None


@dataclass
class _Run:
    """Everything one invocation needs while it drives a switch."""

    clients: Clients
    settings: Settings
    now: Callable[[], float]
    hook: PhaseHook | None
    remaining_ms: Callable[[], int] | None
    request_id: str | None = None
    owner: str = ""

    def __post_init__(self) -> None:
        if not self.owner:
            self.owner = state.owner_id(self.request_id, uuid.uuid4().hex[:12])

    def lease_until(self) -> int:
        """The lease outlives this invocation (its deadline + a margin): whoever takes the node over after
        it expires knows this invocation is gone (Lambda ends an invocation at its deadline)."""
        seconds: float = self.settings.lease_seconds
        if self.remaining_ms is not None:
            seconds = self.remaining_ms() / 1000 + LEASE_MARGIN_SECONDS
        return state.lease_deadline(self.now(), seconds)

    def waiter(self) -> WaiterConfigTypeDef:
        return aws.waiter_config(self.settings.waiter_delay_seconds, self.settings.waiter_max_attempts)

    def policy(self) -> decide.Policy:
        s = self.settings
        return decide.Policy(
            s.flap_max_switches,
            s.flap_window_seconds,
            retry_first_seconds=s.reconcile_interval_seconds,
            retry_max_seconds=s.lease_seconds,
            silent_after_seconds=s.silent_after_seconds,
        )

    def record(self, node: state.NodeRecord, switch: state.SwitchRecord) -> state.NodeRecord:
        """Persist the switch's progress and renew the lease: the lease check before the next mutating
        phase (raises LeaseLost if the node is no longer this switch's)."""
        return state.record_phase(
            self.clients.dynamodb,
            self.settings.table_name,
            node,
            switch,
            owner=self.owner,
            lease_until=self.lease_until(),
            now=self.now(),
        )

    def fire(self, phase: str, moment: str) -> None:
        if self.hook is not None:
            self.hook(phase, moment)

    def notify(self, detail_type: str, detail: dict[str, Any]) -> None:
        aws.notify(
            self.clients.sns,
            self.clients.events,
            topic_arn=self.settings.topic_arn,
            detail_type=detail_type,
            detail=detail,
        )


#: The invocation context of a switch (public name for the reconciler).
Run = _Run


def make_run(
    *,
    clients: Clients,
    settings: Settings,
    now: Callable[[], float],
    hook: PhaseHook | None,
    remaining_ms: Callable[[], int] | None,
    request_id: str | None,
) -> _Run:
    """The context an invocation drives switches with (one lease owner per invocation)."""
    return _Run(clients, settings, now, hook, remaining_ms, request_id)


class _Raced(Exception):
    """A claim or take-over lost its conditional write: read the node again and decide again."""


#: How often one delivery re-reads and re-decides after losing a conditional write to someone else.
DECIDE_ATTEMPTS = 3


def run_event(
    event: Any,
    *,
    clients: Clients,
    settings: Settings,
    now: Callable[[], float] = time.time,
    hook: PhaseHook | None = None,
    remaining_ms: Callable[[], int] | None = None,
    request_id: str | None = None,
) -> SwitchResult:
    """Handle one EventBridge delivery: resolve, then start, resume or skip a switch.

    `request_id` is the Lambda request id: Lambda keeps it when it retries an asynchronous event (AWS
    Knowledge Center, "Why is my Lambda function receiving duplicate invocations": retried invocations
    that errored or timed out carry the same request ID), so a retry recognises the lease of its own
    earlier, ended attempt and resumes at once instead of waiting for that lease to expire.
    """
    run = _Run(clients, settings, now, hook, remaining_ms, request_id)
    set_metric_dimensions(settings)
    trigger = parse_event(event, settings.vpc_name)
    if isinstance(trigger, str):
        return _skip(trigger)
    return _resolve_and_switch(run, trigger)


def set_metric_dimensions(settings: Settings) -> None:
    """Every switcher metric carries exactly contract.METRIC_DIMENSIONS: Powertools adds `service`."""
    metrics.set_default_dimensions(**{contract.METRICS_VPC_DIMENSION: settings.vpc_name})


def _skip(reason: str, **fields: Any) -> SwitchResult:
    logger.info("skip", extra={"skip_reason": reason, **fields})
    return SwitchResult(outcome=SKIPPED, reason=reason, node_id=fields.get("node_id"))


def node_id_of(instance: dict[str, Any], settings: Settings) -> int | str:
    """The node id an instance carries, or the reason (str) it is not a node of this VPC."""
    instance_id = instance.get("InstanceId")
    tags = aws.tags_of(instance)
    if contract.TAG_NODE_ID not in tags:
        return f"instance {instance_id} has no {contract.TAG_NODE_ID} tag"
    if instance.get("VpcId") != settings.vpc_id:
        return f"instance {instance_id} is in VPC {instance.get('VpcId')}, not {settings.vpc_id}"
    raw_id = tags[contract.TAG_NODE_ID]
    node_id = contract.parse_node_id(raw_id)
    if node_id is None:
        return f"instance {instance_id}: {contract.TAG_NODE_ID}={raw_id!r} is not a canonical decimal node id"
    return node_id


def _resolve_and_switch(run: _Run, trigger: Trigger) -> SwitchResult:
    ddb, table, settings = run.clients.dynamodb, run.settings.table_name, run.settings
    instance_id = trigger.instance_id
    if instance_id is None and trigger.node_id_hint is not None:
        hinted = state.get_node(ddb, table, settings.vpc_name, trigger.node_id_hint)
        instance_id = hinted.current_instance_id if hinted else None
    if instance_id is None:
        return _skip(f"{trigger.description}: no instance to act on")
    instance = aws.describe_instance(run.clients.ec2, instance_id)
    if instance is None:
        return _skip(f"instance {instance_id} not found", instance_id=instance_id)
    node_id = node_id_of(instance, settings)
    if isinstance(node_id, str):
        return _skip(node_id, instance_id=instance_id)
    logger.append_keys(node_id=node_id, instance_id=instance_id)
    return act_on_node(
        run,
        node_id,
        instance,
        cause=decide.EVENT,
        description=trigger.description,
        event_time=trigger.event_time,
    )


def act_on_node(
    run: _Run,
    node_id: int,
    instance: dict[str, Any],
    *,
    cause: str,
    description: str,
    event_time: float | None = None,
    alarm_firing: bool = False,
    silent_for: float | None = None,
) -> SwitchResult:
    """Decide about a node (decide.decide) and act: the one path of both the events and the reconciler.

    A lost conditional write (another delivery, the reconciler, an operator or an Update wrote first)
    re-reads the node and decides again, so a delivery is never dropped because of an unrelated write.
    """
    ddb, table, settings = run.clients.dynamodb, run.settings.table_name, run.settings
    instance_id = instance.get("InstanceId")
    for _ in range(DECIDE_ATTEMPTS):
        node = state.get_node(ddb, table, settings.vpc_name, node_id)
        live = None
        if node is not None and node.state == state.ACTIVE and node.current_instance_id is None:
            live = tuple(
                i["InstanceId"] for i in aws.live_node_instances(run.clients.ec2, settings.vpc_id, node_id)
            )
        replacement = None
        if node is not None and node.state == state.SWITCHING and instance_id != node.current_instance_id:
            # An event about the switch's own replacement (it died after `running`): resume, do not skip.
            switch = _switch_of(run, node)
            replacement = switch.replacement_instance_id if switch else None
        failed = None
        if node is not None and node.state == state.FAILED and cause == decide.RECONCILE:
            failed = _switch_of(run, node)  # a switch that failed for want of capacity is retried
        seen = decide.Seen(
            cause=cause,
            node_id=node_id,
            description=description,
            instance_id=instance_id,
            instance_state=(instance.get("State") or {}).get("Name") if instance else None,
            alarm_firing=alarm_firing,
            request_id=run.request_id,
            switch_replacement_id=replacement,
            silent_for=silent_for,
            live_instance_ids=live,
            failed_switch=failed,
        )
        decision = decide.decide(node, seen, now=run.now(), policy=run.policy())
        logger.info(
            "decision",
            extra={"node_id": node_id, "action": decision.action, "decision_reason": decision.reason},
        )
        try:
            if decision.action == decide.SKIP:
                if decision.notice is not None:
                    run.notify(
                        contract.SWITCH_FAILED_DETAIL_TYPE,
                        {
                            "vpc": settings.vpc_name,
                            "node_id": node_id,
                            "instance_id": instance_id,
                            **decision.notice,
                        },
                    )
                return _skip(decision.reason, node_id=node_id)
            assert node is not None  # decide() skips a node without a record
            if decision.action == decide.HOLD:
                return _hold_flapping(run, node, decision.reason)
            if decision.action == decide.RESUME and decision.retry_failed:
                assert failed is not None  # decide() retries only a FAILED switch it was shown
                return _retry_failed(run, node, failed)
            if decision.action == decide.RESUME:
                return _take_over(run, node, decision)
            if decision.action == decide.REPAIR:
                return _repair_pending(run, node)
            return _claim(run, node, instance, description, event_time)
        except _Raced:
            continue
    return _skip(f"node {node_id} kept changing while deciding", node_id=node_id)


def _switch_of(run: _Run, node: state.NodeRecord) -> state.SwitchRecord | None:
    if node.switch_sk is None:
        return None
    s = run.settings
    return state.get_switch(run.clients.dynamodb, s.table_name, s.vpc_name, node.node_id, node.switch_sk)


def _hold_flapping(run: _Run, node: state.NodeRecord, reason: str) -> SwitchResult:
    s = run.settings
    # Notice first, then the record: a crash in between repeats the notice (the next event holds again)
    # rather than leaving a held node nobody was told about.
    run.notify(contract.NODE_HELD_DETAIL_TYPE, {"vpc": s.vpc_name, "node_id": node.node_id, "reason": reason})
    try:
        state.save_node(
            run.clients.dynamodb,
            s.table_name,
            state.hold_node(node, reason, run.now()),
            expected_version=node.version,
        )
    except state.ConflictError:
        raise _Raced from None
    metrics.add_metric(name=contract.METRIC_NODES_HELD, unit=MetricUnit.Count, value=1)
    logger.warning("node held", extra={"node_id": node.node_id, "hold_reason": reason})
    return SwitchResult(outcome=HELD, reason=reason, node_id=node.node_id)


def _repair_pending(run: _Run, node: state.NodeRecord) -> SwitchResult:
    from switcher import provision  # provision imports nothing of switch.py: no cycle, kept local anyway

    try:
        provision.apply_pending_config(run.clients, run.settings, node, now=run.now)
    except state.ConflictError:
        raise _Raced from None
    return SwitchResult(outcome=REPAIRED, reason="pending config applied", node_id=node.node_id)


def _claim(
    run: _Run, node: state.NodeRecord, instance: dict[str, Any], description: str, event_time: float | None
) -> SwitchResult:
    # Adoption (e.g. an instance of the vendor product): swr's IAM policy lets it fence, stop and terminate
    # only instances tagged with its VPC, so that tag comes before anything else.
    if node.current_instance_id is None and aws.tag_for_adoption(
        run.clients.ec2, instance, run.settings.vpc_name
    ):
        logger.info("adopted instance tagged", extra={"instance_id": instance["InstanceId"]})
    now = run.now()
    switch_id = "swr-" + uuid.uuid4().hex[:20]
    sk = f"{state.iso(now)}#{switch_id}"
    detected = event_time if event_time is not None else now
    switch = state.SwitchRecord(
        switch_id=switch_id,
        vpc_name=node.vpc_name,
        node_id=node.node_id,
        sk=sk,
        reason=description,
        order=run.settings.switch_order,
        source_instance_id=instance["InstanceId"],
        source_az=instance.get("Placement", {}).get("AvailabilityZone"),
        timeline={DETECTED: state.iso(min(detected, now)), CLAIMED: state.iso(now)},
        started_at=now,
        expires_at=int(now) + run.settings.history_ttl_days * 86400,
    )
    claimed = state.claim(
        node,
        instance_id=instance["InstanceId"],
        switch_id=switch_id,
        switch_sk=sk,
        owner=run.owner,
        lease_until=run.lease_until(),
        now=now,
    )
    try:
        claimed = state.save_node_and_switch(
            run.clients.dynamodb, run.settings.table_name, claimed, switch, expected_version=node.version
        )
    except state.ConflictError:
        raise _Raced from None
    logger.set_correlation_id(switch_id)
    logger.info("switch claimed", extra={"switch_id": switch_id, "adopted": node.current_instance_id is None})
    return _drive(run, claimed, switch, instance, just_claimed=True)


def _take_over(run: _Run, node: state.NodeRecord, decision: decide.Decision) -> SwitchResult:
    s = run.settings
    switch = _switch_of(run, node)
    if switch is None:
        raise RuntimeError(f"node {node.node_id} is SWITCHING but switch item {node.switch_sk} is missing")
    # A lease nobody released: the attempt that held it ended without its error handler (killed by an
    # out-of-memory error, a runtime crash or the timeout). Nothing else reports that attempt: we do.
    # A parked switch, like a released one, has no owner: its attempt ended normally, nothing to report.
    killed_attempt = switch.attempts if node.lease_owner is not None else None
    taken = state.take_over(
        node,
        owner=run.owner,
        lease_until=run.lease_until(),
        now=run.now(),
        earlier_attempt_dead=decision.earlier_attempt_dead,
        parked=decision.parked,
    )
    switch.attempts += 1
    try:
        taken = state.save_node_and_switch(
            run.clients.dynamodb, s.table_name, taken, switch, expected_version=node.version
        )
    except state.ConflictError:
        raise _Raced from None
    logger.set_correlation_id(switch.switch_id)
    logger.info("switch resumed", extra={"switch_id": switch.switch_id, "attempt": switch.attempts})
    if killed_attempt is not None:
        _attempt_notice(
            run,
            switch,
            f"attempt {killed_attempt} ended without releasing its lease (killed, crashed or timed out); "
            f"attempt {switch.attempts} resumes the switch",
        )
    return _drive(run, taken, switch, None)


def _retry_failed(run: _Run, node: state.NodeRecord, failed: state.SwitchRecord) -> SwitchResult:
    """Retry a switch that FAILED for want of capacity: reopen it (same switch, source still fenced) under
    a new lease, conditional on the node not having changed since the decision, and resume it."""
    switch = state.reopen(failed)
    taken = state.retry_failed(node, owner=run.owner, lease_until=run.lease_until(), now=run.now())
    try:
        taken = state.save_node_and_switch(
            run.clients.dynamodb, run.settings.table_name, taken, switch, expected_version=node.version
        )
    except state.ConflictError:
        raise _Raced from None
    logger.set_correlation_id(switch.switch_id)
    logger.info("failed switch retried", extra={"switch_id": switch.switch_id, "retry": switch.retries})
    return _drive(run, taken, switch, None)


def _drive(
    run: _Run,
    node: state.NodeRecord,
    switch: state.SwitchRecord,
    source: dict[str, Any] | None,
    just_claimed: bool = False,
) -> SwitchResult:
    """Run the remaining phases, each after a lease check (the previous phase's conditional record).

    A fence still pending or unconfirmed parks the switch (store.park_owned) and returns WAITING.
    On an error: notice + metric for the failed attempt, release the lease (by owner), re-raise so
    Lambda retries. No `finally` anywhere: a killed invocation runs none, so nothing may depend on one.
    """
    try:
        #: True if `source` was described by this invocation after the stop was sent (a resumed switch).
        source_after_stop = False
        if source is None:
            source = aws.describe_instance(run.clients.ec2, switch.source_instance_id) or {}
            source_after_stop = Phase.STOP_SENT.value in switch.timeline
        if just_claimed:
            run.fire(CLAIMED, "recorded")
        # One phase at a time, re-planned after each: a lost replacement rewinds the timeline.
        while True:
            phase = remaining(switch.order, switch.timeline)[0]  # the plan ends with CLOSE, which returns
            started = time.monotonic()
            try:
                if phase is Phase.CLOSE:
                    _check_replacement_alive(run, switch)
                    return _close(run, node, switch)
                _act(run, phase, node, switch, source, source_after_stop=source_after_stop)
            except CapacityExhausted:
                return _fail(run, node, switch, source)
            except fence.FenceStillPending as pending:
                return _park_pending(run, node, switch, pending)
            except fence.FenceUnconfirmed as unconfirmed:
                return _park_unconfirmed(run, node, switch, str(unconfirmed))
            except ReplacementLost as lost:
                node = _rewind(run, node, switch, lost)
                continue
            run.fire(phase.value, "acted")
            switch.timeline[phase.value] = state.iso(run.now())
            metrics.add_metric(
                name=contract.METRIC_PHASE_DURATION_PREFIX + phase.value,
                unit=MetricUnit.Seconds,
                value=time.monotonic() - started,
            )
            # Every phase is recorded before the next one acts: this conditional write is the lease check
            # that keeps an invocation which lost the node from touching AWS again.
            node = run.record(node, switch)
            run.fire(phase.value, "recorded")
    except state.ConflictError as lost:
        return _lease_lost(run, switch, getattr(lost, "node", None))
    except Exception as err:
        fresh = _node_now(run, node)
        if fresh is not None and _taken_from_us(run, switch, fresh):
            return _lease_lost(run, switch, fresh)  # the error came from losing the node: stay quiet
        _attempt_failed(run, node, switch, err)
        raise


def _taken_from_us(run: _Run, switch: state.SwitchRecord, node: state.NodeRecord) -> bool:
    """True if the node was deleted, or another invocation (or another switch) holds it now."""
    if node.state == state.DELETED:
        return True
    return node.state == state.SWITCHING and not node.held_by(run.owner, switch.switch_id)


def _node_now(run: _Run, node: state.NodeRecord) -> state.NodeRecord | None:
    try:
        return state.get_node(run.clients.dynamodb, run.settings.table_name, node.vpc_name, node.node_id)
    except ClientError:
        return None


def _lease_lost(run: _Run, switch: state.SwitchRecord, now_node: state.NodeRecord | None) -> SwitchResult:
    """Another invocation holds the node now, or a stack Delete removed it: touch nothing of theirs."""
    if now_node is not None and now_node.state == state.DELETED:
        _clean_up_after_delete(run, switch)
        return SwitchResult(
            outcome=SKIPPED, reason="node deleted during the switch", switch_id=switch.switch_id
        )
    logger.warning("lease lost", extra={"switch_id": switch.switch_id})
    return SwitchResult(
        outcome=SKIPPED, reason="lease lost to another invocation", switch_id=switch.switch_id
    )


def _clean_up_after_delete(run: _Run, switch: state.SwitchRecord) -> None:
    """The node was deleted (Custom::SwrNode Delete) while this switch ran: there is no successor, so the
    only AWS calls left are the Delete's own clean-up, repeated for what this switch may have created
    after the Delete looked (an instance launched, alarms written or a target registered in flight)."""
    from switcher import provision

    c, s = run.clients, run.settings
    logger.warning(
        "node deleted during the switch: removing what it created", extra={"switch_id": switch.switch_id}
    )
    for instance in aws.live_node_instances(c.ec2, s.vpc_id, switch.node_id):
        aws.terminate_once(c.ec2, instance["InstanceId"], wait=False, waiter={})
    aws.delete_node_alarms(c.cloudwatch, vpc_name=s.vpc_name, node_id=switch.node_id)
    deleted = _node_now_by_id(run, switch.node_id)
    config = deleted.config if deleted else None
    if config is not None:
        provision.clear_quietly(c.elbv2, config.target_group_arn)


def _node_now_by_id(run: _Run, node_id: int) -> state.NodeRecord | None:
    s = run.settings
    return state.get_node(run.clients.dynamodb, s.table_name, s.vpc_name, node_id)


def _attempt_failed(run: _Run, node: state.NodeRecord, switch: state.SwitchRecord, err: Exception) -> None:
    """A failed attempt: notice + metric (Lambda's last retry cannot know it is the last one, and a dropped
    event reports nothing), then give the lease up so the retry resumes at once."""
    switch.error = f"{type(err).__name__}: {err}"
    logger.exception(
        "switch attempt failed; lease released for the retry", extra={"switch_id": switch.switch_id}
    )
    try:
        _attempt_notice(run, switch, switch.error)
    except Exception:  # noqa: BLE001 - the original error is what the retry needs to see
        logger.exception("could not send the failed-attempt notice", extra={"switch_id": switch.switch_id})
    try:
        state.release_owned(
            run.clients.dynamodb, run.settings.table_name, node, switch, owner=run.owner, now=run.now()
        )
    except (state.ConflictError, state.TransientWriteError, ClientError):
        # The lease then expires on its own (or a Lambda retry of this request takes it back).
        logger.exception("could not release the lease", extra={"switch_id": switch.switch_id})


def _attempt_notice(run: _Run, switch: state.SwitchRecord, error: str) -> None:
    detail = {**_notice(switch), "outcome": ATTEMPT_FAILED, "attempt": switch.attempts, "error": error}
    run.notify(contract.SWITCH_ATTEMPT_FAILED_DETAIL_TYPE, detail)
    metrics.add_metric(name=contract.METRIC_SWITCH_FAILED, unit=MetricUnit.Count, value=1)


def _act(
    run: _Run,
    phase: Phase,
    node: state.NodeRecord,
    switch: state.SwitchRecord,
    source: dict[str, Any],
    *,
    source_after_stop: bool = False,
) -> None:
    """Do the AWS part of one phase. Every step is safe to repeat after a crash."""
    c, s = run.clients, run.settings
    config = node.config
    assert config is not None  # checked at resolution
    if phase is Phase.SNAPSHOT:
        if not source:
            raise RuntimeError(f"source instance {switch.source_instance_id} vanished before its snapshot")
        switch.snapshot = aws.snapshot_instance(
            source, s.blackhole_sg_id, groups_before_fence=_groups_before_fence(run, switch, source)
        )
        switch.source_az = switch.snapshot.az
        switch.launch_template_id = config.launch_template_id
        switch.launch_template_version = config.launch_template_version
        subnets = aws.tagged_subnets(c.ec2, s.vpc_id)
        # A subnet under a whole-subnet network fence (an AZ being lost) could not reach the shared data.
        fenced = placement.fenced_subnets(subnets, fence.deny_cidrs(c.ec2, s.vpc_id))
        if fenced:
            logger.warning(
                "subnets under a network fence are not candidates", extra={"subnets": sorted(fenced)}
            )
        switch.candidates = placement.rank_candidates(
            subnets,
            source_az=switch.source_az,
            failures_by_az=state.failures_by_az(node, s.flap_window_seconds, run.now()),
            exclude=fenced,
        )
    elif phase is Phase.STOP_SENT:
        # `source` was described by this invocation, before any of its own actions: no need to ask again.
        fence.send_stop(
            c.ec2,
            switch.source_instance_id,
            current_state=source.get("State", {}).get("Name", "terminated"),
            blackhole_sg_id=s.blackhole_sg_id,
        )
    elif phase is Phase.FENCE:
        _confirm_fence(run, switch, source, source_after_stop=source_after_stop)
    elif phase is Phase.LAUNCH:
        _launch(run, node, switch)
    elif phase is Phase.WAIT_RUNNING:
        assert switch.replacement_instance_id is not None
        _wait_replacement_running(run, switch.replacement_instance_id)
    elif phase is Phase.MOVE_TRAFFIC:
        assert switch.replacement_instance_id is not None
        if switch.replacement_private_ip is None:  # a switch recorded before the field existed
            replacement = aws.describe_instance(c.ec2, switch.replacement_instance_id) or {}
            switch.replacement_private_ip = aws.private_ip(replacement)
        if config.preregistered:
            _settle_preregistered(run, node, keep=switch.replacement_private_ip)
        else:
            aws.point_target_group(c.elbv2, config.target_group_arn, ip=switch.replacement_private_ip)
    elif phase is Phase.MOVE_ALARMS:
        assert switch.replacement_instance_id is not None
        aws.put_node_alarms(
            c.cloudwatch,
            vpc_name=s.vpc_name,
            node_id=node.node_id,
            instance_id=switch.replacement_instance_id,
            monitor_process=config.monitor_process,
        )
    elif phase is Phase.TERMINATE_SOURCE:
        # The vendor order waits for the termination before launching; ours need not wait.
        aws.terminate_once(
            c.ec2, switch.source_instance_id, wait=switch.order == "vendor", waiter=run.waiter()
        )


def _confirm_fence(
    run: _Run, switch: state.SwitchRecord, source: dict[str, Any], *, source_after_stop: bool
) -> None:
    """Wait for the stop within the inline window (from the recorded STOP_SENT, capped by the fence
    deadline), then, past the deadline, escalate to the network fence (switcher.fence); record which
    fence held. Raises FenceStillPending when the source has not stopped and the deadline has not passed
    (the switch is parked), FenceUnconfirmed when no fence can be confirmed.

    `source_after_stop`: `source` was described after the stop was sent (a resumed switch), so when the
    inline window is over it is the one look at the source this attempt needs (no describe, no waiter).
    """
    c, s = run.clients, run.settings
    sent = _parse_time(switch.timeline.get(Phase.STOP_SENT.value)) or run.now()
    deadline = sent + s.fence_timeout_seconds
    inline_until = min(deadline, sent + s.fence_inline_wait_seconds)
    seen = source.get("State", {}).get("Name", "terminated")
    if seen not in fence.STOPPED_STATES:
        attempts = fence.wait_budget(
            deadline=inline_until,
            now=run.now(),
            remaining_seconds=run.remaining_ms() / 1000 if run.remaining_ms is not None else None,
            delay=s.waiter_delay_seconds,
            max_attempts=s.waiter_max_attempts,
        )
        if attempts > 0 or not source_after_stop:
            seen = fence.wait_stopped(
                c.ec2, switch.source_instance_id, delay=s.waiter_delay_seconds, attempts=attempts
            )
    if seen in fence.STOPPED_STATES:
        switch.fence = contract.FENCE_STOPPED
        return
    if run.now() < deadline:
        raise fence.FenceStillPending(
            f"source {switch.source_instance_id} is {seen}; its stop has until {state.iso(deadline)}",
            deadline=deadline,
            source_state=seen,
        )
    logger.warning("stop not completed in time: network fence", extra={"source_state": seen})
    fresh = aws.describe_instance(c.ec2, switch.source_instance_id) or source
    held = fence.network_fence(c.ec2, fresh, blackhole_sg_id=s.blackhole_sg_id)
    switch.fence, switch.network_fence = contract.FENCE_NETWORK, held.as_dict()
    metrics.add_metric(name=contract.METRIC_NETWORK_FENCED, unit=MetricUnit.Count, value=1)


def _park(run: _Run, node: state.NodeRecord, switch: state.SwitchRecord, *, until: float) -> None:
    """Park the switch until `until` (store.park_owned; LeaseLost-like ConflictError if it is no longer
    ours, which _drive turns into a lease-lost skip)."""
    state.park_owned(
        run.clients.dynamodb,
        run.settings.table_name,
        node,
        switch,
        owner=run.owner,
        lease_until=math.ceil(until),
        now=run.now(),
    )


def _park_pending(
    run: _Run, node: state.NodeRecord, switch: state.SwitchRecord, pending: fence.FenceStillPending
) -> SwitchResult:
    """The stop has not completed within the inline wait: park until the fence deadline, so that this
    invocation ends instead of waiting (the source's `stopped` event or the reconciler resumes it)."""
    _park(run, node, switch, until=pending.deadline)
    metrics.add_metric(name=contract.METRIC_FENCE_PENDING, unit=MetricUnit.Count, value=1)
    reason = (
        f"source {switch.source_instance_id} is {pending.source_state}: switch parked until its fence "
        f"deadline {state.iso(pending.deadline)} (resumed by its stopped event or the reconciler)"
    )
    logger.warning(
        "fence pending: switch parked",
        extra={"switch_id": switch.switch_id, "source_state": pending.source_state, "reason": reason},
    )
    return _result(WAITING, switch, reason=reason)


def _park_unconfirmed(
    run: _Run, node: state.NodeRecord, switch: state.SwitchRecord, why: str
) -> SwitchResult:
    """No fence could be confirmed: nothing is launched. Park, due at once, so the next event about the
    source or the next reconcile run tries again; tell it (notice) only when the reason is new, count it
    (metric) every time. Notice before state: a crash in between repeats the notice, never loses it."""
    logger.error("no fence confirmed: nothing launched", extra={"switch_id": switch.switch_id, "why": why})
    if why != switch.fence_unconfirmed:
        run.notify(
            contract.FENCE_UNCONFIRMED_DETAIL_TYPE,
            {**_notice(switch), "outcome": WAITING, "attempt": switch.attempts, "error": why},
        )
    switch.fence_unconfirmed = why
    _park(run, node, switch, until=run.now())
    metrics.add_metric(name=contract.METRIC_FENCE_UNCONFIRMED, unit=MetricUnit.Count, value=1)
    return _result(
        WAITING,
        switch,
        reason=f"no fence of source {switch.source_instance_id} confirmed, nothing launched: {why}",
    )


def _wait_replacement_running(run: _Run, instance_id: str) -> None:
    """Wait for running; a replacement that EC2 ended while pending is lost (its AZ is then refused)."""
    try:
        aws.wait_running(run.clients.ec2, instance_id, waiter=run.waiter())
    except WaiterError:
        described = aws.describe_instance(run.clients.ec2, instance_id)
        state_name = described["State"]["Name"] if described else "terminated"
        if state_name in ("pending", "running"):
            raise  # still coming: a slow start is retried, not abandoned
        reason = (described or {}).get("StateReason", {}).get("Message") or state_name
        raise ReplacementLost(
            instance_id, f"replacement {instance_id} {state_name} before it ran: {reason}"
        ) from None


def _check_replacement_alive(run: _Run, switch: state.SwitchRecord) -> None:
    """Before the close: the replacement must still run. One that stopped or ended after `running` (a
    crash, a hardware failure) would leave the node ACTIVE on a dead instance, and the events about it
    were skipped while the switch held the node: rewind instead."""
    assert switch.replacement_instance_id is not None
    described = aws.describe_instance(run.clients.ec2, switch.replacement_instance_id)
    state_name = described["State"]["Name"] if described else "terminated"
    if state_name != "running":
        reason = (described or {}).get("StateReason", {}).get("Message") or state_name
        raise ReplacementLost(
            switch.replacement_instance_id,
            f"replacement {switch.replacement_instance_id} {state_name} before the switch closed: {reason}",
        )


def _rewind(
    run: _Run, node: state.NodeRecord, switch: state.SwitchRecord, lost: ReplacementLost
) -> state.NodeRecord:
    """End the lost replacement (one that merely stopped would keep the node's tag) after a lease check,
    then forget it and rewind to the launch: the next candidate AZ is tried."""
    node = run.record(node, switch)
    aws.terminate_once(run.clients.ec2, lost.instance_id, wait=False, waiter={})
    _forget_replacement(switch, lost)
    return run.record(node, switch)


def _forget_replacement(switch: state.SwitchRecord, lost: ReplacementLost) -> None:
    """Count the lost replacement's AZ as refused and rewind to the launch (the next AZ is tried)."""
    az = switch.replacement_az or "?"
    switch.az_errors[az] = str(lost)
    logger.warning("replacement lost", extra={"az": az, "reason": str(lost)})
    switch.replacement_instance_id = switch.replacement_az = None
    switch.replacement_subnet_id = switch.replacement_private_ip = switch.replacement_interface_id = None
    for phase in (Phase.LAUNCH, Phase.MOVE_TRAFFIC, Phase.WAIT_RUNNING, Phase.MOVE_ALARMS):
        switch.timeline.pop(phase.value, None)


def _groups_before_fence(run: _Run, switch: state.SwitchRecord, source: dict[str, Any]) -> list[str] | None:
    """The source's own security groups as an earlier switch of this node recorded them, if the source is
    already fenced (that switch FAILED for want of capacity and the operator resumed the node)."""
    if not aws.is_fenced(source, run.settings.blackhole_sg_id):
        return None
    s = run.settings
    earlier = [
        e.snapshot
        for e in state.list_switches(run.clients.dynamodb, s.table_name, s.vpc_name, switch.node_id)
        if e.snapshot and e.switch_id != switch.switch_id and e.source_instance_id == source["InstanceId"]
    ]
    return list(earlier[0].security_group_ids) if earlier else None


#: EC2's answer to a ClientToken reused with other parameters ("Ensuring idempotency in Amazon EC2 API
#: requests"; a client error, HTTP 400, in "Error codes for the Amazon EC2 API"). Retrying cannot help.
IDEMPOTENT_PARAMETER_MISMATCH = "IdempotentParameterMismatch"


def _launch(run: _Run, node: state.NodeRecord, switch: state.SwitchRecord) -> None:
    c, config, snapshot = run.clients, node.config, switch.snapshot
    assert config is not None and snapshot is not None
    tags = {
        **snapshot.tags,
        contract.TAG_VPC: run.settings.vpc_name,
        contract.TAG_NODE_ID: str(node.node_id),
        contract.TAG_SWITCH_ID: switch.switch_id,
    }
    standbys = (
        standby.standby_interfaces(c.ec2, run.settings.vpc_id, node.node_id) if config.preregistered else []
    )
    for candidate in switch.candidates:
        az = candidate.az
        if az in switch.az_errors:
            continue  # already refused in an earlier attempt of this switch
        # A retry of a FAILED switch launches with new tokens: EC2 keeps a token for a request that
        # completed ("Ensuring idempotency in Amazon EC2 API requests": do not reuse one for another call).
        token = placement.client_token(
            switch.switch_id + (f"-r{switch.retries}" if switch.retries else ""), az
        )
        interface_id = _standby_interface(run, switch, standbys, candidate.subnet_id) if standbys else None
        try:
            launched = aws.launch_replacement(
                c.ec2,
                snapshot=snapshot,
                # The template as the snapshot recorded it (a switch recorded before the field existed: now).
                launch_template_id=switch.launch_template_id or config.launch_template_id,
                launch_template_version=switch.launch_template_version or config.launch_template_version,
                subnet_id=candidate.subnet_id,
                tags=tags,
                client_token=token,
                network_interface_id=interface_id,
            )
        except ClientError as err:
            code = aws.error_code(err)
            message = err.response.get("Error", {}).get("Message", "")
            refusal = decide.launch_refusal(
                code, err.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            )
            if code == IDEMPOTENT_PARAMETER_MISMATCH:
                earlier = _earlier_launch(run, switch, candidate.subnet_id, token)
                if earlier is None:
                    switch.az_errors[az] = (
                        f"{code}: ClientToken {token} was used before with other launch parameters "
                        "and no instance of that launch is alive"
                    )
                    continue
                launched = earlier
            elif code in placement.CAPACITY_ERROR_CODES or refusal is not None:
                # This AZ refused: try the next one. A refusal no retry fixes (a bad AMI, AccessDenied)
                # is marked so: a switch that only such refusals failed is not retried later.
                switch.az_errors[az] = f"{code}: {message}"
                if refusal != decide.TRANSIENT:
                    switch.permanent_azs.append(az)
                logger.warning("AZ refused the replacement", extra={"az": az, "error_code": code})
                continue
            else:
                raise
        switch.replacement_instance_id = launched["InstanceId"]
        switch.replacement_az = az
        switch.replacement_subnet_id = candidate.subnet_id
        switch.replacement_private_ip = launched.get("PrivateIpAddress")
        switch.replacement_interface_id = interface_id
        return
    if not switch.candidates:
        switch.az_errors[decide.NO_AZ] = (
            f"no subnet tagged {contract.TAG_SUBNET} in another AZ than {switch.source_az}"
        )
    raise CapacityExhausted(switch.switch_id)


def _standby_interface(
    run: _Run, switch: state.SwitchRecord, standbys: list[dict[str, Any]], subnet_id: str
) -> str | None:
    """The standby interface to launch the replacement on in `subnet_id`, its groups set to the source's.

    None (with a warning) if the subnet has none or it is attached elsewhere: the replacement then gets an
    interface of its own, registered during the switch as with on_switch targets. A slower switch is
    better than none.
    """
    assert switch.snapshot is not None
    interface = standby.in_subnet(standbys, subnet_id)
    reason = (
        f"no standby interface in subnet {subnet_id}"
        if interface is None
        else standby.why_unusable(run.clients.ec2, interface, switch_id=switch.switch_id)
    )
    if reason is not None or interface is None:
        logger.warning(
            "launching without a pre-registered target: its address is registered during the switch",
            extra={"subnet_id": subnet_id, "reason": reason},
        )
        return None
    standby.restore_groups(run.clients.ec2, interface, switch.snapshot.security_group_ids)
    return str(interface["NetworkInterfaceId"])


def _settle_preregistered(run: _Run, node: state.NodeRecord, *, keep: str | None) -> None:
    """Pre-registered targets: the group holds the standby addresses and `keep` (the node's live address).

    Nothing changes in the steady state; see standby.settle_targets for what does.
    """
    assert node.config is not None
    c = run.clients
    wanted = standby.addresses(standby.standby_interfaces(c.ec2, run.settings.vpc_id, node.node_id))
    registered, deregistered = standby.settle_targets(
        c.elbv2, node.config.target_group_arn, keep=wanted | ({keep} if keep else set())
    )
    if registered or deregistered:
        logger.info("target group settled", extra={"registered": registered, "deregistered": deregistered})


def _earlier_launch(
    run: _Run, switch: state.SwitchRecord, subnet_id: str, token: str
) -> dict[str, Any] | None:
    """After IdempotentParameterMismatch: the replacement an earlier attempt launched with `token`, if alive.

    The token was accepted before with other parameters (e.g. a switch recorded by an older switcher whose
    request differed): that launch's instance carries this switch's id, so it is this switch's replacement.
    """
    earlier = aws.live_switch_replacement(
        run.clients.ec2, vpc_id=run.settings.vpc_id, switch_id=switch.switch_id, subnet_id=subnet_id
    )
    logger.warning(
        "ClientToken reused with other parameters",
        extra={"client_token": token, "earlier_instance_id": (earlier or {}).get("InstanceId")},
    )
    return earlier


def _close(run: _Run, node: state.NodeRecord, switch: state.SwitchRecord) -> SwitchResult:
    s = run.settings
    assert switch.replacement_instance_id is not None and switch.replacement_az is not None
    now = run.now()
    replacement_id, replacement_az = switch.replacement_instance_id, switch.replacement_az
    # Work on a copy: if the close itself fails, the recorded switch must still lack its `done` phase.
    switch = dataclasses.replace(
        switch,
        timeline={**switch.timeline, Phase.CLOSE.value: state.iso(now)},
        outcome=state.SUCCEEDED,
        error=None,
    )
    # Notice first, then the record: a crash in between repeats the notice rather than losing it.
    run.notify(contract.SWITCH_COMPLETED_DETAIL_TYPE, _notice(switch))
    run.fire(Phase.CLOSE.value, "acted")

    def close(current: state.NodeRecord) -> state.NodeRecord:
        return state.close(
            current,
            instance_id=replacement_id,
            az=replacement_az,
            source_az=switch.source_az,
            window_seconds=s.flap_window_seconds,
            now=now,
        )

    try:
        closed = state.save_held(run.clients.dynamodb, s.table_name, node, switch, close, owner=run.owner)
    except state.LeaseLost as lost:
        if not (
            lost.node and lost.node.state == state.ACTIVE and lost.node.current_instance_id == replacement_id
        ):
            raise
        closed = lost.node  # our close committed although its call raised
    metrics.add_metric(name=contract.METRIC_SWITCH_COUNT, unit=MetricUnit.Count, value=1)
    detected = _parse_time(switch.timeline.get(DETECTED)) or switch.started_at
    metrics.add_metric(
        name=contract.METRIC_SWITCH_DURATION, unit=MetricUnit.Seconds, value=max(0.0, now - detected)
    )
    logger.info("switch completed", extra={"switch_id": switch.switch_id, "timeline": switch.timeline})
    run.fire(Phase.CLOSE.value, "recorded")
    if closed.pending_config is not None:
        # A Custom::SwrNode Update arrived during the switch: apply it now. If this fails, the reconciler
        # finds the pending config on the ACTIVE node and applies it.
        try:
            _repair_pending(run, closed)
        except Exception:  # noqa: BLE001 - the switch itself is done and recorded
            logger.exception(
                "could not apply the pending config; the reconciler will", extra={"node_id": closed.node_id}
            )
    return _result(SUCCEEDED, switch)


def _fail(
    run: _Run, node: state.NodeRecord, switch: state.SwitchRecord, source: dict[str, Any]
) -> SwitchResult:
    """No AZ could take the node: keep the fenced source (stopped, not terminated), clean the target group
    of dead replacements, notify, then record FAILED (notice before state: a crash repeats the notice)."""
    s = run.settings
    node = run.record(node, switch)  # lease check (and the AZs' refusals kept): the rest is ours to do
    now = run.now()
    switch.outcome = state.SWITCH_FAILED
    switch.error = "no AZ could launch the replacement: " + "; ".join(
        f"{az}: {why}" for az, why in sorted(switch.az_errors.items())
    )
    config = node.config
    assert config is not None
    # Replacements that died while pending were registered at launch: their dead IPs must not stay.
    if config.preregistered:
        _settle_preregistered(run, node, keep=source.get("PrivateIpAddress"))
    else:
        aws.clear_target_group(
            run.clients.elbv2, config.target_group_arn, keep=source.get("PrivateIpAddress")
        )
    switch.timeline[decide.FAILED_PHASE] = state.iso(now)
    run.notify(contract.SWITCH_FAILED_DETAIL_TYPE, _notice(switch))
    metrics.add_metric(name=contract.METRIC_SWITCH_FAILED, unit=MetricUnit.Count, value=1)
    state.save_held(
        run.clients.dynamodb,
        s.table_name,
        node,
        switch,
        lambda current: state.fail(
            current, source_az=switch.source_az, window_seconds=s.flap_window_seconds, now=now
        ),
        owner=run.owner,
    )
    logger.error("switch failed", extra={"switch_id": switch.switch_id, "az_errors": switch.az_errors})
    return _result(FAILED, switch, reason=switch.error)


def _notice(switch: state.SwitchRecord) -> dict[str, Any]:
    return {
        "switch_id": switch.switch_id,
        "vpc": switch.vpc_name,
        "node_id": switch.node_id,
        "outcome": switch.outcome,
        "reason": switch.reason,
        "order": switch.order,
        "source_instance_id": switch.source_instance_id,
        "source_az": switch.source_az,
        "replacement_instance_id": switch.replacement_instance_id,
        "replacement_az": switch.replacement_az,
        "replacement_interface_id": switch.replacement_interface_id,
        "az_errors": switch.az_errors,
        "error": switch.error,
        "fence": switch.fence,
        "timeline": switch.timeline,
    }


def _result(outcome: str, switch: state.SwitchRecord, reason: str = "") -> SwitchResult:
    return SwitchResult(
        outcome=outcome,
        reason=reason,
        node_id=switch.node_id,
        switch_id=switch.switch_id,
        source_instance_id=switch.source_instance_id,
        replacement_instance_id=switch.replacement_instance_id,
        replacement_az=switch.replacement_az,
        timeline=dict(switch.timeline),
    )


__all__ = [
    "Clients",
    "PhaseHook",
    "Settings",
    "SwitchResult",
    "Trigger",
    "parse_event",
    "run_event",
]
