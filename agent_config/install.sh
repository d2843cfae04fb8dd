#!/bin/sh
# Bake the swr node AMI: install the CloudWatch agent, amazon-efs-utils, the AWS CLI, swr-monitor, the
# FaultScript and the default agent config, and enable the services. Run as root on a build instance of
# a supported distribution -- Amazon Linux 2023 or RHEL 9 (README, "Supported node distributions") --
# from a copy of the agent_config/ directory:
#
#   sudo sh agent_config/install.sh [--monitor swr-monitor|rms]
#
# --monitor rms   the node runs PRIMECLUSTER RMS: swr-monitor is installed but not enabled;
#                 register /usr/local/sbin/swr-faultscript as the FaultScript in RMS.
# The user data of each instance then writes the node identity and the VPC's agent config,
# mounts the EFS file systems and starts the services (see docs/on-instance.md).
#
# Where each piece comes from:
#   Amazon Linux 2023  its own repositories: amazon-cloudwatch-agent, amazon-efs-utils, awscli-2
#                      (preinstalled on the AMI).
#   RHEL 9             packages none of the three, so from AWS's sources:
#     - CloudWatch agent: the RPM from AWS's download bucket, its GPG signature checked against AWS's
#       key fingerprint ("Download the CloudWatch agent package",
#       https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/download-CloudWatch-Agent-on-EC2-Instance-commandline-first.html,
#       and "Verifying the signature of the CloudWatch agent package",
#       https://docs.aws.amazon.com/AmazonCloudWatch/latest/monitoring/verify-CloudWatch-Agent-Package-Signature.html).
#     - amazon-efs-utils: built as an RPM from the source of a pinned release ("Manually installing the
#       Amazon EFS client", other Linux distributions: `make rpm`,
#       https://docs.aws.amazon.com/efs/latest/ug/installing-amazon-efs-utils.html). The build needs
#       Rust, Cargo, Go, CMake, GCC and Perl from the RHEL 9 repositories (the release's INSTALL.md)
#       and network access to GitHub and crates.io; give the build instance 2 vCPUs and 4 GiB.
#     - AWS CLI v2: AWS's installer ("Installing or updating to the latest version of the AWS CLI",
#       https://docs.aws.amazon.com/cli/latest/userguide/getting-started-install.html), into
#       /usr/local/aws-cli with the `aws` command in /usr/local/bin.
# Both ship python3 3.9, which swr-monitor is written for, and curl-minimal (see below).
#
# Environment, for tests (leave unset on a real build):
#   SWR_OS_RELEASE     the os-release file that names the distribution (default /etc/os-release)
#   SWR_ROOT           install swr's own files under this directory instead of /
#   SWR_EFS_UTILS_REF  the amazon-efs-utils release built on RHEL 9 (default below)
set -eu

# amazon-efs-utils v2.4.2 builds with Rust 1.70+ (the RHEL 9 repositories have it); v3 needs Rust 1.91.
EFS_UTILS_REF_DEFAULT=v2.4.2
EFS_UTILS_REPO=https://github.com/aws/efs-utils
CW_AGENT_BUCKET=https://amazoncloudwatch-agent.s3.amazonaws.com
CW_AGENT_KEY_URL=https://s3.amazonaws.com/amazoncloudwatch-agent/assets/amazon-cloudwatch-agent.gpg
# "Amazon CloudWatch Agent" signing key, fingerprint as AWS publishes it on the verification page above.
CW_AGENT_KEY_FINGERPRINT=937616F3450B7D806CBD9725D58167303B789C72
AWS_CLI_URL=https://awscli.amazonaws.com

die() {
  echo "install.sh: $*" >&2
  exit 1
}

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

# --- which distribution: os-release(5) is a list of shell assignments; read it in a subshell. ---
os_release=${SWR_OS_RELEASE:-/etc/os-release}
[ -r "$os_release" ] || die "cannot read $os_release: cannot tell the distribution"
# shellcheck source=/dev/null
os_id=$(. "$os_release" && printf '%s' "${ID:-}")
# shellcheck source=/dev/null
os_version=$(. "$os_release" && printf '%s' "${VERSION_ID:-}")
# shellcheck source=/dev/null
os_name=$(. "$os_release" && printf '%s' "${PRETTY_NAME:-}")
case "$os_id:$os_version" in
  amzn:2023) distro=al2023 ;;
  rhel:9 | rhel:9.*) distro=rhel9 ;;
  *)
    die "unsupported distribution '${os_name:-unknown}' (ID=$os_id VERSION_ID=$os_version):" \
      "swr nodes run Amazon Linux 2023 or RHEL 9 (README: Supported node distributions)"
    ;;
esac
machine=$(uname -m)
case $machine in
  x86_64) cw_arch=amd64 ;;
  aarch64) cw_arch=arm64 ;;
  *) die "unsupported architecture '$machine': x86_64 or aarch64" ;;
esac

if [ "$(id -u)" -ne 0 ]; then
  die "run as root"
fi
command -v dnf >/dev/null 2>&1 || die "dnf not found, but $os_name uses it"

src_dir=$(cd "$(dirname "$0")" && pwd)
for file in swr_monitor.py swr-faultscript swr-monitor.service monitor.conf.example \
  amazon-cloudwatch-agent.json; do
  [ -f "$src_dir/$file" ] || die "$src_dir/$file missing"
done
root=${SWR_ROOT:-}
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT

download() { # url, file: HTTPS only, TLS 1.2 or later (the CloudWatch agent's download requires it)
  curl --fail --silent --show-error --location --retry 3 --proto '=https' --tlsv1.2 -o "$2" "$1" \
    || die "download failed: $1"
}

install_cloudwatch_agent_rpm() { # RHEL 9: AWS's RPM, installed only with AWS's valid signature
  url="$CW_AGENT_BUCKET/redhat/$cw_arch/latest/amazon-cloudwatch-agent.rpm"
  download "$CW_AGENT_KEY_URL" "$work/amazon-cloudwatch-agent.gpg"
  download "$url" "$work/amazon-cloudwatch-agent.rpm"
  download "$url.sig" "$work/amazon-cloudwatch-agent.rpm.sig"
  mkdir -m 0700 "$work/gnupg"
  gpg --homedir "$work/gnupg" --batch --quiet --import "$work/amazon-cloudwatch-agent.gpg" \
    || die "cannot import the CloudWatch agent's public key from $CW_AGENT_KEY_URL"
  # VALIDSIG names the signing key and, last, its primary key: it must be AWS's, whatever the key file held.
  status=$(gpg --homedir "$work/gnupg" --batch --status-fd 1 \
    --verify "$work/amazon-cloudwatch-agent.rpm.sig" "$work/amazon-cloudwatch-agent.rpm" 2>/dev/null) || status=""
  printf '%s\n' "$status" | awk -v fpr="$CW_AGENT_KEY_FINGERPRINT" \
    '$2 == "VALIDSIG" && ($3 == fpr || $NF == fpr) { ok = 1 } END { exit !ok }' \
    || die "$url is not validly signed by the CloudWatch agent key $CW_AGENT_KEY_FINGERPRINT: not installing it"
  dnf install -y "$work/amazon-cloudwatch-agent.rpm"
}

install_efs_utils_from_source() { # RHEL 9: build the RPM of a pinned release, as AWS documents
  ref=${SWR_EFS_UTILS_REF:-$EFS_UTILS_REF_DEFAULT}
  dnf install -y git rpm-build make rust cargo openssl-devel gcc gcc-c++ cmake perl golang
  git clone --quiet --depth 1 --branch "$ref" "$EFS_UTILS_REPO" "$work/efs-utils"
  (cd "$work/efs-utils" && make rpm)
  set -- "$work"/efs-utils/build/amazon-efs-utils*.rpm
  [ -f "$1" ] || die "building amazon-efs-utils $ref produced no RPM in $work/efs-utils/build"
  dnf install -y "$@"
}

install_aws_cli() { # RHEL 9: AWS CLI v2 with AWS's installer (--update makes a re-run an upgrade)
  download "$AWS_CLI_URL/awscli-exe-linux-$machine.zip" "$work/awscliv2.zip"
  unzip -q "$work/awscliv2.zip" -d "$work"
  "$work/aws/install" --update
}

# curl: the FaultScript asks IMDSv2 with it and RHEL 9 downloads with it. Both distributions ship
# curl-minimal (HTTP and HTTPS, all swr needs), which conflicts with the full `curl` package: installing
# `curl` aborts the bake ("Package changes for curl and libcurl",
# https://docs.aws.amazon.com/linux/al2023/ug/curl-minimal.html). Only install curl-minimal if neither is there.
command -v curl >/dev/null 2>&1 || dnf install -y curl-minimal
case $distro in
  al2023)
    dnf install -y python3 amazon-cloudwatch-agent amazon-efs-utils
    # awscli-2 is on the AL2023 AMI; a trimmed image may lack it. The FaultScript calls StopInstances with it.
    command -v aws >/dev/null 2>&1 || dnf install -y awscli-2
    ;;
  rhel9)
    dnf install -y python3 unzip gnupg2
    install_cloudwatch_agent_rpm
    install_efs_utils_from_source
    command -v aws >/dev/null 2>&1 || install_aws_cli
    ;;
esac

install -d -m 0755 "$root/etc/swr" "$root/usr/local/bin" "$root/usr/local/sbin" "$root/usr/local/share/doc/swr" \
  "$root/etc/systemd/system"
install -m 0755 "$src_dir/swr_monitor.py" "$root/usr/local/bin/swr-monitor"
install -m 0755 "$src_dir/swr-faultscript" "$root/usr/local/sbin/swr-faultscript"
install -m 0644 "$src_dir/swr-monitor.service" "$root/etc/systemd/system/swr-monitor.service"
if [ ! -f "$root/etc/swr/monitor.conf" ]; then
  install -m 0644 "$src_dir/monitor.conf.example" "$root/etc/swr/monitor.conf"
fi
install -d -m 0755 "$root/opt/aws/amazon-cloudwatch-agent/etc"
install -m 0644 "$src_dir/amazon-cloudwatch-agent.json" \
  "$root/opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json"
if [ -f "$src_dir/../docs/on-instance.md" ]; then
  install -m 0644 "$src_dir/../docs/on-instance.md" "$root/usr/local/share/doc/swr/on-instance.md"
fi
# A baked image must not carry a node identity: each instance gets its own from its user data.
rm -f "$root/etc/swr/node.env" "$root/etc/swr/node-id"

# swr-monitor must start on this image's python3: fail the bake here rather than every node at boot.
SWR_NODE_ID=image-check "$root/usr/local/bin/swr-monitor" --check-config --config "$root/etc/swr/monitor.conf" \
  || die "swr-monitor does not run on this image's python3 ($(python3 --version 2>&1)) or monitor.conf is invalid"

systemctl daemon-reload
systemctl enable amazon-cloudwatch-agent
if [ "$monitor" = swr-monitor ]; then
  systemctl enable swr-monitor.service
else
  systemctl disable swr-monitor.service 2>/dev/null || true
fi
echo "swr: node software installed on $os_name (monitor: $monitor)"
