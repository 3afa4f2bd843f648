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


def test_ceph_is_set_up_as_documented(appliance):
    node = appliance.node
    stat = json.loads(node.succeed("ceph osd stat --format json"))
    assert (stat["num_osds"], stat["num_up_osds"], stat["num_in_osds"]) == (1, 1, 1)
    # The only muted warning is the documented single-node decision.
    assert node.succeed("ceph config get mon mon_warn_on_pool_no_redundancy").strip() == "false"
    assert json.loads(node.succeed("ceph health --format json")).get("mutes", []) == []
    pools = {p["pool_name"]: p for p in json.loads(node.succeed("ceph osd pool ls detail --format json"))}
    assert pools["vm-pool"]["size"] == 1
    dump = node.succeed("ceph mon dump 2>/dev/null")
    assert "v2:" in dump and "v1:" in dump, dump
    out = node.succeed("stat -c '%a %U %n' /etc/ceph/ceph.client.admin.keyring "
                       "/var/lib/ceph/bootstrap-osd/ceph.keyring /var/lib/ceph/mgr/ceph-node1/keyring "
                       "/var/lib/ceph/mon/ceph-node1/keyring /etc/hypercore/answers.yaml")
    rows = [line.split() for line in out.strip().splitlines()]
    assert all(mode == "600" for mode, _, _ in rows), out
    owners = {path: user for _, user, path in rows}
    assert owners["/var/lib/ceph/mon/ceph-node1/keyring"] == "ceph"
    node.fail("ls /var/lib/ceph/tmp/hypercore-mon-seed.keyring")


def test_ready_report_and_no_secret_on_the_console(appliance):
    node = appliance.node
    issue = node.succeed("cat /etc/issue.d/hypercore.issue")
    fsid = node.succeed("ceph fsid").strip()
    for text in ("HEALTH_OK", fsid, "10.0.2.15", "create-vm", "ceph -s"):
        assert text in issue, text
    node.wait_for_console_text(r"Hypercore node node1: Ceph is ready \(HEALTH_OK\)", timeout=30)
    log = node.succeed("journalctl -b -u hypercore-firstboot --no-pager -o cat")
    keys = node.succeed("grep -h 'key = ' /etc/ceph/ceph.client.admin.keyring "
                        "/var/lib/ceph/bootstrap-osd/ceph.keyring").split()
    for key in [k for k in keys if k.endswith("==")]:
        assert key not in node.console_text() and key not in log and key not in issue


def test_a_second_first_boot_run_is_a_no_op(appliance):
    node = appliance.node
    assert "nothing to do" in node.succeed("hypercore-install firstboot")
    node.succeed("systemctl restart hypercore-firstboot.service")
    assert "ConditionResult=no" in node.succeed("systemctl show -p ConditionResult hypercore-firstboot.service")
    assert "complete since" in node.succeed("hypercore-install status")
