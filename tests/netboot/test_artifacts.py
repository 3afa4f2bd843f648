"""Staging the client files: a real squashfs (mksquashfs) stands in for the
netroot partition."""

from __future__ import annotations

import subprocess

import pytest

from hypercore.errors import UserError
from hypercore_netboot import artifacts


@pytest.fixture
def image_files(tmp_path):
    d = tmp_path / "image"
    d.mkdir()
    (d / "vmlinuz-6.1").write_bytes(b"kernel" * 1000)
    (d / "vmlinuz").symlink_to("vmlinuz-6.1")
    (d / "initrd.img").write_bytes(b"initrd" * 1000)
    return d


@pytest.fixture
def netroot(tmp_path):
    tree = tmp_path / "tree"
    (tree / "etc").mkdir(parents=True)
    (tree / "etc" / "hostname").write_text("client\n")
    out = tmp_path / "netroot.part"
    subprocess.run(["mksquashfs", str(tree), str(out), "-quiet", "-noappend"], check=True)
    # A partition is larger than the filesystem in it: pad with junk.
    with out.open("ab") as f:
        f.write(b"\xff" * 65536)
    return out


def test_stage_copies_files_and_only_the_squashfs(tmp_path, image_files, netroot):
    http, tftp = tmp_path / "http", tmp_path / "tftp"
    done = artifacts.stage(http, tftp, str(netroot), image_files)
    assert "copied root.squashfs" in done[-1]
    for root in (http, tftp):
        assert (root / "vmlinuz").read_bytes() == b"kernel" * 1000 and not (root / "vmlinuz").is_symlink()
        assert (root / "initrd.img").read_bytes() == b"initrd" * 1000
    length, _ = artifacts.squashfs_extent(netroot)
    copied = (http / "root.squashfs").read_bytes()
    assert len(copied) == length and copied == netroot.read_bytes()[:length]
    assert b"\xff" * 4096 not in copied[-4096:]
    x = tmp_path / "x"
    subprocess.run(["unsquashfs", "-q", "-n", "-d", str(x), str(http / "root.squashfs")], check=True)
    assert (x / "etc" / "hostname").read_text() == "client\n"
    # A second run finds it current and copies nothing.
    assert "is current" in artifacts.stage(http, tftp, str(netroot), image_files)[-1]


def test_not_a_squashfs_is_refused(tmp_path, image_files):
    bogus = tmp_path / "bogus"
    bogus.write_bytes(b"\0" * 4096)
    with pytest.raises(UserError, match="does not hold a squashfs"):
        artifacts.stage(tmp_path / "http", tmp_path / "tftp", str(bogus), image_files)
    assert not (tmp_path / "http" / "root.squashfs").exists()


def test_missing_image_files_are_refused(tmp_path, netroot):
    with pytest.raises(UserError, match="missing") as e:
        artifacts.stage(tmp_path / "http", tmp_path / "tftp", str(netroot), tmp_path / "none")
    assert "tools/build-image" in e.value.hint


LINKS = [{"ifname": "lo", "address": "00:00:00:00:00:00"},
         {"ifname": "enp0s5", "address": "52:54:00:12:34:56"},
         {"ifname": "enp0s6", "address": "52:54:00:12:34:57"}]


def test_interface_given_as_a_mac_address_becomes_its_name():
    from hypercore_netboot.apply import by_mac
    from hypercore_netboot.settings import Settings
    s = Settings(enabled=True, interface="52:54:00:12:34:57")
    assert by_mac(s, LINKS).interface == "enp0s6"
    assert by_mac(Settings(enabled=True, interface="enp0s5"), LINKS).interface == "enp0s5"


def test_unknown_mac_address_lists_the_interfaces():
    from hypercore_netboot.apply import by_mac
    from hypercore_netboot.check import NetbootError
    from hypercore_netboot.settings import Settings
    with pytest.raises(NetbootError) as e:
        by_mac(Settings(enabled=True, interface="52:54:00:aa:bb:cc"), LINKS)
    assert "no interface has the MAC address 52:54:00:aa:bb:cc" in str(e.value)
    assert "enp0s5 (52:54:00:12:34:56), enp0s6 (52:54:00:12:34:57)" in str(e.value)
