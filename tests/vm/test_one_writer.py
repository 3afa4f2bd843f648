"""One VM disk, one writer: starts, deletes and rollbacks against a stand-in
`rbd` and `rados` (hypercore.run.run runs them from PATH) that answer with
Ceph 16's JSON (tests/vm/ceph_json) and keep the claim (a RADOS lock) in a file.
A stand-in qemu-system-x86_64 comes first on PATH too: no QEMU runs here."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from hypercore import definition, rbd_claims, snapshots, storage_rbd as sr, supervisor, vms
from hypercore.definition import RbdDisk, VMDefinition
from hypercore.errors import UserError
from hypercore.state import StateDir
from tests.vm.conftest import CLI, TOP
from tests.vm.fake_qmp import FakeQMP

JSON = Path(__file__).parent / "ceph_json"
DISK = RbdDisk(pool="vm-pool", image="web-disk0", owned=True)

FAKE = f"""#!{sys.executable} -S
import json, os, sys
d = os.environ["FAKE_CEPH"]
prog, a = os.path.basename(sys.argv[0]), sys.argv[1:]
if prog != "qemu-system-x86_64":                  # the connection options are not recorded
    a = [x for i, x in enumerate(a) if not x.startswith("--client_mount_timeout")
         and x not in ("--id", "-c", "-p") and (i == 0 or a[i - 1] not in ("--id", "-c", "-p"))]
with open(os.path.join(d, "calls"), "a") as f:
    f.write(json.dumps([prog] + a) + "\\n")
def opt(name):
    return a[a.index(name) + 1]
def put(name, doc):
    with open(os.path.join(d, name), "w") as f:
        json.dump(doc, f)
def get(name, default):
    p = os.path.join(d, name)
    return json.load(open(p)) if os.path.exists(p) else default
if prog == "qemu-system-x86_64":
    sys.exit(0)                                   # "QEMU" ends at once
if prog == "rbd":
    verb = a[0] if a[0] != "snap" else "snap " + a[1]
    answers = {{"info": "info.json", "status": "status.json", "snap ls": "snaps.json"}}
    if verb in answers:
        print(json.dumps(get(answers[verb], [] if verb == "snap ls" else {{}})))
    sys.exit(0)                                   # snap rollback, snap purge, rm: done
if a[:2] == ["lock", "info"]:
    print(json.dumps(get("lock.json", {{"name": a[3], "type": "none", "tag": "", "lockers": []}})))
elif a[:2] == ["lock", "get"]:
    lock = get("lock.json", {{"name": a[3], "type": "none", "tag": "", "lockers": []}})
    if lock["lockers"]:
        sys.exit(print("ERROR: failed locking: (16) Device or resource busy", file=sys.stderr) or 1)
    lock.update(type="exclusive", lockers=[{{"name": os.environ.get("FAKE_CLIENT", "client.5001"),
        "cookie": opt("--lock-cookie"), "description": opt("--lock-description"),
        "expiration": "0.000000", "addr": os.environ.get("FAKE_ADDR", "192.168.50.12:0/1122334455")}}])
    put("lock.json", lock)
elif a[:2] == ["lock", "break"]:
    lock = get("lock.json", {{"lockers": []}})
    keep = [x for x in lock["lockers"] if (x["name"], x["cookie"]) != (a[4], opt("--lock-cookie"))]
    if len(keep) == len(lock["lockers"]):
        sys.exit(print("ERROR: failed breaking lock: (2) No such file or directory", file=sys.stderr) or 1)
    lock["lockers"] = keep
    put("lock.json", lock)
else:
    sys.exit(22)
"""


class Ceph:
    """The stand-ins' state: what `rbd status` and `rados lock info` answer, and every call."""

    def __init__(self, root: Path):
        self.root = root

    def set(self, name: str, recorded: str | None) -> None:
        target = self.root / name
        if recorded is None:
            target.unlink(missing_ok=True)
        else:
            shutil.copyfile(JSON / recorded, target)

    def calls(self, prog: str = "") -> list[list[str]]:
        lines = (self.root / "calls").read_text().splitlines() if (self.root / "calls").exists() else []
        return [c[1:] for c in map(json.loads, lines) if not prog or c[0] == prog]

    def lockers(self) -> list[dict]:
        p = self.root / "lock.json"
        return json.loads(p.read_text())["lockers"] if p.exists() else []


@pytest.fixture
def ceph(tmp_path, monkeypatch) -> Ceph:
    bindir = tmp_path / "bin"
    bindir.mkdir()
    for prog in ("rbd", "rados", "qemu-system-x86_64"):
        (bindir / prog).write_text(FAKE)
        os.chmod(bindir / prog, 0o755)
    root = tmp_path / "ceph"
    root.mkdir()
    monkeypatch.setenv("PATH", f"{bindir}:{os.environ['PATH']}")
    monkeypatch.setenv("FAKE_CEPH", str(root))
    monkeypatch.setenv("HYPERCORE_CEPH_USER", "admin")
    monkeypatch.setattr(rbd_claims, "node_name", lambda: "node2")
    c = Ceph(root)
    c.set("info.json", "rbd-info.web-disk0.json")
    c.set("status.json", "rbd-status.closed.json")
    return c


def _define(state: Path, disk: RbdDisk = DISK) -> StateDir:
    st = StateDir(state)
    definition.save(VMDefinition(name="web", memory_mb=64, cpus=1, disks=(disk,)), st.definition("web"))
    return st


def _writes(ceph: Ceph) -> list[list[str]]:
    """Calls that change something: a claim taken or broken, a snapshot rolled back, a purge, an rm."""
    return [c for c in ceph.calls() if "get" in c[:3] or "break" in c[:3] or "rollback" in c
            or "purge" in c or c[:1] == ["rm"]]


def test_a_start_is_refused_while_the_disk_is_open_on_another_node(ceph, state):
    _define(state)
    ceph.set("status.json", "rbd-status.open-on-node1.json")
    ceph.set("lock.json", "rados-lock-info.web-on-node1.json")
    p = CLI(state)("boot-vm", "web", ok=False)
    assert p.stderr.splitlines()[0] == (
        "boot-vm: cannot start VM web: its disk vm-pool/web-disk0 is in use by "
        "VM web on node1 (since 2026-11-22 10:20:01 UTC)"), p.stderr
    assert "stop the VM there first" in p.stderr and "Traceback" not in p.stderr
    assert ceph.calls("qemu-system-x86_64") == [] and _writes(ceph) == []
    # Open by a client hypercore did not start (no claim): named by its address.
    ceph.set("lock.json", "rados-lock-info.none.json")
    p = CLI(state)("boot-vm", "web", ok=False)
    assert "is in use by client.4123 at 10.0.2.15:0/3412345678" in p.stderr.splitlines()[0], p.stderr
    assert ceph.calls("qemu-system-x86_64") == [] and _writes(ceph) == []


def _fake_launch(state: StateDir, monkeypatch, on_launch=lambda: None) -> list[FakeQMP]:
    """supervisor.launch without QEMU: a fake QMP where QEMU's would be (paused, disks open)."""
    served = []

    def launch(st, name, accel):
        on_launch()
        served.append(FakeQMP(st.runtime(name).qmp, {"cont": {}}))
        return supervisor.Started(4242, "detached process")
    monkeypatch.setattr(supervisor, "launch", launch)
    return served


def test_a_stale_claim_is_broken_then_the_start_claims_and_lets_the_guest_run(ceph, state, monkeypatch):
    st = _define(state)
    ceph.set("lock.json", "rados-lock-info.web-on-node1.json")   # node1 was killed: no watcher left
    qmp = _fake_launch(st, monkeypatch)
    out = vms.start(st, "web")
    assert out[0] == ("vm-pool/web-disk0: broke the stale claim of VM web on node1 "
                      "(since 2026-11-22 10:20:01 UTC): no client has the image open any more")
    assert out[1].startswith("started VM web")
    rados = ceph.calls("rados")
    assert ["lock", "break", "rbd_header.5e1f3a9c2d7b", "hypercore", "client.4117",
            "--lock-cookie", "web@node1"] in rados
    taken = [c for c in rados if c[:2] == ["lock", "get"]]
    assert len(taken) == 1 and taken[0][taken[0].index("--lock-cookie") + 1] == "web@node2"
    assert [x["cookie"] for x in ceph.lockers()] == ["web@node2"]
    assert qmp[0].commands()[-1] == "cont"                      # the guest runs only once claimed
    qmp[0].close()


def test_a_live_claim_is_never_broken(ceph, state, monkeypatch):
    """The claim's node still has the image open: refused, the claim kept."""
    st = _define(state)
    ceph.set("status.json", "rbd-status.open-on-node1.json")
    ceph.set("lock.json", "rados-lock-info.web-on-node1.json")
    _fake_launch(st, monkeypatch)
    with pytest.raises(UserError, match="in use by VM web on node1"):
        vms.start(st, "web")
    assert _writes(ceph) == [] and [x["cookie"] for x in ceph.lockers()] == ["web@node1"]


def test_the_start_that_loses_a_race_quits_its_paused_qemu(ceph, state, monkeypatch):
    st = _define(state)
    # Both starts saw the disk free; node1's took the claim while this QEMU was opening it.
    qmp = _fake_launch(st, monkeypatch, lambda: ceph.set("lock.json", "rados-lock-info.web-on-node1.json"))
    stopped = []
    monkeypatch.setattr(supervisor, "stop", lambda s, n, force=False, timeout=60: stopped.append((n, force)))
    with pytest.raises(UserError) as e:
        vms.start(st, "web")
    assert e.value.message == ("cannot start VM web: its disk vm-pool/web-disk0 is in use by "
                               "VM web on node1 (since 2026-11-22 10:20:01 UTC)")
    assert stopped == [("web", True)] and "cont" not in qmp[0].commands()
    qmp[0].close()


def test_delete_and_rollback_are_refused_while_the_disk_is_open(ceph, state):
    st = _define(state)
    ceph.set("snaps.json", "rbd-snap-ls.s1.json")
    ceph.set("status.json", "rbd-status.open-on-node1.json")
    ceph.set("lock.json", "rados-lock-info.web-on-node1.json")
    with pytest.raises(UserError) as e:
        vms.delete(st, "web")
    assert e.value.message == ("cannot delete VM web: its disk vm-pool/web-disk0 is in use by "
                               "VM web on node1 (since 2026-11-22 10:20:01 UTC)")
    with pytest.raises(UserError) as e:
        snapshots.rollback(st, "web", "s1")
    assert e.value.message.startswith("cannot roll back VM web: its disk vm-pool/web-disk0 is in use by VM web")
    assert _writes(ceph) == [] and st.definition("web").exists()
    # Closed everywhere: the rollback goes ahead.
    ceph.set("status.json", "rbd-status.closed.json")
    assert snapshots.rollback(st, "web", "s1") == "rolled VM web back to snapshot s1"
    assert ["snap", "rollback", "--no-progress", "vm-pool/web-disk0@s1"] in ceph.calls("rbd")


def test_stop_releases_this_nodes_claim_only(ceph, state, monkeypatch):
    st = _define(state)
    r = st.runtime("web")
    r.dir.mkdir(parents=True)
    monkeypatch.setattr(supervisor, "runner_pid", lambda _rt: None)
    for holder, left in (("web@node2", []), ("web@node1", ["web@node1"])):
        sr.take_claim(DISK, holder, f"VM web on {holder[4:]} since 2026-11-22 10:20:01 UTC")
        qmp = FakeQMP(r.qmp, {"quit": {}})
        pids = iter([1234] + [None] * 100)
        monkeypatch.setattr(supervisor, "qemu_pid", lambda _rt: next(pids))
        assert "forced off" in supervisor.stop(st, "web", force=True)
        assert [x["cookie"] for x in ceph.lockers()] == left
        qmp.close()
        r.qmp.unlink()


def test_the_runner_releases_the_claim_however_qemu_ends(ceph, state):
    """The real runner process (`vm _run`), its QEMU a stand-in that exits at once."""
    st = _define(state)
    sr.take_claim(DISK, "web@node2", "VM web on node2 since 2026-11-22 10:20:01 UTC")
    env = dict(os.environ, PYTHONPATH=str(TOP))
    code = ("import sys; from hypercore import rbd_claims; rbd_claims.node_name = lambda: 'node2'; "
            "from hypercore.cli import main; sys.exit(main(sys.argv[1:]))")
    p = subprocess.run([sys.executable, "-c", code, "--state-dir", str(state), "vm", "_run", "web",
                        "--accel", "tcg"], env=env, capture_output=True, text=True, timeout=60)
    assert p.returncode == 0, p.stdout + p.stderr
    qemu = ceph.calls("qemu-system-x86_64")
    assert len(qemu) == 1 and "-S" in qemu[0]                    # paused until claimed
    assert ceph.lockers() == []
    assert "released the claims on vm-pool/web-disk0" in st.runtime("web").log.read_text()


def test_watchers_are_named_by_the_claim_of_their_address():
    watcher = sr.Watcher("10.0.2.15:0/3412345678", client="client.4123")
    claim = sr.Claim("10.0.2.15:0/2871635544", locker="client.4117", cookie="web@node1",
                     description="VM web on node1 since 2026-11-22 10:20:01 UTC")
    assert rbd_claims.who([watcher], [claim]) == "VM web on node1 (since 2026-11-22 10:20:01 UTC)"
    # node1 reached the cluster from its other address when it took the claim: both are named.
    other = sr.Claim("192.168.50.1:0/99", locker="client.4117", cookie="web@node1", description="")
    assert rbd_claims.who([watcher], [other]) == "client.4123 at 10.0.2.15:0/3412345678, claimed by VM web on node1"


@pytest.mark.parametrize("address, ip", [
    ("10.0.2.15:0/3412345678", "10.0.2.15"),
    ("v2:192.168.50.12:0/1122", "192.168.50.12"),
    ("[fd00::2]:0/77", "fd00::2"),
])
def test_client_addresses(address, ip):
    assert sr.Client(address).ip == ip


def test_only_rbd_vms_start_paused():
    from hypercore import qemu_argv
    from hypercore.accel import Accel
    from hypercore.definition import FileDisk
    rt, tcg = StateDir(Path("/s")).runtime("web"), Accel("tcg", "test")
    build = lambda *disks: qemu_argv.build(VMDefinition(name="web", memory_mb=64, cpus=1, disks=disks),
                                           rt, tcg, shared_dir=Path("/s/shared"))
    assert "-S" in build(DISK)
    assert "-S" not in build(FileDisk(path="/s/d.qcow2", format="qcow2"))


def test_a_disk_in_a_namespace_is_claimed_in_that_namespace():
    """A diskless node's disks live in its own RBD namespace: so does their header object."""
    from hypercore import storage_rbd as sr
    from hypercore.definition import RbdDisk
    disk = RbdDisk(pool="vm-pool", image="d1-disk0", namespace="dl-525400123458", user="diskless-dl-525400123458")
    assert disk.spec == "vm-pool/dl-525400123458/d1-disk0"
    argv = sr._in_pool(disk, sr.claim_info_argv(disk.pool, "rbd_header.1", disk.user))
    assert argv[-2:] == ["--namespace", "dl-525400123458"] and "-p" in argv
    plain = RbdDisk(pool="vm-pool", image="web-disk0")
    assert "--namespace" not in sr._in_pool(plain, sr.claim_info_argv(plain.pool, "rbd_header.1"))
