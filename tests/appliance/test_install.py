"""End to end: what the unattended install and the first boot left on the
installed node (the node itself is made by the `appliance` fixture)."""

from __future__ import annotations

import json

import pytest

from tests.appliance.conftest import SSH_KEY
from tests.conftest import BUILD

pytestmark = pytest.mark.boot


def test_answers_came_from_the_kernel_command_line(appliance):
    assert ("Answer file: http://10.0.2.100/answers.yaml (from the kernel command line"
            in appliance.live_console), "the console does not say where the answers came from"
    assert f"sha256 {appliance.answers_sha256}" in appliance.live_console


def test_first_boot_bootstrapped_ceph(appliance):
    node = appliance.node
    assert node.succeed("systemctl show -p Result --value hypercore-firstboot.service").strip() == "success"
    took = node.wait_for_console_text(r"hypercore-firstboot: finished in (\d+) s", timeout=60)
    appliance.times["of which Ceph bootstrap"] = float(took.group(1))
    # Ceph: cephx, one OSD up, vm-pool for RBD, keyrings private.
    node.succeed("ceph osd stat | grep -q '1 osds: 1 up.*1 in'")
    assert "rbd" in node.succeed("ceph osd pool application get vm-pool")
    node.succeed("rbd create vm-pool/e2e --size 64M && rbd ls vm-pool | grep -qx e2e")
    assert node.succeed("ceph config get mon auth_allow_insecure_global_id_reclaim").strip() == "false"
    assert "cephx" in node.succeed("ceph-conf --show-config-value auth_cluster_required")
    modes = node.succeed("stat -c '%a %n' /etc/ceph/*.keyring").splitlines()
    assert modes and all(m.startswith("600 ") for m in modes), modes
    assert "HEALTH_OK" in node.succeed("hypercore-install status")
    print("\n" + "\n".join(f"{k:>28}: {v:6.0f} s" for k, v in appliance.times.items()))
    # For the benchmark table (python3 -m tests.bench --install).
    (BUILD / "bench-install.json").write_text(json.dumps(appliance.times, indent=1) + "\n")


def test_installed_system_is_not_the_live_system(appliance):
    node = appliance.node
    assert node.succeed("hostname").strip() == "node1"
    node.fail("test -e /etc/hypercore/live")
    node.fail("systemctl cat serial-getty@ttyS0.service | grep -q autologin")
    node.wait_for_console_text(r"node1 login:", timeout=120)
    assert SSH_KEY in node.succeed("cat /root/.ssh/authorized_keys")
    assert node.succeed("stat -c %a /root/.ssh/authorized_keys").strip() == "600"


def test_btrfs_data_layout(appliance):
    node = appliance.node
    assert node.succeed("findmnt -n -o FSTYPE /var/lib").strip() == "btrfs"
    subvols = node.succeed("btrfs subvolume list /var/lib")
    for sub in ("images", "vms", "shared", "iso", "tftpboot", ".snapshots"):
        assert f"hypercore/{sub}" in subvols, subvols
