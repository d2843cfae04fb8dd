"""install.sh (the AMI bake) on Amazon Linux 2023 and RHEL 9, with stub package managers and downloads.

The script runs for real with ``/bin/sh`` against a fake ``/etc/os-release`` (SWR_OS_RELEASE), installs
swr's files under a temp root (SWR_ROOT), and finds on PATH only the coreutils it needs plus stubs of
dnf, curl, gpg, git, make, unzip, systemctl, id and uname that record their arguments. The dnf stub
refuses the full ``curl`` package as dnf does on both distributions, whose images ship ``curl-minimal``
("Package changes for curl and libcurl", https://docs.aws.amazon.com/linux/al2023/ug/curl-minimal.html;
RHEL 9's curl-minimal declares ``Conflicts: curl``).
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from agent_helpers import AGENT_DIR, write_executable

INSTALL_SH = AGENT_DIR / "install.sh"
REPO_DIR = AGENT_DIR.parent
#: The CloudWatch agent's signing key, as AWS publishes it ("Verifying the signature of the CloudWatch
#: agent package"): the RPM installed on RHEL 9 must carry a valid signature by this key.
AWS_CW_AGENT_KEY = "937616F3450B7D806CBD9725D58167303B789C72"

OS_RELEASE = {
    "al2023": (
        'NAME="Amazon Linux"\nVERSION="2023"\nID="amzn"\nID_LIKE="fedora"\nVERSION_ID="2023"\n'
        'PLATFORM_ID="platform:al2023"\nPRETTY_NAME="Amazon Linux 2023.6.20250107"\n'
    ),
    "rhel9": (
        'NAME="Red Hat Enterprise Linux"\nVERSION="9.4 (Plow)"\nID="rhel"\nID_LIKE="fedora"\n'
        'VERSION_ID="9.4"\nPLATFORM_ID="platform:el9"\nPRETTY_NAME="Red Hat Enterprise Linux 9.4 (Plow)"\n'
    ),
    "al2": (
        'NAME="Amazon Linux"\nVERSION="2"\nID="amzn"\nID_LIKE="centos rhel fedora"\nVERSION_ID="2"\n'
        'PRETTY_NAME="Amazon Linux 2"\n'
    ),
    "rhel8": (
        'NAME="Red Hat Enterprise Linux"\nVERSION="8.10 (Ootpa)"\nID="rhel"\nID_LIKE="fedora"\n'
        'VERSION_ID="8.10"\nPRETTY_NAME="Red Hat Enterprise Linux 8.10 (Ootpa)"\n'
    ),
    "rocky9": (
        'NAME="Rocky Linux"\nVERSION="9.4 (Blue Onyx)"\nID="rocky"\nID_LIKE="rhel centos fedora"\n'
        'VERSION_ID="9.4"\nPRETTY_NAME="Rocky Linux 9.4 (Blue Onyx)"\n'
    ),
    "ubuntu2204": (
        'NAME="Ubuntu"\nVERSION_ID="22.04"\nID=ubuntu\nID_LIKE=debian\nPRETTY_NAME="Ubuntu 22.04.4 LTS"\n'
    ),
}

#: Real tools install.sh may use (everything else it calls is a stub or missing).
REAL_TOOLS = ("sh", "install", "mktemp", "rm", "mkdir", "cat", "chmod", "dirname", "awk", "env")


class Bake:
    """A build instance in a temp directory: fake os-release, stubs on PATH, swr installed under root."""

    def __init__(self, base: Path, distro: str) -> None:
        self.base = base
        self.bin = base / "bin"
        self.root = base / "root"
        self.tmp = base / "tmp"
        for directory in (self.bin, self.root, self.tmp):
            directory.mkdir()
        self.os_release = base / "os-release"
        self.os_release.write_text(OS_RELEASE[distro])
        self.calls_file = base / "calls"
        for tool in REAL_TOOLS:
            found = shutil.which(tool)
            assert found, tool
            (self.bin / tool).symlink_to(found)
        (self.bin / "python3").symlink_to(sys.executable)
        self._stubs()

    def _record(self) -> str:
        return f'printf "%s\\n" "$(basename "$0") $*" >> "{self.calls_file}"\n'

    def _stubs(self) -> None:
        record = self._record()
        write_executable(self.bin / "basename", 'echo "${1##*/}"\n')
        write_executable(
            self.bin / "dnf",
            record + 'for arg in "$@"; do\n'
            '  if [ "$arg" = curl ]; then\n'
            '    echo "Error: package curl conflicts with curl-minimal" >&2; exit 1\n'
            "  fi\n"
            "done\n",
        )
        write_executable(
            self.bin / "curl",
            record + 'out=""; prev=""\nfor arg in "$@"; do\n'
            '  [ "$prev" = -o ] && out=$arg\n  prev=$arg\ndone\n'
            '[ -n "$out" ] && printf "downloaded from %s\\n" "$prev" > "$out"\n',
        )
        write_executable(
            self.bin / "gpg",
            record + 'case "$*" in\n'
            "  *--verify*) fpr=${STUB_SIGNER:-" + AWS_CW_AGENT_KEY + "}\n"
            '    echo "[GNUPG:] GOODSIG 0000 Amazon CloudWatch Agent"\n'
            '    echo "[GNUPG:] VALIDSIG $fpr 2024-01-01 1704067200 0 4 0 1 8 00 $fpr" ;;\n'
            "esac\n",
        )
        # git clone ... URL DEST: the destination is the last argument
        write_executable(self.bin / "git", record + 'for dest in "$@"; do :; done\nmkdir -p "$dest"\n')
        write_executable(
            self.bin / "make",
            record + 'mkdir -p build && : > "build/amazon-efs-utils-2.4.2-1.el9.$(uname -m).rpm"\n',
        )
        # unzip -q ZIP -d DIR: AWS's bundle holds the installer aws/install, which records its arguments
        write_executable(
            self.bin / "unzip",
            record + 'for dir in "$@"; do :; done\nmkdir -p "$dir/aws"\n'
            "cat > \"$dir/aws/install\" <<'STUB'\n#!/bin/sh\n"
            f'printf "%s\\n" "aws/install $*" >> "{self.calls_file}"\n'
            "STUB\n"
            'chmod 0755 "$dir/aws/install"\n',
        )
        write_executable(self.bin / "systemctl", record)
        write_executable(self.bin / "id", 'echo "${STUB_UID:-0}"\n')
        write_executable(self.bin / "uname", 'echo "${STUB_MACHINE:-x86_64}"\n')

    def preinstalled(self, *commands: str) -> None:
        """Commands the image already has, e.g. ``aws`` on AL2023. The curl stub, standing for the
        curl-minimal both distributions ship, is always there unless a test removes it."""
        for command in commands:
            if not (self.bin / command).exists():
                write_executable(self.bin / command, self._record())

    def remove(self, command: str) -> None:
        (self.bin / command).unlink()

    def run(self, *args: str, **env: str) -> subprocess.CompletedProcess[str]:
        environment = {
            "PATH": str(self.bin),
            "HOME": str(self.base),
            "TMPDIR": str(self.tmp),
            "SWR_OS_RELEASE": str(self.os_release),
            "SWR_ROOT": str(self.root),
            **env,
        }
        return subprocess.run(
            ["/bin/sh", str(INSTALL_SH), *args], env=environment, capture_output=True, text=True, timeout=60
        )

    def calls(self, tool: str | None = None) -> list[str]:
        lines = self.calls_file.read_text().splitlines() if self.calls_file.exists() else []
        return [line for line in lines if tool is None or line.split(" ", 1)[0] == tool]

    def dnf_packages(self) -> list[str]:
        """Every package (or package file) dnf was asked to install, in order."""
        return [
            arg for call in self.calls("dnf") for arg in call.split()[3:] if call.startswith("dnf install -y")
        ]

    def downloads(self) -> list[str]:
        return [call.split()[-1] for call in self.calls("curl")]


@pytest.fixture
def bake(tmp_path: Path):
    def make(distro: str) -> Bake:
        return Bake(tmp_path, distro)

    return make


def assert_swr_files_installed(root: Path) -> None:
    for path, mode in {
        "usr/local/bin/swr-monitor": 0o755,
        "usr/local/sbin/swr-faultscript": 0o755,
        "etc/systemd/system/swr-monitor.service": 0o644,
        "etc/swr/monitor.conf": 0o644,
        "opt/aws/amazon-cloudwatch-agent/etc/amazon-cloudwatch-agent.json": 0o644,
        "usr/local/share/doc/swr/on-instance.md": 0o644,
    }.items():
        assert (root / path).is_file(), path
        assert (root / path).stat().st_mode & 0o777 == mode, path
    assert (root / "usr/local/bin/swr-monitor").read_bytes() == (AGENT_DIR / "swr_monitor.py").read_bytes()
    assert not (root / "etc/swr/node.env").exists(), "a baked image must carry no node identity"


def test_amazon_linux_2023_installs_everything_from_its_own_repositories(bake):
    host = bake("al2023")
    host.preinstalled("aws")  # the AL2023 AMI has awscli-2 (and curl-minimal: the curl stub)

    result = host.run()

    assert result.returncode == 0, result.stderr
    assert host.dnf_packages() == ["python3", "amazon-cloudwatch-agent", "amazon-efs-utils"]
    assert host.downloads() == [], "nothing is fetched from outside the distribution's repositories"
    assert host.calls("systemctl") == [
        "systemctl daemon-reload",
        "systemctl enable amazon-cloudwatch-agent",
        "systemctl enable swr-monitor.service",
    ]
    assert_swr_files_installed(host.root)
    assert "Amazon Linux 2023" in result.stdout


def test_amazon_linux_2023_without_curl_or_aws_cli_gets_curl_minimal_and_awscli_2(bake):
    host = bake("al2023")
    host.remove("curl")

    result = host.run()

    assert result.returncode == 0, result.stderr
    packages = host.dnf_packages()
    assert "curl" not in packages, "the full curl package conflicts with curl-minimal: the bake aborts"
    assert "curl-minimal" in packages and "awscli-2" in packages


@pytest.mark.parametrize(("machine", "cw_arch"), [("x86_64", "amd64"), ("aarch64", "arm64")])
def test_rhel_9_installs_the_agent_efs_utils_and_aws_cli_from_aws_sources(bake, machine, cw_arch):
    host = bake("rhel9")

    result = host.run(STUB_MACHINE=machine)

    assert result.returncode == 0, result.stderr
    agent_rpm = (
        f"https://amazoncloudwatch-agent.s3.amazonaws.com/redhat/{cw_arch}/latest/amazon-cloudwatch-agent.rpm"
    )
    assert host.downloads() == [
        "https://s3.amazonaws.com/amazoncloudwatch-agent/assets/amazon-cloudwatch-agent.gpg",
        agent_rpm,
        agent_rpm + ".sig",
        f"https://awscli.amazonaws.com/awscli-exe-linux-{machine}.zip",
    ]
    for call in host.calls("curl"):
        assert "--proto =https" in call and "--tlsv1.2" in call and "--fail" in call, call
    # the RPM is installed only after gpg has verified its signature
    calls = host.calls()
    verify = next(i for i, c in enumerate(calls) if c.startswith("gpg ") and "--verify" in c)
    install_agent = next(
        i for i, c in enumerate(calls) if re.match(r"dnf install -y \S+/amazon-cloudwatch-agent\.rpm$", c)
    )
    assert verify < install_agent
    # amazon-efs-utils: RHEL 9 has no package; built as an RPM from a pinned release, as AWS documents
    packages = host.dnf_packages()
    assert {"git", "rpm-build", "make", "rust", "cargo", "openssl-devel"} <= set(packages)
    [clone] = host.calls("git")
    assert "--branch v2.4.2 https://github.com/aws/efs-utils" in clone
    assert host.calls("make") == ["make rpm"]
    assert any(p.endswith(f"/efs-utils/build/amazon-efs-utils-2.4.2-1.el9.{machine}.rpm") for p in packages)
    assert host.calls("aws/install") == ["aws/install --update"]
    # none of the Amazon Linux package names: RHEL 9's repositories do not have them
    assert not {"amazon-cloudwatch-agent", "amazon-efs-utils", "awscli-2", "curl"} & set(packages)
    assert "enable amazon-cloudwatch-agent" in " ".join(host.calls("systemctl"))
    assert_swr_files_installed(host.root)
    assert list(host.tmp.iterdir()) == [], "downloads and the efs-utils build must not stay in the image"


def test_rhel_9_refuses_an_agent_rpm_not_signed_by_aws(bake):
    host = bake("rhel9")

    result = host.run(STUB_SIGNER="0123456789ABCDEF0123456789ABCDEF01234567")

    assert result.returncode != 0
    assert AWS_CW_AGENT_KEY in result.stderr and "not installing" in result.stderr
    assert not [p for p in host.dnf_packages() if p.endswith("amazon-cloudwatch-agent.rpm")]
    assert host.calls("systemctl") == []
    assert not (host.root / "usr/local/bin/swr-monitor").exists()


def test_rhel_9_keeps_an_aws_cli_that_is_already_there(bake):
    host = bake("rhel9")
    host.preinstalled("aws")

    assert host.run().returncode == 0
    assert not [url for url in host.downloads() if "awscli" in url]
    assert host.calls("aws/install") == []


@pytest.mark.parametrize("distro", ["al2", "rhel8", "rocky9", "ubuntu2204"])
def test_unsupported_distribution_is_refused_by_name_before_anything_is_installed(bake, distro):
    host = bake(distro)
    host.preinstalled("aws")

    result = host.run()

    assert result.returncode == 1
    pretty = re.search(r'PRETTY_NAME="([^"]+)"', OS_RELEASE[distro])
    assert pretty and f"unsupported distribution '{pretty.group(1)}'" in result.stderr
    assert "Amazon Linux 2023 or RHEL 9" in result.stderr
    assert host.calls() == []
    assert list(host.root.iterdir()) == []


def test_missing_os_release_is_a_clear_error(bake):
    host = bake("al2023")
    host.os_release.unlink()

    result = host.run()

    assert result.returncode == 1 and "cannot tell the distribution" in result.stderr
    assert host.calls() == []


def test_unsupported_architecture_is_refused(bake):
    host = bake("al2023")
    result = host.run(STUB_MACHINE="ppc64le")
    assert result.returncode == 1 and "unsupported architecture 'ppc64le'" in result.stderr
    assert host.calls() == []


def test_with_rms_swr_monitor_is_installed_but_disabled(bake):
    host = bake("al2023")
    host.preinstalled("aws")

    result = host.run("--monitor", "rms")

    assert result.returncode == 0, result.stderr
    assert "systemctl enable swr-monitor.service" not in host.calls("systemctl")
    assert "systemctl disable swr-monitor.service" in host.calls("systemctl")
    assert (host.root / "usr/local/bin/swr-monitor").is_file()


def test_the_bake_fails_when_swr_monitor_cannot_run_on_the_image_python(bake):
    """The image's python3 is what runs swr-monitor on every node: a monitor that cannot start there
    would crash-loop on each node and replacement, so the bake itself must fail."""
    host = bake("al2023")
    host.preinstalled("aws")
    (host.bin / "python3").unlink()
    write_executable(
        host.bin / "python3",
        "echo \"ImportError: cannot import name 'UTC' from 'datetime'\" >&2\nexit 1\n",
    )

    result = host.run()

    assert result.returncode == 1
    assert "swr-monitor does not run on this image's python3" in result.stderr
    assert host.calls("systemctl") == [], "no service may be enabled on a broken image"


def test_the_bake_fails_on_an_invalid_monitor_conf_already_in_the_image(bake):
    host = bake("al2023")
    host.preinstalled("aws")
    (host.root / "etc/swr").mkdir(parents=True)
    (host.root / "etc/swr/monitor.conf").write_text("[check:web]\ntype = htp\n")

    result = host.run()

    assert result.returncode == 1
    assert "unknown check type 'htp'" in result.stderr
    assert host.calls("systemctl") == []


def test_install_sh_is_not_run_as_non_root(bake):
    host = bake("al2023")
    result = host.run(STUB_UID="1000")
    assert result.returncode == 1 and "run as root" in result.stderr
    assert host.calls() == []


def test_every_python_file_install_sh_puts_on_a_node_is_checked_for_python_3_9_by_make_lint():
    """vermin in `make lint` guards Python 3.9 (the nodes' python3) only for the files it is given."""
    install = INSTALL_SH.read_text(encoding="utf-8")
    installed = set(re.findall(r'"\$src_dir/([\w.-]+\.py)"', install))
    makefile = (REPO_DIR / "Makefile").read_text(encoding="utf-8")
    node_python = re.search(r"^NODE_PYTHON :?= (.+)$", makefile, re.M)
    assert node_python, "the Makefile no longer lists the node's Python files"
    assert {Path(p).name for p in node_python.group(1).split()} == installed == {"swr_monitor.py"}
    lint = re.search(r"^lint:.*\n((?:\t.*\n)+)", makefile, re.M)
    assert lint and re.search(r"vermin --target=3\.9- .*--violations \$\(NODE_PYTHON\)", lint.group(1))


def test_imagebuilder_validates_that_swr_monitor_runs_on_the_image_python():
    component = yaml.safe_load((AGENT_DIR / "imagebuilder-component.yaml").read_text())
    [validate] = [phase for phase in component["phases"] if phase["name"] == "validate"]
    commands = [c for step in validate["steps"] for c in step["inputs"]["commands"]]
    assert any("/usr/local/bin/swr-monitor --check-config" in c for c in commands)
