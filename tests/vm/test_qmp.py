"""QMP and guest-agent exchanges against a fake monitor: stop, stats, snapshots."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from hypercore import stats, supervisor
from hypercore.qmp import QMP, GuestAgent, QMPError
from hypercore.state import StateDir
from tests.vm.fake_qmp import FakeQMP


@pytest.fixture
def rt(tmp_path):
    st = StateDir(tmp_path)
    r = st.runtime("web")
    r.dir.mkdir(parents=True)
    return st, r


def test_greeting_capabilities_and_events(tmp_path):
    fake = FakeQMP(tmp_path / "q.sock", {"query-status": {"status": "running", "running": True}},
                   events=[{"event": "RTC_CHANGE", "data": {}}])
    with QMP.connect(tmp_path / "q.sock") as q:
        assert q.version["qemu"]["major"] == 7
        assert q.execute("query-status")["status"] == "running"
        assert q.events and q.events[0]["event"] == "RTC_CHANGE"
        with pytest.raises(QMPError) as e:
            q.execute("no-such-command")
        assert e.value.error_class == "CommandNotFound"
    assert fake.commands() == ["qmp_capabilities", "query-status", "no-such-command"]
    fake.close()


def test_agent_absent_means_no_answer(tmp_path):
    import socket
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(tmp_path / "ga.sock"))
    server.listen(1)  # like QEMU's chardev with no agent in the guest: accepts, never answers
    with GuestAgent.connect(tmp_path / "ga.sock", timeout=0.3) as ga:
        assert ga.sync() is False
    server.close()


def test_stop_presses_the_acpi_button_without_agent(rt, monkeypatch):
    st, r = rt
    qmp = FakeQMP(r.qmp, {"system_powerdown": {}})
    pids = iter([1234] + [1234] * 3 + [None] * 100)
    monkeypatch.setattr(supervisor, "qemu_pid", lambda _rt: next(pids))
    monkeypatch.setattr(supervisor, "runner_pid", lambda _rt: None)
    monkeypatch.setattr(supervisor, "agent_answers", lambda _rt, timeout=2.0: False)
    how = supervisor.stop(st, "web", timeout=5)
    assert "ACPI power button" in how and "powered off by the guest" in how
    assert qmp.commands() == ["qmp_capabilities", "system_powerdown"]
    qmp.close()


def test_stop_uses_the_guest_agent_when_it_answers(rt, monkeypatch):
    st, r = rt
    agent = FakeQMP(r.qga, {}, agent=True)
    pids = iter([1234, 1234] + [None] * 100)
    monkeypatch.setattr(supervisor, "qemu_pid", lambda _rt: next(pids))
    monkeypatch.setattr(supervisor, "runner_pid", lambda _rt: None)
    how = supervisor.stop(st, "web", timeout=5)
    assert "guest agent shutdown" in how
    assert agent.commands()[-1] == "guest-shutdown"
    assert agent.received[-1][1] == {"mode": "powerdown"}
    agent.close()


def test_stop_kills_after_the_timeout(rt, monkeypatch):
    st, r = rt
    qmp = FakeQMP(r.qmp, {"system_powerdown": {}, "quit": {}})
    monkeypatch.setattr(supervisor, "qemu_pid", lambda _rt: None if "quit" in qmp.commands() else 1234)
    monkeypatch.setattr(supervisor, "runner_pid", lambda _rt: None)
    monkeypatch.setattr(supervisor, "agent_answers", lambda _rt, timeout=2.0: False)
    how = supervisor.stop(st, "web", timeout=0.5)
    assert "did not power off within 0 s" in how or "did not power off within 1 s" in how
    assert qmp.commands() == ["qmp_capabilities", "system_powerdown", "qmp_capabilities", "quit"]
    qmp.close()


def test_force_stop_quits_without_asking_the_guest(rt, monkeypatch):
    st, r = rt
    qmp = FakeQMP(r.qmp, {"quit": {}})
    monkeypatch.setattr(supervisor, "qemu_pid", lambda _rt: None if "quit" in qmp.commands() else 1234)
    monkeypatch.setattr(supervisor, "runner_pid", lambda _rt: None)
    assert "forced off" in supervisor.stop(st, "web", force=True)
    assert "system_powerdown" not in qmp.commands()
    qmp.close()


def test_stop_of_a_stopped_vm_is_a_user_error(rt):
    from hypercore.errors import UserError
    st, _ = rt
    with pytest.raises(UserError) as e:
        supervisor.stop(st, "web")
    assert e.value.message == "VM web is not running"


def _fake_proc(root: Path, pid: int, threads: dict[int, tuple[int, int]], rss_kb: int) -> None:
    for tid, (utime, stime) in threads.items():
        d = root / str(pid) / "task" / str(tid)
        d.mkdir(parents=True)
        fields = ["S"] + ["0"] * 10 + [str(utime), str(stime)] + ["0"] * 30
        (d / "stat").write_text(f"{tid} (CPU 0/TCG) " + " ".join(fields) + "\n")
    (root / str(pid) / "status").write_text(f"Name:\tqemu\nVmRSS:\t{rss_kb} kB\n")


def test_stats_from_qmp(tmp_path):
    proc = tmp_path / "proc"
    _fake_proc(proc, 99, {100: (250, 50), 101: (100, 0)}, rss_kb=300 * 1024)
    answers = {
        "query-status": {"status": "running", "running": True},
        "query-cpus-fast": [{"cpu-index": 0, "thread-id": 100}, {"cpu-index": 1, "thread-id": 101}],
        "query-memory-size-summary": {"base-memory": 512 * 1024 * 1024},
        "query-balloon": {"actual": 512 * 1024 * 1024},
        "query-kvm": {"enabled": False, "present": True},
        "query-blockstats": [{"device": "", "node-name": "disk0", "qdev": "/machine/peripheral/disk0-dev/virtio-backend",
                              "stats": {"rd_bytes": 1048576, "wr_bytes": 2097152, "rd_operations": 10,
                                        "wr_operations": 20}}],
    }
    fake = FakeQMP(tmp_path / "q.sock", answers)
    with QMP.connect(tmp_path / "q.sock") as q:
        s = stats.collect(q, 99, interval=0.01, proc=proc)
    assert s["accel"] == "tcg" and s["status"] == "running"
    assert [v["seconds"] for v in s["vcpus"]] == [300 / stats.CLK_TCK, 100 / stats.CLK_TCK]
    assert s["memory"] == {"rss_bytes": 300 * 1024 * 1024, "base_bytes": 512 * 1024 * 1024,
                           "balloon_bytes": 512 * 1024 * 1024}
    assert s["disks"] == [{"disk": "disk0", "rd_bytes": 1048576, "wr_bytes": 2097152, "rd_ops": 10, "wr_ops": 20}]
    text = stats.render("web", s)
    assert "TCG" in text and "512 MiB assigned" in text and "disk0: read 1.0 MiB" in text
    json.dumps(s)
    assert fake.commands()[:3] == ["qmp_capabilities", "query-status", "query-cpus-fast"]
    fake.close()


def test_stats_without_balloon(tmp_path):
    proc = tmp_path / "proc"
    _fake_proc(proc, 5, {6: (1, 1)}, rss_kb=1024)
    fake = FakeQMP(tmp_path / "q.sock", {
        "query-status": {"status": "paused"}, "query-cpus-fast": [{"cpu-index": 0, "thread-id": 6}],
        "query-memory-size-summary": {"base-memory": 64 << 20},
        "query-balloon": RuntimeError("No balloon device has been activated"),
        "query-kvm": {"enabled": True}, "query-blockstats": []})
    with QMP.connect(tmp_path / "q.sock") as q:
        s = stats.collect(q, 5, interval=0.01, proc=proc)
    assert "balloon_bytes" not in s["memory"] and s["accel"] == "kvm"
    fake.close()


def _running_vm(st, monkeypatch, tmp_path):
    from hypercore import definition
    from hypercore.definition import FileDisk, VMDefinition
    disk = tmp_path / "disk0.qcow2"
    from hypercore import storage_file
    storage_file.create(disk, 64 << 20)
    definition.save(VMDefinition(name="web", memory_mb=64, cpus=1,
                                 disks=(FileDisk(path=str(disk), format="qcow2"),)), st.definition("web"))
    monkeypatch.setattr(supervisor, "is_running", lambda _st, _n: True)


def test_live_snapshot_of_a_qcow2_goes_over_qmp(rt, monkeypatch, tmp_path):
    from hypercore import snapshots
    st, r = rt
    _running_vm(st, monkeypatch, tmp_path)
    monkeypatch.setattr(supervisor, "agent_answers", lambda _rt, timeout=2.0: False)
    qmp = FakeQMP(r.qmp, {"blockdev-snapshot-internal-sync": {}})
    msg = snapshots.create(st, "web", "s1")
    assert "crash-consistent" in msg
    assert qmp.received[-1] == ("blockdev-snapshot-internal-sync", {"device": "disk0", "name": "s1"})
    qmp.close()


def test_live_snapshot_freezes_through_the_agent(rt, monkeypatch, tmp_path):
    from hypercore import snapshots
    st, r = rt
    _running_vm(st, monkeypatch, tmp_path)
    agent = FakeQMP(r.qga, {"guest-fsfreeze-freeze": 2, "guest-fsfreeze-thaw": 2}, agent=True)
    qmp = FakeQMP(r.qmp, {"blockdev-snapshot-internal-sync": {}})
    assert "frozen by the guest agent" in snapshots.create(st, "web", "s1")
    assert [c for c in agent.commands() if c.startswith("guest-fs")] == ["guest-fsfreeze-freeze", "guest-fsfreeze-thaw"]
    assert "blockdev-snapshot-internal-sync" in qmp.commands()
    agent.close()
    qmp.close()


def test_rollback_refused_while_running(rt, monkeypatch, tmp_path):
    from hypercore import snapshots
    from hypercore.errors import UserError
    st, r = rt
    _running_vm(st, monkeypatch, tmp_path)
    with pytest.raises(UserError) as e:
        snapshots.rollback(st, "web", "s1")
    assert e.value.message == "VM web is running: cannot roll back a snapshot while it runs"
