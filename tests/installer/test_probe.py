"""probe: the pure parser on recorded outputs, and the collector on this machine."""

from __future__ import annotations

import json

import pytest

from tests.installer.conftest import MACHINES
from hypercore_installer.probe import parse_machine, partition_path

RAW = MACHINES / "raw"


def _raw(name):
    return json.loads((RAW / f"{name}.raw.json").read_text())


def _disk(machine, name):
    return next(d for d in machine["disks"] if d["name"] == name)


def test_loop_lab_recording():
    """Outputs recorded on the build host (no udev): loop disks, one holding
    a GPT image with a mounted root, one with a bare ext4, one blank, and the
    host's own disk, which it may not even read."""
    m = parse_machine(_raw("loop-lab"))
    src = _disk(m, "loop0")
    assert src["partition_table"]["type"] == "gpt"
    assert [(p["number"], p["fstype"], p["partlabel"]) for p in src["partitions"]] == [
        (1, "vfat", "esp"), (2, None, "linux"), (3, "ext4", "hypercore-root")]
    assert src["partitions"][2]["type"] == "4f68bce3-e8cd-4db1-96e7-fbcaf984b709"
    assert src["partitions"][0]["start"] == 2048 and src["partitions"][0]["sectors"] == 131072
    assert src["mounts"] == [{"device": "loop0p3", "mountpoint": "/tmp/rec/mnt"}]
    assert {s["type"] for s in src["signatures"]} == {"gpt", "PMBR", "vfat", "ext4"}
    # wipefs reports vfat three times (boot sector, backup, FSInfo): once is enough.
    assert len([s for s in src["signatures"] if s["type"] == "vfat"]) == 1
    assert _disk(m, "loop1")["signatures"][0]["type"] == "ext4"
    assert _disk(m, "loop2")["signatures"] == [] and _disk(m, "loop2")["partitions"] == []
    host = _disk(m, "vda")
    assert host["boot_medium"] and "root filesystem" in host["boot_medium_reason"]
    assert "Operation not permitted" in host["probe_error"]
    assert not any(d["boot_medium"] for d in m["disks"] if d["name"] != "vda")
    assert [n["name"] for n in m["nics"] if not n["virtual"]] == ["eth0"]
    assert "192.0.2.2/24" in m["nics"][0]["addresses"]


def test_server_with_lvm_and_udev():
    """lsblk as on a system with udev: stacked LVM, a mounted partition, a CD
    drive and an empty zram device; the USB stick holds /."""
    m = parse_machine(_raw("server-lvm"))
    assert [d["name"] for d in m["disks"]] == ["sda", "sdb", "sdc", "sdd"]  # no sr0, no zram0 (swap in RAM)
    sda = _disk(m, "sda")
    assert sda["model"] == "SAMSUNG MZ7LH480HAHQ-00005" and sda["vendor"] == "ATA"  # padding stripped
    assert sda["links"][0].startswith("/dev/disk/by-id/ata-SAMSUNG")
    sdb = _disk(m, "sdb")
    assert sdb["holders"] == [{"device": "sdb1", "holder": "dm-0", "holder_name": "oldvg-backup",
                               "holder_type": "lvm"}]
    assert sdb["mounts"] == [{"device": "dm-0", "mountpoint": "/srv/backup"}]
    assert _disk(m, "sdc")["mounts"] == [{"device": "sdc1", "mountpoint": "/srv/old"}]
    stick = _disk(m, "sdd")
    assert stick["boot_medium"] and stick["removable"] and stick["transport"] == "usb"
    # wipefs could not read it: filesystem facts come from lsblk (udev) instead.
    assert stick["probe_error"] and stick["partitions"][2]["fstype"] == "ext4"
    assert stick["partitions"][0]["uuid"] == "e3d86ca6-8e46-4fdf-9ba4-84d55170cb23"
    assert stick["partition_table"]["id"] == "72e9f620-faa6-4281-859d-bf5395170254"
    assert [(n["name"], n["virtual"]) for n in m["nics"]] == [("eno1", False), ("eno2", False), ("virbr0", True)]
    assert m["nics"][0]["addresses"] == ["10.0.0.5/24"]  # link-local left out


def test_live_label_marks_the_boot_medium_when_root_is_not_a_disk():
    raw = _raw("server-lvm")
    raw["root"] = {"source": "overlay", "majmin": "0:33"}
    assert not any(d["boot_medium"] for d in parse_machine(raw)["disks"])
    raw["lsblk"]["blockdevices"][3]["children"][0]["partlabel"] = "hypercore-live"
    raw["sfdisk"]["sdd"]["partitiontable"]["partitions"][0]["name"] = "hypercore-live"
    marked = [d["name"] for d in parse_machine(raw)["disks"] if d["boot_medium"]]
    assert marked == ["sdd"]


@pytest.mark.parametrize("path", sorted(MACHINES.glob("*.json")), ids=lambda p: p.name)
def test_recorded_machines_have_the_parsers_shape(path):
    recorded = json.loads(path.read_text())
    parsed = parse_machine(_raw("server-lvm"))
    assert set(recorded) == set(parsed)
    disk_keys, part_keys = set(parsed["disks"][0]), set(parsed["disks"][3]["partitions"][0])
    for d in recorded["disks"]:
        assert set(d) == disk_keys, d["name"]
        for p in d["partitions"]:
            assert set(p) == part_keys, p["name"]
    assert sum(d["boot_medium"] for d in recorded["disks"]) == 1


def test_partition_paths():
    assert partition_path("/dev/sda", 3) == "/dev/sda3"
    assert partition_path("/dev/nvme0n1", 3) == "/dev/nvme0n1p3"
    assert partition_path("/dev/loop7", 1) == "/dev/loop7p1"
