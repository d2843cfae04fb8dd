"""The swr configuration: regions → VPCs → nodes, parsed and validated once into frozen dataclasses.

Every error raises :class:`ConfigError` with the path of the offending value, e.g.
``regions[0].vpcs[1].nodes[2].lb: unknown load balancer kind 'elb' (expected nlb|alb)``, so a bad
config fails ``cdk synth`` before anything is built. Unknown keys are rejected: a typo must not be
silently ignored and replaced by a default.
"""

from __future__ import annotations

import ipaddress
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
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
_AMI_RE = re.compile(r"^ami-([0-9a-f]{8}|[0-9a-f]{17})$")
_REGION_RE = re.compile(r"^[a-z]{2}(-gov|-iso[a-z]?)?-[a-z]+-\d$")
# Lower-case, digits and dashes: the VPC name goes into stack names, alarm names and IAM conditions.
_VPC_NAME_RE = re.compile(r"^[a-z][a-z0-9-]{0,23}[a-z0-9]$|^[a-z]$")
_INSTANCE_TYPE_RE = re.compile(r"^[a-z][a-z0-9-]*\.[a-z0-9]+$")
_VPC_ID_RE = re.compile(r"^vpc-([0-9a-f]{8}|[0-9a-f]{17})$")
_SUBNET_ID_RE = re.compile(r"^subnet-([0-9a-f]{8}|[0-9a-f]{17})$")
_KEY_PAIR_RE = re.compile(r"^[\x20-\x7e]{1,255}$")


class ConfigError(ValueError):
    """A configuration value is invalid; the message names the value and its path."""


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


@dataclass(frozen=True)
class ExistingVpc:
    """An existing VPC imported by ids (no lookup at synth); its private subnets, one per AZ."""

    vpc_id: str
    private_subnet_ids: tuple[str, ...]
    public_subnet_ids: tuple[str, ...]


@dataclass(frozen=True)
class Reconcile:
    """How often the VPC's switcher reconciles its nodes, and when a switch counts as overdue."""

    interval_seconds: int
    switch_overdue_seconds: int


#: Reconcile every minute: EventBridge Scheduler's finest rate and CloudWatch's standard metric period.
DEFAULT_RECONCILE_INTERVAL_SECONDS = 60
MAX_RECONCILE_INTERVAL_SECONDS = 3600
DEFAULT_SWITCH_OVERDUE_SECONDS = 1800
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


# --- parsing helpers ------------------------------------------------------------------------------


def _mapping(value: Any, path: str, allowed: set[str], required: set[str]) -> Mapping[str, Any]:
    if not isinstance(value, Mapping):
        raise ConfigError(f"{path}: expected a mapping, got {type(value).__name__} {value!r}")
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ConfigError(
            f"{path}: unknown key(s) {', '.join(map(repr, unknown))} (allowed: {sorted(allowed)})"
        )
    missing = sorted(required - set(value))
    if missing:
        raise ConfigError(f"{path}: missing required key(s) {', '.join(map(repr, missing))}")
    return value


def _list(value: Any, path: str, *, min_len: int = 0) -> list[Any]:
    if not isinstance(value, list):
        raise ConfigError(f"{path}: expected a list, got {type(value).__name__} {value!r}")
    if len(value) < min_len:
        raise ConfigError(f"{path}: expected at least {min_len} item(s), got {len(value)}")
    return value


def _int(value: Any, path: str, *, low: int, high: int) -> int:
    # bool is an int subclass: `true` must not be read as 1.
    if isinstance(value, bool) or not isinstance(value, int):
        raise ConfigError(f"{path}: expected an integer, got {value!r}")
    if not low <= value <= high:
        raise ConfigError(f"{path}: {value} is out of range ({low}..{high})")
    return value


def _port(value: Any, path: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 1 <= value <= 65535:
        raise ConfigError(f"{path}: port {value!r} is out of range (1..65535)")
    return value


def _bool(value: Any, path: str) -> bool:
    if not isinstance(value, bool):
        raise ConfigError(f"{path}: expected true or false, got {value!r}")
    return value


def _str(
    value: Any, path: str, pattern: re.Pattern[str] | None = None, what: str = "value", hint: str = ""
) -> str:
    if not isinstance(value, str):
        raise ConfigError(f"{path}: expected a string, got {value!r}")
    if pattern is not None and not pattern.match(value):
        raise ConfigError(f"{path}: malformed {what} {value!r}" + (f" ({hint})" if hint else ""))
    return value


def _choice(value: Any, path: str, choices: tuple[str, ...], what: str) -> str:
    if value not in choices:
        raise ConfigError(f"{path}: unknown {what} {value!r} (expected {'|'.join(choices)})")
    return str(value)


def _cidr(value: Any, path: str) -> str:
    text = _str(value, path)
    try:
        return str(ipaddress.IPv4Network(text, strict=True))
    except ValueError as err:
        raise ConfigError(f"{path}: malformed IPv4 CIDR {text!r} ({err})") from err


# --- sections -------------------------------------------------------------------------------------


def _health_check(raw: Any, path: str, lb: str) -> HealthCheck:
    data = _mapping(
        raw,
        path,
        {"port", "path", "interval_seconds", "healthy_threshold", "unhealthy_threshold"},
        set(),
    )
    hc_path = _str(data.get("path", "/"), f"{path}.path")
    if "path" in data and lb != "alb":
        raise ConfigError(f"{path}.path: {hc_path!r} is only valid for an alb (this node's lb is {lb!r})")
    if not hc_path.startswith("/"):
        raise ConfigError(f"{path}.path: health-check path {hc_path!r} must start with '/'")
    port = data.get("port")
    return HealthCheck(
        port=None if port is None else _port(port, f"{path}.port"),
        path=hc_path,
        interval_seconds=_int(data.get("interval_seconds", 10), f"{path}.interval_seconds", low=5, high=300),
        healthy_threshold=_int(data.get("healthy_threshold", 2), f"{path}.healthy_threshold", low=2, high=10),
        unhealthy_threshold=_int(
            data.get("unhealthy_threshold", 2), f"{path}.unhealthy_threshold", low=2, high=10
        ),
    )


def _ingress(raw: Any, path: str) -> IngressRule:
    data = _mapping(raw, path, {"protocol", "port", "cidr"}, {"port", "cidr"})
    return IngressRule(
        protocol=_choice(data.get("protocol", "tcp"), f"{path}.protocol", INGRESS_PROTOCOLS, "protocol"),
        port=_port(data["port"], f"{path}.port"),
        cidr=_cidr(data["cidr"], f"{path}.cidr"),
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
}


def _node(raw: Any, path: str) -> NodeConfig:
    data = _mapping(raw, path, _NODE_KEYS, {"id", "ami", "instance_type", "lb"})
    lb = _choice(data["lb"], f"{path}.lb", LB_KINDS, "load balancer kind")
    ports = tuple(
        _port(p, f"{path}.listener_ports[{i}]")
        for i, p in enumerate(_list(data.get("listener_ports", [80]), f"{path}.listener_ports", min_len=1))
    )
    if len(set(ports)) != len(ports):
        raise ConfigError(f"{path}.listener_ports: duplicate port in {list(ports)}")
    key_pair = data.get("key_pair")
    client_cidrs = tuple(
        _cidr(c, f"{path}.client_cidrs[{i}]")
        for i, c in enumerate(_list(data.get("client_cidrs", []), f"{path}.client_cidrs"))
    )
    if "client_cidrs" in data and not client_cidrs:
        raise ConfigError(
            f"{path}.client_cidrs: an empty list would admit no client (leave the key out for the default)"
        )
    if len(set(client_cidrs)) != len(client_cidrs):
        raise ConfigError(f"{path}.client_cidrs: duplicate CIDR in {list(client_cidrs)}")
    return NodeConfig(
        node_id=_int(data["id"], f"{path}.id", low=0, high=2**31 - 1),
        ami=_str(data["ami"], f"{path}.ami", _AMI_RE, "AMI id", "expected ami- and 8 or 17 hex digits"),
        instance_type=_str(
            data["instance_type"], f"{path}.instance_type", _INSTANCE_TYPE_RE, "instance type"
        ),
        key_pair=None
        if key_pair is None
        else _str(key_pair, f"{path}.key_pair", _KEY_PAIR_RE, "key pair name"),
        lb=lb,
        internet_facing=_bool(data.get("internet_facing", False), f"{path}.internet_facing"),
        listener_ports=ports,
        target_port=_port(data.get("target_port", ports[0]), f"{path}.target_port"),
        health_check=_health_check(data.get("health_check", {}), f"{path}.health_check", lb),
        ingress=tuple(
            _ingress(rule, f"{path}.ingress[{i}]")
            for i, rule in enumerate(_list(data.get("ingress", []), f"{path}.ingress"))
        ),
        user_data_efs=_bool(data.get("user_data_efs", True), f"{path}.user_data_efs"),
        monitor_process=_choice(
            data.get("monitor_process", "swr-monitor"),
            f"{path}.monitor_process",
            tuple(contract.MONITOR_PROCESS_PATTERNS),
            "monitor process",
        ),
        root_device_name=_str(
            data.get("root_device_name", "/dev/xvda"),
            f"{path}.root_device_name",
            re.compile(r"^/dev/[a-z0-9]+$"),
            "device name",
        ),
        root_volume_gib=_int(data.get("root_volume_gib", 20), f"{path}.root_volume_gib", low=8, high=16384),
        client_cidrs=client_cidrs,
    )


def _existing(raw: Any, path: str, azs: tuple[str, ...]) -> ExistingVpc:
    data = _mapping(
        raw, path, {"vpc_id", "private_subnet_ids", "public_subnet_ids"}, {"vpc_id", "private_subnet_ids"}
    )

    def subnets(key: str) -> tuple[str, ...]:
        ids = tuple(
            _str(s, f"{path}.{key}[{i}]", _SUBNET_ID_RE, "subnet id")
            for i, s in enumerate(_list(data.get(key, []), f"{path}.{key}"))
        )
        if ids and len(ids) != len(azs):
            raise ConfigError(
                f"{path}.{key}: {len(ids)} subnet id(s) for {len(azs)} availability zone(s) "
                "(give one subnet per availability zone, in the same order)"
            )
        return ids

    private = subnets("private_subnet_ids")
    if not private:
        raise ConfigError(f"{path}.private_subnet_ids: expected one subnet id per availability zone")
    return ExistingVpc(
        vpc_id=_str(data["vpc_id"], f"{path}.vpc_id", _VPC_ID_RE, "VPC id"),
        private_subnet_ids=private,
        public_subnet_ids=subnets("public_subnet_ids"),
    )


def _interface_endpoints(raw: Any, path: str, *, existing_vpc: bool) -> tuple[tuple[str, str], ...]:
    data = _mapping(raw, path, set(ENDPOINT_SERVICES), set())
    modes = tuple(
        (service, _choice(data.get(service, "create"), f"{path}.{service}", ENDPOINT_MODES, "endpoint mode"))
        for service in ENDPOINT_SERVICES
    )
    kept = [service for service, mode in modes if mode == "existing"]
    if kept and not existing_vpc:
        raise ConfigError(
            f"{path}.{kept[0]}: 'existing' needs an existing VPC (`existing.vpc_id`); "
            "a VPC that swr creates has no endpoint of its own"
        )
    return modes


def _reconcile(raw: Any, path: str) -> Reconcile:
    data = _mapping(raw, path, {"interval_seconds", "switch_overdue_seconds"}, set())
    interval = _int(
        data.get("interval_seconds", DEFAULT_RECONCILE_INTERVAL_SECONDS),
        f"{path}.interval_seconds",
        low=DEFAULT_RECONCILE_INTERVAL_SECONDS,
        high=MAX_RECONCILE_INTERVAL_SECONDS,
    )
    # EventBridge Scheduler rates are whole minutes, and the heartbeat alarm's period is the interval
    # (CloudWatch alarm periods of standard-resolution metrics are multiples of 60 s).
    if interval % 60:
        raise ConfigError(f"{path}.interval_seconds: {interval} is not a whole number of minutes")
    overdue = _int(
        data.get("switch_overdue_seconds", DEFAULT_SWITCH_OVERDUE_SECONDS),
        f"{path}.switch_overdue_seconds",
        low=MIN_SWITCH_OVERDUE_SECONDS,
        high=MAX_SWITCH_OVERDUE_SECONDS,
    )
    return Reconcile(interval_seconds=interval, switch_overdue_seconds=overdue)


def _vpc(raw: Any, path: str, region: str) -> VpcConfig:
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
        },
        {"name", "cidr", "availability_zones", "nodes"},
    )
    name = _str(
        data["name"],
        f"{path}.name",
        _VPC_NAME_RE,
        "VPC name",
        "a-z, 0-9 and '-', starting with a letter, 1-25 characters",
    )
    azs_raw = _list(data["availability_zones"], f"{path}.availability_zones")
    if len(azs_raw) < 2:
        raise ConfigError(
            f"{path}.availability_zones: {azs_raw!r} has {len(azs_raw)} zone(s); at least 2 are needed "
            "(a switch moves the node to another availability zone)"
        )
    azs = tuple(_str(az, f"{path}.availability_zones[{i}]") for i, az in enumerate(azs_raw))
    for i, az in enumerate(azs):
        if not (az.startswith(region) and re.fullmatch(r"[a-z]", az[len(region) :])):
            raise ConfigError(f"{path}.availability_zones[{i}]: {az!r} is not a zone of region {region!r}")
    if len(set(azs)) != len(azs):
        raise ConfigError(f"{path}.availability_zones: duplicate zone in {list(azs)}")
    nodes = tuple(
        _node(n, f"{path}.nodes[{i}]") for i, n in enumerate(_list(data["nodes"], f"{path}.nodes", min_len=1))
    )
    existing = None if data.get("existing") is None else _existing(data["existing"], f"{path}.existing", azs)
    vpc = VpcConfig(
        name=name,
        cidr=_cidr(data["cidr"], f"{path}.cidr"),
        availability_zones=azs,
        existing=existing,
        nat_gateway=_bool(data.get("nat_gateway", False), f"{path}.nat_gateway"),
        nodes=nodes,
        interface_endpoints=_interface_endpoints(
            data.get("interface_endpoints", {}),
            f"{path}.interface_endpoints",
            existing_vpc=existing is not None,
        ),
        reconcile=_reconcile(data.get("reconcile", {}), f"{path}.reconcile"),
    )
    if existing is not None and vpc.needs_public_subnets and not existing.public_subnet_ids:
        raise ConfigError(
            f"{path}.existing.public_subnet_ids: an internet-facing load balancer needs public subnets"
        )
    return vpc


def _region(raw: Any, path: str) -> RegionConfig:
    data = _mapping(raw, path, {"name", "vpcs"}, {"name", "vpcs"})
    name = _str(data["name"], f"{path}.name", _REGION_RE, "region name")
    vpcs = tuple(
        _vpc(v, f"{path}.vpcs[{i}]", name)
        for i, v in enumerate(_list(data["vpcs"], f"{path}.vpcs", min_len=1))
    )
    # Node ids are unique within a region: the switcher finds a node by its instance tag alone.
    seen: dict[int, str] = {}
    for vi, vpc in enumerate(vpcs):
        for ni, node in enumerate(vpc.nodes):
            node_path = f"{path}.vpcs[{vi}].nodes[{ni}].id"
            if node.node_id in seen:
                raise ConfigError(
                    f"{node_path}: duplicate node id {node.node_id} in region {name!r} "
                    f"(also at {seen[node.node_id]})"
                )
            seen[node.node_id] = node_path
    # A VPC's alarm rule and IAM policy match the prefix `swr-<vpc>-`; a second VPC whose prefix
    # starts with it (e.g. `a` and `a-1`) would let one switcher see and touch the other's alarms.
    for i, a in enumerate(vpcs):
        for j, b in enumerate(vpcs):
            if i != j and contract.alarm_prefix(b.name).startswith(contract.alarm_prefix(a.name)):
                raise ConfigError(
                    f"{path}.vpcs[{j}].name: VPC name {b.name!r} clashes with {path}.vpcs[{i}].name "
                    f"{a.name!r} (alarm prefix {contract.alarm_prefix(a.name)!r} would match both)"
                )
    return RegionConfig(name=name, vpcs=vpcs)


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
        raise ConfigError(
            f"log_retention_days: {value!r} is not a CloudWatch Logs retention period "
            f"(one of {', '.join(map(str, LOG_RETENTION_DAYS))})"
        )
    return int(value)


def parse_config(raw: Any) -> SwrConfig:
    """Validate a decoded JSON/YAML document and return the frozen configuration."""
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
        },
        {"regions"},
    )
    regions = tuple(
        _region(r, f"regions[{i}]") for i, r in enumerate(_list(data["regions"], "regions", min_len=1))
    )
    names = [r.name for r in regions]
    for i, name in enumerate(names):
        if name in names[:i]:
            raise ConfigError(f"regions[{i}].name: region {name!r} is listed twice")
    flap = _mapping(data.get("flap_guard", {}), "flap_guard", {"max_switches", "window_seconds"}, set())
    return SwrConfig(
        regions=regions,
        flap_guard=FlapGuard(
            max_switches=_int(flap.get("max_switches", 3), "flap_guard.max_switches", low=1, high=100),
            window_seconds=_int(
                flap.get("window_seconds", 3600), "flap_guard.window_seconds", low=60, high=604800
            ),
        ),
        switch_order=_choice(data.get("switch_order", "swr"), "switch_order", SWITCH_ORDERS, "switch order"),
        # 0 (the default): no reservation. A reservation must leave the account 100 unreserved
        # executions, which a new account (quota as low as 10) cannot; `swr validate` checks the headroom.
        switcher_reserved_concurrency=_int(
            data.get("switcher_reserved_concurrency", 0), "switcher_reserved_concurrency", low=0, high=1000
        ),
        history_ttl_days=_int(data.get("history_ttl_days", 90), "history_ttl_days", low=1, high=3650),
        log_retention_days=_retention(data.get("log_retention_days", 30)),
    )


def load_config_file(path: str | Path) -> SwrConfig:
    """Read a JSON (``.json``) or YAML file and validate it."""
    file = Path(path)
    try:
        text = file.read_text(encoding="utf-8")
    except OSError as err:
        raise ConfigError(f"swr:config: cannot read {str(file)!r} ({err.strerror})") from err
    try:
        raw = json.loads(text) if file.suffix == ".json" else yaml.safe_load(text)
    except (json.JSONDecodeError, yaml.YAMLError) as err:
        raise ConfigError(
            f"swr:config: {str(file)!r} is not valid {file.suffix.lstrip('.') or 'YAML'}: {err}"
        ) from err
    return parse_config(raw)
