"""`hypercore cluster remove NODE`: the plan from recorded Ceph 16 JSON (three
nodes, one), refusals that change nothing, and the drain loop with a
recording runner (the real cluster: tests/appliance/test_scaleout.py)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from hypercore.cluster import remove, sizing
from hypercore.errors import UserError

RECORDED = Path(__file__).parent / "recorded"
CLEAN = {"pg_ready": True, "pg_summary": {"num_pg_by_state": [{"name": "active+clean", "num": 33}], "num_pgs": 33}}


def docs(name: str, pg_stat=CLEAN, active="node1") -> dict:
    d = {k: json.loads((RECORDED / f"{name}.{k}.json").read_text()) for k in ("osd_tree", "mon_dump", "pools")}
    return {**d, "pg_stat": pg_stat, "mgr_dump": {"active_name": active}}


def test_three_to_two_nodes():
    p = remove.plan("node2", "node1", docs("three-nodes"))
    assert p.osds == [1, 2] and p.mon
    assert ["osd", "pool", "set", "vm-pool", "size", "2"] in p.fit
    assert ["osd", "pool", "set", "vm-pool", "min_size", "1"] in p.fit
    assert p.finish == [["osd", "purge", "1", "--yes-i-really-mean-it"], ["osd", "purge", "2", "--yes-i-really-mean-it"],
                        ["osd", "crush", "rm", "node2"], ["mon", "remove", "node2"], ["auth", "rm", "mgr.node2"],
                        ["config", "set", "global", "osd_pool_default_size", "2"],
                        ["config", "set", "global", "osd_pool_default_min_size", "1"]]
    text = p.describe()
    assert "ceph osd out 1 2" in text and "safe-to-destroy 1 2" in text


def test_two_to_one_node_brings_back_single_node_mode():
    fit, undo = sizing.fit_pools(1, {"vm-pool": {"size": 2, "min_size": 1, "type": 1}, "ec": {"size": 3, "type": 3}})
    # size one needs mon_allow_pool_size_one, set first, and Ceph's confirmation flag
    assert fit == [["config", "set", "mon", "mon_allow_pool_size_one", "true"],
                   ["osd", "pool", "set", "vm-pool", "size", "1", "--yes-i-really-mean-it"],
                   ["osd", "pool", "set", "vm-pool", "min_size", "1"]]
    assert undo == [["osd", "pool", "set", "vm-pool", "size", "2"], ["osd", "pool", "set", "vm-pool", "min_size", "1"],
                    ["config", "rm", "mon", "mon_allow_pool_size_one"]]
    assert sizing.shrink_settings(1) == [["config", "set", who, option, value]
                                         for who, option, value in sizing.SINGLE_NODE_SETTINGS]


def test_the_active_manager_fails_over_first():
    p = remove.plan("node3", "node1", docs("three-nodes", active="node3"))
    assert p.finish[0] == ["mgr", "fail", "node3"]


@pytest.mark.parametrize("node, here, pg, expect", [
    ("node9", "node1", CLEAN, "no node named node9 in the cluster (nodes: node1, node2, node3)"),
    ("node1", "node1", CLEAN, "node1 is this node"),
    ("node2", "node1", {"num_pg_by_state": [{"name": "active+clean", "num": 30},
                                           {"name": "active+undersized+degraded", "num": 3}], "num_pgs": 33},
     "not every placement group is active+clean (30 active+clean, 3 active+undersized+degraded)"),
])
def test_refusals(node, here, pg, expect):
    with pytest.raises(UserError) as e:
        remove.plan(node, here, docs("three-nodes", pg_stat=pg))
    assert expect in e.value.message and e.value.hint


def test_the_last_host_with_osds_is_refused():
    d = docs("one-node")
    host = [n["name"] for n in d["osd_tree"]["nodes"] if n["type"] == "host"][0]
    with pytest.raises(UserError) as e:
        remove.plan(host, "elsewhere", d)
    assert "only OSDs" in e.value.message


class Runner:
    def __init__(self, busy_polls: int, up_again: int = 0):
        self.calls: list[list[str]] = []
        self.busy = busy_polls
        self.up_again = up_again       # purges refused (EBUSY: the daemon came back up)

    def __call__(self, argv, check=True, timeout=None):
        self.calls.append(argv[3:])
        rc = 0
        if argv[3:5] == ["osd", "safe-to-destroy"]:
            rc, self.busy = (16 if self.busy > 0 else 0), self.busy - 1
        if argv[3:5] == ["osd", "purge"] and self.up_again > 0:
            rc, self.up_again = 16, self.up_again - 1
        return subprocess.CompletedProcess(argv, rc, "", "")


def test_out_then_fit_then_drain_then_purge():
    """The pools get fewer copies only once the leaving OSDs are out (so the
    copies kept are on the hosts that stay), and before the wait (a pool with
    more copies than hosts is never clean, and Ceph keeps the leaving OSDs'
    stray copies until it is: the drain never ended, found on appliances)."""
    p = remove.plan("node2", "node1", docs("three-nodes"))
    run, said = Runner(busy_polls=2), []
    remove.execute(p, say=said.append, run=run, clock=lambda: 0, sleep=lambda s: None)
    calls = run.calls
    out = calls.index(["osd", "out", "1", "2"])
    polls = [i for i, c in enumerate(calls) if c == ["osd", "safe-to-destroy", "1", "2"]]
    fit = calls.index(["osd", "pool", "set", "vm-pool", "size", "2"])
    defaults = calls.index(["config", "set", "global", "osd_pool_default_size", "2"])
    purge = calls.index(["osd", "purge", "1", "--yes-i-really-mean-it"])
    assert len(polls) == 3 and out < fit < polls[0] and polls[-1] < purge < defaults
    assert not any(c[:3] == ["osd", "pool", "set"] or c[:1] == ["config"] for c in calls[:out])
    assert "node2 removed: 2 OSD(s) purged, its monitor removed" in said[-1]
    text = p.describe()
    assert text.index("ceph osd out 1 2") < text.index("ceph osd pool set vm-pool size 2") < text.index("safe-to")


def test_two_to_one_the_single_node_settings_come_only_after_the_drain():
    d = docs("three-nodes")
    d["osd_tree"]["nodes"] = [n for n in d["osd_tree"]["nodes"] if n.get("name") != "node3"]
    d["pools"] = [{**pool, "size": 2, "min_size": 1} for pool in d["pools"]]
    p = remove.plan("node2", "node1", d)
    run = Runner(busy_polls=1)
    remove.execute(p, say=lambda s: None, run=run, clock=lambda: 0, sleep=lambda s: None)
    out = run.calls.index(["osd", "out", "1", "2"])
    last_poll = max(i for i, c in enumerate(run.calls) if c[:2] == ["osd", "safe-to-destroy"])
    for who, option, value in sizing.SINGLE_NODE_SETTINGS:
        if option != "mon_allow_pool_size_one":
            assert run.calls.index(["config", "set", who, option, value]) > last_poll
    allow = run.calls.index(["config", "set", "mon", "mon_allow_pool_size_one", "true"])
    assert out < allow < run.calls.index(["osd", "pool", "set", "vm-pool", "size", "1", "--yes-i-really-mean-it"]) \
        < last_poll


def test_a_drain_that_does_not_finish_puts_the_osds_and_the_copies_back_and_removes_nothing():
    p = remove.plan("node2", "node1", docs("three-nodes"))
    run, t = Runner(busy_polls=10**6), iter(range(0, 10**6, 1000))
    with pytest.raises(UserError) as e:
        remove.execute(p, say=lambda s: None, run=run, clock=lambda: next(t), sleep=lambda s: None, timeout=5000)
    assert e.value.message.endswith("within 5000 s: osd.1, osd.2 are back in, device_health_metrics is back to "
                                    "size 3 and min_size 2, vm-pool is back to size 3 and min_size 2; nothing was "
                                    "removed"), e.value.message
    back = run.calls.index(["osd", "in", "1", "2"])
    assert run.calls[back:] == [["osd", "in", "1", "2"]] + [["osd", "pool", "set", pool, option, value]
                                                           for pool in ("device_health_metrics", "vm-pool")
                                                           for option, value in (("size", "3"), ("min_size", "2"))]
    assert not any(c[:2] in (["osd", "purge"], ["mon", "remove"], ["osd", "crush"]) or c[0] == "config"
                   for c in run.calls)


def test_a_min_size_the_staying_hosts_cannot_serve_is_lowered_for_the_drain_and_put_back():
    d = docs("three-nodes")
    d["pools"] = [{**pool, "min_size": 3} if pool["pool_name"] == "vm-pool" else pool for pool in d["pools"]]
    p = remove.plan("node2", "node1", d)
    assert p.prepare == [["osd", "pool", "set", "vm-pool", "min_size", "2"]]
    run, t = Runner(busy_polls=10**6), iter(range(0, 10**6, 1000))
    with pytest.raises(UserError) as e:
        remove.execute(p, say=lambda s: None, run=run, clock=lambda: next(t), sleep=lambda s: None, timeout=5000)
    assert "vm-pool is back to size 3 and min_size 3; nothing was removed" \
        in e.value.message, e.value.message
    calls = run.calls
    assert calls.index(["osd", "pool", "set", "vm-pool", "min_size", "2"]) < calls.index(["osd", "out", "1", "2"])
    assert calls[-1] == ["osd", "pool", "set", "vm-pool", "min_size", "3"]
    assert not any(c[:2] == ["osd", "purge"] for c in calls)


def test_a_running_osd_is_marked_down_before_each_purge():
    p = remove.plan("node3", "node1", docs("three-nodes"))
    run = Runner(busy_polls=0, up_again=2)
    remove.execute(p, say=lambda s: None, run=run, clock=lambda: 0, sleep=lambda s: None)
    tries = [c for c in run.calls if c[:2] in (["osd", "down"], ["osd", "purge"])]
    assert tries == [["osd", "down", "3"], ["osd", "purge", "3", "--yes-i-really-mean-it"]] * 3


def test_an_osd_that_stays_up_is_not_purged_and_says_how_to_stop_it():
    p = remove.plan("node3", "node1", docs("three-nodes"))
    run = Runner(busy_polls=0, up_again=10**6)
    with pytest.raises(UserError) as e:
        remove.execute(p, say=lambda s: None, run=run, clock=lambda: 0, sleep=lambda s: None)
    assert "keeps coming back up" in e.value.message and "ceph-osd@3" in e.value.hint
    assert not any(c[:2] in (["mon", "remove"], ["osd", "crush"]) for c in run.calls)
