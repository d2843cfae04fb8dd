#!/bin/sh
# Bake the swr node AMI: install the CloudWatch agent, amazon-efs-utils, swr-monitor, the
# FaultScript and the default agent config, and enable the services. Run as root on the build
# instance (Amazon Linux 2023 / RHEL family, dnf or yum), from a copy of the agent_config/ directory:
#
#   sudo sh agent_config/install.sh [--monitor swr-monitor|rms]
#
# --monitor rms   the node runs PRIMECLUSTER RMS: swr-monitor is installed but not enabled;
#                 register /usr/local/sbin/swr-faultscript as the FaultScript in RMS.
# The user data of each instance then writes the node identity and the VPC's agent config,
# mounts the EFS file systems and starts the services (see docs/on-instance.md).
set -eu

monitor=swr-monitor
while [ $# -gt 0 ]; do
  case $1 in
    --monitor) monitor=${2:-}; shift 2 || { echo "install.sh: --monitor needs a value" >&2; exit 64; } ;;
    --monitor=*) monitor=${1#--monitor=}; shift ;;
    *) echo "install.sh: unknown argument '$1' (usage: install.sh [--monitor swr-monitor|rms])" >&2; exit 64 ;;
  esac
done
case $monitor in
  swr-monitor|rms) ;;
  *) echo "install.sh: --monitor must be swr-monitor or rms, got '$monitor'" >&2; exit 64 ;;
esac
if [ "$(id -u)" -ne 0 ]; then
  echo "install.sh: run as root" >&2
  exit 1
fi

src_dir=$(cd "$(dirname "$0")" && pwd)
for file in swr_monitor.py swr-faultscript swr-monitor.service monitor.conf.example \
  amazon-cloudwatch-agent.json; do
  [ -f "$src_dir/$file" ] || { echo "install.sh: $src_dir/$file missing" >&2; exit 1; }
done

if command -v dnf >/dev/null 2>&1; then
  pkg=dnf
elif command -v yum >/dev/null 2>&1; then
  pkg=yum
else
  echo "install.sh: neither dnf nor yum found; install amazon-cloudwatch-agent, amazon-efs-utils," >&2
  echo "  python3 and the AWS CLI by hand, then re-run" >&2
  exit 1
fi
# awscli: the FaultScript calls StopInstances on itself (AL2023 ships it; older images may not).
"$pkg" install -y amazon-cloudwatch-agent amazon-efs-utils python3 curl
command -v aws >/dev/null 2>&1 || "$pkg" install -y awscli || "$pkg" install -y awscli-2

install -d -m 0755 /etc/swr /usr/local/bin /usr/local/sbin /usr/local/share/doc/swr
install -m 0755 "$src_dir/swr_monitor.py" /usr/local/bin/swr-monitor
install -m 0755 "$src_dir/swr-faultscript" /usr/local/sbin/swr-faultscript
install -m 0644 "$src_dir/swr-monitor.service" /etc/systemd/system/swr-monitor.service
if [ ! -f /etc/swr/monitor.conf ]; then
  install -m 0644 "$src_dir/monitor.conf.example" /etc/swr/monitor.conf
fi
install -d -m 0755 /opt/aws/amazon-cloudwatch-agent/etc
install -m 0644 "$src_dir/amazon-cloudwatch-agent.json" \
  /opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json
if [ -f "$src_dir/../docs/on-instance.md" ]; then
  install -m 0644 "$src_dir/../docs/on-instance.md" /usr/local/share/doc/swr/on-instance.md
fi
# A baked image must not carry a node identity: each instance gets its own from its user data.
rm -f /etc/swr/node.env /etc/swr/node-id

systemctl daemon-reload
systemctl enable amazon-cloudwatch-agent
if [ "$monitor" = swr-monitor ]; then
  systemctl enable swr-monitor.service
else
  systemctl disable swr-monitor.service 2>/dev/null || true
fi
echo "swr: node software installed (monitor: $monitor)"
