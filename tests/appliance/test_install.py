"""End to end: boot the live image from a (virtual) USB stick with two blank
disks, take the answers from an HTTP server named on the kernel command line,
install, power off; then boot the installed disk alone and let its first boot
bootstrap Ceph to HEALTH_OK.

The live system is started with direct kernel boot only to put
``hypercore.answers=URL`` on its command line (a PXE-booted installer gets it
the same way); firmware boot of the same image is covered by tests/boot.
"""

from __future__ import annotations

import functools
import hashlib
import json
import http.server
import threading
import time

import pytest

from tests.conftest import BUILD
from tests.machine import Machine

pytestmark = pytest.mark.boot

# A throwaway key: the installed system must accept keys, never a default password.
SSH_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
           "e2e@hypercore-tests")

ANSWERS = f"""\
version: 1
target:
  match: {{serial: HCDISK0}}
hostname: node1
timezone: UTC
network:
  mode: dhcp
root:
  ssh_keys:
    - {SSH_KEY}
ceph:
  mode: new
  osd_disks:
    - match: {{serial: HCDISK1}}
after_install: poweroff
"""

TIMES: dict[str, float] = {}


@pytest.fixture
def answers_server(tmp_path):
    """A real HTTP server on 127.0.0.1 serving answers.yaml; yields (port, sha256)."""
    root = tmp_path / "www"
    root.mkdir()
    (root / "answers.yaml").write_text(ANSWERS)
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server.server_address[1], hashlib.sha256(ANSWERS.encode()).hexdigest()
    finally:
        server.shutdown()


def test_unattended_install_then_ceph_health_ok(image, netboot_dir, answers_server, tmp_path):
    port, digest = answers_server
    live = Machine(
        image, name="live", workdir=tmp_path / "live", firmware="bios", boot_device="usb",
        memory_mb=4096, disks=["16G", "8G"],
        # The guest reaches only the test's HTTP server: 10.0.2.100:80 -> 127.0.0.1:port.
        nics=[f"user,restrict=on,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:{port}"],
        kernel=netboot_dir / "vmlinuz", initrd=netboot_dir / "initrd",
        append=("console=tty0 console=ttyS0,115200 rw root=PARTLABEL=hypercore-root "
                "hypercore.answers=http://10.0.2.100/answers.yaml "
                f"hypercore.answers_sha256={digest}"))
    t0 = time.monotonic()
    with live:
        # The unattended install runs during boot (before multi-user.target).
        live.wait_for_console_text(r"hypercore-install\[\d+\]: \[1/\d+\] ", timeout=900)
        TIMES["live boot"] = time.monotonic() - t0
        # The installer powers the machine off when done (after_install: poweroff).
        live.wait_for_shutdown(timeout=1800)
        TIMES["install"] = time.monotonic() - t0 - TIMES["live boot"]
    console = live.console_log.read_text(errors="replace")
    assert ("Answer file: http://10.0.2.100/answers.yaml (from the kernel command line" in console
            ), "the console does not say where the answers came from"
    assert f"sha256 {digest}" in console

    target, osd = live.workdir / "disk0.qcow2", live.workdir / "disk1.qcow2"
    node = Machine(None, name="node1", workdir=tmp_path / "node1", firmware="uefi",
                   memory_mb=4096, disks=[target, osd])
    t1 = time.monotonic()
    with node:
        node.wait_for_unit("multi-user.target", timeout=900)
        # multi-user.target includes the first-boot bootstrap (a oneshot unit).
        TIMES["installed boot + first boot"] = time.monotonic() - t1
        # First boot: hypercore-firstboot.service bootstraps Ceph, then finishes.
        node.wait_until_succeeds(
            "test \"$(systemctl show -p ActiveState --value hypercore-firstboot.service)\" != activating"
            " && ceph health | grep -x HEALTH_OK", timeout=1500, interval=20)
        assert node.succeed("systemctl show -p Result --value hypercore-firstboot.service").strip() == "success"
        took = node.wait_for_console_text(r"hypercore-firstboot: finished in (\d+) s", timeout=60)
        TIMES["of which Ceph bootstrap"] = float(took.group(1))

        # The installed system is not the live system.
        assert node.succeed("hostname").strip() == "node1"
        node.fail("test -e /etc/hypercore/live")
        node.fail("systemctl cat serial-getty@ttyS0.service | grep -q autologin")
        node.wait_for_console_text(r"node1 login:", timeout=120)
        assert SSH_KEY in node.succeed("cat /root/.ssh/authorized_keys")
        assert node.succeed("stat -c %a /root/.ssh/authorized_keys").strip() == "600"
        # The BTRFS data layout is mounted at /var/lib.
        assert node.succeed("findmnt -n -o FSTYPE /var/lib").strip() == "btrfs"
        subvols = node.succeed("btrfs subvolume list /var/lib")
        for sub in ("images", "vms", "shared", "iso", "tftpboot", ".snapshots"):
            assert f"hypercore/{sub}" in subvols, subvols
        # Ceph: cephx, one OSD up, vm-pool for RBD, keyrings private.
        node.succeed("ceph osd stat | grep -q '1 osds: 1 up.*1 in'")
        assert "rbd" in node.succeed("ceph osd pool application get vm-pool")
        node.succeed("rbd create vm-pool/e2e --size 64M && rbd ls vm-pool | grep -qx e2e")
        assert node.succeed("ceph config get mon auth_allow_insecure_global_id_reclaim").strip() == "false"
        assert "cephx" in node.succeed("ceph-conf --show-config-value auth_cluster_required")
        modes = node.succeed("stat -c '%a %n' /etc/ceph/*.keyring").splitlines()
        assert modes and all(m.startswith("600 ") for m in modes), modes
        assert "HEALTH_OK" in node.succeed("hypercore-install status")
    print("\n" + "\n".join(f"{k:>28}: {v:6.0f} s" for k, v in TIMES.items()))
    # For the benchmark table (python3 -m tests.bench --install).
    (BUILD / "bench-install.json").write_text(json.dumps(TIMES, indent=1) + "\n")
