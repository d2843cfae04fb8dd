"""`python -m swr_local.moto_server [moto.server arguments]`: moto's server with `swr_local.gaps` applied.

The emulator's own-process server (the benchmarks) runs this instead of `python -m moto.server`, so that
moto behaves as AWS does where the switcher relies on it (gaps.network_interface_gaps, and the network ACL
rule quota of gaps.nacl_rule_quota, 20 rules per direction as a new account has) in that process too, and
answers gap 8's lost-AZ control (gaps.lost_availability_zones_control: `swr drill --fault az`).
"""

from __future__ import annotations

import sys

from moto.server import main

from swr_local.gaps import lost_availability_zones_control, nacl_rule_quota, network_interface_gaps


def run(argv: list[str] | None = None) -> None:
    """Serve moto with the gaps patched until the process is terminated."""
    with network_interface_gaps(), nacl_rule_quota(), lost_availability_zones_control():
        main(argv)


if __name__ == "__main__":
    run(sys.argv[1:])
