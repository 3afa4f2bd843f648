"""ceph.mode: join -- this node's OSDs into an existing cluster, then the
single-node decisions undone."""

from __future__ import annotations

import json
import os

import pytest
import stat

from tests.firstboot.conftest import JOIN_KEY

from hypercore_installer.firstboot import render
from hypercore.cluster.sizing import HOST_RULE
from hypercore.cluster.sizing import grow_plan as redundancy_plan


def test_join_writes_conf_and_keys_then_adds_the_osds(join_node):
    rc, out = join_node.run()
    assert rc == 0, out
    h = join_node.host
    conf = join_node.file("etc/ceph/ceph.conf").read_text()
    # Every monitor, this node's own (joined by itself) included.
    assert "mon_host = 10.0.2.10,10.0.2.15" in conf
    assert "fsid = 6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f" in conf   # learnt from the monitors
    assert "public_network = 10.0.2.0/24" in conf
    admin = join_node.file("etc/ceph/ceph.client.admin.keyring")
    assert render.parse_keyring(admin.read_text()) == {"client.admin": JOIN_KEY}
    boot = join_node.file("var/lib/ceph/bootstrap-osd/ceph.keyring")
    assert "client.bootstrap-osd" in render.parse_keyring(boot.read_text())
    for f in (admin, boot):
        assert stat.S_IMODE(os.stat(f).st_mode) == 0o600
    assert h.ran("ceph-volume", "lvm", "create")
    # Its own monitor (the cluster had one), from the cluster's monmap and mon. key, and a manager.
    assert h.ran("ceph", "--connect-timeout", "30", "mon", "getmap", "-o", join_node.file("var/lib/ceph/tmp/hypercore-monmap").as_posix())
    mkfs = h.ran("ceph-mon", "--cluster", "ceph", "--mkfs", "-i", "node1")
    assert mkfs and "--setuser" in mkfs[0]
    assert not h.ran("monmaptool")                               # not a new monitor map
    assert not join_node.file("var/lib/ceph/tmp/hypercore-mon-seed.keyring").exists()
    assert h.ran("systemctl", "enable", "--now", "ceph-mon@node1")
    mgr = join_node.file("var/lib/ceph/mgr/ceph-node1/keyring")
    assert "mgr.node1" in render.parse_keyring(mgr.read_text()) and stat.S_IMODE(os.stat(mgr).st_mode) == 0o600
    assert h.owner(mgr.as_posix()) == "ceph"
    assert h.ran("systemctl", "enable", "--now", "ceph-mgr@node1")
    # Two hosts now: pools and defaults leave single-node mode.
    assert h.ran("ceph", "--connect-timeout", "30", "osd", "crush", "rule", "create-replicated", HOST_RULE,
                 "default", "host")
    assert ("global", "osd_pool_default_size") in h.config and h.config[("global", "osd_pool_default_size")] == "2"
    assert JOIN_KEY not in out
    assert "HEALTH_OK" in out


def test_no_monitor_here_when_the_cluster_has_three(join_node):
    join_node.host.mons = ["node0", "node2", "node3"]
    rc, out = join_node.run()
    assert rc == 0, out
    assert "the cluster has 3 monitors (node0, node2, node3): none on this node" in out
    assert not join_node.host.ran("ceph-mon") and not join_node.host.ran("systemctl", "enable", "--now", "ceph-mon@node1")
    assert join_node.host.ran("systemctl", "enable", "--now", "ceph-mgr@node1")


def test_a_name_the_cluster_already_has_is_refused_before_anything(join_node):
    join_node.host.namesake = True
    rc, out = join_node.run()
    assert rc == 1
    assert "a node named node1 is already in the cluster (a host with OSDs)" in out
    assert "hypercore cluster remove node1" in out
    h = join_node.host
    assert not h.ran("ceph-volume", "lvm", "create") and not h.ran("ceph-mon")
    assert not any(c[3:5] == ["auth", "get-or-create"] for c in h.calls)


def test_a_wrong_fsid_is_refused(tmp_path, monkeypatch):
    from tests.firstboot.conftest import ANSWERS_JOIN, Node
    monkeypatch.setenv("INVOCATION_ID", "x")
    answers = {**ANSWERS_JOIN, "ceph": {**ANSWERS_JOIN["ceph"], "fsid": "00000000-0000-4000-8000-000000000000"}}
    node = Node(tmp_path / "r", answers)
    rc, out = node.run()
    assert rc == 1
    assert "belong to cluster 6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f, not 00000000" in out
    assert not node.host.ran("ceph-volume", "lvm", "create")


POOLS = {"vm-pool": {"pool_name": "vm-pool", "size": 1, "type": 1},
         "device_health_metrics": {"pool_name": "device_health_metrics", "size": 1, "type": 1},
         "ec": {"pool_name": "ec", "size": 3, "type": 3}}


def test_one_host_changes_nothing():
    assert redundancy_plan(1, POOLS, 1) == []


def test_two_hosts_two_copies_on_different_hosts_and_the_warning_back_on():
    plan = redundancy_plan(2, POOLS, 4)
    assert ["osd", "pool", "set", "vm-pool", "crush_rule", HOST_RULE] in plan
    assert ["osd", "pool", "set", "vm-pool", "size", "2"] in plan
    assert ["osd", "pool", "set", "vm-pool", "min_size", "1"] in plan
    assert ["osd", "pool", "set", "device_health_metrics", "size", "2"] in plan
    assert not any("ec" in c for c in plan)                       # erasure-coded pools untouched
    for who, option, _ in render.SINGLE_NODE_SETTINGS:
        assert ["config", "rm", who, option] in plan               # POOL_NO_REDUNDANCY warns again
    assert ["config", "set", "global", "osd_pool_default_size", "2"] in plan
    assert ["config", "set", "global", "osd_pool_default_crush_rule", "4"] in plan


def test_three_hosts_three_copies_and_ceph_defaults():
    plan = redundancy_plan(5, {**POOLS, "big": {"pool_name": "big", "size": 3, "type": 1}}, 4)
    assert ["osd", "pool", "set", "vm-pool", "size", "3"] in plan
    assert ["osd", "pool", "set", "vm-pool", "min_size", "2"] in plan
    assert not any(c[:4] == ["osd", "pool", "set", "big"] for c in plan)
    assert not any(c[:3] == ["config", "set", "global"] and c[3] == "osd_pool_default_size" for c in plan)


def test_a_failing_key_fetch_shows_no_key(join_node):
    join_node.host.auth_get_fails = True
    rc, out = join_node.run()
    assert rc == 1
    assert "FAILED at step 4/12 join-cluster" in out and "exited 13" in out
    assert "AQBvaBFZ" not in out
    assert "AQBvaBFZ" not in join_node.file("var/lib/hypercore/firstboot/failure.json").read_text()


# --- ceph.join.token ----------------------------------------------------------

import re  # noqa: E402
import time  # noqa: E402

import yaml  # noqa: E402

from hypercore.cluster import token as tokmod  # noqa: E402

FSID = "6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f"
ENTITY = "client.join-00aa11bb22cc"
# The ceph commands' positional argument names (Ceph 16 MonCommands.h), to match caps against.
ARGS = {"fsid": [], "status": [], "osd dump": [], "osd tree": [], "osd pool ls": ["detail"],
        "auth get": ["entity"], "osd crush rule create-replicated": ["name", "root", "type"],
        "osd crush rule dump": ["name"], "osd pool set": ["pool", "var", "val"],
        "config set": ["who", "name", "value"], "config rm": ["who", "name"]}


def allowed(args: list[str], grants: list[str]) -> bool:
    """Would a mon with these `allow command` grants run `ceph ARGS`?"""
    prefix = max((p for p in ARGS if args[:len(p.split())] == p.split()), key=len, default=None)
    if prefix is None:
        return False
    values = dict(zip(ARGS[prefix], args[len(prefix.split()):]))
    for grant in grants:
        m = re.fullmatch(r'allow command "([^"]+)"(?: with (.*))?', grant)
        if not m or m.group(1) != prefix:
            continue
        cons = re.findall(r'(\w+)(?:=(\S+)| regex "([^"]+)")', m.group(2) or "")
        if all((values.get(k) == eq) if eq else re.search(rx, values.get(k, "")) for k, eq, rx in cons):
            return True
    return False


def token_node(tmp_path, monkeypatch, expires=None, **ceph):
    from tests.firstboot.conftest import ANSWERS_NEW, Node
    monkeypatch.setenv("INVOCATION_ID", "x")
    tok = tokmod.encode(tokmod.Token(fsid=FSID, mons=["10.0.2.10", "10.0.2.11"], entity=ENTITY, key=JOIN_KEY,
                                     expires=expires or int(time.time()) + 3600))
    answers = {**ANSWERS_NEW, "ceph": {"mode": "join", "join": {"token": tok}, "osd_disks": ["/dev/vdb"], **ceph}}
    node = Node(tmp_path / "r", answers)
    node.host.pools = {"vm-pool": {"pool_name": "vm-pool", "size": 1, "min_size": 1, "type": 1}}
    return node, tok


def test_a_token_is_used_once_for_the_admin_key(tmp_path, monkeypatch):
    from tests.firstboot.fakes import CLUSTER_KEYS
    node, tok = token_node(tmp_path, monkeypatch)
    rc, out = node.run()
    assert rc == 0, out
    h = node.host
    conf = node.file("etc/ceph/ceph.conf").read_text()
    assert "mon_host = 10.0.2.10,10.0.2.15" in conf and f"fsid = {FSID}" in conf
    admin = node.file("etc/ceph/ceph.client.admin.keyring")
    assert render.parse_keyring(admin.read_text()) == {"client.admin": CLUSTER_KEYS["client.admin"]}
    assert stat.S_IMODE(os.stat(admin).st_mode) == 0o600
    # The join identity asked for the fsid and the admin key, nothing else, and is gone.
    used = [args for name, args in h.identities if name == ENTITY]
    assert [a[:3] for a in used] == [["fsid", "--format", "json"], ["auth", "get", "client.admin"]]
    for args in used:
        assert allowed(args[:-2] if args[-2:] == ["--format", "json"] else args, tokmod.JOIN_MON_CAPS), args
    assert h.deleted == [ENTITY]
    assert not node.file(f"etc/ceph/ceph.{ENTITY}.keyring").exists()
    assert h.ran("ceph-volume", "lvm", "create")
    assert h.pools["vm-pool"]["size"] == 2
    for secret in (JOIN_KEY, tok, CLUSTER_KEYS["client.admin"], CLUSTER_KEYS["mon."]):
        assert secret not in out
        assert not any(secret in " ".join(c) for c in h.calls)


def test_the_caps_matcher_refuses_what_the_caps_do_not_grant():
    g = tokmod.JOIN_MON_CAPS
    assert allowed(["fsid"], g) and allowed(["auth", "get", "client.admin"], g)
    assert not allowed(["auth", "get", "mon."], g)
    assert not allowed(["osd", "pool", "set", "vm-pool", "size", "2"], g)
    assert not allowed(["config", "set", "global", "auth_allow_insecure_global_id_reclaim", "true"], g)
    assert not allowed(["osd", "pool", "delete", "vm-pool"], g)


def test_an_expired_token_stops_before_anything(tmp_path, monkeypatch):
    node, tok = token_node(tmp_path, monkeypatch, expires=int(time.time()) - 3600)
    rc, out = node.run()
    assert rc == 1
    line = [x for x in out.splitlines() if "FAILED" in x][0]
    assert "join-conf" in line and "the join token expired at" in line and "5 minutes" in line
    assert node.host.identities == [] and not node.host.ran("ceph-volume", "lvm", "create")
    assert not node.file(f"etc/ceph/ceph.{ENTITY}.keyring").exists()


def test_a_refused_token_creates_no_osd_and_resumes_with_a_new_one(tmp_path, monkeypatch):
    node, tok = token_node(tmp_path, monkeypatch)
    node.host.refused_names.add(ENTITY)                   # revoked, swept, or from another cluster
    rc, out = node.run()
    assert rc == 1
    assert "refused the join token or cannot be reached" in out and "hypercore cluster token" in out
    assert not node.host.ran("ceph-volume", "lvm", "create")
    assert JOIN_KEY not in out
    # The operator puts a new token in the answers and starts the bootstrap again.
    new = tokmod.Token(fsid=FSID, mons=["10.0.2.10"], entity="client.join-99dd88ee77ff", key=JOIN_KEY,
                       expires=int(time.time()) + 3600)
    answers = yaml.safe_load(node.file("etc/hypercore/answers.yaml").read_text())
    answers["ceph"]["join"]["token"] = tokmod.encode(new)
    node.file("etc/hypercore/answers.yaml").write_text(yaml.safe_dump(answers))
    rc, out = node.run()
    assert rc == 0, out
    assert node.host.ran("ceph-volume", "lvm", "create")
    assert [name for name, _ in node.host.identities if name.startswith("client.join-")][-1] == new.entity
    assert node.host.deleted == [new.entity]
    assert not node.file(f"etc/ceph/ceph.{ENTITY}.keyring").exists()


# --- clocks -------------------------------------------------------------------

from hypercore_installer.firstboot import monitors  # noqa: E402


def test_every_node_serves_time_and_a_joining_one_follows_the_monitors(join_node, tmp_path):
    from tests.firstboot.conftest import ANSWERS_NEW, Node
    new_node = Node(tmp_path / "new", ANSWERS_NEW)
    rc, out = join_node.run()
    assert rc == 0, out
    served = join_node.file("etc/chrony/conf.d/hypercore.conf").read_text()
    assert "\nallow 10.0.2.0/24\nlocal stratum 10\n" in served, served
    assert "\nallow\n" not in served, served
    src = join_node.file("etc/chrony/sources.d/hypercore-monitors.sources").read_text()
    assert "server 10.0.2.10 iburst prefer\nserver 10.0.2.11 iburst prefer\n" in src
    assert "this clock follows 10.0.2.10 (NTP)" in out
    # The clock is checked before the cluster hears of this node.
    calls = [" ".join(c) for c in join_node.host.calls]
    first_chrony = next(i for i, c in enumerate(calls) if c.startswith("chronyc"))
    first_ceph = next(i for i, c in enumerate(calls) if c.startswith("ceph "))
    assert first_chrony < first_ceph
    rc, out = new_node.run()
    assert rc == 0, out
    assert new_node.file("etc/chrony/conf.d/hypercore.conf").exists()
    assert not new_node.file("etc/chrony/sources.d/hypercore-monitors.sources").exists()


def test_time_is_served_to_the_ceph_and_netboot_client_networks_only():
    from types import SimpleNamespace
    from hypercore_installer.firstboot import steps_time

    class Host:
        def run(self, argv, ok=(0,)):
            assert argv == ["ip", "-j", "addr", "show", "dev", "enp5s0"], argv
            return SimpleNamespace(stdout=json.dumps([{"ifname": "enp5s0", "addr_info": [
                {"local": "192.168.60.1", "prefixlen": 24, "scope": "global"},
                {"local": "fe80::1", "prefixlen": 64, "scope": "link"}]}]))

    def ctx(netboot):
        return SimpleNamespace(facts={"network": "10.0.2.0/24"}, answers={"netboot": netboot}, host=Host())

    dhcp = {"enabled": True, "interface": "enp4s0", "address": "192.168.50.1/24"}
    assert steps_time.allowed_networks(ctx(dhcp)) == ["10.0.2.0/24", "192.168.50.0/24"]
    assert steps_time.allowed_networks(ctx({"enabled": True, "interface": "enp5s0"})) == \
        ["10.0.2.0/24", "192.168.60.0/24"]
    assert steps_time.allowed_networks(ctx({"enabled": False, "address": "192.168.50.1/24"})) == ["10.0.2.0/24"]
    conf = steps_time.server_conf(["10.0.2.0/24", "192.168.50.0/24"])
    assert [line for line in conf.splitlines() if not line.startswith("#")] == \
        ["allow 10.0.2.0/24", "allow 192.168.50.0/24", "local stratum 10"]


def test_a_clock_not_yet_following_measures_at_once_instead_of_at_the_next_poll(join_node):
    join_node.host.clock_polls_unsynced = 2
    rc, out = join_node.run()
    assert rc == 0, out
    calls = [" ".join(c) for c in join_node.host.calls if c[0] == "chronyc"]
    assert calls == ["chronyc -c -n tracking", "chronyc burst 4/4"] * 2 + ["chronyc -c -n tracking"]


def test_a_clock_that_does_not_follow_stops_the_join_before_the_cluster(join_node):
    join_node.host.clock_polls_unsynced = 10**6
    rc, out = join_node.run()
    assert rc == 1
    line = [x for x in out.splitlines() if "FAILED" in x][0]
    assert "step 3/12 time" in line and "does not follow the monitors (10.0.2.10, 10.0.2.11)" in line
    assert "offset -372.500 s" in line and "UDP port 123" in line
    assert not any(c[0] == "ceph" for c in join_node.host.calls)


@pytest.mark.parametrize("mon, host", [("10.0.2.15", "10.0.2.15"), ("10.0.2.15:6789", "10.0.2.15"),
                                       ("[fd00::1]:3300", "fd00::1"), ("fd00::1", "fd00::1"),
                                       ("mon1.example", "mon1.example")])
def test_monitor_addresses_as_ntp_servers(mon, host):
    assert monitors.host_of(mon) == host


@pytest.mark.parametrize("mon, where", [("10.0.2.15", [("10.0.2.15", 3300), ("10.0.2.15", 6789)]),
                                        ("10.0.2.15:6789", [("10.0.2.15", 6789)]),
                                        ("[fd00::1]:3300", [("fd00::1", 3300)]),
                                        ("fd00::1", [("fd00::1", 3300), ("fd00::1", 6789)]),
                                        ("mon1.example", [("mon1.example", 3300), ("mon1.example", 6789)])])
def test_where_a_monitor_listens(mon, where):
    assert monitors.endpoints(mon) == where


# --- a wrong monitor address ---------------------------------------------------

def test_a_wrong_monitor_address_stops_in_its_own_words_before_the_cluster(join_node):
    join_node.host.unreachable = {"10.0.2.10", "10.0.2.11"}
    rc, out = join_node.run()
    assert rc == 1
    line = [x for x in out.splitlines() if "FAILED" in x][0]
    assert "step 3/12 time" in line, line
    assert "no monitor of the cluster answers at 10.0.2.10:3300, 10.0.2.10:6789, 10.0.2.11:6789 (TCP)" in line, line
    assert "ceph.mon_hosts and ceph.key" in out and "systemctl restart hypercore-firstboot" in out, out
    assert "Traceback" not in out
    # Nothing asked of the cluster, no clock set from it.
    assert not any(c[0] in ("ceph", "chronyc") for c in join_node.host.calls)
    assert not join_node.file("etc/chrony/sources.d/hypercore-monitors.sources").exists()


def test_a_corrected_monitor_address_resumes_the_join(join_node):
    """The operator mends ceph.mon_hosts in the answers and restarts: ceph.conf names the new address."""
    join_node.host.unreachable = {"10.0.2.10", "10.0.2.11", "10.0.2.99"}
    answers = yaml.safe_load(join_node.file("etc/hypercore/answers.yaml").read_text())
    good = answers["ceph"]["mon_hosts"]
    answers["ceph"]["mon_hosts"] = ["10.0.2.99"]
    join_node.file("etc/hypercore/answers.yaml").write_text(yaml.safe_dump(answers))
    rc, out = join_node.run()
    assert rc == 1 and "answers at 10.0.2.99:3300, 10.0.2.99:6789" in out, out
    assert "10.0.2.99" in join_node.file("etc/ceph/ceph.conf").read_text()
    join_node.host.unreachable = set()
    answers["ceph"]["mon_hosts"] = good
    join_node.file("etc/hypercore/answers.yaml").write_text(yaml.safe_dump(answers))
    rc, out = join_node.run()
    assert rc == 0, out
    assert "10.0.2.99" not in join_node.file("etc/ceph/ceph.conf").read_text()
    assert join_node.host.ran("ceph-volume", "lvm", "create")


# --- ceph.join.request: asked for, approved by an operator --------------------

def request_node(tmp_path, monkeypatch, url):
    from tests.firstboot.conftest import ANSWERS_NEW, Node
    monkeypatch.setenv("INVOCATION_ID", "x")
    answers = {**ANSWERS_NEW, "ceph": {"mode": "join", "join": {"request": url}, "osd_disks": ["/dev/vdb"]}}
    node = Node(tmp_path / "r", answers)
    node.host.pools = {"vm-pool": {"pool_name": "vm-pool", "size": 1, "min_size": 1, "type": 1}}
    return node


def test_an_approved_request_joins_with_the_sealed_token(tmp_path, monkeypatch):
    """The node's key is made first (as at its first try); the operator has
    approved its code; the bootstrap fetches the answer from the real HTTP
    server, opens it, and joins with the token exactly as with a typed one."""
    from hypercore.cluster import approval
    from hypercore_netboot.http import serve_in_thread
    store = tmp_path / "join"
    (tmp_path / "http").mkdir()
    srv = serve_in_thread(str(tmp_path / "http"), join_dir=store)
    try:
        url = f"http://127.0.0.1:{srv.server_address[1]}"
        node = request_node(tmp_path, monkeypatch, url)
        keys = approval.Keys.load_or_create(node.paths.join_request_key)
        approval.receive(store, approval.request_body("node1", "node", keys), "127.0.0.1")
        tok = tokmod.encode(tokmod.Token(fsid=FSID, mons=["10.0.2.10"], entity=ENTITY, key=JOIN_KEY,
                                         expires=int(time.time()) + 3600))
        approval.approve(store, approval.find(store, keys.code), {"kind": "node", "token": tok})
        rc, out = node.run()
    finally:
        srv.shutdown()
        srv.server_close()
    assert rc == 0, out
    assert f"join request {keys.code} approved" in out
    assert node.host.deleted == [ENTITY] and node.host.ran("ceph-volume", "lvm", "create")
    # The token is spent and the request key is no longer needed: both gone; nothing secret was printed.
    assert not os.path.exists(node.paths.approved_token) and not os.path.exists(node.paths.join_request_key)
    assert tok not in out and JOIN_KEY not in out


def test_status_shows_the_code_while_the_node_waits(tmp_path, monkeypatch):
    from hypercore_installer.firstboot.main import status_text
    node = request_node(tmp_path, monkeypatch, "http://127.0.0.1:9")       # nobody answers there
    ctx, out = node.context()
    ctx.facts["host"] = "node1"
    from hypercore_installer.firstboot import steps_join
    with pytest.raises(Exception) as e:
        steps_join.write_join_conf(ctx)          # a mistyped address: the fake clock passes the 120 s at once
    code = ctx.facts["join_request"]["code"]
    assert "nobody answers join requests at http://127.0.0.1:9" in str(e.value), e.value
    assert "ceph.join.request" in e.value.hint
    assert f"join request {code}: cannot reach http://127.0.0.1:9" in out.getvalue()   # nothing was sent
    text = status_text(ctx)
    assert f"Join request {code}" in text and "SHA256:" in text
