"""The netboot client's initramfs on its own, when the root image cannot be
downloaded: direct kernel boot of the build's kernel and netroot initramfs,
QEMU's own DHCP on a restricted user network, nothing behind the URL. The
working path (PXE, iPXE, the download, the live system in RAM) is tested
against a real appliance in tests/appliance/test_netboot.py."""

from __future__ import annotations

import pytest

from tests.machine import Machine

pytestmark = pytest.mark.boot


def test_unreachable_root_image_says_what_to_fix(netboot_dir, tmp_path):
    # Nothing listens behind 10.0.2.100:80: the download fails with one clear line.
    m = Machine(None, name="netroot-bad", workdir=tmp_path, firmware="bios", memory_mb=1024,
                nics=["user,restrict=on"],
                kernel=netboot_dir / "vmlinuz", initrd=netboot_dir / "netroot-initrd.img",
                append="console=ttyS0,115200 hypercore.netroot=http://10.0.2.100/root.squashfs "
                       f"hypercore.netroot_sha256={'0' * 64}")
    with m:
        m.wait_for_console_text(r"hypercore-netboot: ERROR: could not download http://10\.0\.2\.100/root\.squashfs",
                                timeout=300)
        m.wait_for_console_text(r"hypercore-netboot: fix: check the appliance's HTTP service", timeout=30)
