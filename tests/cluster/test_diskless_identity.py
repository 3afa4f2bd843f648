"""A diskless node's own identity (hypercore/cluster/diskless.py) and what the
node does with it (hypercore_netboot/diskless.py install)."""

from __future__ import annotations

import subprocess

import pytest

from hypercore.cluster import diskless
from hypercore.errors import UserError

KEYRING = "[client.diskless-dl-525400123458]\n\tkey = AQBvaBFZAAAAABAA9VHgwCg3rWn8fMaX8KL01A==\n"
CONF = ("[global]\nfsid = a982c888-77e4-4330-9b8d-98b019a8cabb\nmon_host = 10.0.2.15\n"
        "public_network = 10.0.2.0/24\nauth_cluster_required = cephx\nauth_client_required = cephx\n"
        "osd_pool_default_size = 1\n")


class Ceph:
    def __init__(self, ns_rc=0, ns_err=""):
        self.calls, self.ns_rc, self.ns_err = [], ns_rc, ns_err

    def __call__(self, argv, check=True, **kw):
        self.calls.append(list(argv))
        if argv[:3] == ["rbd", "namespace", "create"]:
            return subprocess.CompletedProcess(argv, self.ns_rc, "", self.ns_err)
        out = (KEYRING.replace("dl-525400123458", argv[3].split("diskless-", 1)[1])
               if argv[:3] == ["ceph", "auth", "get-or-create"] else "")
        return subprocess.CompletedProcess(argv, 0, out, "")


def test_the_identity_may_use_its_own_namespace_only():
    run = Ceph()
    m = diskless.material("dl-525400123458", CONF, run=run)
    caps = ["mon", "profile rbd", "osd", "profile rbd pool=vm-pool namespace=dl-525400123458"]
    assert run.calls[0] == ["rbd", "namespace", "create", "vm-pool/dl-525400123458"]
    assert run.calls[1] == ["ceph", "auth", "get-or-create", "client.diskless-dl-525400123458", *caps]
    assert run.calls[2] == ["ceph", "auth", "caps", "client.diskless-dl-525400123458", *caps]
    assert m["user"] == "diskless-dl-525400123458" and m["namespace"] == "dl-525400123458"
    assert m["keyring"] == KEYRING
    # Only what a client needs of ceph.conf.
    assert "osd_pool_default_size" not in m["conf"] and "mon_host = 10.0.2.15" in m["conf"]


def test_a_node_that_boots_again_keeps_its_namespace():
    m = diskless.material("dl-1", CONF, run=Ceph(ns_rc=17, ns_err="rbd: failed to created namespace: (17) File exists"))
    assert m["namespace"] == "dl-1"


def test_a_failing_ceph_is_a_command_error_without_the_key():
    from hypercore.run import CommandError
    with pytest.raises(CommandError):
        diskless.material("dl-1", CONF, run=Ceph(ns_rc=1, ns_err="rbd: pool vm-pool does not exist"))


def test_the_node_installs_what_it_was_given(tmp_path, monkeypatch):
    from hypercore import cephuser
    from hypercore_netboot import diskless as client
    monkeypatch.setattr(client, "USER_FILE", tmp_path / "ceph-user")
    monkeypatch.setattr(client, "NAMESPACE_FILE", tmp_path / "rbd-namespace")
    monkeypatch.setattr(cephuser, "USER_FILE", tmp_path / "ceph-user")
    monkeypatch.setattr(cephuser, "NAMESPACE_FILE", tmp_path / "rbd-namespace")
    m = diskless.material("dl-525400123458", CONF, run=Ceph())
    etc = tmp_path / "ceph"
    assert client.install(m, etc) == "diskless-dl-525400123458"
    ring = etc / "ceph.client.diskless-dl-525400123458.keyring"
    assert ring.read_text() == KEYRING and ring.stat().st_mode & 0o777 == 0o600
    assert cephuser.default_user() == "diskless-dl-525400123458"
    assert cephuser.default_namespace() == "dl-525400123458"
    with pytest.raises(UserError, match="holds no diskless identity"):
        client.install({**m, "user": "admin"}, etc)


def test_the_server_part_of_the_menu_url():
    from hypercore_netboot.diskless import server_of
    assert server_of("http://192.168.50.1:8067/diskless/") == "http://192.168.50.1:8067"
    with pytest.raises(UserError):
        server_of("file:///etc/ceph")
