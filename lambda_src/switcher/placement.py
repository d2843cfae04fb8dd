"""Choice of the target AZ/subnet for a replacement (pure, no AWS)."""

from __future__ import annotations

import ipaddress
from collections.abc import Collection, Iterable, Mapping

from switcher.models import Candidate

#: RunInstances error codes meaning "this AZ cannot take the instance now": try the next AZ at once.
#: Checked against "Error codes for the Amazon EC2 API"
#: (https://docs.aws.amazon.com/AWSEC2/latest/APIReference/errors-overview.html):
#: - InsufficientInstanceCapacity: a SERVER error (HTTP 5xx): not enough capacity for the request in the AZ.
#:   botocore's standard/adaptive retry modes retry any 5xx, so `clients` stops them for this code.
#: - InsufficientFreeAddressesInSubnet: a client error (4xx): the subnet has no free private IPv4 address.
#: - Unsupported: a client error (4xx): e.g. the AZ has constraints on the instance type.
#: The other capacity codes of that page concern Elastic IPs, Dedicated Hosts, Reserved Instances, imports
#: or Spot requests, none of which a replacement launch uses. Capacity lost after the launch was accepted
#: shows as the state reason `Server.InsufficientInstanceCapacity` ("StateReason", EC2 API Reference).
CAPACITY_ERROR_CODES = frozenset(
    {"InsufficientInstanceCapacity", "InsufficientFreeAddressesInSubnet", "Unsupported"}
)


def fenced_subnets(subnets: Iterable[Mapping[str, str]], deny_cidrs: Iterable[str]) -> set[str]:
    """The subnets (ids) that lie wholly inside one of swr's network-fence deny CIDRs.

    A whole-subnet deny is written when every instance of a lost subnet is being fenced (switcher.fence):
    an instance launched there could not reach the shared data until the rule is swept, so no replacement
    goes there. A per-address (/32) rule covers no subnet. `subnets` items have `subnet_id` and `cidr`.
    """
    denied = [ipaddress.ip_network(cidr, strict=False) for cidr in deny_cidrs]
    fenced = set()
    for subnet in subnets:
        if not subnet.get("cidr"):
            continue
        network = ipaddress.ip_network(subnet["cidr"], strict=False)
        if any(network.version == d.version and network.subnet_of(d) for d in denied):  # type: ignore[arg-type]
            fenced.add(subnet["subnet_id"])
    return fenced


def rank_candidates(
    subnets: Iterable[Mapping[str, str]],
    *,
    source_az: str | None,
    failures_by_az: Mapping[str, int],
    exclude: Collection[str] = (),
) -> list[Candidate]:
    """Tagged subnets as launch candidates: one per AZ, never the source's AZ, fewest recent failures first.

    `subnets` items have `subnet_id` and `az`; subnets in `exclude` (e.g. `fenced_subnets`) are never
    candidates. Ties are broken by AZ name, and within an AZ the lowest subnet id wins, so the order is
    deterministic: a resumed switch tries the same AZs in the same order.
    """
    per_az: dict[str, str] = {}
    for subnet in subnets:
        az, subnet_id = subnet["az"], subnet["subnet_id"]
        if az == source_az or subnet_id in exclude:
            continue
        if az not in per_az or subnet_id < per_az[az]:
            per_az[az] = subnet_id
    ordered = sorted(per_az, key=lambda az: (failures_by_az.get(az, 0), az))
    return [Candidate(az=az, subnet_id=per_az[az]) for az in ordered]


def client_token(switch_id: str, az: str) -> str:
    """RunInstances idempotency token for one AZ attempt of a switch (deterministic; ≤ 64 ASCII chars)."""
    token = f"{switch_id}-{az}"
    if len(token) > 64:
        raise ValueError(f"client token {token!r} exceeds 64 characters")
    return token
