"""End to end: the VM services on the installed appliance's own Ceph.

A golden image (a boot sector that prints a line on the serial port, small
enough to boot under nested TCG in seconds) is imported into RBD, two VMs are
created from it as linked clones with the original project's `create-vm`,
both boot with `boot-vm` and print the line. An RBD snapshot of one clone is
rolled back after its disk is overwritten; the other clone is unaffected.
"""

from __future__ import annotations

import json

import pytest

from tests.appliance.bootsector import boot_sector, put_boot_sector, wait_for_vm_line

pytestmark = pytest.mark.boot

MARKER = "HYPERCORE-GOLDEN-BOOTED"


def console(node, vm: str) -> str:
    return node.succeed(f"cat /var/lib/hypercore/vms/{vm}/run/console.log 2>/dev/null || true")


def wait_for_marker(node, vm: str) -> None:
    wait_for_vm_line(node, vm, MARKER)


def rbd_json(node, args: str):
    return json.loads(node.succeed(f"rbd {args} --format json"))


def test_boot_sector_is_a_valid_mbr():
    sector = boot_sector(MARKER)
    assert len(sector) == 512 and sector.endswith(b"\x55\xaa")
    assert sector[0x17:].startswith(MARKER.encode())


@pytest.fixture(scope="module")
def golden(appliance):
    node = appliance.node
    put_boot_sector(node, "/root/golden.raw", MARKER, size="8M")
    out = node.succeed("hypercore image import /root/golden.raw golden")
    assert "RBD image vm-pool/golden with protected snapshot @golden" in out, out
    return node


def test_golden_image_is_a_protected_rbd_snapshot(golden):
    snaps = rbd_json(golden, "snap ls vm-pool/golden")
    assert [(s["name"], s["protected"]) for s in snaps] == [("golden", "true")], snaps
    assert "golden" in golden.succeed("hypercore image list")


def test_create_vm_clones_and_both_boot(golden):
    node = golden
    for vm in ("vm1", "vm2"):
        out = node.succeed(f"create-vm {vm} 64 1 image:golden --network none")
        assert vm in out, out
        info = rbd_json(node, f"info vm-pool/{vm}-disk0")
        # A linked clone: it reads from the golden snapshot, it is not a copy.
        assert info["parent"]["image"] == "golden" and info["parent"]["snapshot"] == "golden", info
    node.succeed("boot-vm vm1")
    node.succeed("boot-vm vm2")
    wait_for_marker(node, "vm1")
    wait_for_marker(node, "vm2")
    # QEMU (here with an RBD disk and its root-only keyring) runs as hypercore-vm, not root;
    # the folder the VMs share is mounted so that nothing a guest puts there is setuid or a device.
    uid = node.succeed("awk '/^Uid:/ {print $2, $3, $4, $5}' /proc/$(cat /var/lib/hypercore/vms/vm1/run/qemu.pid)/status")
    assert uid.split() and "0" not in uid.split(), uid
    assert node.succeed("id -u hypercore-vm").strip() == uid.split()[0], uid
    opts = node.succeed("findmnt -no OPTIONS /var/lib/hypercore/shared").strip().split(",")
    assert "nosuid" in opts and "nodev" in opts, opts
    show = node.succeed("hypercore vm show vm1")
    assert "running" in show and "rbd:vm-pool/vm1-disk0" in show.replace(" ", ""), show
    assert "TCG" in show or "KVM" in show, show
    listing = node.succeed("hypercore vm list")
    assert "vm1" in listing and "vm2" in listing and listing.count("running") == 2, listing
    stats = json.loads(node.succeed("hypercore vm stats vm1 --json"))
    assert stats, stats
    # A VM that runs cannot be started twice; nothing changes.
    rc, out = node.execute("boot-vm vm1")
    assert rc != 0 and "already running" in out and "Traceback" not in out, out


def test_rbd_snapshot_rollback_on_a_clone(golden):
    node = golden
    node.succeed("hypercore vm stop vm1 --force")
    node.succeed("hypercore vm snapshot create vm1 before")
    assert "before" in node.succeed("hypercore vm snapshot list vm1")
    assert "before" in [s["name"] for s in rbd_json(node, "snap ls vm-pool/vm1-disk0")]
    # Overwrite the clone's boot sector: vm1 can no longer boot ...
    node.succeed("qemu-io -f raw -c 'write -P 0x41 0 512' rbd:vm-pool/vm1-disk0:id=admin")
    rc, out = node.execute("hypercore vm snapshot rollback vm1 missing")
    assert rc != 0 and "missing" in out and "Traceback" not in out, out
    # ... until the snapshot is rolled back; the golden image and vm2 never saw the write.
    node.succeed("hypercore vm snapshot rollback vm1 before")
    node.succeed("rm -f /var/lib/hypercore/vms/vm1/run/console.log")
    node.succeed("boot-vm vm1")
    wait_for_marker(node, "vm1")
    head = node.succeed("qemu-io -r -f raw -c 'read -P 0xfa 0 1' rbd:vm-pool/golden@golden:id=admin")
    assert "read 1/1 bytes" in head and "verification failed" not in head, head
    assert MARKER in console(node, "vm2")


def test_new_rbd_disk_and_clean_delete(golden):
    node = golden
    node.succeed("create-vm vm3 64 1 new:1G --network none")
    info = rbd_json(node, "info vm-pool/vm3-disk0")
    assert info["size"] == 1024 ** 3, info
    # A missing RBD image is refused with one line, and no VM is defined.
    rc, out = node.execute("create-vm vm4 64 1 rbd:vm-pool/nope")
    assert rc != 0 and "vm-pool/nope does not exist" in out and "Traceback" not in out, out
    assert "vm4" not in node.succeed("hypercore vm list")
    node.succeed("hypercore vm delete vm3")
    assert "vm3-disk0" not in rbd_json(node, "ls vm-pool")


def test_stop_all(golden):
    node = golden
    for vm in ("vm1", "vm2"):
        node.succeed(f"hypercore vm stop {vm} --force")
    assert "running" not in node.succeed("hypercore vm list")
    assert "HEALTH_OK" in node.succeed("ceph health")
