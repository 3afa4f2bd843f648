"""Files the installer writes, rendered without a disk."""

from __future__ import annotations

import pytest

from hypercore_installer import render


def test_network_files():
    assert render.network_file({"mode": "dhcp"}) == (
        "# Written by hypercore-install from the answer file.\n[Match]\nName=en* eth*\n\n[Network]\nDHCP=yes\n")
    static = render.network_file({"mode": "static", "interface": "52:54:00:AB:CD:EF", "address": "10.0.0.5/24",
                                  "gateway": "10.0.0.1", "dns": ["10.0.0.1", "9.9.9.9"]})
    assert "[Match]\nMACAddress=52:54:00:ab:cd:ef\n" in static
    assert static.endswith("Address=10.0.0.5/24\nGateway=10.0.0.1\nDNS=10.0.0.1\nDNS=9.9.9.9\n")
    assert "Name=eno1" in render.network_file({"mode": "dhcp", "interface": "eno1"})


def test_hosts_file_names_the_node():
    assert "127.0.1.1\tnode1\n" in render.hosts_file("node1", {"mode": "dhcp"})
    assert "10.0.0.5\tnode1.lab.example node1\n" in render.hosts_file(
        "node1.lab.example", {"mode": "static", "address": "10.0.0.5/24"})


def test_fstab_gets_exactly_one_var_lib_line():
    existing = ("# <fs> <mnt>\nUUID=abc / ext4 defaults 0 1\nUUID=old /var/lib btrfs subvol=x 0 0\n"
                "UUID=old /var/lib/hypercore/shared btrfs subvol=y 0 0\n\n")
    once = render.fstab_with_var_lib(existing, "1234")
    assert once.count("/var/lib\t") == 1 and "UUID=abc / ext4" in once and "UUID=old" not in once
    assert "UUID=1234\t/var/lib\tbtrfs\tsubvol=@var-lib,nosuid,nodev,noatime,compress=zstd:1\t0\t0\n" in once
    # The folder the VMs write is its own mount: nothing a guest makes there is setuid, a device or a program.
    assert ("UUID=1234\t/var/lib/hypercore/shared\tbtrfs\tsubvol=@var-lib/hypercore/shared,"
            "nosuid,nodev,noexec,noatime,compress=zstd:1\t0\t0\n") in once
    assert render.fstab_with_var_lib(once, "1234") == once       # idempotent
    assert render.fstab_with_var_lib("", "1234").count("\n") == 3


def test_identifiers_are_replaced_in_place():
    old, new = "12eb997f-4ee9-49f1-9586-21f503a0cffe", "0f2c7a44-6a1e-4e25-9c4e-3b1d2a7f9e10"
    data = b"MZ\x00root=PARTUUID=" + old.encode() + b" x " + old.upper().encode() + b"\x00"
    out = render.replace_ids(data, [(old, new)])
    assert len(out) == len(data)
    assert new.encode() in out and new.upper().encode() in out and old.encode() not in out
    with pytest.raises(ValueError):
        render.replace_ids(data, [(old, "short")])
    assert render.vfat_serial("1234abcd") == "1234-ABCD"
