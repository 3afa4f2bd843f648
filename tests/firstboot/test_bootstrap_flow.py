"""The whole bootstrap against the fake cluster: order of the work, files and
their modes, run-once markers, resuming after a failure, no secrets shown."""

from __future__ import annotations

import json
import os
import stat

from tests.firstboot.conftest import ANSWERS_NEW, INSTALL_RECORD, Node

from hypercore_installer.firstboot import engine, render
from hypercore_installer.firstboot.main import status_text


def mode(path) -> int:
    return stat.S_IMODE(os.stat(path).st_mode)


def keys_in(node) -> list[str]:
    found = []
    for rel in ("etc/ceph/ceph.client.admin.keyring", "var/lib/ceph/bootstrap-osd/ceph.keyring",
                "var/lib/ceph/mgr/ceph-node1/keyring", "var/lib/ceph/mon/ceph-node1/keyring"):
        found += render.parse_keyring(node.file(rel).read_text()).values()
    return found


def test_new_cluster_from_start_to_ready(new_node):
    rc, out = new_node.run()
    assert rc == 0, out
    h = new_node.host
    facts = json.loads(new_node.file("var/lib/hypercore/firstboot/facts.json").read_text())
    fsid = facts["fsid"]
    assert facts["host"] == "node1" and facts["ip"] == "10.0.2.15" and facts["network"] == "10.0.2.0/24"
    assert facts["osds"] == {"/dev/disk/by-id/virtio-HCDISK0": 0}

    # ceph.conf, and the keyrings: 0600, the daemons' own owned by ceph.
    conf = new_node.file("etc/ceph/ceph.conf").read_text()
    assert f"fsid = {fsid}" in conf and "v2:10.0.2.15:3300" in conf
    assert mode(new_node.file("etc/ceph/ceph.conf")) == 0o644
    for rel in ("etc/ceph/ceph.client.admin.keyring", "var/lib/ceph/bootstrap-osd/ceph.keyring",
                "var/lib/ceph/mgr/ceph-node1/keyring"):
        assert mode(new_node.file(rel)) == 0o600, rel
    assert h.chowns[str(new_node.file("var/lib/ceph/mgr/ceph-node1/keyring"))] == "ceph"
    assert h.chowns[str(new_node.file("var/lib/ceph/mon/ceph-node1"))] == "ceph"
    # The seed keyring and the monmap are gone once the store exists.
    assert not new_node.file("var/lib/ceph/tmp/hypercore-mon-seed.keyring").exists()
    assert not new_node.file("var/lib/ceph/tmp/hypercore-monmap").exists()
    assert new_node.file("var/lib/ceph/mon/ceph-node1/done").exists()

    # The order of the work.
    mm = h.ran("monmaptool")[0]
    assert mm[mm.index("--addv"):mm.index("--addv") + 3] == [
        "--addv", "node1", "[v2:10.0.2.15:3300,v1:10.0.2.15:6789]"]
    assert mm[mm.index("--fsid") + 1] == fsid
    mkfs = h.ran("ceph-mon")[0]
    assert ["--setuser", "ceph"] == mkfs[mkfs.index("--setuser"):mkfs.index("--setuser") + 2]
    order = [" ".join(c) for c in h.calls]

    def first(text):
        return next(i for i, c in enumerate(order) if text in c)

    assert (first("monmaptool") < first("ceph-mon --cluster ceph --mkfs") < first("enable --now ceph-mon@node1")
            < first("mon enable-msgr2") < first("config assimilate-conf")
            < first("enable --now ceph-mgr@node1") < first("lvm create") < first("osd pool create vm-pool")
            < first("rbd pool init vm-pool") < first("health"))
    assert h.msgr2
    assert h.config[("mon", "auth_allow_insecure_global_id_reclaim")] == "false"
    assert h.config[("global", "osd_pool_default_size")] == "1"
    assert h.config[("global", "mon_warn_on_pool_no_redundancy")] == "false"
    assert h.config[("mon", "mon_allow_pool_size_one")] == "true"
    # The manager loads while the OSD is made; it is waited for before the pool.
    assert first("enable --now ceph-mgr@node1") < first("lvm create") < first("mgr stat") < first("pool create")
    assert h.ran("ceph-volume", "lvm", "create") == [
        ["ceph-volume", "lvm", "create", "--bluestore", "--data", "/dev/disk/by-id/virtio-HCDISK0"]]
    assert h.pools["vm-pool"]["size"] == 1 and "rbd" in h.pools["vm-pool"]["application_metadata"]
    assert ["systemctl", "enable", "ceph.target", "ceph-mon.target", "ceph-mgr.target",
            "ceph-osd.target"] in h.calls

    # The report: on stdout and above the login prompt; no key anywhere.
    issue = new_node.file("etc/issue.d/hypercore.issue").read_text()
    assert "HEALTH_OK" in issue and fsid in issue and "10.0.2.15" in issue and "create-vm" in issue
    assert "ceph -s" in out and "health: PG_AVAILABILITY" in out
    for key in keys_in(new_node):
        assert key not in out and key not in issue
    assert all(new_node.file(f"var/lib/hypercore/firstboot/{s.id}.done").exists() for s in engine.NEW)
    assert new_node.file("var/lib/hypercore/firstboot/complete").exists()
    assert mode(new_node.file("var/lib/hypercore/firstboot")) == 0o700


def test_a_second_run_is_a_no_op(new_node):
    assert new_node.run()[0] == 0
    before = len(new_node.host.calls)
    rc, out = new_node.run()
    assert rc == 0 and "nothing to do" in out
    assert len(new_node.host.calls) == before


def test_a_failed_step_stops_with_one_clear_line_and_a_rerun_resumes_there(new_node):
    h = new_node.host
    h.fail["ceph-volume lvm create"] = 1
    rc, out = new_node.run()
    assert rc == 1
    last = out.strip().splitlines()[-1]
    assert last.startswith("hypercore-firstboot: FAILED at step 9/16 osds (create an OSD on each chosen disk)")
    assert "`ceph-volume lvm create --bluestore --data /dev/disk/by-id/virtio-HCDISK0` exited 1" in last
    assert "it broke" in last and "systemctl restart hypercore-firstboot" in last
    assert "ceph-volume lvm zap --destroy /dev/disk/by-id/virtio-HCDISK0" in last
    failure = json.loads(new_node.file("var/lib/hypercore/firstboot/failure.json").read_text())
    assert failure["step"] == "osds"
    ctx, _ = new_node.context()
    text = status_text(ctx)
    assert "FAILED at step osds" in text and "mon-store" in text and "pending" in text

    mkfs_runs, mon_starts = len(h.ran("ceph-mon")), len(h.ran("systemctl", "enable", "--now", "ceph-mon@node1"))
    rc, out = new_node.run()
    assert rc == 0, out
    assert "start the monitor and wait for its quorum: done on" in out
    assert len(h.ran("ceph-mon")) == mkfs_runs            # the store is not made again
    assert len(h.ran("systemctl", "enable", "--now", "ceph-mon@node1")) == mon_starts
    assert len(h.ran("ceph-volume", "lvm", "create")) == 2  # the failed one, then the good one
    assert not new_node.file("var/lib/hypercore/firstboot/failure.json").exists()


def test_a_step_cut_short_is_redone_without_repeating_its_finished_part(new_node):
    """A crash after ceph-volume made the OSD but before the marker: the
    rerun finds the OSD in `ceph-volume lvm list` and only starts it."""
    h = new_node.host
    h.fail["ceph osd dump"] = 999          # stop at osds-up
    h.fail["ceph --connect-timeout 30 osd dump"] = 999
    ctx, _ = new_node.context()
    steps = engine.steps_for("new")
    # Run up to and including the OSD step, then forget its marker (the crash).
    for step in steps[:[s.id for s in steps].index("osds") + 1]:
        step.run(ctx)
        ctx.journal.mark_done(step.id, 0)
    os.unlink(new_node.file("var/lib/hypercore/firstboot/osds.done"))
    h.osd_running.clear()
    h.fail.clear()
    rc, out = new_node.run()
    assert rc == 0, out
    assert len(h.ran("ceph-volume", "lvm", "create")) == 1
    assert h.ran("ceph-volume", "lvm", "activate") == [["ceph-volume", "lvm", "activate", "0", "osd-fsid-0"]]


def test_keys_survive_a_rerun_of_the_keyring_step(new_node):
    ctx, _ = new_node.context()
    steps = {s.id: s for s in engine.steps_for("new")}
    for sid in ("facts", "ceph-conf", "keyrings", "mon-store"):
        steps[sid].run(ctx)
    before = keys_in(new_node)
    steps["keyrings"].run(ctx)
    assert keys_in(new_node) == before
    assert not new_node.file("var/lib/ceph/tmp/hypercore-mon-seed.keyring").exists()


def test_a_half_made_monitor_store_is_made_again(new_node):
    ctx, _ = new_node.context()
    steps = {s.id: s for s in engine.steps_for("new")}
    for sid in ("facts", "ceph-conf", "keyrings"):
        steps[sid].run(ctx)
    half = new_node.file("var/lib/ceph/mon/ceph-node1")
    half.mkdir(parents=True)
    (half / "junk").write_text("x")
    steps["mon-store"].run(ctx)
    assert not (half / "junk").exists() and (half / "done").exists()


def test_the_address_is_waited_for(new_node):
    new_node.host.ip_polls_without_address = 4
    rc, out = new_node.run()
    assert rc == 0, out
    assert len(new_node.host.ran("ip")) == 5


def test_no_address_at_all_fails_clearly(new_node):
    new_node.host.ip_polls_without_address = 10**6
    rc, out = new_node.run()
    assert rc == 1
    last = out.strip().splitlines()[-1]
    assert "FAILED at step 1/16 facts" in last and "an address on en*/eth* (dhcp)" in last
    assert "last seen: enp0s2 (no address)" in last and "networkctl status" in last


def test_health_that_never_gets_ok_names_the_checks(new_node):
    new_node.host.health_polls = [{"status": "HEALTH_WARN", "checks": {
        "MON_DISK_LOW": {"summary": {"message": "mon node1 is low on available space"}}}}] * 1000
    rc, out = new_node.run()
    assert rc == 1
    assert "health: MON_DISK_LOW: mon node1 is low on available space" in out
    assert "FAILED at step 13/16 health" in out and "ceph health detail" in out


def test_fsid_from_the_answers_is_used(tmp_path, monkeypatch):
    monkeypatch.setenv("INVOCATION_ID", "x")
    answers = {**ANSWERS_NEW, "ceph": {**ANSWERS_NEW["ceph"], "fsid": "0c8a4b1e-2f3d-4e5f-9a0b-1c2d3e4f5a6b"}}
    node = Node(tmp_path / "r", answers, INSTALL_RECORD)
    assert node.run()[0] == 0
    assert "fsid = 0c8a4b1e-2f3d-4e5f-9a0b-1c2d3e4f5a6b" in node.file("etc/ceph/ceph.conf").read_text()


def test_an_osd_of_another_cluster_is_refused(new_node):
    new_node.host.osds["/dev/vdb"] = {"id": 7, "fsid": "x", "cluster": "another-cluster"}
    rc, out = new_node.run()
    assert rc == 1
    assert "holds an OSD of another cluster (another-cluster)" in out
    assert not new_node.host.ran("ceph-volume", "lvm", "create")


def test_settings_the_monitors_refuse_stop_the_run(new_node):
    new_node.host.assimilate_leftover = "[global]\n\tosd_pool_default_size = 1\n"
    rc, out = new_node.run()
    assert rc == 1
    assert "the monitors did not take these settings: osd_pool_default_size" in out


def test_two_runs_never_overlap(new_node, monkeypatch):
    import fcntl

    import pytest

    from hypercore.errors import UserError
    from hypercore_installer.firstboot import main
    monkeypatch.setattr(main.os, "geteuid", lambda: 0)
    os.makedirs(os.path.dirname(new_node.paths.lock), exist_ok=True)
    with open(new_node.paths.lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        args = type("Args", (), {"root": str(new_node.root)})()
        with pytest.raises(UserError, match="already running"):
            main.firstboot(args)


def test_the_live_medium_is_refused(new_node):
    import pytest

    from hypercore.errors import UserError
    from hypercore_installer.firstboot import main
    new_node.file("etc/hypercore/live").write_text("")
    with pytest.raises(UserError, match="live medium"):
        main.preflight(new_node.paths)
