"""In QEMU, with real Ceph daemons: the built image, turned into what the
installer leaves (answers.yaml and install.json, no live marker), bootstraps
a one-node cluster with hypercore-firstboot.service and reaches HEALTH_OK.

The current sources (hypercore_installer, hypercore, the unit file) are
copied into the guest before the bootstrap, so this tests the code in the
working tree, not the wheel the image was built with.

Under TCG (no usable KVM) the whole test takes about 5 to 8 minutes.
"""

from __future__ import annotations

import base64
import io
import json
import signal
import tarfile
import time
from pathlib import Path

import pytest
import yaml

from tests.machine import Machine, MachineError, retry

pytestmark = pytest.mark.boot

REPO = Path(__file__).resolve().parents[2]
UNIT = "hypercore-firstboot.service"
SSH_KEY = "ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl fb@tests"
ANSWERS = {
    "version": 1,
    "target": {"path": "/dev/vda"},
    "hostname": "hypercore",
    "timezone": "UTC",
    "network": {"mode": "dhcp"},
    "root": {"ssh_keys": [SSH_KEY]},
    "ceph": {"mode": "new", "osd_disks": ["/dev/vdb"]},
}
# What steps/system.py save_answers writes: the plan's resolved disks.
INSTALL_RECORD = {
    "installed": "2026-11-22T00:00:00Z",
    "disks": {
        "target": {"path": "/dev/vda", "name": "vda", "model": None, "serial": None, "wwn": None,
                   "size": None, "transport": "virtio", "links": []},
        "data": [],
        "osd": [{"path": "/dev/vdb", "name": "vdb", "model": None, "serial": "HCDISK0", "wwn": None,
                 "size": 8 * 1024**3, "transport": "virtio", "links": ["/dev/disk/by-id/virtio-HCDISK0"]}],
    },
    "data_filesystem_uuid": None,
    "root_filesystem_uuid": None,
    "machine_id": None,
}
TIMES: dict[str, float] = {}


def _tarball() -> str:
    buf = io.BytesIO()
    with tarfile.open(fileobj=buf, mode="w:gz") as tar:
        for src, name in ((REPO / "installer/hypercore_installer", "hypercore_installer"),
                          (REPO / "hypercore", "hypercore")):
            tar.add(src, arcname=name, filter=lambda t: None if "__pycache__" in t.name else t)
    return base64.b64encode(buf.getvalue()).decode()


def send_file(m: Machine, path: str, b64: str, chunk: int = 60000) -> None:
    """Base64 text into a guest file, in pieces: one command line must stay
    below the kernel's 128 KiB limit for a single argument."""
    m.succeed(f": > {path}")
    for i in range(0, len(b64), chunk):
        m.succeed(f"printf %s {b64[i:i + chunk]} >> {path}")


def push_sources(m: Machine) -> None:
    """The working tree's Python packages and unit file into the guest."""
    site = m.succeed("python3 -c 'import hypercore_installer, os; "
                     "print(os.path.dirname(os.path.dirname(hypercore_installer.__file__)))'").strip()
    assert site.startswith("/usr/local/lib/python3"), site
    send_file(m, "/run/hypercore-src.tgz.b64", _tarball())
    m.succeed(f"rm -rf {site}/hypercore_installer {site}/hypercore && "
              f"base64 -d /run/hypercore-src.tgz.b64 | tar -xz -C {site} && rm /run/hypercore-src.tgz.b64")
    unit = (REPO / "overlays/hypercore/usr/lib/systemd/system" / UNIT).read_text()
    m.succeed(f"echo {base64.b64encode(unit.encode()).decode()} | base64 -d > /usr/lib/systemd/system/{UNIT} "
              "&& systemctl daemon-reload")


def write_guest_file(m: Machine, path: str, text: str, mode: str) -> None:
    b64 = base64.b64encode(text.encode()).decode()
    m.succeed(f"install -m {mode} /dev/null {path} && echo {b64} | base64 -d > {path}")


def unit_state(m: Machine) -> str:
    return m.succeed(f"systemctl show -P ActiveState {UNIT}").strip()


@pytest.fixture(scope="module")
def node(image, tmp_path_factory):
    m = Machine(image, name="firstboot", workdir=tmp_path_factory.mktemp("firstboot"),
                memory_mb=4096, disks=["8G"])
    m.start()
    try:
        m.wait_for_unit("multi-user.target", timeout=900)
        TIMES["boot"] = time.monotonic() - m.started_at
        # The image enables the unit; on the live medium its conditions skip it.
        assert m.succeed(f"systemctl is-enabled {UNIT}").strip() == "enabled"
        assert "ConditionResult=no" in m.succeed(f"systemctl show -p ConditionResult {UNIT}")
        m.fail("test -e /etc/ceph/ceph.conf")
        push_sources(m)
        # What the installer leaves on the installed root.
        m.succeed("rm -f /etc/hypercore/live && mkdir -p /etc/hypercore")
        write_guest_file(m, "/etc/hypercore/answers.yaml",
                         "# test\n" + yaml.safe_dump(ANSWERS, sort_keys=False), "0600")
        write_guest_file(m, "/etc/hypercore/install.json", json.dumps(INSTALL_RECORD, indent=1) + "\n", "0600")
        m.succeed("hypercore-install validate /etc/hypercore/answers.yaml")
        m.succeed("ls -l /dev/disk/by-id/virtio-HCDISK0")

        t = time.monotonic()
        m.succeed(f"systemctl start --no-block {UNIT}")

        def finished(_last):
            state = unit_state(m)
            return state if state in ("active", "failed") else None

        try:
            state = retry(finished, 720, 10, "the first-boot bootstrap")
        except TimeoutError as e:
            raise MachineError(f"{e}\n{m.execute(f'journalctl -b -u {UNIT} --no-pager | tail -60')[1]}") from None
        TIMES["bootstrap"] = time.monotonic() - t
        log = m.execute(f"journalctl -b -u {UNIT} --no-pager -o cat")[1]
        (m.workdir / "firstboot.log").write_text(log)
        if state != "active":
            raise MachineError(f"{UNIT} failed:\n{log[-6000:]}")
        m.firstboot_log = log
        yield m
    finally:
        stop(m)


def stop(m: Machine) -> None:
    """SIGKILL QEMU and wait for it: freeing a 4 GiB guest takes longer than
    pexpect's close() waits before it gives up."""
    if m.process is not None and m.process.isalive():
        m.process.kill(signal.SIGKILL)
        retry(lambda _: not m.process.isalive(), 60, 0.2, "QEMU to exit")
    m.kill()


def test_health_ok_with_one_osd_up_and_in(node):
    assert node.succeed("ceph health").strip() == "HEALTH_OK"
    stat = json.loads(node.succeed("ceph osd stat --format json"))
    assert (stat["num_osds"], stat["num_up_osds"], stat["num_in_osds"]) == (1, 1, 1)
    # The only muted warning is the documented single-node decision.
    muted = node.succeed("ceph config get mon mon_warn_on_pool_no_redundancy").strip()
    assert muted == "false"
    assert json.loads(node.succeed("ceph health --format json")).get("mutes", []) == []


def test_vm_pool_is_rbd_with_one_copy(node):
    pools = {p["pool_name"]: p for p in json.loads(node.succeed("ceph osd pool ls detail --format json"))}
    assert "rbd" in pools["vm-pool"]["application_metadata"]
    assert pools["vm-pool"]["size"] == 1
    if "device_health_metrics" in pools:
        assert pools["device_health_metrics"]["size"] == 1
    node.succeed("rbd create vm-pool/t --size 64M")
    assert node.succeed("rbd ls vm-pool").split() == ["t"]


def test_keyrings_are_private(node):
    out = node.succeed("stat -c '%a %U %n' /etc/ceph/ceph.client.admin.keyring "
                       "/var/lib/ceph/bootstrap-osd/ceph.keyring /var/lib/ceph/mgr/ceph-hypercore/keyring "
                       "/var/lib/ceph/mon/ceph-hypercore/keyring /etc/hypercore/answers.yaml")
    rows = [line.split() for line in out.strip().splitlines()]
    assert all(mode == "600" for mode, _, _ in rows), out
    owners = {path: user for _, user, path in rows}
    assert owners["/var/lib/ceph/mgr/ceph-hypercore/keyring"] == "ceph"
    assert owners["/var/lib/ceph/mon/ceph-hypercore/keyring"] == "ceph"
    node.fail("ls /var/lib/ceph/tmp/hypercore-mon-seed.keyring")


def test_no_insecure_global_id_reclaim_and_msgr2_on(node):
    assert node.succeed("ceph config get mon auth_allow_insecure_global_id_reclaim").strip() == "false"
    dump = node.succeed("ceph mon dump 2>/dev/null")
    assert "v2:" in dump and "v1:" in dump, dump


def test_ready_report_on_console_and_above_the_login_prompt(node):
    issue = node.succeed("cat /etc/issue.d/hypercore.issue")
    fsid = node.succeed("ceph fsid").strip()
    for text in ("HEALTH_OK", fsid, "10.0.2.15", "create-vm", "ceph -s"):
        assert text in issue, text
    node.wait_for_console_text(r"Hypercore node hypercore: Ceph is ready \(HEALTH_OK\)", timeout=30)
    # No secret reaches the console, the journal or the report.
    keys = node.succeed("grep -h 'key = ' /etc/ceph/ceph.client.admin.keyring "
                        "/var/lib/ceph/bootstrap-osd/ceph.keyring").split()
    for key in [k for k in keys if k.endswith("==")]:
        assert key not in node.console_text() and key not in node.firstboot_log and key not in issue
    status = node.succeed("hypercore-install status")
    assert "HEALTH_OK" in status and "complete since" in status


def test_a_second_run_is_a_no_op(node):
    t = time.monotonic()
    out = node.succeed("hypercore-install firstboot")
    TIMES["second_run"] = time.monotonic() - t
    assert "nothing to do" in out
    # And the unit no longer starts at boot.
    node.succeed(f"systemctl restart {UNIT}")
    assert "ConditionResult=no" in node.succeed(f"systemctl show -p ConditionResult {UNIT}")


def test_timings(node):
    marks = json.loads(node.succeed(
        "cd /var/lib/hypercore/firstboot && python3 -c 'import json,glob; "
        "print(json.dumps({f[:-5]: json.load(open(f))[\"seconds\"] for f in glob.glob(\"*.done\")}))'"))
    TIMES.update({f"step:{k}": v for k, v in marks.items()})
    # For the record: how full the monitor's filesystem is (MON_DISK_LOW
    # warns below mon_data_avail_warn percent available).
    TIMES["mon_fs_avail_percent"] = 100 - int(node.succeed(
        "df --output=pcent /var/lib/ceph/mon | tail -1").strip().rstrip("%"))
    (node.workdir / "timings.json").write_text(json.dumps(TIMES, indent=1))
    print("\nfirstboot timings (s):", json.dumps(TIMES, indent=1))
    assert TIMES["bootstrap"] < 600
