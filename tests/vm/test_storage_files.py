"""Golden images and linked clones off Ceph, with real qemu-img (no VM boots)."""

from __future__ import annotations

import json
import stat

import pytest

from hypercore.run import run


def info(path) -> dict:
    return json.loads(run(["qemu-img", "info", "--output=json", "-U", str(path)]).stdout)


@pytest.mark.parametrize("fmt,stored", [("qcow2", "qcow2"), ("raw", "raw"), ("vmdk", "qcow2")])
def test_image_import_makes_a_read_only_base(cli, state, fmt, stored):
    src = state / f"src.{fmt}"
    run(["qemu-img", "create", "-q", "-f", fmt, str(src), "64M"])
    out = cli.hc("image", "import", str(src), "golden").stdout
    base = state / "images" / f"golden.{stored}"
    assert f"read-only {stored} base {base}" in out
    assert info(base)["format"] == stored
    assert stat.S_IMODE(base.stat().st_mode) == 0o444
    assert "golden" in cli.hc("image", "list").stdout
    p = cli.hc("image", "import", str(src), "golden", ok=False)
    assert "an image named 'golden' already exists" in p.stderr


def test_vm_from_image_is_a_linked_clone_and_keeps_the_image(cli, state):
    src = state / "src.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", str(src), "1G"])
    cli.hc("image", "import", str(src), "golden")
    out = cli.hc("vm", "clone", "golden", "web1", "--memory", "128").stdout
    assert "cloned image golden to VM web1" in out
    out = cli("create-vm", "web2", "64", "1", "image:golden").stdout
    assert "linked clone of image golden" in out
    for vm in ("web1", "web2"):
        top = info(state / "vms" / vm / "disk0.qcow2")
        assert top["backing-filename"] == str(state / "images" / "golden.qcow2")
        assert top["virtual-size"] == 1 << 30
    p = cli.hc("image", "delete", "golden", ok=False)
    assert "image golden is in use by VM(s) web1, web2" in p.stderr
    cli.hc("vm", "delete", "web1")
    cli.hc("vm", "delete", "web2")
    assert "deleted image golden" in cli.hc("image", "delete", "golden").stdout
    assert not (state / "images" / "golden.qcow2").exists()


def test_clone_of_a_stopped_vm_freezes_a_shared_base(cli, state):
    cli("create-vm", "src", "64", "1", "new:64M")
    disk = state / "vms" / "src" / "disk0.qcow2"
    out = cli.hc("vm", "clone", "src", "dst").stdout
    assert "cloned VM src to VM dst" in out
    bases = list((state / "bases").iterdir())
    assert len(bases) == 1 and stat.S_IMODE(bases[0].stat().st_mode) == 0o444
    # Both VMs now write to their own overlay on the frozen base.
    assert info(disk)["backing-filename"] == str(bases[0])
    assert info(state / "vms" / "dst" / "disk0.qcow2")["backing-filename"] == str(bases[0])
    # Deleting one keeps the base for the other; deleting both removes it.
    assert "clone base" not in cli.hc("vm", "delete", "src").stdout
    assert bases[0].exists()
    assert f"deleted clone base {bases[0]}" in cli.hc("vm", "delete", "dst").stdout
    assert not bases[0].exists()


def test_delete_keeps_disks_it_did_not_create(cli, state):
    disk = state / "mine.qcow2"
    run(["qemu-img", "create", "-q", "-f", "qcow2", str(disk), "16M"])
    cli("create-vm", "web", "64", "1", str(disk))
    out = cli.hc("vm", "delete", "web").stdout
    assert f"kept disk {disk} (qcow2) (not created by hypercore)" in out
    assert disk.exists() and not (state / "vms" / "web").exists()


def test_snapshots_offline(cli, state):
    cli("create-vm", "web", "64", "1", "new:16M")
    cli.hc("vm", "snapshot", "create", "web", "s1")
    cli.hc("vm", "snapshot", "create", "web", "s2")
    assert "already has a snapshot 's1'" in cli.hc("vm", "snapshot", "create", "web", "s1", ok=False).stderr
    listing = cli.hc("vm", "snapshot", "list", "web").stdout
    assert listing.splitlines()[0].startswith("s1 ") and "disks: all" in listing
    assert "rolled VM web back to snapshot s1" in cli.hc("vm", "snapshot", "rollback", "web", "s1").stdout
    cli.hc("vm", "snapshot", "delete", "web", "s2")
    assert [s["name"] for s in info(state / "vms" / "web" / "disk0.qcow2")["snapshots"]] == ["s1"]


def test_share_toggle_and_mount_script(cli, state):
    cli("create-vm", "web", "64", "1", "new:16M")
    assert "shared folder 9p" in cli.hc("vm", "share", "web", "on", "--transport", "9p").stdout
    assert "shared folder off" in cli.hc("vm", "share", "web", "off").stdout
    script = cli.hc("share", "mount-script").stdout
    assert script.startswith("#!/bin/sh") and "mount -t virtiofs" in script and "version=9p2000.L" in script
    assert cli.hc("share", "path").stdout.strip() == str(state / "shared")


def test_clone_time_does_not_grow_with_size(cli, state):
    """A linked clone copies nothing: a 32 GiB disk holding 256 MiB of data clones as fast as a 16 MiB one."""
    import time
    cli("create-vm", "small", "64", "1", "new:16M")
    cli("create-vm", "big", "64", "1", "new:32G")
    run(["qemu-io", "-f", "qcow2", "-c", "write -P 0x5a 0 256M", str(state / "vms" / "big" / "disk0.qcow2")],
        timeout=120)
    took = {}
    for vm in ("small", "big"):
        t = time.monotonic()
        cli.hc("vm", "clone", vm, f"{vm}-clone")
        took[vm] = time.monotonic() - t
        top = state / "vms" / f"{vm}-clone" / "disk0.qcow2"
        assert info(top)["backing-filename"].startswith(str(state / "bases" / f"{vm}-disk0-"))
        assert top.stat().st_blocks * 512 < 1 << 20  # the clone's own layer holds no data
    assert took["big"] < took["small"] + 1.0, took
