"""rbd and qemu-img command lines (no Ceph needed), and backend choice."""

from __future__ import annotations

import pytest

from hypercore import storage, storage_file as sf, storage_rbd as sr
from hypercore.definition import RbdDisk
from hypercore.errors import UserError

B = ["rbd", "--id", "admin", "--client_mount_timeout=15"]


def test_rbd_base_with_conf_and_user():
    assert sr.base("hyper", "/etc/ceph/other.conf") == ["rbd", "--id", "hyper", "-c", "/etc/ceph/other.conf",
                                                        "--client_mount_timeout=15"]
    assert sr.disk_base(RbdDisk(pool="p", image="i", conf="/c.conf")) == sr.base("admin", "/c.conf")


def test_rbd_create_sizes_in_mib():
    assert sr.create_argv("vm-pool/web-disk0", 20 << 30) == B + ["create", "--size", "20480M", "vm-pool/web-disk0"]


@pytest.mark.parametrize("action,tail", [
    ("create", ["snap", "create", "vm-pool/web@s1"]),
    ("protect", ["snap", "protect", "vm-pool/web@s1"]),
    ("unprotect", ["snap", "unprotect", "vm-pool/web@s1"]),
    ("rollback", ["snap", "rollback", "--no-progress", "vm-pool/web@s1"]),
    ("rm", ["snap", "rm", "--no-progress", "vm-pool/web@s1"]),
])
def test_rbd_snapshots(action, tail):
    assert sr.snap_argv(action, "vm-pool/web", "s1") == B + tail


def test_rbd_snap_ls_and_purge():
    assert sr.snap_argv("ls", "vm-pool/web") == B + ["snap", "ls", "--format", "json", "vm-pool/web"]
    assert sr.snap_argv("purge", "vm-pool/web") == B + ["snap", "purge", "--no-progress", "vm-pool/web"]


def test_rbd_clone_children_rm_ls():
    assert sr.clone_argv("vm-pool/debian", "golden", "vm-pool/web-disk0") == \
        B + ["clone", "vm-pool/debian@golden", "vm-pool/web-disk0"]
    assert sr.children_argv("vm-pool/debian", "golden") == B + ["children", "--format", "json", "vm-pool/debian@golden"]
    assert sr.rm_argv("vm-pool/web-disk0") == B + ["rm", "--no-progress", "vm-pool/web-disk0"]
    assert sr.ls_argv("vm-pool") == B + ["ls", "--format", "json", "vm-pool"]


def test_rbd_import_goes_through_qemu_img():
    assert sr.import_argv("/srv/disk.vmdk", "vmdk", "vm-pool/debian", conf="/etc/ceph/ceph.conf") == [
        "qemu-img", "convert", "-f", "vmdk", "-O", "raw", "/srv/disk.vmdk",
        "rbd:vm-pool/debian:id=admin:conf=/etc/ceph/ceph.conf"]


def test_qemu_img_argv():
    assert sf.create_argv("/d.qcow2", 1 << 30) == ["qemu-img", "create", "-q", "-f", "qcow2", "/d.qcow2", str(1 << 30)]
    assert sf.overlay_argv("/top.qcow2", "/base.raw", "raw") == [
        "qemu-img", "create", "-q", "-f", "qcow2", "-b", "/base.raw", "-F", "raw", "/top.qcow2"]
    assert sf.snapshot_argv("create", "/d.qcow2", "s1") == ["qemu-img", "snapshot", "-c", "s1", "/d.qcow2"]
    assert sf.snapshot_argv("apply", "/d.qcow2", "s1") == ["qemu-img", "snapshot", "-a", "s1", "/d.qcow2"]
    assert sf.snapshot_argv("delete", "/d.qcow2", "s1") == ["qemu-img", "snapshot", "-d", "s1", "/d.qcow2"]
    assert sf.info_argv("/d.qcow2", chain=True) == ["qemu-img", "info", "--output=json", "-U", "--backing-chain", "/d.qcow2"]
    assert sf.convert_argv("/a.vmdk", "vmdk", "/b.qcow2", "qcow2") == [
        "qemu-img", "convert", "-f", "vmdk", "-O", "qcow2", "/a.vmdk", "/b.qcow2"]


def test_backend_choice(monkeypatch):
    monkeypatch.delenv("HYPERCORE_STORAGE", raising=False)
    monkeypatch.setattr(sr, "available", lambda pool: (False, "the rbd tool is not installed"))
    b = storage.choose("auto")
    assert b.name == "file" and "Ceph is not available: the rbd tool is not installed" == b.reason
    with pytest.raises(UserError) as e:
        storage.choose("rbd")
    assert "Ceph RBD storage is not available" in e.value.message
    monkeypatch.setattr(sr, "available", lambda pool: (True, "Ceph pool vm-pool is reachable"))
    assert storage.choose(None).name == "rbd"
    assert storage.choose("file").name == "file"
    monkeypatch.setenv("HYPERCORE_STORAGE", "file")
    assert storage.choose(None).name == "file"


def test_unprotected_rbd_snapshot_cannot_be_cloned(monkeypatch):
    from hypercore import clones
    monkeypatch.setattr(sr, "snapshots", lambda spec, user, conf: [{"name": "s1", "protected": "false"}])
    with pytest.raises(UserError) as e:
        clones._check_rbd_snapshot(RbdDisk(pool="vm-pool", image="web-disk0"), "s1", "web")
    assert "is not protected" in e.value.message
    assert "rbd snap protect vm-pool/web-disk0@s1" in e.value.hint
    with pytest.raises(UserError) as e:
        clones._check_rbd_snapshot(RbdDisk(pool="vm-pool", image="web-disk0"), "nope", "web")
    assert "has no snapshot 'nope'" in e.value.message
    monkeypatch.setattr(sr, "snapshots", lambda spec, user, conf: [{"name": "s1", "protected": "true"}])
    clones._check_rbd_snapshot(RbdDisk(pool="vm-pool", image="web-disk0"), "s1", "web")


def test_rbd_clone_of_a_vm_runs_snap_protect_clone(monkeypatch, tmp_path):
    """clone without @SNAPSHOT: a clone-NEW snapshot is made, protected and cloned."""
    from hypercore import clones, definition
    from hypercore.definition import VMDefinition
    from hypercore.state import StateDir
    st = StateDir(tmp_path)
    definition.save(VMDefinition(name="web", memory_mb=64, cpus=1,
                                 disks=(RbdDisk(pool="vm-pool", image="web-disk0", owned=True),)), st.definition("web"))
    calls = []
    monkeypatch.setattr(sr, "require_image", lambda d: {})
    monkeypatch.setattr(sr, "rbd", lambda argv: calls.append(argv[len(B):]))
    out = clones.clone(st, "web", "web2")
    assert calls == [["snap", "create", "vm-pool/web-disk0@clone-web2"],
                     ["snap", "protect", "vm-pool/web-disk0@clone-web2"],
                     ["clone", "vm-pool/web-disk0@clone-web2", "vm-pool/web2-disk0"]]
    assert "linked, nothing copied" in out[0]
    clone = definition.load(st.definition("web2"))
    assert clone.disks == (RbdDisk(pool="vm-pool", image="web2-disk0", owned=True),)
    assert clone.mac != definition.load(st.definition("web")).mac
