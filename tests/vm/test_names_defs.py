"""Names, sizes, DISK arguments and the VM definition schema (pure logic)."""

from __future__ import annotations

import json
from dataclasses import fields
from pathlib import Path

import pytest

from hypercore import definition, diskspec, names
from hypercore.definition import FileDisk, Kernel, Network, RbdDisk, Shared, VMDefinition
from hypercore.errors import UserError
from hypercore.sizes import GiB, MiB, parse_size

SCHEMA = Path(__file__).resolve().parents[2] / "hypercore" / "vm.schema.json"


@pytest.mark.parametrize("name", ["a", "web-1", "x" * 63, "0vm", "ubuntu-vm"])
def test_good_vm_names(name):
    assert names.vm_name(name) == name


@pytest.mark.parametrize("name", ["", "-a", "A", "web_1", "a,b", "a/b", "../x", "a b", "a;rm",
                                  "a=b", "a:b", "a@s", "x" * 64, "a.b", "é"])
def test_bad_vm_names(name):
    with pytest.raises(UserError) as e:
        names.vm_name(name)
    assert "invalid VM name" in e.value.message and e.value.hint


def test_split_at_snapshot():
    assert names.split_at_snapshot("web") == ("web", None)
    assert names.split_at_snapshot("web@before-upgrade") == ("web", "before-upgrade")
    with pytest.raises(UserError):
        names.split_at_snapshot("web@bad,snap")


@pytest.mark.parametrize("text,size", [("1M", MiB), ("512M", 512 * MiB), ("10G", 10 * GiB),
                                       ("10GiB", 10 * GiB), ("1t", 1024 * GiB), (str(MiB), MiB)])
def test_sizes(text, size):
    assert parse_size(text) == size


@pytest.mark.parametrize("text", ["", "10X", "-1G", "1.5G", "100", "1K", "G"])
def test_bad_sizes(text):
    with pytest.raises(UserError):
        parse_size(text)


def test_disk_argument_forms(tmp_path):
    d = diskspec.parse("rbd:vm-pool/ubuntu-vm:conf=/home/dev/Hypercore-1/ceph.conf")
    assert d == RbdDisk(pool="vm-pool", image="ubuntu-vm", conf="/home/dev/Hypercore-1/ceph.conf")
    assert diskspec.parse("rbd:p/i:id=hyper").user == "hyper"
    assert diskspec.parse("new:20G") == diskspec.NewDisk(20 * GiB)
    assert diskspec.parse("image:debian-12") == diskspec.FromImage("debian-12")
    f = diskspec.parse("disk.qcow2")
    assert isinstance(f, diskspec.ExistingFile) and f.path.is_absolute()


@pytest.mark.parametrize("text", ["rbd:nopool", "rbd:p/i:conf=relative.conf", "rbd:p/i:secret=x",
                                  "rbd:p/i,x", "rbd:p/../i", "new:", "new:abc", "image:Bad/Name", ""])
def test_bad_disk_arguments(text):
    with pytest.raises(UserError):
        diskspec.parse(text)


def _defn(**kw) -> VMDefinition:
    base = dict(name="web", memory_mb=1024, cpus=2,
                disks=(FileDisk(path="/var/lib/hypercore/vms/web/disk0.qcow2", format="qcow2", owned=True),))
    base.update(kw)
    return VMDefinition(**base)


def test_round_trip(tmp_path):
    d = _defn(iso="/srv/ubuntu.iso", firmware="uefi", network=Network(mode="bridge", bridge="br0"),
              shared=Shared(enabled=True, transport="9p"),
              kernel=Kernel(path="/boot/vmlinuz", initrd="/boot/initrd", cmdline="console=ttyS0"),
              disks=(FileDisk(path="/a.qcow2", format="qcow2"), RbdDisk(pool="vm-pool", image="x", conf="/etc/ceph/c.conf")))
    definition.save(d, tmp_path / "vm.yaml")
    assert definition.load(tmp_path / "vm.yaml") == d


def test_all_errors_with_paths():
    bad = {"name": "Web", "memory_mb": 1, "cpus": 0, "disks": [{"type": "file", "path": "rel.qcow2", "format": "vmdk"}],
           "network": {"mode": "bridge"}, "colour": "red"}
    with pytest.raises(UserError) as e:
        definition.from_dict(bad)
    msg = e.value.message
    for expected in ("name:", "memory_mb:", "cpus:", "disks.0.path:", "disks.0.format:", "network:",
                     "'colour' was unexpected"):
        assert expected in msg, (expected, msg)


def test_unknown_disk_type_is_named():
    with pytest.raises(UserError) as e:
        definition.from_dict({"name": "a", "memory_mb": 64, "cpus": 1, "disks": [{"type": "nfs", "path": "/x"}]})
    assert "disk type must be 'file' or 'rbd'" in e.value.message


def test_rbd_disk_missing_pool_is_named():
    with pytest.raises(UserError) as e:
        definition.from_dict({"name": "a", "memory_mb": 64, "cpus": 1, "disks": [{"type": "rbd", "image": "x"}]})
    assert "'pool' is a required property" in e.value.message


def test_schema_matches_the_dataclass():
    """The committed schema and the code must not drift apart."""
    schema = json.loads(SCHEMA.read_text())
    assert set(schema["properties"]) == {f.name for f in fields(VMDefinition)}
    assert set(schema["properties"]["network"]["properties"]) == {f.name for f in fields(Network)}
    assert set(schema["properties"]["shared"]["properties"]) == {f.name for f in fields(Shared)}
    branches = {b["properties"]["type"]["const"]: set(b["properties"]) for b in schema["$defs"]["disk"]["oneOf"]}
    assert branches["file"] == {f.name for f in fields(FileDisk)}
    assert branches["rbd"] == {f.name for f in fields(RbdDisk)}


def test_mac_is_stable_and_local():
    assert _defn().mac == _defn().mac
    assert _defn().mac.startswith("52:54:00:")
    assert _defn(name="other").mac != _defn().mac
    assert _defn(network=Network(mac="52:54:00:00:00:01")).mac == "52:54:00:00:00:01"
