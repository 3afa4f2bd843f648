"""One installed appliance, shared by the tests of this folder.

Boot the live image from a (virtual) USB stick with two blank disks, take the
answers from an HTTP server named on the kernel command line, install, power
off; then boot the installed disk alone and let its first boot bootstrap Ceph
to HEALTH_OK. The tests here then use that running node: what the install
left (test_install.py), VMs on its Ceph (test_vms.py), network boot of client
machines on a private network between QEMU processes (test_netboot.py;
tests/hub.py is its switch), more appliances joining (test_scaleout.py).

The live system is started with direct kernel boot only to put
``hypercore.answers=URL`` on its command line (a PXE-booted installer gets it
the same way); firmware boot of the same image is covered by tests/boot.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import http.server
import subprocess
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from tests.hub import Switch
from tests.machine import Machine

# A throwaway key: the installed system must accept keys, never a default password.
SSH_KEY = ("ssh-ed25519 AAAAC3NzaC1lZDI1NTE5AAAAIOMqqnkVzrm0SdG6UOoqKLsabgH5C9okWi0dh2l9GKJl "
           "e2e@hypercore-tests")

NEW_CLUSTER = """\
ceph:
  mode: new
  osd_disks:
    - match: {serial: HCDISK1}
"""


def answers(hostname: str, ceph: str = NEW_CLUSTER) -> str:
    """An unattended install onto the disk with serial HCDISK0, the `ceph`
    section given (default: a new cluster, an OSD on HCDISK1), then power off."""
    return f"""\
version: 1
target:
  match: {{serial: HCDISK0}}
hostname: {hostname}
timezone: UTC
network:
  mode: dhcp
root:
  ssh_keys:
    - {SSH_KEY}
{ceph}after_install: poweroff
"""


ANSWERS = answers("node1") + """\
netboot:
  enabled: true
  # The node's second NIC (Machine.mac(1)), on the private client network.
  interface: "52:54:00:12:34:57"
  # No DHCP server answers there, so auto must choose to be the DHCP server.
  mode: auto
  address: 192.168.50.1/24
  range: {start: 192.168.50.100, end: 192.168.50.150}
  menu: {timeout: 2, default: live}
  diskless: true
"""


def repo_section(peer_key: str) -> str:
    """Golden-image replication: one peer (not running in this test) whose key may replicate here."""
    return f"""\
repo:
  role: image-server
  peers:
    - {{name: node2, address: root@192.168.50.2, role: cache}}
  authorized_keys:
    - {peer_key}
"""


def pytest_collection_modifyitems(items):
    """The scale-out tests last in this folder (once node2 joined, node1's
    cluster needs it); the folder's tests stay together (one appliance)."""
    here = [i for i, item in enumerate(items) if item.path.parent == Path(__file__).parent]
    block = sorted((items[i] for i in here), key=lambda item: item.path.name == "test_scaleout.py")
    for i, item in zip(here, block):
        items[i] = item


@dataclass
class Appliance:
    node: Machine
    live_console: str
    answers_sha256: str
    switch: Switch                      # the private client network (node1's second NIC is on it)
    peer_key: Path                      # private key the answers authorized for repo replication
    times: dict[str, float] = field(default_factory=dict)

    def client_nic(self) -> str:
        """The NIC spec of a client machine on the node's private client network."""
        return self.switch.nic()


def _serve(root: Path):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(root))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="package")
def appliance(image, netboot_dir, tmp_path_factory):
    """The installed node1, running, Ceph at HEALTH_OK (torn down after this folder)."""
    work = tmp_path_factory.mktemp("appliance")
    www = work / "www"
    www.mkdir()
    # The repo step's input (a peer's key); its private half is for a future peer test.
    peer_key = work / "peer_ed25519"
    subprocess.run(["ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "hypercore-repo@node2",
                    "-f", str(peer_key)], check=True)
    text = ANSWERS + repo_section(peer_key.with_suffix(".pub").read_text().strip())
    (www / "answers.yaml").write_text(text)
    digest = hashlib.sha256(text.encode()).hexdigest()
    server = _serve(www)
    port = server.server_address[1]
    times: dict[str, float] = {}
    live = Machine(
        image, name="live", workdir=work / "live", firmware="bios", boot_device="usb",
        # 24 GiB: the default 16 GiB root and about 7 GiB of /var/lib (on 16 GiB the data partition gets
        # its 2 GiB minimum, which the kept image, the netboot roots and the repository nearly fill).
        memory_mb=4096, disks=["24G", "8G"],
        # The guest reaches only the test's HTTP server: 10.0.2.100:80 -> 127.0.0.1:port.
        nics=[f"user,restrict=on,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:{port}"],
        kernel=netboot_dir / "vmlinuz", initrd=netboot_dir / "initrd",
        append=("console=tty0 console=ttyS0,115200 rw root=PARTLABEL=hypercore-root "
                "hypercore.answers=http://10.0.2.100/answers.yaml "
                f"hypercore.answers_sha256={digest}"))
    t0 = time.monotonic()
    try:
        with live:
            # The unattended install runs during boot (before multi-user.target).
            live.wait_for_console_text(r"hypercore-install\[\d+\]: \[1/\d+\] ", timeout=900)
            times["live boot"] = time.monotonic() - t0
            # The installer powers the machine off when done (after_install: poweroff).
            live.wait_for_shutdown(timeout=1800)
            times["install"] = time.monotonic() - t0 - times["live boot"]
    finally:
        server.shutdown()

    target, osd = live.workdir / "disk0.qcow2", live.workdir / "disk1.qcow2"
    switch = Switch()
    node = Machine(None, name="node1", workdir=work / "node1", firmware="uefi",
                   memory_mb=4096, disks=[target, osd],
                   nics=["user,restrict=on", switch.nic()])
    t1 = time.monotonic()
    with contextlib.closing(switch), node:
        node.wait_for_unit("multi-user.target", timeout=900)
        # multi-user.target includes the first-boot bootstrap (a oneshot unit).
        times["installed boot + first boot"] = time.monotonic() - t1
        node.wait_until_succeeds(
            "test \"$(systemctl show -p ActiveState --value hypercore-firstboot.service)\" != activating"
            " && ceph health | grep -x HEALTH_OK", timeout=1500, interval=20)
        yield Appliance(node, live.console_log.read_text(errors="replace"), digest, switch, peer_key, times)
