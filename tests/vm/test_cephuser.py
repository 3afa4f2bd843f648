"""Which cephx client the VM services act as (admin, or client.diskless on a diskless node)."""

from __future__ import annotations

from hypercore import cephuser, storage_rbd
from hypercore.definition import RbdDisk


def test_admin_unless_told_otherwise(monkeypatch, tmp_path):
    monkeypatch.delenv("HYPERCORE_CEPH_USER", raising=False)
    monkeypatch.setattr(cephuser, "USER_FILE", tmp_path / "ceph-user")
    assert cephuser.default_user() == "admin"
    assert storage_rbd.ls_argv("vm-pool")[:3] == ["rbd", "--id", "admin"]


def test_the_file_a_diskless_node_writes_then_the_environment(monkeypatch, tmp_path):
    monkeypatch.delenv("HYPERCORE_CEPH_USER", raising=False)
    (tmp_path / "ceph-user").write_text("diskless\n")
    monkeypatch.setattr(cephuser, "USER_FILE", tmp_path / "ceph-user")
    assert storage_rbd.create_argv("vm-pool/a", 2**30)[:3] == ["rbd", "--id", "diskless"]
    assert storage_rbd.qemu_target("vm-pool/a") == "rbd:vm-pool/a:id=diskless"
    assert RbdDisk(pool="vm-pool", image="a").user == "diskless"
    monkeypatch.setenv("HYPERCORE_CEPH_USER", "other")
    assert cephuser.default_user() == "other"
    # An explicit user always wins.
    assert storage_rbd.ls_argv("vm-pool", user="admin")[:3] == ["rbd", "--id", "admin"]
