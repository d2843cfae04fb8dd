"""The phase plan of a switch: one abstraction for both orders (pure, no AWS).

`swr` order (docs/design.md, "The switch, in order"): keep the fenced source until the replacement
runs, then terminate it; the replacement's target is registered as soon as it is launched.
`vendor` order: terminate the source and wait until it is gone, then launch (the vendor's sequence).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import StrEnum


class Phase(StrEnum):
    """A recorded step of a switch; the value is the key of its timestamp in the switch's timeline."""

    SNAPSHOT = "snapshot"
    #: The blackhole group is on the source and its forced stop was sent: the fence deadline runs from here.
    STOP_SENT = "stop_sent"
    #: A fence was confirmed (the source stopped, or the network fence holds): see SwitchRecord.fence.
    FENCE = "fenced"
    LAUNCH = "launched"
    WAIT_RUNNING = "running"
    MOVE_TRAFFIC = "traffic_moved"
    MOVE_ALARMS = "alarms_moved"
    TERMINATE_SOURCE = "source_terminated"
    CLOSE = "done"


#: Every phase is recorded (a conditional write that renews the lease) before the next one acts: that
#: write is the lease check that keeps an invocation which lost the node from touching AWS again.

#: Timeline keys written before the first phase runs.
DETECTED = "detected"
CLAIMED = "claimed"

_PLANS: dict[str, tuple[Phase, ...]] = {
    # Traffic moves as soon as the replacement exists: its IP target is registered while it boots, so
    # the load balancer's registration delay overlaps the boot instead of following it.
    "swr": (
        Phase.SNAPSHOT,
        Phase.STOP_SENT,
        Phase.FENCE,
        Phase.LAUNCH,
        Phase.MOVE_TRAFFIC,
        Phase.WAIT_RUNNING,
        Phase.MOVE_ALARMS,
        Phase.TERMINATE_SOURCE,
        Phase.CLOSE,
    ),
    "vendor": (
        Phase.SNAPSHOT,
        Phase.STOP_SENT,
        Phase.FENCE,
        Phase.TERMINATE_SOURCE,
        Phase.LAUNCH,
        Phase.WAIT_RUNNING,
        Phase.MOVE_TRAFFIC,
        Phase.MOVE_ALARMS,
        Phase.CLOSE,
    ),
}


def plan(order: str) -> tuple[Phase, ...]:
    """All phases of a switch in the given order (`swr` or `vendor`)."""
    try:
        return _PLANS[order]
    except KeyError:
        raise ValueError(f"unknown switch order {order!r}: expected one of {', '.join(_PLANS)}") from None


def remaining(order: str, done: Iterable[str]) -> list[Phase]:
    """The phases still to run, in order, given the timeline keys already recorded (resume point)."""
    recorded = set(done)
    if Phase.FENCE.value in recorded:
        # A switch recorded before STOP_SENT existed fenced in one phase: its stop was sent.
        recorded.add(Phase.STOP_SENT.value)
    return [phase for phase in plan(order) if phase.value not in recorded]
