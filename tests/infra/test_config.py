"""Config validation: each bad input fails with a message naming the value and where it is."""

from __future__ import annotations

import copy
import json
from pathlib import Path

import pytest

from swr_stacks.config import (
    MIN_SWITCH_OVERDUE_SECONDS,
    ConfigError,
    config_warnings,
    load_config_file,
    parse_config,
)
from swr_stacks.switcher import LEASE_SECONDS

REPO = Path(__file__).resolve().parents[2]
DEFAULTS = json.loads((REPO / "cdk.json").read_text())["context"]["swr:defaults"]


def _config() -> dict:
    return copy.deepcopy(DEFAULTS)


def _node(config: dict, index: int = 0) -> dict:
    return config["regions"][0]["vpcs"][0]["nodes"][index]


def _fails(config: dict) -> str:
    with pytest.raises(ConfigError) as err:
        parse_config(config)
    return str(err.value)


def test_default_config_is_valid_and_applies_defaults():
    config = parse_config(_config())
    node = config.regions[0].vpcs[0].nodes[0]
    assert node.internet_facing is False and node.user_data_efs is True and node.key_pair is None
    assert config.flap_guard.max_switches == 3 and config.flap_guard.window_seconds == 3600
    assert config.switch_order == "swr" and config.switcher_reserved_concurrency == 0  # none


def test_health_check_defaults_per_load_balancer_and_an_explicit_value_wins():
    """An NLB node checks every 5 s by default (healthy and unhealthy after 2), an ALB node every 10 s."""
    config = _config()
    nlb, alb = (parse_config(config).regions[0].vpcs[0].nodes[i].health_check for i in (0, 1))
    assert (nlb.interval_seconds, nlb.healthy_threshold, nlb.unhealthy_threshold) == (5, 2, 2)
    assert (alb.interval_seconds, alb.healthy_threshold, alb.unhealthy_threshold) == (10, 2, 2)
    _node(config, 0)["health_check"] = {"interval_seconds": 30}
    assert parse_config(config).regions[0].vpcs[0].nodes[0].health_check.interval_seconds == 30


def test_duplicate_node_id_in_a_region_names_both_nodes():
    config = _config()
    vpc2 = copy.deepcopy(config["regions"][0]["vpcs"][0])
    vpc2["name"], vpc2["cidr"] = "other", "10.99.0.0/16"
    vpc2["nodes"][1]["id"] = 7
    vpc2["nodes"][0]["id"] = 2  # same as the first VPC's second node
    config["regions"][0]["vpcs"].append(vpc2)
    assert _fails(config) == (
        "regions[0].vpcs[1].nodes[0].id: duplicate node id 2 in region 'eu-west-1' "
        "(also at regions[0].vpcs[0].nodes[1].id)"
    )


def test_same_node_id_in_two_regions_is_allowed():
    config = _config()
    region2 = copy.deepcopy(config["regions"][0])
    region2["name"] = "us-east-1"
    region2["vpcs"][0]["availability_zones"] = ["us-east-1a", "us-east-1b"]
    config["regions"].append(region2)
    assert [r.vpcs[0].nodes[0].node_id for r in parse_config(config).regions] == [1, 1]


def test_fewer_than_two_target_azs():
    config = _config()
    config["regions"][0]["vpcs"][0]["availability_zones"] = ["eu-west-1a"]
    message = _fails(config)
    assert message.startswith(
        "regions[0].vpcs[0].availability_zones: ['eu-west-1a'] has 1 zone(s); at least 2"
    )


def test_az_of_another_region():
    config = _config()
    config["regions"][0]["vpcs"][0]["availability_zones"][1] = "us-east-1b"
    assert (
        _fails(config)
        == "regions[0].vpcs[0].availability_zones[1]: 'us-east-1b' is not a zone of region 'eu-west-1'"
    )


def test_unknown_lb_kind():
    config = _config()
    _node(config, 1)["lb"] = "elb"
    assert (
        _fails(config)
        == "regions[0].vpcs[0].nodes[1].lb: unknown load balancer kind 'elb' (expected nlb|alb)"
    )


@pytest.mark.parametrize("ami", ["ami-123", "ami-0123456789ABCDEF0", "0123456789abcdef0", 12])
def test_malformed_ami_id(ami):
    config = _config()
    _node(config)["ami"] = ami
    message = _fails(config)
    assert message.startswith("regions[0].vpcs[0].nodes[0].ami: ")
    assert repr(ami) in message


@pytest.mark.parametrize(
    ("key", "value", "where"),
    [
        ("listener_ports", [80, 70000], "listener_ports[1]"),
        ("target_port", 0, "target_port"),
        ("listener_ports", [True], "listener_ports[0]"),
    ],
)
def test_port_out_of_range(key, value, where):
    config = _config()
    _node(config)[key] = value
    bad = value[-1] if isinstance(value, list) else value
    assert _fails(config) == f"regions[0].vpcs[0].nodes[0].{where}: port {bad!r} is out of range (1..65535)"


def test_ingress_port_out_of_range():
    config = _config()
    _node(config)["ingress"] = [{"port": 65536, "cidr": "10.0.0.0/8"}]
    assert (
        _fails(config) == "regions[0].vpcs[0].nodes[0].ingress[0].port: port 65536 is out of range (1..65535)"
    )


@pytest.mark.parametrize(
    ("where", "typo", "path"),
    [
        ("node", "intance_type", "regions[0].vpcs[0].nodes[0]"),
        ("vpc", "availabilty_zones", "regions[0].vpcs[0]"),
        ("top", "flap_gaurd", "config"),
        ("health", "intervall_seconds", "regions[0].vpcs[0].nodes[1].health_check"),
    ],
)
def test_unknown_keys_are_rejected(where, typo, path):
    config = _config()
    target = {
        "node": _node(config),
        "vpc": config["regions"][0]["vpcs"][0],
        "top": config,
        "health": _node(config, 1)["health_check"],
    }[where]
    target[typo] = 1
    message = _fails(config)
    assert message.startswith(f"{path}: unknown key(s) {typo!r} (allowed: ")


def test_unknown_monitor_process_and_switch_order():
    config = _config()
    _node(config)["monitor_process"] = "pacemaker"
    assert _fails(config) == (
        "regions[0].vpcs[0].nodes[0].monitor_process: "
        "unknown monitor process 'pacemaker' (expected swr-monitor|rms)"
    )
    config = _config()
    config["switch_order"] = "fast"
    assert _fails(config) == "switch_order: unknown switch order 'fast' (expected swr|vendor)"


def test_flap_guard_and_concurrency_ranges_and_booleans():
    config = _config()
    config["flap_guard"]["max_switches"] = 0
    assert _fails(config) == "flap_guard.max_switches: 0 is out of range (1..100)"
    config = _config()
    config["switcher_reserved_concurrency"] = "10"
    assert _fails(config) == "switcher_reserved_concurrency: expected an integer, got '10'"
    config = _config()
    _node(config)["internet_facing"] = "yes"
    assert _fails(config) == "regions[0].vpcs[0].nodes[0].internet_facing: expected true or false, got 'yes'"


def test_bad_cidr_and_vpc_name_and_missing_key():
    config = _config()
    config["regions"][0]["vpcs"][0]["cidr"] = "10.0.0.1/16"
    assert _fails(config).startswith("regions[0].vpcs[0].cidr: malformed IPv4 CIDR '10.0.0.1/16'")
    config = _config()
    config["regions"][0]["vpcs"][0]["name"] = "Prod_VPC"
    assert _fails(config).startswith("regions[0].vpcs[0].name: malformed VPC name 'Prod_VPC'")
    config = _config()
    del _node(config)["ami"]
    assert _fails(config) == "regions[0].vpcs[0].nodes[0]: missing required key(s) 'ami'"


def test_vpc_names_whose_alarm_prefixes_overlap_are_rejected():
    config = _config()
    vpc2 = copy.deepcopy(config["regions"][0]["vpcs"][0])
    vpc2["name"] = "demo-2"
    for i, node in enumerate(vpc2["nodes"]):
        node["id"] = 100 + i
    config["regions"][0]["vpcs"].append(vpc2)
    assert _fails(config) == (
        "regions[0].vpcs[1].name: VPC name 'demo-2' clashes with regions[0].vpcs[0].name 'demo' "
        "(alarm prefix 'swr-demo-' would match both)"
    )


def test_health_check_path_only_for_alb_and_retention_must_be_a_cloudwatch_period():
    config = _config()
    _node(config, 0)["health_check"] = {"path": "/health"}
    assert _fails(config) == (
        "regions[0].vpcs[0].nodes[0].health_check.path: "
        "'/health' is only valid for an alb (this node's lb is 'nlb')"
    )
    config = _config()
    config["log_retention_days"] = 31
    assert _fails(config).startswith("log_retention_days: 31 is not a CloudWatch Logs retention period")


def test_existing_vpc_needs_one_subnet_per_az():
    config = _config()
    config["regions"][0]["vpcs"][0]["existing"] = {
        "vpc_id": "vpc-0123456789abcdef0",
        "private_subnet_ids": ["subnet-0123456789abcdef0"],
    }
    assert _fails(config).startswith(
        "regions[0].vpcs[0].existing.private_subnet_ids: 1 subnet id(s) for 3 availability zone(s)"
    )


def test_yaml_and_json_files_load_and_errors_name_the_file(tmp_path):
    config = load_config_file(REPO / "tests" / "config" / "two_regions.yaml")
    assert [r.name for r in config.regions] == ["eu-west-1", "us-east-1"]
    as_json = tmp_path / "swr.json"
    as_json.write_text(json.dumps(_config()))
    assert load_config_file(as_json).regions[0].vpcs[0].name == "demo"
    broken = tmp_path / "broken.yaml"
    broken.write_text("regions: [\n")
    with pytest.raises(ConfigError, match=r"swr:config: '.*broken\.yaml' is not valid yaml"):
        load_config_file(broken)
    with pytest.raises(ConfigError, match=r"swr:config: cannot read '.*missing\.yaml'"):
        load_config_file(tmp_path / "missing.yaml")


def _existing(config: dict) -> dict:
    vpc = config["regions"][0]["vpcs"][0]
    vpc["existing"] = {
        "vpc_id": "vpc-0123456789abcdef0",
        "private_subnet_ids": [f"subnet-0123456789abcdef{i}" for i in range(3)],
    }
    return vpc


def test_interface_endpoints_default_to_create_and_existing_ones_are_kept():
    assert parse_config(_config()).regions[0].vpcs[0].endpoints_to_create() == (
        "monitoring",
        "logs",
        "ec2",
        "elasticfilesystem",
    )
    config = _config()
    _existing(config)["interface_endpoints"] = {"ec2": "existing", "logs": "existing"}
    vpc = parse_config(config).regions[0].vpcs[0]
    assert vpc.endpoints_to_create() == ("monitoring", "elasticfilesystem")


def test_interface_endpoint_errors_name_the_service():
    config = _config()
    config["regions"][0]["vpcs"][0]["interface_endpoints"] = {"ec2": "existing"}
    assert _fails(config) == (
        "regions[0].vpcs[0].interface_endpoints.ec2: 'existing' needs an existing VPC (`existing.vpc_id`); "
        "a VPC that swr creates has no endpoint of its own"
    )
    config = _config()
    _existing(config)["interface_endpoints"] = {"ec2": "shared"}
    assert _fails(config) == (
        "regions[0].vpcs[0].interface_endpoints.ec2: "
        "unknown endpoint mode 'shared' (expected create|existing)"
    )
    config = _config()
    _existing(config)["interface_endpoints"] = {"sts": "existing"}
    assert _fails(config).startswith("regions[0].vpcs[0].interface_endpoints: unknown key(s) 'sts'")


def test_client_cidrs_and_reserved_concurrency_bounds():
    config = _config()
    _node(config)["client_cidrs"] = ["10.40.0.0/16", "172.16.0.0/12"]
    assert parse_config(config).regions[0].vpcs[0].nodes[0].client_cidrs == ("10.40.0.0/16", "172.16.0.0/12")
    _node(config)["client_cidrs"] = []
    assert _fails(config) == (
        "regions[0].vpcs[0].nodes[0].client_cidrs: an empty list would admit no client "
        "(leave the key out for the default)"
    )
    _node(config)["client_cidrs"] = ["10.0.0.1/8"]
    assert _fails(config).startswith("regions[0].vpcs[0].nodes[0].client_cidrs[0]: malformed IPv4 CIDR")
    config = _config()
    config["switcher_reserved_concurrency"] = -1
    assert _fails(config) == "switcher_reserved_concurrency: -1 is out of range (0..1000)"


def test_reconcile_defaults_to_every_minute_and_30_minutes_overdue_per_vpc():
    config = _config()
    assert config["regions"][0]["vpcs"][0]["reconcile"] == {
        "interval_seconds": 60,
        "switch_overdue_seconds": 1800,
    }
    del config["regions"][0]["vpcs"][0]["reconcile"]
    reconcile = parse_config(config).regions[0].vpcs[0].reconcile
    assert (reconcile.interval_seconds, reconcile.switch_overdue_seconds) == (60, 1800)
    stage = load_config_file(REPO / "tests" / "config" / "two_regions.yaml").regions[0].vpcs[1]
    assert (stage.reconcile.interval_seconds, stage.reconcile.switch_overdue_seconds) == (300, 3600)


@pytest.mark.parametrize(
    ("reconcile", "message"),
    [
        ({"interval_seconds": 90}, "reconcile.interval_seconds: 90 is not a whole number of minutes"),
        ({"interval_seconds": 30}, "reconcile.interval_seconds: 30 is out of range (60..3600)"),
        ({"interval_seconds": 7200}, "reconcile.interval_seconds: 7200 is out of range (60..3600)"),
        ({"interval_seconds": "60"}, "reconcile.interval_seconds: expected an integer, got '60'"),
        (
            {"switch_overdue_seconds": 600},
            "reconcile.switch_overdue_seconds: 600 is out of range (960..86400)",
        ),
        ({"intervall_seconds": 60}, "reconcile: unknown key(s) 'intervall_seconds' (allowed: "),
    ],
)
def test_bad_reconcile_settings_name_the_value(reconcile, message):
    config = _config()
    config["regions"][0]["vpcs"][0]["reconcile"] = reconcile
    assert _fails(config).startswith(f"regions[0].vpcs[0].{message}")


def test_a_switch_is_never_overdue_while_it_still_holds_its_lease():
    assert MIN_SWITCH_OVERDUE_SECONDS > LEASE_SECONDS


# --- every error at once, with its file and line; names checked against botocore's lists -----------


def _all_errors(config: dict) -> list[str]:
    with pytest.raises(ConfigError) as err:
        parse_config(config)
    return [e.message for e in err.value.errors]


def test_every_error_of_a_config_is_reported_at_once():
    config = _config()
    _node(config, 0)["lb"] = "elb"
    _node(config, 1)["target_port"] = 0
    config["regions"][0]["vpcs"][0]["cidr"] = "10.0.0.1/16"
    config["flap_guard"]["max_switches"] = 0
    assert sorted(_all_errors(config)) == sorted(
        [
            "regions[0].vpcs[0].nodes[0].lb: unknown load balancer kind 'elb' (expected nlb|alb)",
            "regions[0].vpcs[0].nodes[1].target_port: port 0 is out of range (1..65535)",
            "regions[0].vpcs[0].cidr: malformed IPv4 CIDR '10.0.0.1/16' (10.0.0.1/16 has host bits set)",
            "flap_guard.max_switches: 0 is out of range (1..100)",
        ]
    )


def test_an_invalid_section_does_not_hide_the_checks_across_sections():
    # the second node is both malformed and a duplicate: both are said
    config = _config()
    _node(config, 1).update(id=1, ami="ami-123")
    assert _all_errors(config) == [
        "regions[0].vpcs[0].nodes[1].ami: malformed AMI id 'ami-123' (expected ami- and 8 or 17 hex digits)",
        "regions[0].vpcs[0].nodes[1].id: duplicate node id 1 in region 'eu-west-1' "
        "(also at regions[0].vpcs[0].nodes[0].id)",
    ]


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda c: _node(c).update(instance_type="m6i.lrage"),
            "regions[0].vpcs[0].nodes[0].instance_type: unknown instance type 'm6i.lrage' "
            "(did you mean 'm6i.large'?)",
        ),
        (
            lambda c: c["regions"][0].update(name="eu-wset-1"),
            "regions[0].name: unknown region name 'eu-wset-1' (did you mean 'eu-west-1'?)",
        ),
        (
            lambda c: c["regions"][0].update(name="eu-west-9"),
            "regions[0].name: unknown region name 'eu-west-9' (did you mean 'eu-west-",
        ),
        (
            lambda c: _node(c).update(intance_type=_node(c).pop("instance_type")),
            "regions[0].vpcs[0].nodes[0]: unknown key(s) 'intance_type' (allowed: ",
        ),
    ],
    ids=["instance_type", "region_typo", "region_unknown", "key"],
)
def test_misspelt_names_are_caught_offline_with_a_suggestion(change, message):
    config = _config()
    change(config)
    errors = _all_errors(config)
    assert any(e.startswith(message) for e in errors), errors
    if "unknown key" in message:
        assert errors[0].endswith(": did you mean 'instance_type'?"), errors


def test_a_region_and_instance_type_botocore_knows_are_accepted():
    config = _config()
    config["regions"][0]["name"] = "ap-southeast-4"
    config["regions"][0]["vpcs"][0]["availability_zones"] = ["ap-southeast-4a", "ap-southeast-4b"]
    _node(config)["instance_type"] = "c7g.medium"
    assert parse_config(config).regions[0].name == "ap-southeast-4"


BAD_YAML = """\
regions:
  - name: eu-west-1
    vpcs:
      - name: demo
        cidr: 10.0.0.0/16
        availability_zones: [eu-west-1a, eu-west-1b]
        nodes:
          - id: 1
            ami: ami-0123456789abcdef0
            instance_type: m6i.lrage
            lb: nlb
          - {id: 2, ami: ami-0123456789abcdef0, instance_type: t3.small, lb: elb, helth_check: {}}
flap_gaurd: {}
"""


def test_errors_of_a_yaml_file_carry_the_file_and_line(tmp_path):
    path = tmp_path / "swr.yaml"
    path.write_text(BAD_YAML)
    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    located = [(e.source, e.line, e.path) for e in raised.value.errors]
    assert located == [
        (str(path), 10, "regions[0].vpcs[0].nodes[0].instance_type"),
        (str(path), 12, "regions[0].vpcs[0].nodes[1]"),  # the unknown key helth_check
        (str(path), 12, "regions[0].vpcs[0].nodes[1].lb"),
        (str(path), 13, "config"),  # the unknown top-level key flap_gaurd
    ]
    described = raised.value.describe().splitlines()
    assert described[0] == (
        f"{path}:10: regions[0].vpcs[0].nodes[0].instance_type: unknown instance type 'm6i.lrage' "
        "(did you mean 'm6i.large'?)"
    )
    assert described[3].startswith(f"{path}:13: config: unknown key(s) 'flap_gaurd'")
    assert described[3].endswith("did you mean 'flap_guard'?")


def test_errors_of_a_json_file_carry_the_line_too(tmp_path):
    config = _config()
    _node(config, 1)["lb"] = "elb"
    path = tmp_path / "swr.json"
    path.write_text(json.dumps(config, indent=2))
    with pytest.raises(ConfigError) as raised:
        load_config_file(path)
    lines = path.read_text().splitlines()
    assert raised.value.source == str(path)
    assert raised.value.line is not None and lines[raised.value.line - 1].strip() == '"lb": "elb",'


def test_a_yaml_syntax_error_names_the_file_and_line_not_a_unicode_string(tmp_path):
    broken = tmp_path / "broken.yaml"
    broken.write_text("regions:\n  - name: eu-west-1\n    vpcs: [\n")
    with pytest.raises(ConfigError) as raised:
        load_config_file(broken)
    assert "<unicode string>" not in str(raised.value)
    assert f'in "{broken}", line 4' in str(raised.value)
    assert (raised.value.source, raised.value.line) == (str(broken), 4)
    bad_json = tmp_path / "bad.json"
    bad_json.write_text('{\n  "regions": [\n}\n')
    with pytest.raises(ConfigError) as raised:
        load_config_file(bad_json)
    assert (raised.value.source, raised.value.line) == (str(bad_json), 3)


def test_targets_default_to_preregistered_the_global_key_applies_and_a_node_overrides_it():
    assert {n.targets for n in parse_config(_config()).regions[0].vpcs[0].nodes} == {"preregistered"}
    raw = _config()
    raw["targets"] = "on_switch"
    _node(raw, 1)["targets"] = "preregistered"
    nodes = parse_config(raw).regions[0].vpcs[0].nodes
    assert [n.targets for n in nodes[:2]] == ["on_switch", "preregistered"]


def test_an_unknown_targets_mode_is_named_with_its_path():
    raw = _config()
    _node(raw)["targets"] = "pre-registered"
    assert (
        "nodes[0].targets: unknown targets mode 'pre-registered' (expected preregistered|on_switch)"
        in _fails(raw)
    )
    raw = _config()
    raw["targets"] = True
    assert "targets: unknown targets mode True" in _fails(raw)


def test_a_new_vpc_puts_the_mount_targets_in_own_subnets_unless_kept_private():
    config = parse_config(_config())
    assert config.regions[0].vpcs[0].mount_targets_in_own_subnets
    assert config_warnings(config) == ()
    raw = _config()
    raw["regions"][0]["vpcs"][0]["storage_subnets"] = "private"  # a stack deployed before Storage existed
    kept = parse_config(raw)
    assert not kept.regions[0].vpcs[0].mount_targets_in_own_subnets
    (warning,) = config_warnings(kept)
    assert warning.startswith("regions[0].vpcs[0] (demo): the EFS mount targets are in the node subnets")
    assert "network fence is unavailable" in warning
    raw["regions"][0]["vpcs"][0]["storage_subnets"] = "shared"
    assert _fails(raw).startswith(
        "regions[0].vpcs[0].storage_subnets: unknown storage subnet mode 'shared' (expected own|private)"
    )


def test_existing_vpc_storage_subnet_ids_are_parsed_and_checked():
    config = _config()
    _existing(config)
    without = parse_config(config)
    assert without.regions[0].vpcs[0].existing.storage_subnet_ids == ()
    assert not without.regions[0].vpcs[0].mount_targets_in_own_subnets
    assert "Give `existing.storage_subnet_ids`" in config_warnings(without)[0]

    storage = [f"subnet-0123456789abcde{i}0" for i in range(3)]
    _existing(config)["existing"]["storage_subnet_ids"] = storage
    vpc = parse_config(config).regions[0].vpcs[0]
    assert vpc.existing.storage_subnet_ids == tuple(storage)
    assert vpc.mount_targets_in_own_subnets and config_warnings(parse_config(config)) == ()

    _existing(config)["existing"]["storage_subnet_ids"] = storage[:2]
    assert _fails(config).startswith(
        "regions[0].vpcs[0].existing.storage_subnet_ids: 2 subnet id(s) for 3 availability zone(s)"
    )
    _existing(config)["existing"]["storage_subnet_ids"] = [*storage[:2], "subnet-xyz"]
    assert _fails(config).startswith(
        "regions[0].vpcs[0].existing.storage_subnet_ids[2]: malformed subnet id 'subnet-xyz'"
    )
    shared = [*storage[:2], "subnet-0123456789abcdef1"]  # a private (node) subnet
    _existing(config)["existing"]["storage_subnet_ids"] = shared
    assert _fails(config).startswith(
        "regions[0].vpcs[0].existing.storage_subnet_ids[2]: 'subnet-0123456789abcdef1' is also a private "
        "or public subnet of the VPC"
    )


def test_storage_subnet_settings_that_contradict_each_other_are_rejected():
    config = _config()
    _existing(config)["storage_subnets"] = "own"
    assert _fails(config).startswith(
        "regions[0].vpcs[0].storage_subnets: 'own' in an existing VPC needs `existing.storage_subnet_ids`"
    )
    config = _config()
    vpc = _existing(config)
    vpc["storage_subnets"] = "private"
    vpc["existing"]["storage_subnet_ids"] = [f"subnet-0123456789abcde{i}0" for i in range(3)]
    assert _fails(config).startswith(
        "regions[0].vpcs[0].existing.storage_subnet_ids: storage_subnets is 'private'"
    )


def test_the_fence_inline_wait_defaults_to_30_s_and_is_bounded_by_the_fence_timeout():
    config = parse_config(_config())
    assert (config.fence_inline_wait_seconds, config.fence_timeout_seconds) == (30, 300)
    raw = _config()
    raw.update(fence_timeout_seconds=120, fence_inline_wait_seconds=120)
    assert parse_config(raw).fence_inline_wait_seconds == 120
    raw["fence_inline_wait_seconds"] = 121
    assert _fails(raw) == "fence_inline_wait_seconds: 121 is out of range (1..120)"
    raw = _config()
    raw["fence_inline_wait_seconds"] = 0
    assert _fails(raw) == "fence_inline_wait_seconds: 0 is out of range (1..300)"
    raw["fence_inline_wait_seconds"] = "30s"
    assert _fails(raw) == "fence_inline_wait_seconds: expected an integer, got '30s'"
