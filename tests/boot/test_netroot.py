"""The netboot client system on its own: the build's kernel and netroot
initramfs boot in QEMU (direct kernel boot, QEMU's own DHCP on a restricted
user network), download build/netboot/root.squashfs from an HTTP server run by
the test, and start the live system from it in RAM. The PXE/iPXE path in front
of this is tested against a real appliance in tests/appliance/test_netboot.py.
"""

from __future__ import annotations

import functools
import http.server
import threading
import time

import pytest

from tests.machine import Machine

pytestmark = pytest.mark.boot


@pytest.fixture
def netroot_server(netboot_dir):
    handler = functools.partial(http.server.SimpleHTTPRequestHandler, directory=str(netboot_dir))
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server.server_address[1]
    server.shutdown()


def test_client_runs_the_live_system_from_ram(netboot_dir, netroot_server, tmp_path):
    port = netroot_server
    m = Machine(None, name="netroot", workdir=tmp_path, firmware="bios", memory_mb=2048,
                nics=[f"user,restrict=on,guestfwd=tcp:10.0.2.100:80-tcp:127.0.0.1:{port}"],
                kernel=netboot_dir / "vmlinuz", initrd=netboot_dir / "netroot-initrd.img",
                append="console=ttyS0,115200 hypercore.netroot=http://10.0.2.100/root.squashfs")
    t0 = time.monotonic()
    with m:
        m.wait_for_console_text(r"hypercore-netboot: network up on \S+: 10\.0\.2\.15/24", timeout=300)
        m.wait_for_console_text(r"hypercore-netboot: starting the system", timeout=600)
        m.wait_for_unit("multi-user.target", timeout=900)
        took = time.monotonic() - t0
        assert m.succeed("findmnt -n -o FSTYPE /").strip() == "overlay"
        assert m.succeed("cat /run/hypercore/netroot.url").strip() == "http://10.0.2.100/root.squashfs"
        m.succeed("test -e /etc/hypercore/live")
        # Writes go to RAM; the downloaded image stays read-only underneath.
        m.succeed("echo x > /etc/hypercore-written && test -e /run/hypercore/netroot/upper/etc/hypercore-written")
        failed = m.succeed("systemctl --failed --no-legend --plain --no-pager")
        assert failed.strip() == "", f"failed units:\n{failed}"
    print(f"\nnetroot client: power-on to multi-user {took:.0f} s")


def test_unreachable_root_image_says_what_to_fix(netboot_dir, tmp_path):
    # Nothing listens behind 10.0.2.100:80: the download fails with one clear line.
    m = Machine(None, name="netroot-bad", workdir=tmp_path, firmware="bios", memory_mb=1024,
                nics=["user,restrict=on"],
                kernel=netboot_dir / "vmlinuz", initrd=netboot_dir / "netroot-initrd.img",
                append="console=ttyS0,115200 hypercore.netroot=http://10.0.2.100/root.squashfs")
    with m:
        m.wait_for_console_text(r"hypercore-netboot: ERROR: could not download http://10\.0\.2\.100/root\.squashfs",
                                timeout=300)
        m.wait_for_console_text(r"hypercore-netboot: fix: check the appliance's HTTP service", timeout=30)
