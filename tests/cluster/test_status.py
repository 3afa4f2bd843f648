"""`hypercore cluster status` from recorded Ceph 16 JSON (a fresh single node,
and three nodes with one of them down)."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

from hypercore.cluster import status

RECORDED = Path(__file__).parent / "recorded"


def docs(name: str) -> dict:
    return {k: json.loads((RECORDED / f"{name}.{k}.json").read_text()) for k in status.QUERIES}


def test_one_node():
    s = status.summary(docs("one-node"))
    assert s["health"] == "HEALTH_OK" and s["checks"] == []
    assert s["nodes"] == [{"name": "node1", "osds": [{"id": 0, "up": True, "in": True}]}]
    assert s["mons"] == [{"name": "node1", "address": "10.0.2.15", "in_quorum": True}]
    assert [(p["name"], p["size"], p["min_size"]) for p in s["pools"]] == [
        ("device_health_metrics", 1, 1), ("vm-pool", 1, 1)]
    text = status.render(s)
    assert text.splitlines()[0] == "cluster 6f1d2c3e-4b5a-4c6d-8e9f-0a1b2c3d4e5f: HEALTH_OK"
    assert "nodes (1), 1 OSDs: 1 up, 1 in" in text
    assert "monitors (1, 1 in quorum)" in text
    assert "  vm-pool                1     1         32   replicated" in text
    assert len(text.splitlines()) < 25                            # one screen


def test_three_nodes_one_down():
    s = status.summary(docs("three-nodes"))
    assert [h["name"] for h in s["nodes"]] == ["node1", "node2", "node3"]
    assert s["osds"] == {"total": 4, "up": 3, "in": 3}
    assert [m["in_quorum"] for m in s["mons"]] == [True, True, False]
    assert {p["name"]: (p["size"], p["min_size"]) for p in s["pools"]} == {
        "device_health_metrics": (3, 2), "vm-pool": (3, 2)}
    assert [c["code"] for c in s["checks"]] == ["MON_DOWN", "OSD_DOWN", "OSD_HOST_DOWN", "PG_DEGRADED"]
    text = status.render(s)
    lines = text.splitlines()
    assert "  node3  1     0   0   down: osd.3; out: osd.3" in lines
    assert "  node2  2     2   2" in lines
    assert "  node3  10.0.2.17  NO" in lines
    assert "monitors (3, 2 in quorum)" in text
    assert "  MON_DOWN: 1/3 mons down, quorum node1,node2" in lines
    assert "    ... 2 more (ceph health detail)" in lines              # long details are cut
    assert len(lines) < 40


def test_empty_answers_do_not_crash():
    text = status.render(status.summary({}))
    assert text.startswith("cluster ?: unknown")


def test_gather_asks_ceph_four_times_in_json():
    calls = []

    def run(argv, timeout=None):
        calls.append(argv)
        key = next(k for k, args in status.QUERIES.items() if argv[3:-2] == args)
        return subprocess.CompletedProcess(argv, 0, (RECORDED / f"one-node.{key}.json").read_text(), "")

    assert status.gather(run) == docs("one-node")
    assert [c[3:] for c in calls] == [["osd", "tree", "-f", "json"], ["mon", "dump", "-f", "json"],
                                      ["osd", "pool", "ls", "detail", "-f", "json"],
                                      ["health", "detail", "-f", "json"]]
    assert all(c[:3] == ["ceph", "--connect-timeout", "20"] for c in calls)


def test_json_output(monkeypatch, capsys):
    from hypercore import cli
    monkeypatch.setattr(status, "gather", lambda: docs("three-nodes"))
    assert cli.main(["cluster", "status", "--json"]) == 0
    s = json.loads(capsys.readouterr().out)
    assert s["health"] == "HEALTH_WARN" and len(s["nodes"]) == 3
    assert cli.main(["cluster", "status"]) == 0
    assert "monitors (3, 2 in quorum)" in capsys.readouterr().out
