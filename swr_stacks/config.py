"""The swr configuration: regions → VPCs → nodes, parsed and validated once into frozen dataclasses.

Every error is a :class:`ConfigError` with the path of the offending value, e.g.
``regions[0].vpcs[1].nodes[2].lb: unknown load balancer kind 'elb' (expected nlb|alb)``, so a bad
config fails ``cdk synth`` before anything is built. Unknown keys are rejected: a typo must not be
silently ignored and replaced by a default. The parser reports every error of a config at once (a
:class:`ConfigErrors` when there is more than one); read from a file, each error also carries the file
and the line of the value. Regions and instance types are checked offline against the lists botocore
ships (its partitions/endpoints data and the EC2 service model), with a "did you mean" suggestion.
"""

from __future__ import annotations

import difflib
import functools
import ipaddress
import json
import re
from collections.abc import Callable, Iterable, Mapping
from contextvars import ContextVar
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import yaml
from botocore.exceptions import DataNotFoundError
from botocore.loaders import Loader
from switcher import contract

LB_KINDS = ("nlb", "alb")
SWITCH_ORDERS = ("swr", "vendor")
INGRESS_PROTOCOLS = ("tcp", "udp")
#: Interface endpoints a VPC needs, by the last part of their service name (com.amazonaws.<region>.<x>):
#: the CloudWatch agent (monitoring, logs; ec2 for its tags) and amazon-efs-utils (elasticfilesystem).
ENDPOINT_SERVICES = ("monitoring", "logs", "ec2", "elasticfilesystem")
#: create: swr creates the endpoint with private DNS. existing: the VPC already has one with private DNS
#: (a second one would fail: two endpoints of a service cannot both own its private DNS name).
ENDPOINT_MODES = ("create", "existing")
#: Where a VPC's EFS mount targets go. own: subnets of their own (a new VPC's "Storage" group, or an
#: existing VPC's `existing.storage_subnet_ids`), so the switcher's network fence can be claimed
#: (docs/fencing.md). private: the node subnets, as stacks deployed before the storage subnets had them.
STORAGE_OWN = "own"
STORAGE_PRIVATE = "private"
STORAGE_SUBNET_MODES = (STORAGE_OWN, STORAGE_PRIVATE)
_AMI_RE = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
_REGION_RE = re.compile(r"^[a-z]{2,4}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
# Lower-case, digits and dashes: the VPC name goes into stack names, alarm names and IAM conditions.
_VPC_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}[a-z0-9]$|^[a-z]$")
_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_VPC_ID_RE = re.compile(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET_ID_RE = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
_KEY_PAIR_RE = re.compile(r"^[\x20-\x7e]{1,255}$")
# The last segment of a value path: `.key` or `[index]`.
_LAST_SEGMENT_RE = re.compile(r"(\.[^.\[\]]+|\[\d+\])$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the value and its path.

    ``path`` is the value's path (``regions[0].vpcs[0].name``); ``source`` and ``line`` say where it is
    when the config was read from a file.
    """

    def __init__(
        self,
        message: str,
        *,
        path: str | None = None,
        locator: str | None = None,
        source: str | None = None,
        line: int | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.path = path
        #: The path whose line is reported (an unknown key's own path rather than its mapping's).
        self.locator = locator or path
        self.source = source
        self.line = line

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        """Every error (this one alone; a :class:`ConfigErrors` has several)."""
        return (self,)

    @property
    def where(self) -> str:
        """``file:line``, ``file`` or empty, as known."""
        if self.source and self.line:
            return f"{self.source}:{self.line}"
        return self.source or ""

    def describe(self) -> str:
        """The message prefixed with ``file:line`` where known (one line per error)."""
        return "\n".join(f"{e.where}: {e.message}" if e.where else e.message for e in self.errors)


class ConfigErrors(ConfigError):
    """Several configuration errors, in the order of the document."""

    def __init__(self, errors: Iterable[ConfigError]) -> None:
        self._errors = tuple(errors)
        super().__init__("\n".join(e.message for e in self._errors))

    @property
    def errors(self) -> tuple[ConfigError, ...]:
        return self._errors


def _fail(path: str, message: str, *, key: str | None = None) -> ConfigError:
    # The document's top level is called "config" in messages; its keys' paths have no prefix.
    locator = (key if path == "config" else f"{path}.{key}") if key else path
    return ConfigError(f"{path}: {message}", path=path, locator=locator)


# --- collecting every error -----------------------------------------------------------------------

#: The errors of the parse in progress; None outside :func:`parse_config` (errors then raise at once).
_COLLECTED: ContextVar[list[ConfigError] | None] = ContextVar("swr_config_errors", default=None)


def _report(err: ConfigError) -> None:
    bucket = _COLLECTED.get()
    if bucket is None:
        raise err
    bucket.append(err)


def _soft(fallback: Any, parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """parse(*args) or, when it fails, the error recorded and `fallback` returned: parsing goes on, so
    every error of the config is found (the result of a failed parse is thrown away)."""
    try:
        return parse(*args, **kwargs)
    except ConfigError as err:
        _report(err)
        return fallback


def _error_count() -> int:
    bucket = _COLLECTED.get()
    return len(bucket) if bucket is not None else 0


def _did_you_mean(word: Any, choices: Iterable[str]) -> str:
    if not isinstance(word, str):
        return ""
    match = difflib.get_close_matches(word, list(choices), n=1, cutoff=0.6)
    return f"did you mean {match[0]!r}?" if match else ""


# --- what botocore knows (offline: data files shipped with it, no AWS call) ---------------------------


@functools.cache
def known_regions() -> frozenset[str]:
    """Region names of every partition botocore ships (partitions.json and endpoints.json)."""
    loader = Loader()
    names: set[str] = set()
    for data_name in ("partitions", "endpoints"):
        try:
            data = loader.load_data(data_name)
        except DataNotFoundError:  # an older botocore lacks partitions.json; endpoints.json will do
            continue
        for partition in data.get("partitions", []):
            names.update(partition.get("regions", {}))
    # partitions.json also lists pseudo-regions such as `aws-global`: keep the real ones.
    return frozenset(n for n in names if _REGION_RE.match(n))


@functools.cache
def known_instance_types() -> frozenset[str]:
    """The `InstanceType` enum of the EC2 service model botocore ships."""
    model = Loader().load_service_model("ec2", "service-2")
    return frozenset(model["shapes"]["InstanceType"]["enum"])


# --- parsing helpers ------------------------------------------------------------------------------


def _mapping(value: Any, path: str, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise _fail(path, f"expected a mapping, got {type(value).__name__} {value!r}")
    for key in sorted(set(value) - allowed, key=str):
        hint = _did_you_mean(key, allowed)
        _report(
            _fail(
                path,
                f"unknown key(s) {key!r} (allowed: {sorted(allowed)})" + (f": {hint}" if hint else ""),
                key=str(key),
            )
        )
    missing = sorted(required - set(value))
    if missing:
        _report(_fail(path, f"missing required key(s) {', '.join(map(repr, missing))}"))
    return value


def _required(data: Mapping[str, Any], key: str, parse: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """parse(data[key], ...), or None when the key is missing (already reported) or bad (reported)."""
    if key not in data:
        return None
    return _soft(None, parse, data[key], *args, **kwargs)


def _list(value: Any, path: str, *, min_len: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise _fail(path, f"expected a list, got {type(value).__name__} {value!r}")
    if len(value) < min_len:
        raise _fail(path, f"expected at least {min_len} item(s), got {len(value)}")
    return value


def _items(value: Any, path: str, parse: Callable[[Any, str], Any], *, min_len: int = 0) -> tuple[Any, ...]:
    """Each item parsed (an error per bad item); raises if the list itself is bad or any item failed."""
    before = _error_count()
    parsed = tuple(
        _soft(None, parse, item, f"{path}[{i}]") for i, item in enumerate(_list(value, path, min_len=min_len))
    )
    if _error_count() > before:
        raise _ItemsFailed
    return parsed


class _ItemsFailed(ConfigError):
    """Some item of a list failed (each already reported): the list has no value."""

    def __init__(self) -> None:
        super().__init__("")


def _int(value: Any, path: str, *, low: int, high: int) -> int:
    # bool is an int subclass: `true` must not be read as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise _fail(path, f"expected an integer, got {value!r}")
    if not low <= value <= high:
        raise _fail(path, f"{value} is out of range ({low}..{high})")
    return value


def _port(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise _fail(path, f"port {value!r} is out of range (1..65535)")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise _fail(path, f"expected true or false, got {value!r}")
    return value


def _str(
    value: Any, path: str, pattern: re.Pattern[str] | None = None, what: str = "value", hint: str = ""
) -> str:
    if not isinstance(value, str):
        raise _fail(path, f"expected a string, got {value!r}")
    if pattern is not None and not pattern.match(value):
        raise _fail(path, f"malformed {what} {value!r}" + (f" ({hint})" if hint else ""))
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...], what: str) -> str:
    # The message lists every choice already: no "did you mean" needed.
    if value not in choices:
        raise _fail(path, f"unknown {what} {value!r} (expected {'|'.join(choices)})")
    return str(value)


def _known(value: Any, path: str, pattern: re.Pattern[str], what: str, known: frozenset[str]) -> str:
    """A well-formed name that botocore also knows (a typo such as `m6i.lrage` is caught offline)."""
    text = _str(value, path, pattern, what)
    if text not in known:
        hint = _did_you_mean(text, known)
        raise _fail(
            path,
            f"unknown {what} {text!r} "
            + (f"({hint})" if hint else "(not in the list botocore ships; a newer botocore may know it)"),
        )
    return text


def _cidr(value: Any, path: str) -> str:
    text = _str(value, path)
    try:
        return str(ipaddress.IPv4Network(text, strict=True))
    except ValueError as err:
        raise _fail(path, f"malformed IPv4 CIDR {text!r} ({err})") from err


@dataclass(frozen=True)
class HealthCheck:
    """Target-group health check of a node's load balancer."""

    port: int | None  # None: the traffic port
    path: str  # HTTP path (ALB only)
    interval_seconds: int
    healthy_threshold: int
    unhealthy_threshold: int


@dataclass(frozen=True)
class IngressRule:
    """An application security-group rule of a node: protocol/port from a CIDR."""

    protocol: str
    port: int
    cidr: str


@dataclass(frozen=True)
class NodeConfig:
    """One protected node: one instance at a time, one load balancer, optional user-data EFS."""

    node_id: int
    ami: str
    instance_type: str
    key_pair: str | None
    lb: str
    internet_facing: bool
    listener_ports: tuple[int, ...]
    target_port: int
    health_check: HealthCheck
    ingress: tuple[IngressRule, ...]
    user_data_efs: bool
    monitor_process: str
    root_device_name: str
    root_volume_gib: int
    #: Who may reach the load balancer's listeners; empty: the VPC's CIDR, or any address if internet-facing.
    client_cidrs: tuple[str, ...] = ()
    #: contract.TARGETS_MODES: standby interfaces with pre-registered addresses, or registration on switch.
    #: The config's global `targets` applies to a node that does not set its own.
    targets: str = contract.TARGETS_DEFAULT

    @property
    def preregistered(self) -> bool:
        """True if the node gets one standby interface per target AZ, registered at deploy time."""
        return self.targets == contract.TARGETS_PREREGISTERED


@dataclass(frozen=True)
class ExistingVpc:
    """An existing VPC imported by ids (no lookup at synth); its private subnets, one per AZ, and
    optionally the subnets (one per AZ) that hold the EFS mount targets."""

    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    public_subnet_ids: tuple[str, ...]
    storage_subnet_ids: tuple[str, ...] = ()


@dataclass(frozen=True)
class Reconcile:
    """How often the VPC's switcher reconciles its nodes, and when a switch counts as overdue."""

    interval_seconds: int
    switch_overdue_seconds: int


#: Reconcile every minute: EventBridge Scheduler's finest rate and CloudWatch's standard metric period.
DEFAULT_RECONCILE_INTERVAL_SECONDS = 60
MAX_RECONCILE_INTERVAL_SECONDS = 3600
DEFAULT_SWITCH_OVERDUE_SECONDS = 1800
#: A forced stop normally completes within a minute or two; past this the network fence is applied.
DEFAULT_FENCE_TIMEOUT_SECONDS = 300
MIN_FENCE_TIMEOUT_SECONDS = 30
MAX_FENCE_TIMEOUT_SECONDS = 3600
#: How long one invocation waits for the forced stop before it parks the switch until the fence deadline.
#: A forced stop is the remedy for an instance stuck in `stopping` ("Methods for stopping an instance",
#: Amazon EC2 User Guide: it "attempts a default stop first; if the instance fails to stop, then forcibly
#: stops the instance"), and AWS documents no duration for it; one still pending after 30 s points at the
#: instance's host ("If your instance appears stuck in the stopping state, there might be an issue with
#: the underlying host computer", StopInstances, Amazon EC2 API Reference), so waiting longer in the
#: invocation only holds the function's concurrency; the `stopped` event resumes the switch when it comes.
DEFAULT_FENCE_INLINE_WAIT_SECONDS = 30
MIN_FENCE_INLINE_WAIT_SECONDS = 1
#: Also the boot grace of a new instance: longer than an instance takes to boot and start its agent.
DEFAULT_SILENT_AFTER_SECONDS = 300
MIN_SILENT_AFTER_SECONDS = 120
MAX_SILENT_AFTER_SECONDS = 3600
#: A running switch holds its lease for 930 s (the switcher's 900 s timeout + 30 s, LEASE_SECONDS in
#: swr_stacks/switcher.py); a shorter bound would report a switch that is still legitimately running.
MIN_SWITCH_OVERDUE_SECONDS = 960
MAX_SWITCH_OVERDUE_SECONDS = 86400


@dataclass(frozen=True)
class VpcConfig:
    """A VPC served by one switcher; nodes may be placed in any of its availability zones."""

    name: str
    cidr: str
    availability_zones: tuple[str, ...]
    existing: ExistingVpc | None
    nat_gateway: bool
    nodes: tuple[NodeConfig, ...]
    #: (service, mode) for each of ENDPOINT_SERVICES, in that order.
    interface_endpoints: tuple[tuple[str, str], ...] = tuple((s, "create") for s in ENDPOINT_SERVICES)
    reconcile: Reconcile = Reconcile(DEFAULT_RECONCILE_INTERVAL_SECONDS, DEFAULT_SWITCH_OVERDUE_SECONDS)
    #: STORAGE_OWN or STORAGE_PRIVATE (config key `storage_subnets`).
    storage_subnets: str = STORAGE_OWN

    @property
    def mount_targets_in_own_subnets(self) -> bool:
        """True when the EFS mount targets are in subnets of their own, not in the node subnets."""
        if self.storage_subnets != STORAGE_OWN:
            return False
        return self.existing is None or bool(self.existing.storage_subnet_ids)

    def endpoints_to_create(self) -> tuple[str, ...]:
        """The services whose interface endpoint swr creates in this VPC."""
        return tuple(service for service, mode in self.interface_endpoints if mode == "create")

    @property
    def needs_public_subnets(self) -> bool:
        """True when a node's load balancer is internet-facing."""
        return any(node.internet_facing for node in self.nodes)


@dataclass(frozen=True)
class RegionConfig:
    """A region: one state table and notice topic, and its VPCs."""

    name: str
    vpcs: tuple[VpcConfig, ...]


@dataclass(frozen=True)
class FlapGuard:
    """More than ``max_switches`` switches of a node within ``window_seconds`` put it on hold."""

    max_switches: int
    window_seconds: int


@dataclass(frozen=True)
class SwrConfig:
    """The whole deployment."""

    regions: tuple[RegionConfig, ...]
    flap_guard: FlapGuard
    switch_order: str
    #: Reserved concurrent executions of each VPC's switcher; 0 = none (draws on the unreserved pool).
    switcher_reserved_concurrency: int
    history_ttl_days: int
    log_retention_days: int
    #: How long the fence waits for the source's forced stop before the network fence (docs/fencing.md).
    fence_timeout_seconds: int = DEFAULT_FENCE_TIMEOUT_SECONDS
    #: How long one invocation waits for that stop before it parks the switch (docs/fencing.md).
    fence_inline_wait_seconds: int = DEFAULT_FENCE_INLINE_WAIT_SECONDS
    #: A running node's monitor metric silent this long: the reconciler switches it (docs/detection.md).
    silent_after_seconds: int = DEFAULT_SILENT_AFTER_SECONDS


# --- sections -------------------------------------------------------------------------------------

_DEFAULT_HEALTH_CHECK_PATH = "/"
#: Health-check interval a node gets unless it sets one, per load-balancer kind. An NLB checks every 5 s
#: (the minimum: "HealthCheckIntervalSeconds ... The range is 5-300", Elastic Load Balancing API
#: Reference, CreateTargetGroup): with a pre-registered target the health checks are the last piece of
#: a recovery, and 5 s x 2 turns the replacement healthy ~7.5 s sooner than 10 s x 2 (bench P1, lever
#: table). The cost is sensitivity: 2 failed checks 5 s apart mark the only live target unhealthy after
#: a ~10 s blip; the load balancer then fails open (docs/configuration.md, "Health checks").
DEFAULT_HEALTH_CHECK_INTERVAL_SECONDS: dict[str, int] = {"nlb": 5, "alb": 10}
#: Passing checks that make a target healthy, failing checks that make it unhealthy (2 is the minimum).
DEFAULT_HEALTHY_THRESHOLD = 2
DEFAULT_UNHEALTHY_THRESHOLD = 2
#: For a node whose lb kind is itself invalid (already reported): any valid value will do.
_FALLBACK_HEALTH_CHECK_INTERVAL_SECONDS = 10


def _health_check(raw: Any, path: str, lb: str | None) -> HealthCheck:
    data = _mapping(
        raw,
        path,
        {"port", "path", "interval_seconds", "healthy_threshold", "unhealthy_threshold"},
        set(),
    )

    def hc_path_of(value: Any) -> str:
        hc_path = _str(value, f"{path}.path")
        # lb None: the node's lb is itself invalid (reported); whether a path fits it is unknown.
        if "path" in data and lb is not None and lb != "alb":
            raise _fail(f"{path}.path", f"{hc_path!r} is only valid for an alb (this node's lb is {lb!r})")
        if not hc_path.startswith("/"):
            raise _fail(f"{path}.path", f"health-check path {hc_path!r} must start with '/'")
        return hc_path

    port = data.get("port")
    return HealthCheck(
        port=None if port is None else _soft(None, _port, port, f"{path}.port"),
        path=_soft(None, hc_path_of, data.get("path", _DEFAULT_HEALTH_CHECK_PATH)),
        interval_seconds=_soft(
            None,
            _int,
            data.get(
                "interval_seconds",
                DEFAULT_HEALTH_CHECK_INTERVAL_SECONDS.get(lb or "", _FALLBACK_HEALTH_CHECK_INTERVAL_SECONDS),
            ),
            f"{path}.interval_seconds",
            low=5,
            high=300,
        ),
        healthy_threshold=_soft(
            None,
            _int,
            data.get("healthy_threshold", DEFAULT_HEALTHY_THRESHOLD),
            f"{path}.healthy_threshold",
            low=2,
            high=10,
        ),
        unhealthy_threshold=_soft(
            None,
            _int,
            data.get("unhealthy_threshold", DEFAULT_UNHEALTHY_THRESHOLD),
            f"{path}.unhealthy_threshold",
            low=2,
            high=10,
        ),
    )


def _ingress(raw: Any, path: str) -> IngressRule:
    data = _mapping(raw, path, {"protocol", "port", "cidr"}, {"port", "cidr"})
    return IngressRule(
        protocol=_soft(
            None, _choice, data.get("protocol", "tcp"), f"{path}.protocol", INGRESS_PROTOCOLS, "protocol"
        ),
        port=_required(data, "port", _port, f"{path}.port"),
        cidr=_required(data, "cidr", _cidr, f"{path}.cidr"),
    )


_NODE_KEYS = {
    "id",
    "ami",
    "instance_type",
    "key_pair",
    "lb",
    "internet_facing",
    "listener_ports",
    "target_port",
    "health_check",
    "ingress",
    "user_data_efs",
    "monitor_process",
    "root_device_name",
    "root_volume_gib",
    "client_cidrs",
    "targets",
}


def _targets(value: Any, path: str) -> str:
    return _choice(value, path, contract.TARGETS_MODES, "targets mode")


def _listener_ports(value: Any, path: str) -> tuple[int, ...]:
    ports = _items(value, path, _port, min_len=1)
    if len(set(ports)) != len(ports):
        raise _fail(path, f"duplicate port in {list(ports)}")
    return ports


def _client_cidrs(value: Any, path: str) -> tuple[str, ...]:
    cidrs = _items(value, path, _cidr)
    if not cidrs:
        raise _fail(path, "an empty list would admit no client (leave the key out for the default)")
    if len(set(cidrs)) != len(cidrs):
        raise _fail(path, f"duplicate CIDR in {list(cidrs)}")
    return cidrs


def _node(raw: Any, path: str) -> NodeConfig:
    data = _mapping(raw, path, _NODE_KEYS, {"id", "ami", "instance_type", "lb"})
    lb = _required(data, "lb", _choice, f"{path}.lb", LB_KINDS, "load balancer kind")
    ports = _soft(None, _listener_ports, data.get("listener_ports", [80]), f"{path}.listener_ports")
    key_pair = data.get("key_pair")
    # ports None: they are invalid (reported); the default target port is then moot.
    target_port = data.get("target_port", ports[0] if ports else 80)
    return NodeConfig(
        node_id=_required(data, "id", _int, f"{path}.id", low=0, high=2**31 - 1),
        ami=_required(
            data, "ami", _str, f"{path}.ami", _AMI_RE, "AMI id", "expected ami- and 8 or 17 hex digits"
        ),
        instance_type=_required(
            data,
            "instance_type",
            _known,
            f"{path}.instance_type",
            _INSTANCE_TYPE_RE,
            "instance type",
            known_instance_types(),
        ),
        key_pair=None
        if key_pair is None
        else _soft(None, _str, key_pair, f"{path}.key_pair", _KEY_PAIR_RE, "key pair name"),
        lb=lb,
        internet_facing=_soft(None, _bool, data.get("internet_facing", False), f"{path}.internet_facing"),
        listener_ports=ports,
        target_port=_soft(None, _port, target_port, f"{path}.target_port"),
        health_check=_soft(None, _health_check, data.get("health_check", {}), f"{path}.health_check", lb),
        ingress=_soft(None, _items, data.get("ingress", []), f"{path}.ingress", _ingress),
        user_data_efs=_soft(None, _bool, data.get("user_data_efs", True), f"{path}.user_data_efs"),
        monitor_process=_soft(
            None,
            _choice,
            data.get("monitor_process", "swr-monitor"),
            f"{path}.monitor_process",
            tuple(contract.MONITOR_PROCESS_PATTERNS),
            "monitor process",
        ),
        root_device_name=_soft(
            None,
            _str,
            data.get("root_device_name", "/dev/xvda"),
            f"{path}.root_device_name",
            re.compile(r"^/dev/[a-z0-9]+$"),
            "device name",
        ),
        root_volume_gib=_soft(
            None, _int, data.get("root_volume_gib", 20), f"{path}.root_volume_gib", low=8, high=16384
        ),
        client_cidrs=_soft(None, _client_cidrs, data["client_cidrs"], f"{path}.client_cidrs")
        if "client_cidrs" in data
        else (),
        # "": not set on the node; _config puts the global `targets` there.
        targets=_soft(None, _targets, data["targets"], f"{path}.targets") if "targets" in data else "",
    )


def _existing(raw: Any, path: str, azs: tuple[str, ...] | None) -> ExistingVpc:
    data = _mapping(
        raw,
        path,
        {"vpc_id", "private_subnet_ids", "public_subnet_ids", "storage_subnet_ids"},
        {"vpc_id", "private_subnet_ids"},
    )

    def subnet(value: Any, item_path: str) -> str:
        return _str(value, item_path, _SUBNET_ID_RE, "subnet id")

    def subnets(value: Any, key: str) -> tuple[str, ...]:
        ids = _items(value, f"{path}.{key}", subnet)
        # azs None: the zones are themselves invalid (reported); the count cannot be compared.
        if ids and azs is not None and len(ids) != len(azs):
            raise _fail(
                f"{path}.{key}",
                f"{len(ids)} subnet id(s) for {len(azs)} availability zone(s) "
                "(give one subnet per availability zone, in the same order)",
            )
        return ids

    def private_subnets(value: Any) -> tuple[str, ...]:
        ids = subnets(value, "private_subnet_ids")
        if not ids:
            raise _fail(f"{path}.private_subnet_ids", "expected one subnet id per availability zone")
        return ids

    def storage_subnets(value: Any) -> tuple[str, ...]:
        ids = subnets(value, "storage_subnet_ids")
        if not ids:
            raise _fail(f"{path}.storage_subnet_ids", "expected one subnet id per availability zone")
        # A mount target in a node subnet is the layout the storage subnets exist to avoid: traffic
        # inside one subnet crosses no network ACL (docs/fencing.md).
        others = {*_raw_strs(data.get("private_subnet_ids")), *_raw_strs(data.get("public_subnet_ids"))}
        for i, sid in enumerate(ids):
            if sid in others:
                raise _fail(
                    f"{path}.storage_subnet_ids[{i}]",
                    f"{sid!r} is also a private or public subnet of the VPC; the EFS mount targets need "
                    "subnets of their own",
                )
        return ids

    return ExistingVpc(
        vpc_id=_required(data, "vpc_id", _str, f"{path}.vpc_id", _VPC_ID_RE, "VPC id"),
        private_subnet_ids=_required(data, "private_subnet_ids", private_subnets),
        public_subnet_ids=_soft(None, subnets, data.get("public_subnet_ids", []), "public_subnet_ids"),
        storage_subnet_ids=(
            _soft(None, storage_subnets, data["storage_subnet_ids"])
            if data.get("storage_subnet_ids") is not None
            else ()
        ),
    )


def _raw_strs(value: Any) -> list[str]:
    return [v for v in value if isinstance(v, str)] if isinstance(value, list) else []


def _interface_endpoints(raw: Any, path: str, *, existing_vpc: bool) -> tuple[tuple[str, str], ...]:
    data = _mapping(raw, path, set(ENDPOINT_SERVICES), set())
    modes = tuple(
        (service, _choice(data.get(service, "create"), f"{path}.{service}", ENDPOINT_MODES, "endpoint mode"))
        for service in ENDPOINT_SERVICES
    )
    kept = [service for service, mode in modes if mode == "existing"]
    if kept and not existing_vpc:
        raise _fail(
            f"{path}.{kept[0]}",
            "'existing' needs an existing VPC (`existing.vpc_id`); a VPC that swr creates has no endpoint "
            "of its own",
        )
    return modes


def _reconcile_interval(value: Any, path: str) -> int:
    interval = _int(value, path, low=DEFAULT_RECONCILE_INTERVAL_SECONDS, high=MAX_RECONCILE_INTERVAL_SECONDS)
    # EventBridge Scheduler rates are whole minutes, and the heartbeat alarm's period is the interval
    # (CloudWatch alarm periods of standard-resolution metrics are multiples of 60 s).
    if interval % 60:
        raise _fail(path, f"{interval} is not a whole number of minutes")
    return interval


def _reconcile(raw: Any, path: str) -> Reconcile:
    data = _mapping(raw, path, {"interval_seconds", "switch_overdue_seconds"}, set())
    return Reconcile(
        interval_seconds=_soft(
            None,
            _reconcile_interval,
            data.get("interval_seconds", DEFAULT_RECONCILE_INTERVAL_SECONDS),
            f"{path}.interval_seconds",
        ),
        switch_overdue_seconds=_soft(
            None,
            _int,
            data.get("switch_overdue_seconds", DEFAULT_SWITCH_OVERDUE_SECONDS),
            f"{path}.switch_overdue_seconds",
            low=MIN_SWITCH_OVERDUE_SECONDS,
            high=MAX_SWITCH_OVERDUE_SECONDS,
        ),
    )


def _availability_zones(value: Any, path: str, region: str | None) -> tuple[str, ...]:
    azs_raw = _list(value, path)
    if len(azs_raw) < 2:
        raise _fail(
            path,
            f"{azs_raw!r} has {len(azs_raw)} zone(s); at least 2 are needed "
            "(a switch moves the node to another availability zone)",
        )

    def zone(az_raw: Any, item_path: str) -> str:
        az = _str(az_raw, item_path)
        # region None: the region's name is itself invalid (reported).
        if region is not None and not (az.startswith(region) and re.fullmatch(r"[a-z]", az[len(region) :])):
            raise _fail(item_path, f"{az!r} is not a zone of region {region!r}")
        return az

    azs = _items(azs_raw, path, zone)
    if len(set(azs)) != len(azs):
        raise _fail(path, f"duplicate zone in {list(azs)}")
    return azs


def _vpc(raw: Any, path: str, region: str | None) -> VpcConfig:
    data = _mapping(
        raw,
        path,
        {
            "name",
            "cidr",
            "availability_zones",
            "existing",
            "nat_gateway",
            "nodes",
            "interface_endpoints",
            "reconcile",
            "storage_subnets",
        },
        {"name", "cidr", "availability_zones", "nodes"},
    )
    name = _required(
        data,
        "name",
        _str,
        f"{path}.name",
        _VPC_NAME_RE,
        "VPC name",
        "a-z, 0-9 and '-', starting with a letter, 1-25 characters",
    )
    azs = _required(data, "availability_zones", _availability_zones, f"{path}.availability_zones", region)
    nodes = _required(data, "nodes", _items, f"{path}.nodes", _node, min_len=1)
    existing = (
        None
        if data.get("existing") is None
        else _soft(None, _existing, data["existing"], f"{path}.existing", azs)
    )
    vpc = VpcConfig(
        name=name,
        cidr=_required(data, "cidr", _cidr, f"{path}.cidr"),
        availability_zones=azs,
        existing=existing,
        nat_gateway=_soft(None, _bool, data.get("nat_gateway", False), f"{path}.nat_gateway"),
        nodes=nodes,
        interface_endpoints=_soft(
            None,
            _interface_endpoints,
            data.get("interface_endpoints", {}),
            f"{path}.interface_endpoints",
            existing_vpc=data.get("existing") is not None,
        ),
        reconcile=_soft(None, _reconcile, data.get("reconcile", {}), f"{path}.reconcile"),
        storage_subnets=_soft(
            None,
            _choice,
            data.get("storage_subnets", STORAGE_OWN),
            f"{path}.storage_subnets",
            STORAGE_SUBNET_MODES,
            "storage subnet mode",
        ),
    )
    if (
        existing is not None
        and data.get("storage_subnets") == STORAGE_OWN
        and not existing.storage_subnet_ids
    ):
        _report(
            _fail(
                f"{path}.storage_subnets",
                "'own' in an existing VPC needs `existing.storage_subnet_ids` (one subnet per zone)",
            )
        )
    if existing is not None and vpc.storage_subnets == STORAGE_PRIVATE and existing.storage_subnet_ids:
        _report(
            _fail(
                f"{path}.existing.storage_subnet_ids",
                "storage_subnets is 'private' (mount targets in the node subnets): drop these ids or the "
                "'private' setting",
            )
        )
    if (
        existing is not None
        and nodes is not None
        and vpc.needs_public_subnets
        and not existing.public_subnet_ids
    ):
        _report(
            _fail(
                f"{path}.existing.public_subnet_ids", "an internet-facing load balancer needs public subnets"
            )
        )
    return vpc


def _raw_list(data: Any, key: str) -> list[Any]:
    value = data.get(key) if isinstance(data, Mapping) else None
    return value if isinstance(value, list) else []


def _region_cross_checks(raw_vpcs: list[Any], path: str, region: Any) -> None:
    """Checks across the VPCs of a region, on the raw values (a VPC with other errors still counts)."""
    # Node ids are unique within a region: the switcher finds a node by its instance tag alone.
    seen: dict[int, str] = {}
    for vi, raw_vpc in enumerate(raw_vpcs):
        for ni, raw_node in enumerate(_raw_list(raw_vpc, "nodes")):
            node_id = raw_node.get("id") if isinstance(raw_node, Mapping) else None
            if isinstance(node_id, bool) or not isinstance(node_id, int):
                continue
            node_path = f"{path}.vpcs[{vi}].nodes[{ni}].id"
            if node_id in seen:
                _report(
                    _fail(
                        node_path,
                        f"duplicate node id {node_id} in region {region!r} (also at {seen[node_id]})",
                    )
                )
            else:
                seen[node_id] = node_path
    # A VPC's alarm rule and IAM policy match the prefix `swr-<vpc>-`; a second VPC whose prefix
    # starts with it (e.g. `a` and `a-1`) would let one switcher see and touch the other's alarms.
    names = {
        i: v["name"]
        for i, v in enumerate(raw_vpcs)
        if isinstance(v, Mapping) and isinstance(v.get("name"), str) and _VPC_NAME_RE.match(v["name"])
    }
    for i, a in names.items():
        for j, b in names.items():
            if i != j and contract.alarm_prefix(b).startswith(contract.alarm_prefix(a)):
                _report(
                    _fail(
                        f"{path}.vpcs[{j}].name",
                        f"VPC name {b!r} clashes with {path}.vpcs[{i}].name {a!r} "
                        f"(alarm prefix {contract.alarm_prefix(a)!r} would match both)",
                    )
                )


def _region(raw: Any, path: str) -> RegionConfig:
    data = _mapping(raw, path, {"name", "vpcs"}, {"name", "vpcs"})
    name = _required(data, "name", _known, f"{path}.name", _REGION_RE, "region name", known_regions())
    vpcs = _required(data, "vpcs", _items, f"{path}.vpcs", functools.partial(_vpc_in, region=name), min_len=1)
    _region_cross_checks(_raw_list(data, "vpcs"), path, data.get("name"))
    return RegionConfig(name=name, vpcs=vpcs)


def _vpc_in(raw: Any, path: str, *, region: str | None) -> VpcConfig:
    return _vpc(raw, path, region)


#: The retention periods CloudWatch Logs accepts.
LOG_RETENTION_DAYS = (
    1,
    3,
    5,
    7,
    14,
    30,
    60,
    90,
    120,
    150,
    180,
    365,
    400,
    545,
    731,
    1096,
    1827,
    2192,
    2557,
    2922,
    3288,
    3653,
)


def _retention(value: Any) -> int:
    if isinstance(value, bool) or value not in LOG_RETENTION_DAYS:
        raise _fail(
            "log_retention_days",
            f"{value!r} is not a CloudWatch Logs retention period "
            f"(one of {', '.join(map(str, LOG_RETENTION_DAYS))})",
        )
    return int(value)


def _regions(value: Any) -> tuple[RegionConfig, ...]:
    regions = _items(value, "regions", _region, min_len=1)
    return regions


def _config(raw: Any) -> SwrConfig:
    data = _mapping(
        raw,
        "config",
        {
            "regions",
            "flap_guard",
            "switch_order",
            "switcher_reserved_concurrency",
            "history_ttl_days",
            "log_retention_days",
            "targets",
            "fence_timeout_seconds",
            "fence_inline_wait_seconds",
            "silent_after_seconds",
        },
        {"regions"},
    )
    regions = _required(data, "regions", _regions)
    targets = _soft(None, _targets, data.get("targets", contract.TARGETS_DEFAULT), "targets")
    if regions is not None and targets is not None:
        regions = _with_default_targets(regions, targets)
    names = [r.get("name") if isinstance(r, Mapping) else None for r in _raw_list(data, "regions")]
    for i, name in enumerate(names):
        if isinstance(name, str) and name in names[:i]:
            _report(_fail(f"regions[{i}].name", f"region {name!r} is listed twice"))
    flap = _soft(
        {}, _mapping, data.get("flap_guard", {}), "flap_guard", {"max_switches", "window_seconds"}, set()
    )
    fence_timeout = _soft(
        None,
        _int,
        data.get("fence_timeout_seconds", DEFAULT_FENCE_TIMEOUT_SECONDS),
        "fence_timeout_seconds",
        low=MIN_FENCE_TIMEOUT_SECONDS,
        high=MAX_FENCE_TIMEOUT_SECONDS,
    )
    # Bounded by the fence timeout: the inline wait is the part of the fence deadline one invocation waits.
    fence_inline_wait = _soft(
        None,
        _int,
        data.get("fence_inline_wait_seconds", DEFAULT_FENCE_INLINE_WAIT_SECONDS),
        "fence_inline_wait_seconds",
        low=MIN_FENCE_INLINE_WAIT_SECONDS,
        high=fence_timeout if fence_timeout is not None else MAX_FENCE_TIMEOUT_SECONDS,
    )
    return SwrConfig(
        regions=regions,
        flap_guard=FlapGuard(
            max_switches=_soft(
                None, _int, flap.get("max_switches", 3), "flap_guard.max_switches", low=1, high=100
            ),
            window_seconds=_soft(
                None, _int, flap.get("window_seconds", 3600), "flap_guard.window_seconds", low=60, high=604800
            ),
        ),
        switch_order=_soft(
            None, _choice, data.get("switch_order", "swr"), "switch_order", SWITCH_ORDERS, "switch order"
        ),
        # 0 (the default): no reservation. A reservation must leave the account 100 unreserved
        # executions, which a new account (quota as low as 10) cannot; `swr validate` checks the headroom.
        switcher_reserved_concurrency=_soft(
            None,
            _int,
            data.get("switcher_reserved_concurrency", 0),
            "switcher_reserved_concurrency",
            low=0,
            high=1000,
        ),
        history_ttl_days=_soft(
            None, _int, data.get("history_ttl_days", 90), "history_ttl_days", low=1, high=3650
        ),
        log_retention_days=_soft(None, _retention, data.get("log_retention_days", 30)),
        fence_timeout_seconds=fence_timeout,
        fence_inline_wait_seconds=fence_inline_wait,
        silent_after_seconds=_soft(
            None,
            _int,
            data.get("silent_after_seconds", DEFAULT_SILENT_AFTER_SECONDS),
            "silent_after_seconds",
            low=MIN_SILENT_AFTER_SECONDS,
            high=MAX_SILENT_AFTER_SECONDS,
        ),
    )


def _with_default_targets(regions: tuple[RegionConfig, ...], targets: str) -> tuple[RegionConfig, ...]:
    """Every node that does not set `targets` gets the config's global one."""

    def node(n: NodeConfig) -> NodeConfig:
        return n if n.targets else replace(n, targets=targets)

    return tuple(
        replace(r, vpcs=tuple(replace(v, nodes=tuple(node(n) for n in v.nodes)) for v in r.vpcs))
        for r in regions
    )


def parse_config(raw: Any, *, source: str | None = None, lines: Mapping[str, int] | None = None) -> SwrConfig:
    """Validate a decoded JSON/YAML document and return the frozen configuration.

    Raises a :class:`ConfigError` (one error) or :class:`ConfigErrors` (several) naming every bad value;
    `source` (the file) and `lines` (value path → line, see :func:`yaml_lines`) locate each error.
    """
    bucket: list[ConfigError] = []
    token = _COLLECTED.set(bucket)
    try:
        config = _soft(None, _config, raw)
    finally:
        _COLLECTED.reset(token)
    errors = [e for e in bucket if not isinstance(e, _ItemsFailed)]
    if not errors:
        return config
    for err in errors:
        err.source = source
        err.line = _line_of(err.locator, lines or {})
    errors.sort(key=lambda e: e.line or 0)  # stable: in the order of the document where lines are known
    raise errors[0] if len(errors) == 1 else ConfigErrors(errors)


def config_warnings(config: SwrConfig) -> tuple[str, ...]:
    """What a valid config gives up, one message per VPC: the VPCs whose EFS mount targets share the
    node subnets, where the switcher's network fence is never claimed (docs/fencing.md)."""
    return tuple(
        f"regions[{ri}].vpcs[{vi}] ({vpc.name}): the EFS mount targets are in the node subnets, so the "
        "network fence is unavailable: a node whose forced stop never completes (an impaired AZ) waits "
        "instead of being switched. "
        + (
            "Give `existing.storage_subnet_ids` (subnets of their own) to get it."
            if vpc.existing is not None
            else "`storage_subnets: private` is for a stack deployed before storage subnets existed "
            "(docs/operations.md); a new VPC stack gets them by default."
        )
        for ri, region in enumerate(config.regions)
        for vi, vpc in enumerate(region.vpcs)
        if not vpc.mount_targets_in_own_subnets
    )


def _line_of(locator: str | None, lines: Mapping[str, int]) -> int | None:
    """The line of the value at `locator`, else of the nearest enclosing value that has one."""
    path = locator
    while path:
        if path in lines:
            return lines[path]
        shorter = _LAST_SEGMENT_RE.sub("", path)
        path = shorter if shorter != path else ""
    return lines.get("config")


def yaml_lines(text: str, *, at: tuple[str, ...] = (), name: str = "<config>") -> dict[str, int]:
    """Value path (as in error messages) → 1-based line, for a YAML or JSON text; `at` the keys leading to
    the config inside the document (e.g. ``("context", "swr:defaults")`` in cdk.json). Best effort: {} if
    the text does not compose as YAML (JSON that YAML reads differently, e.g. with tab indentation)."""
    loader = yaml.SafeLoader(text)
    loader.name = name
    try:
        node = loader.get_single_node()
    except yaml.YAMLError:
        return {}
    finally:
        loader.dispose()
    for key in at:
        if not isinstance(node, yaml.MappingNode):
            return {}
        node = next((v for k, v in node.value if isinstance(k, yaml.ScalarNode) and k.value == key), None)
    if node is None:
        return {}
    lines: dict[str, int] = {}

    def walk(item: yaml.Node, path: str, prefix: str) -> None:
        lines.setdefault(path, item.start_mark.line + 1)
        if isinstance(item, yaml.MappingNode):
            for key_node, value_node in item.value:
                if isinstance(key_node, yaml.ScalarNode):
                    child = f"{prefix}{key_node.value}"
                    lines[child] = key_node.start_mark.line + 1
                    walk(value_node, child, f"{child}.")
        elif isinstance(item, yaml.SequenceNode):
            for i, value_node in enumerate(item.value):
                walk(value_node, f"{path}[{i}]", f"{path}[{i}].")

    walk(node, "config", "")
    return lines


def load_config_file(path: str | Path) -> SwrConfig:
    """Read a JSON (``.json``) or YAML file and validate it; errors name the file and the line."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(
            f"swr:config: cannot read {str(file)!r} ({err.strerror})", source=str(file)
        ) from err
    kind = file.suffix.lstrip(".") or "YAML"
    if file.suffix == ".json":
        try:
            raw = json.loads(text)
        except json.JSONDecodeError as err:
            raise ConfigError(
                f"swr:config: {str(file)!r} is not valid {kind}: {err}", source=str(file), line=err.lineno
            ) from err
    else:
        loader = yaml.SafeLoader(text)
        loader.name = str(file)  # marks name the file, not "<unicode string>"
        try:
            raw = loader.get_single_data()
        except yaml.YAMLError as err:
            mark = getattr(err, "problem_mark", None) or getattr(err, "context_mark", None)
            raise ConfigError(
                f"swr:config: {str(file)!r} is not valid {kind}: {err}",
                source=str(file),
                line=mark.line + 1 if mark is not None else None,
            ) from err
        finally:
            loader.dispose()
    return parse_config(raw, source=str(file), lines=yaml_lines(text, name=str(file)))
