"""Fixtures: a node's root directory as the installer leaves it, and the fake
cluster the steps talk to."""

from __future__ import annotations

import io
import json
import os
from pathlib import Path

import pytest
import yaml

from hypercore_installer.firstboot.main import make_context
from hypercore_installer.firstboot.paths import Paths
from tests.firstboot.fakes import FakeCluster

ANSWERS_NEW = {
    "version": 1,
    "target": {"path": "/dev/vda"},
    "hostname": "node1.lab.example.org",
    "network": {"mode": "dhcp"},
    "root": {"ssh_keys": ["ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIKq0n4lJd0PpX8d5f5v0lG3u9x1y2z3A4b5c6d7e8f9g t@t"]},
    "ceph": {"mode": "new", "osd_disks": ["/dev/vdb"]},
}
JOIN_KEY = "AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A=="
ANSWERS_JOIN = {**ANSWERS_NEW, "ceph": {"mode": "join", "mon_hosts": ["10.0.2.10", "10.0.2.11:6789"],
                                        "key": JOIN_KEY, "osd_disks": ["/dev/vdb"]}}
INSTALL_RECORD = {
    "installed": "2026-11-22T10:00:00Z",
    "disks": {"target": {"path": "/dev/vda", "name": "vda", "serial": None, "links": []},
              "data": [],
              "osd": [{"path": "/dev/vdb", "name": "vdb", "model": None, "serial": "HCDISK0", "wwn": None,
                       "size": 8589934592, "transport": "virtio",
                       "links": ["/dev/disk/by-id/virtio-HCDISK0"]}]},
    "data_filesystem_uuid": "0b8c2f5e-1111-4222-8333-944455556666",
    "root_filesystem_uuid": "1c9d3a6f-1111-4222-8333-944455556666",
    "machine_id": "0123456789abcdef0123456789abcdef",
}


def make_root(root: Path, answers: dict, record: dict | None = INSTALL_RECORD) -> Paths:
    for d in ("etc/hypercore", "etc/ceph", "var/lib/ceph/tmp", "var/lib/ceph/mon", "var/lib/ceph/mgr",
              "var/lib/ceph/bootstrap-osd", "dev"):
        (root / d).mkdir(parents=True, exist_ok=True)
    (root / "etc/hypercore/answers.yaml").write_text(yaml.safe_dump(answers))
    os.chmod(root / "etc/hypercore/answers.yaml", 0o600)
    if record is not None:
        (root / "etc/hypercore/install.json").write_text(json.dumps(record))
    (root / "dev/console").write_text("")
    return Paths(str(root))


class Node:
    """A root directory, the fake cluster, and a way to run the bootstrap."""

    def __init__(self, root: Path, answers: dict, record=INSTALL_RECORD):
        self.root = root
        self.paths = make_root(root, answers, record)
        self.host = FakeCluster(str(root))

    def context(self):
        out = io.StringIO()
        return make_context(self.paths, host=self.host, out=out), out

    def run(self) -> tuple[int, str]:
        from hypercore_installer.firstboot import engine
        ctx, out = self.context()
        mode = ctx.facts.get("mode") or ctx.answers["ceph"]["mode"]
        rc = engine.run_steps(ctx, engine.steps_for(mode))
        return rc, out.getvalue()

    def file(self, rel: str) -> Path:
        return self.root / rel


@pytest.fixture
def new_node(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOCATION_ID", "test")  # the report goes to stdout only
    return Node(tmp_path / "root", ANSWERS_NEW)


@pytest.fixture
def join_node(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOCATION_ID", "test")
    return Node(tmp_path / "root", ANSWERS_JOIN)
