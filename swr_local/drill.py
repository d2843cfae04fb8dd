"""The local half of `swr drill` and `swr demo`: build the event a fault causes, match it against the deployed
rules and deliver it to the switcher in this process (the emulator delivers no events and runs no Lambda)."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any

from switcher import contract, state

from swr_cli.aws import AwsTarget
from swr_cli.discovery import Switcher
from swr_cli.drill import DrillError, FollowResult, InjectedFault, follow, report_new_phases
from swr_cli.render import Check
from swr_local import events, gaps
from swr_local.lambda_runtime import DeployedFunction, invoke


def event_of(injected: InjectedFault) -> dict[str, Any]:
    """The event AWS emits about an injected fault (EC2 state change `stopping`, or the alarm's change)."""
    if injected.alarm is None:
        return events.ec2_state_change(
            injected.instance_id, "stopping", account_id=injected.account_id, region=injected.region
        )
    return events.alarm_state_change(
        injected.alarm,
        previous_state=injected.previous_state,
        account_id=injected.account_id,
        region=injected.region,
    )


def matching_rule(target: AwsTarget, switcher: Switcher, event: dict[str, Any]) -> str:
    """The deployed EventBridge rule that targets the switcher and whose pattern matches the event."""
    ev = target.client("events")
    tried = []
    for page in ev.get_paginator("list_rule_names_by_target").paginate(TargetArn=switcher.function_arn):
        for name in page["RuleNames"]:
            rule = ev.describe_rule(Name=name)
            pattern = rule.get("EventPattern")
            if pattern and rule.get("State", "ENABLED") == "ENABLED":
                tried.append(name)
                if gaps.event_pattern_matches(ev, pattern, event):
                    return str(name)
    raise DrillError(
        f"no enabled rule targeting {switcher.function_name} matches the {event['detail-type']!r} event"
        + (f" (rules tried: {', '.join(tried)})" if tried else " (no rule targets it)")
    )


def deliver_and_follow(
    target: AwsTarget,
    switcher: Switcher,
    node_id: int,
    event: dict[str, Any],
    *,
    on_phase: Callable[[str, str], None],
    timeout: float = 60.0,
    poll: float = 0.05,
) -> FollowResult:
    """Run the deployed handler in-process on the event (moto delivers no events) while following the
    record; on_phase(phase, timestamp) is called for each phase as it is recorded."""
    function = DeployedFunction.describe(target, switcher.function_arn)
    ddb = target.client("dynamodb")
    before = {s.sk for s in state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id)}
    result = FollowResult(switch=None, node=None)

    def run() -> None:
        try:
            result.handler_result = invoke(function, target, event)
        except BaseException as err:  # noqa: BLE001 - reported to the operator below
            result.handler_error = err

    worker = threading.Thread(target=run, name="switcher-in-process", daemon=True)
    worker.start()
    result.switch = follow(
        target,
        switcher,
        node_id,
        before,
        on_phase=on_phase,
        timeout=timeout,
        poll=poll,
        alive=worker.is_alive,
        seen=result.seen_phases,
    )
    worker.join(timeout=max(0.0, timeout))
    if result.switch is not None and result.switch.outcome == state.IN_PROGRESS:
        result.switch = state.get_switch(
            ddb, switcher.table_name, switcher.vpc_name, node_id, result.switch.sk
        )
        if result.switch is not None:
            report_new_phases(result.switch, result.seen_phases, on_phase)
    result.node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    return result


def redeliver_is_ignored(
    target: AwsTarget, switcher: Switcher, node_id: int, event: dict[str, Any], *, what: str
) -> Check:
    """Deliver a late or duplicate event (through the deployed rule) and check that it changes nothing:
    no new switch, the node's record untouched, still exactly one live instance with the node's id."""
    ddb = target.client("dynamodb")
    switches = len(state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id))
    node = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    matching_rule(target, switcher, event)  # raises if no deployed rule would deliver it
    result = invoke(DeployedFunction.describe(target, switcher.function_arn), target, event)
    after_switches = len(state.list_switches(ddb, switcher.table_name, switcher.vpc_name, node_id))
    after = state.get_node(ddb, switcher.table_name, switcher.vpc_name, node_id)
    live = [
        inst["InstanceId"]
        for res in target.client("ec2").describe_instances(
            Filters=[
                {"Name": f"tag:{contract.TAG_NODE_ID}", "Values": [str(node_id)]},
                {"Name": "instance-state-name", "Values": ["pending", "running", "stopping", "stopped"]},
            ]
        )["Reservations"]
        for inst in res["Instances"]
    ]
    outcome = result.get("outcome") if isinstance(result, dict) else result
    reason = result.get("reason", "") if isinstance(result, dict) else ""
    ok = after_switches == switches and after == node and len(live) == 1
    return Check(
        f"{what} changes nothing",
        ok,
        f"{outcome}"
        + (f" ({reason})" if reason else "")
        + f"; switches {switches}→{after_switches}; live instances: {', '.join(live) or 'none'}",
    )
