"""P6 - AZ loss: one Availability Zone loses power or network; its nodes go silent and cannot be stopped.

Unlike P3 (every node of one AZ stops normally, with events), nothing announces the loss: no `stopping`
event, no status alarm, and a stop or termination of an instance there is accepted by the regional API
but never completes (`ModeledAws.lost`). Each node's monitor metric stops; its alarm goes
INSUFFICIENT_DATA after 3 periods of 10 s; the reconciler (every `reconcile interval`, at a uniformly
drawn phase) sees the silence once it has lasted `silent_after_seconds` and raises the alarm, whose event
starts the switch in its own invocation (docs/detection.md). The fence waits `fence_timeout_seconds`
for the forced stop, then fences by network ACL (one rule for the whole lost subnet once every instance
of it is being fenced). RunInstances in a surviving AZ is refused for capacity at a fixed rate (the
switcher moves to the next AZ). Invocations run in a pool sized like the switcher's reserved
concurrency; a failed one is retried like an asynchronous Lambda invocation.

Also a single silent node (its AZ healthy: its forced stop completes): the time from the silence to the
switch done.

Run alone: `.venv/bin/python -m bench.p6_az_loss [--nodes 50 200]`.
"""

from __future__ import annotations

import argparse
import random
import time
from collections import Counter
from dataclasses import replace
from typing import Any

from switcher import contract, state
from switcher.switch import SUCCEEDED

from bench.deployment_config import UNRESERVED_POOL_FLOOR, DeployedConfig, load_deployed
from bench.harness import alarm_event, deployment, iso_to_modeled
from bench.latency_model import LatencyModel
from bench.model_clock import ScaledClock
from bench.p3_mass_stop import (
    FAILED_AZ,
    Invocation,
    MassStopRun,
    audit,
    switch_history,
    token_bucket_bounds,
)
from bench.results_io import REPO_ROOT, run_metadata, write_result
from bench.token_bucket import TokenBucket
from swr_local.gaps import DEFAULT_NACL_RULES_PER_DIRECTION
from swr_local.world import AZS

DEFAULT_NODES = (50, 200)
SEED = 70_000
#: The monitor alarm: 3 periods of 10 s without a datapoint before INSUFFICIENT_DATA.
ALARM_TO_SILENT_S = 3 * contract.MONITOR_INTERVAL_SECONDS
#: The stacks' defaults (swr_stacks.config).
SILENT_AFTER_S = 300
FENCE_TIMEOUT_S = 300
RECONCILE_INTERVAL_S = 60
#: A surviving AZ short of capacity: this share of its RunInstances is refused (seeded).
CAPACITY_AZ = AZS[1]
CAPACITY_REFUSAL_RATE = 0.3
#: P6 waits minutes of modeled time per switch (the fence deadline): its clock runs 4 times faster
#: than P3's (real compute then counts 20 times in modeled seconds; the figures say so).
TIME_SCALE = 0.05


class AzLossRun(MassStopRun):
    """The AZ loss on P3's pool, clock, token bucket and Lambda retries."""

    def __init__(self, *args: Any, lost: bool, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.clock = ScaledClock(TIME_SCALE)
        self.bucket = TokenBucket(
            capacity=self.bucket.capacity, refill_per_second=self.bucket.refill_per_second, now=self.clock.now
        )
        self.modeled.start_run(self.sampler, self.clock, self.bucket)
        self.settings = replace(
            self.settings, fence_timeout_seconds=FENCE_TIMEOUT_S, silent_after_seconds=SILENT_AFTER_S
        )
        self.lost = lost
        self.rng = random.Random(SEED)
        capacity_subnet = self.deployed.world.subnets[CAPACITY_AZ]
        self.modeled.refuse_capacity = lambda body: (
            f"SubnetId={capacity_subnet}" in body and self.rng.random() < CAPACITY_REFUSAL_RATE
        )

    def go_silent(self, failed: list[int]) -> None:
        """The nodes go silent now; each one's alarm event arrives when the reconciler raises it."""
        world = self.deployed.world
        for node_id in failed:
            instance_id = self.deployed.nodes[node_id].instance_id
            if self.lost:
                self.modeled.lost.add(instance_id)
            due = (
                ALARM_TO_SILENT_S
                + SILENT_AFTER_S
                + self.rng.uniform(0, RECONCILE_INTERVAL_S)
                + self.sampler.draw("delivery.eventbridge_delivery")
            )
            alarm = contract.monitor_alarm_name(world.settings.vpc_name, node_id)
            self._push(
                Invocation(
                    due, alarm_event(alarm, instance_id, due, status_check=False), node_id, "silent-alarm"
                )
            )


def _fences(deployed: Any, failed: list[int]) -> dict[str, Any]:
    clients, world = deployed.clients, deployed.world
    kinds: Counter[str] = Counter()
    done: list[float] = []
    for node_id in failed:
        for switch in state.list_switches(
            clients.dynamodb, world.settings.table_name, world.settings.vpc_name, node_id
        ):
            if switch.outcome == state.SUCCEEDED:
                kinds[switch.fence or "none"] += 1
                done.append(iso_to_modeled(switch.timeline["done"]))
    acls = clients.ec2.describe_network_acls(Filters=[{"Name": "vpc-id", "Values": [world.vpc_id]}])
    rules = [
        e
        for a in acls["NetworkAcls"]
        for e in a["Entries"]
        if contract.NACL_RULE_FIRST <= e["RuleNumber"] <= contract.NACL_RULE_LAST
    ]
    return {
        "fence_kinds": dict(kinds),
        "nacl_rules_in_place": len(rules),
        "nacl_rule_cidrs": sorted({e["CidrBlock"] for e in rules}),
        "done": done,
    }


def run_az_loss(
    nodes: int, model: LatencyModel, concurrency: int, deployed_config: DeployedConfig, *, lost: bool = True
) -> dict[str, Any]:
    node_ids = list(range(1, nodes + 1))
    began = time.perf_counter()
    # The mount targets in subnets of their own: the layout under which the network fence is claimed.
    with deployment(node_ids, deployed_config.health("nlb"), efs_subnets=True) as deployed:
        ready = time.perf_counter()
        in_az = [n for n in node_ids if deployed.nodes[n].az == FAILED_AZ]
        failed = in_az if lost else in_az[:1]
        run = AzLossRun(deployed, model, concurrency, seed=SEED + nodes, lost=lost)
        run.prepare_environments()
        run.clock.restart(0.0)
        run.go_silent(failed)
        ended = run.dispatch()
        dispatch_real = time.perf_counter() - ready
        result = audit(deployed, failed)
        fences = _fences(deployed, failed)
        history = switch_history(deployed, failed)
    runs = [c for c in run.modeled.calls if c.operation == "RunInstances"]
    head = min(c.start for c in runs) if runs else 0.0
    bounds = token_bucket_bounds(history, head=head, drain_time=run.bucket.drain_time)
    done = fences.pop("done")
    return {
        "nodes": nodes,
        "azs": len(AZS),
        "lost_az": FAILED_AZ if lost else None,
        "silent_nodes": len(failed),
        "concurrency": concurrency,
        "audit": result,
        **fences,
        "invocations": len(run.outcomes),
        "invocation_outcomes": dict(Counter(o.outcome for o in run.outcomes)),
        "lambda_async_retries": sum(1 for o in run.outcomes if o.attempt > 0),
        "invocations_failed_after_all_retries": run.errors,
        "capacity_refusals": run.modeled.capacity_refused,
        "run_instances_throttled": run.modeled.throttles.refused,
        "detection_s": ALARM_TO_SILENT_S + SILENT_AFTER_S,
        "first_switch_done_s": min(done) if done else None,
        "all_recovered_s": max(done) if done else None,
        "bound": bounds,
        "dispatch_end_modeled_s": ended,
        "real_s": {"setup": ready - began, "run": dispatch_real},
        "time_scale": run.clock.scale,
        "succeeded_invocations": sum(1 for o in run.outcomes if o.outcome == SUCCEEDED),
    }


def main(argv: list[str] | None = None) -> dict[str, Any]:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--nodes", type=int, nargs="+", default=list(DEFAULT_NODES))
    args = parser.parse_args(argv)
    # The stacks reserve no concurrency by default: Lambda then draws on the account's unreserved pool,
    # which a new account may have as low as 10 ("Lambda quotas"): P6 sizes its pool at that floor.
    model, deployed = LatencyModel.load(), load_deployed(default_concurrency=UNRESERVED_POOL_FLOOR)
    began = time.perf_counter()
    losses = [run_az_loss(n, model, deployed.reserved_concurrency, deployed) for n in args.nodes]
    single = run_az_loss(3, model, deployed.reserved_concurrency, deployed, lost=False)
    payload = {
        "benchmark": "p6_az_loss",
        "run": run_metadata("python -m bench.p6_az_loss --nodes " + " ".join(map(str, args.nodes))),
        "what": "AZ loss on moto: no event, the lost AZ's stops never complete, its nodes silent; the "
        "reconciler's silence detection raises each alarm; fence deadline then network fence; capacity "
        f"refusals in {CAPACITY_AZ}; times in modeled seconds since the loss",
        "settings": {
            "silent_after_seconds": SILENT_AFTER_S,
            "fence_timeout_seconds": FENCE_TIMEOUT_S,
            "reconcile_interval_seconds": RECONCILE_INTERVAL_S,
            "capacity_refusal_rate": CAPACITY_REFUSAL_RATE,
            # Enforced in moto's own process (swr_local.moto_server applies gaps.nacl_rule_quota).
            "nacl_rules_per_direction": DEFAULT_NACL_RULES_PER_DIRECTION,
        },
        "wall_s": time.perf_counter() - began,
        "az_losses": losses,
        "single_silent_node": single,
    }
    path = write_result("p6_az_loss", payload)
    print(f"P6 written to {path.relative_to(REPO_ROOT)} ({payload['wall_s']:.0f} s)")
    for o in [*losses, single]:
        a = o["audit"]
        print(
            f"  N={o['nodes']} silent={o['silent_nodes']}: {a['switched']}/{a['failed_nodes']} switched, "
            f"{a['double_replacements']} double, {a['lost_nodes']} lost; fences {o['fence_kinds']}; "
            f"all recovered at {o['all_recovered_s'] or 0:.0f} s "
            f"(bound max {o['bound'].get('bound_max_s', 0):.0f} s)"
        )
    return payload


if __name__ == "__main__":
    main()
